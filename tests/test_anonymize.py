"""The anonymize stage: every face is swapped, obfuscated by the fallback, or reported."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.layout import Cell
from bench.generators.base import SwapFailed
from bench.generators.pixelate import Pixelate
from bench.stages import anonymize, faces


@pytest.fixture
def sample_cfg(cfg_factory, warm_caches):
    """The embedded sample's faces stage, its detections shared by the module's tests (only
    generators are patched here). The last look through the leak check's detectors scans the
    photo upright only (`leaks.rotations=[]`: the auditors' upright scans, already made), unless
    a test names its own; the turned look is tested on its own below and in test_coverage.py."""
    def make(*overrides):
        if not any(o.startswith("leaks.rotations=") for o in overrides):
            overrides = (*overrides, "leaks.rotations=[]")
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


_pixelate = Pixelate._swap


def fail_on_third_face(self, photo, face, target, target_face):
    if face.box[0] > 400 and face.box[0] < 600:
        raise SwapFailed("synthetic failure for the test")
    return _pixelate(self, photo, face, target, target_face)


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
def test_face_missing_from_the_inventory_is_covered_and_reported(sample_cfg, shared):
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    cfg = sample_cfg("generator=pixelate", "anonymize.audit_detectors=[scrfd]")
    faces_path = Cell.from_config(cfg).dataset_dir / "faces.parquet"
    table = pd.read_parquet(faces_path)
    table[table.face_index != 2].to_parquet(faces_path)  # as if the detector had missed one face
    cell = anonymize.run(cfg)
    failures = pd.read_csv(cell.failures).fillna("")
    audit = failures[failures.stage == "audit"]
    assert len(audit) == 1 and audit.reason.iloc[0].startswith("fallback blur: covered")
    box = [int(v) for v in audit.reason.iloc[0].split("box [")[1].split("]")[0].split(",")]
    missed = table[table.face_index == 2].iloc[0]
    assert abs(box[0] - missed.x1) < 30 and abs(box[1] - missed.y1) < 40  # it is the face left out
    # covered in the output photo, not only reported
    original = np.asarray(Image.open(f"{cfg.dataset.path}/t1.jpg").convert("RGB")).astype(int)
    result = np.asarray(Image.open(cell.photos / "t1.jpg.png")).astype(int)
    y1, y2, x1, x2 = int(missed.y1), int(missed.y2), int(missed.x1), int(missed.x2)
    assert np.abs(result[y1:y2, x1:x2] - original[y1:y2, x1:x2]).mean() > 5
    photos = pd.read_csv(cell.photo_table)
    assert photos.loc[0, "audit_found"] == 1 and photos.loc[0, "audit_covered"] == 1
    assert photos.loc[0, "left_real"] == 0 and photos.loc[0, "status"] == "anonymized"


@pytest.mark.shared
def test_missed_face_that_nothing_covers_is_marked_and_counted(sample_cfg, shared, monkeypatch, caplog):
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    monkeypatch.setattr("bench.generators.pixelate.Pixelate._swap", fail_on_third_face)
    cfg = sample_cfg("generator=pixelate", "anonymize.audit_detectors=[scrfd]", "anonymize.fallback=null")
    faces_path = Cell.from_config(cfg).dataset_dir / "faces.parquet"
    table = pd.read_parquet(faces_path)
    table[table.face_index != 2].to_parquet(faces_path)  # the face pixelate fails on is also missed
    cell = anonymize.run(cfg)
    photos = pd.read_csv(cell.photo_table)
    assert photos.loc[0, "status"] == "NOT ANONYMIZED" and photos.loc[0, "left_real"] == 1
    assert photos.loc[0, "audit_found"] == 1 and photos.loc[0, "audit_covered"] == 0
    assert "LEFT REAL" in caplog.text
    counts = json.loads(cell.provenance.read_text())["counts"]
    assert counts["left_real"] == 1 and counts["audit_left_real"] == 1 and counts["photos_left_real"] == 1


def test_photo_without_any_face_still_gets_its_output(cfg_factory, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((80, 120, 3), 90, np.uint8)).save(folder / "empty wall.png")
    cfg = cfg_factory("dataset=folder", f"dataset.path={folder}", "dataset.name=walls", "generator=blur",
                      "anonymize.audit_detectors=[]")
    faces.run(cfg)
    cell = anonymize.run(cfg)
    photos = pd.read_csv(cell.photo_table, keep_default_na=False)
    assert photos.photo.tolist() == ["empty wall.png"] and photos.status.tolist() == ["no face found"]
    assert (cell.root / photos.result.iloc[0]).is_file()


def test_new_weights_at_the_same_path_redo_the_photo(cfg_factory, tmp_path):
    """A photo's resume key covers the generator's and detector's weights by content: a new
    export saved over the old file must not leave photos swapped by the old one (whose
    provenance would then name the new file's sha256)."""
    path = tmp_path / "generator.onnx"

    class Weighted:
        def weights(self):
            return [path]

    cfg = cfg_factory("generator=pixelate")
    group = pd.DataFrame({"face_id": ["f0"], "face_index": [0], "x1": [1.0]})
    targets = pd.DataFrame({"source_face": pd.Series([], dtype=str)})
    path.write_bytes(b"export one")
    first = anonymize.photo_key(cfg, "p.jpg", group, targets, (), [Weighted(), None])
    assert anonymize.photo_key(cfg, "p.jpg", group, targets, (), [Weighted(), None]) == first
    path.write_bytes(b"export two, another size")
    assert anonymize.photo_key(cfg, "p.jpg", group, targets, (), [Weighted(), None]) != first


def test_output_audit_on_windows_finds_what_the_whole_photo_scan_finds(sample_cfg):
    """anonymize.scan_margin: the last look scans windows around the changed pixels; on the
    sample its verdicts equal the whole-photo scan's (same photo table, same re-detection)."""
    whole = anonymize.run(sample_cfg("generator=pixelate"))
    expected = pd.read_csv(whole.photo_table), pd.read_parquet(whole.faces)
    windows = anonymize.run(sample_cfg("generator=pixelate", "anonymize.scan_margin=1.0"))
    table, redetected = pd.read_csv(windows.photo_table), pd.read_parquet(windows.faces)
    assert table.left_real.sum() == 0
    pd.testing.assert_frame_equal(table, expected[0])
    assert len(redetected) == len(expected[1])


def test_faces_over_gives_each_inventory_face_the_leak_check_faces_over_it():
    """The guards' last look uses the faces the leak check will find: each alignable face goes to
    the inventory face it overlaps most (at anonymize.redetect_iou, or holding its nose point), the others to none."""
    from omegaconf import OmegaConf

    from bench.detectors.base import Detection

    def det(x1, y1, x2, y2, mark):
        return Detection(np.array([x1, y1, x2, y2], np.float32), 0.9, np.full((5, 2), mark, np.float32), ("d",))

    found = [det(12, 12, 52, 52, 1), det(8, 10, 48, 50, 2), det(100, 100, 140, 140, 3), det(60, 10, 70, 20, 4),
             det(-30, -30, 90, 90, 30), det(45, 0, 140, 60, 80)]  # 5: nose at (30, 30) in face 0; 6: nowhere near
    group = pd.DataFrame({"x1": [10.0, 55.0], "y1": [10.0, 10.0], "x2": [50.0, 95.0], "y2": [50.0, 50.0]})
    cfg = OmegaConf.create({"anonymize": {"redetect_iou": 0.3}, "faces": {"min_face_size": 20}})
    out = anonymize.faces_over(cfg, found, group)
    # 3: overlaps nothing; 4: under 20 px; 5: a box much larger than face 0 but its nose in it;
    # 6: overlaps face 1 a little (IoU < 0.3) with its nose outside it
    assert [[int(d.landmarks[0, 0]) for d in face] for face in out] == [[1, 2, 30], []]


def test_a_face_only_the_leak_check_finds_unchanged_is_covered_and_its_scans_are_reused(sample_cfg, monkeypatch):
    """The last look includes the leak check's own scan (every detector, turned too): a face it
    finds with unchanged pixels (here a made-up one on the background, as a detector finds on a
    turned photo only) is covered and listed with the detectors that found it; the leaks stage
    then reads the anonymize stage's scans of the published photo instead of scanning again."""
    from bench import leakscan
    from bench.detectors.base import Detection
    from bench.stages import leaks

    x1, y1 = 120, 570  # a textured patch of the sample's background, away from its faces
    extra = Detection(np.array([x1, y1, x1 + 60, y1 + 60], np.float32), 0.8, np.array(
        [[15, 20], [45, 20], [30, 32], [18, 46], [42, 46]], np.float32) + [x1, y1], ("scrfd@turned", "yunet@turned"))
    patch = np.s_[y1:y1 + 60, x1:x1 + 60]
    real_faces = leakscan.LeakScan.faces

    def faces(self, anonymized, original):
        found, errors = real_faces(self, anonymized, original)
        unchanged = np.abs(anonymized[patch].astype(int) - original[patch]).mean() < 1
        return found + ([extra] if unchanged else []), errors

    monkeypatch.setattr(leakscan.LeakScan, "faces", faces)
    cfg = sample_cfg("generator=pixelate", "leaks.detectors=[yunet,scrfd]")
    inventory = pd.read_parquet(Cell.from_config(cfg).dataset_dir / "faces.parquet")
    assert ((inventory.x2 < x1) | (inventory.x1 > x1 + 60) | (inventory.y2 < y1) | (inventory.y1 > y1 + 60)).all()
    cell = anonymize.run(cfg)
    photos = pd.read_csv(cell.photo_table)
    assert photos.audit_found.sum() == photos.audit_covered.sum() >= 1 and photos.left_real.sum() == 0
    failures = pd.read_csv(cell.failures).fillna("")
    assert failures[failures.stage == "audit"].reason.str.contains("scrfd@turned, yunet@turned").any()
    result = np.asarray(Image.open(cell.photos / "t1.jpg.png"))
    original = np.asarray(Image.open(f"{cfg.dataset.path}/t1.jpg").convert("RGB"))
    assert np.abs(result[patch].astype(int) - original[patch]).mean() >= 1

    monkeypatch.setattr(leakscan.LeakScan, "faces", real_faces)
    calls = []
    monkeypatch.setattr(leakscan, "detect_turned", lambda *a, **k: calls.append(a) or [])
    leaks.run(cfg)
    assert calls == []  # every scan of the published photo came from the anonymize stage's cache
