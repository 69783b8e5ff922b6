"""The anonymize stage: every face is swapped, obfuscated by the fallback, or reported."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cells import Cell
from bench.generators.base import SwapFailed
from bench.stages import anonymize, faces


@pytest.fixture
def sample_cfg(cfg_factory):
    def make(*overrides):
        cfg = cfg_factory(*overrides)
        faces.run(cfg)
        return cfg
    return make


def test_blur_replaces_every_face_and_accounts_for_each(sample_cfg):
    cfg = sample_cfg("generator=pixelate")
    cell = anonymize.run(cfg)
    pairs = pd.read_parquet(cell.pairs)
    source = pd.read_parquet(Cell.from_config(cfg).dataset_dir / "faces.parquet")
    assert sorted(pairs.source_face) == sorted(source.face_id)
    assert (pairs.status == anonymize.SWAPPED).all()
    failures = pd.read_csv(cell.failures).fillna("")
    # a face not found again in the result is a failure row, never silently missing
    for row in pairs.itertuples():
        assert row.redetected or ((failures.face_id == row.source_face) & (failures.stage == "redetect")).any()
    original = np.asarray(Image.open(f"{cfg.dataset.path}/t1.jpg").convert("RGB"))
    result = np.asarray(Image.open(cell.photos / "t1.jpg.png"))
    assert result.shape == original.shape
    for row in source.itertuples():  # each face region changed
        y1, y2, x1, x2 = int(row.y1), int(row.y2), int(row.x1), int(row.x2)
        assert np.abs(result[y1:y2, x1:x2].astype(int) - original[y1:y2, x1:x2]).mean() > 5


def fail_on_third_face(self, photo, face, target, target_face):
    if face.box[0] > 400 and face.box[0] < 600:
        raise SwapFailed("synthetic failure for the test")
    return photo.copy()


def test_failed_swap_falls_back_and_is_reported(sample_cfg, monkeypatch):
    monkeypatch.setattr("bench.generators.pixelate.Pixelate._swap", fail_on_third_face)
    cell = anonymize.run(sample_cfg("generator=pixelate", "anonymize.fallback=blur"))
    pairs = pd.read_parquet(cell.pairs)
    fallback = pairs[pairs.status.str.startswith("fallback blur")]
    assert len(fallback) == 1 and "synthetic failure" in fallback.status.iloc[0]
    failures = pd.read_csv(cell.failures).fillna("")
    assert (failures.face_id == fallback.source_face.iloc[0]).any()


def test_face_left_real_is_reported_loudly(sample_cfg, monkeypatch, caplog):
    monkeypatch.setattr("bench.generators.pixelate.Pixelate._swap", fail_on_third_face)
    cell = anonymize.run(sample_cfg("generator=pixelate", "anonymize.fallback=null"))
    pairs = pd.read_parquet(cell.pairs)
    real = pairs[pairs.status.str.startswith(anonymize.LEFT_REAL)]
    assert len(real) == 1
    failures = pd.read_csv(cell.failures).fillna("")
    assert failures.reason.str.startswith(anonymize.LEFT_REAL).sum() == 1
    assert "LEFT REAL" in caplog.text


def test_rerun_resumes_without_swapping_again(sample_cfg, monkeypatch):
    cfg = sample_cfg("generator=pixelate")
    cell = anonymize.run(cfg)
    before = cell.pairs.read_bytes(), cell.faces.read_bytes(), cell.failures.read_bytes()
    monkeypatch.setattr("bench.generators.pixelate.Pixelate._swap",
                        lambda *a: pytest.fail("swapped again despite an unchanged record"))
    anonymize.run(cfg)
    assert (cell.pairs.read_bytes(), cell.faces.read_bytes(), cell.failures.read_bytes()) == before


def test_generator_without_weights_gives_an_na_cell(sample_cfg):
    cell = anonymize.run(sample_cfg("generator=fsgan"))
    pairs = pd.read_parquet(cell.pairs)
    assert len(pairs) == 6 and pairs.status.str.startswith("n/a:").all()
    assert len(pd.read_csv(cell.failures)) == 6


@pytest.mark.shared
def test_face_missing_from_the_inventory_is_reported_as_left_real(sample_cfg, shared):
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    cfg = sample_cfg("generator=pixelate", "anonymize.audit_detector=scrfd")
    faces_path = Cell.from_config(cfg).dataset_dir / "faces.parquet"
    table = pd.read_parquet(faces_path)
    table[table.face_index != 2].to_parquet(faces_path)  # as if the detector had missed one face
    cell = anonymize.run(cfg)
    failures = pd.read_csv(cell.failures).fillna("")
    audit = failures[failures.stage == "audit"]
    assert len(audit) == 1 and audit.reason.iloc[0].startswith(anonymize.LEFT_REAL)
    box = [int(v) for v in audit.reason.iloc[0].split("box [")[1].split("]")[0].split(",")]
    missed = table[table.face_index == 2].iloc[0]
    assert abs(box[0] - missed.x1) < 30 and abs(box[1] - missed.y1) < 40  # it is the face left out
