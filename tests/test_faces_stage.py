"""The faces stage on real photos and on a folder of bad inputs."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cli import main
from bench.config import load_config
from bench.stages import faces


@pytest.fixture
def t1_jpg():
    return load_config().dataset.path + "/t1.jpg"


def test_sample_finds_the_six_faces_of_t1(cfg_factory):
    out = faces.run(cfg_factory())
    table = pd.read_parquet(out.faces)
    assert len(table) == 6 and table.aligned.all()
    assert table.face_id.is_unique
    assert all((out.root / c).is_file() for c in table.crop)
    crop = np.asarray(Image.open(out.root / table.crop[0]))
    assert crop.shape == (112, 112, 3)
    assert len(pd.read_csv(out.failures)) == 0


def test_rerun_is_byte_identical_and_uses_the_cache(cfg_factory, monkeypatch):
    cfg = cfg_factory()
    first = faces.run(cfg)
    before = {p: p.read_bytes() for p in (first.faces, first.failures, first.photos)}
    # A second run must not call the detector: detections come from the cache.
    monkeypatch.setattr("bench.detectors.dlib_hog.DlibHogDetector._detect",
                        lambda *a: pytest.fail("detector called despite the cache"))
    second = faces.run(cfg)
    assert {p: p.read_bytes() for p in (second.faces, second.failures, second.photos)} == before


def make_bad_folder(root, t1_jpg):
    root.mkdir()
    shutil.copy(t1_jpg, root / "group.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not a picture")
    (root / "truncated.jpg").write_bytes(open(t1_jpg, "rb").read()[:2000])
    Image.new("RGB", (300, 200), (120, 130, 140)).save(root / "blank.png")  # no face
    Image.new("L", (4000, 3000)).save(root / "huge.png")  # a bomb under a small pixel limit
    small = Image.open(t1_jpg).resize((320, 222))  # faces ~25 px: found at upsample 1, too small at 30
    small.save(root / "small_faces.jpg")
    (root / "labels.txt").write_text("not a photo extension")
    group = Image.open(t1_jpg)  # the group photo on frame 2 of an animated GIF
    Image.new("RGB", group.size).save(root / "animated.gif", save_all=True, append_images=[group], loop=0)
    return root


def test_every_bad_input_becomes_a_failure_row_with_exit_code_0(tmp_path, t1_jpg):
    folder = make_bad_folder(tmp_path / "photos", t1_jpg)
    results = tmp_path / "results"
    code = main(["faces", "dataset=folder", f"dataset.path={folder}", "dataset.name=bad",
                 f"results_dir={results}", "faces.max_image_pixels=5000000", "faces.min_face_size=30",
                 "detector=dlib_hog", "detector.upsample=2"])
    assert code == 0
    failures = pd.read_csv(results / "bad" / "failures.csv")
    reasons = failures.groupby("photo").reason.apply(" | ".join).to_dict()
    assert "empty" in reasons["empty.jpg"]
    assert "not an image" in reasons["notes.png"]
    assert "truncated" in reasons["truncated.jpg"]
    assert "no face" in reasons["blank.png"]
    assert "decompression bomb" in reasons["huge.png"]
    assert "too small to align" in reasons["small_faces.jpg"]
    assert "extension" in reasons["labels.txt"]
    assert "2 frames" in reasons["animated.gif"]  # refused, never read at its first frame only
    table = pd.read_parquet(results / "bad" / "faces.parquet")
    assert (table[table.photo == "group.jpg"].aligned).sum() == 6
    # a face too small to align is still listed, and every such face has a failure row
    unaligned = set(table.face_id[~table.aligned])
    assert unaligned and unaligned == set(failures.face_id.dropna()[failures.stage == "align"])
    photos = pd.read_csv(results / "bad" / "photos.csv")
    assert len(photos) == 9


def test_absent_party_dataset_is_a_clear_message(tmp_path, caplog):
    code = main(["faces", "dataset=party", f"paths.data={tmp_path / 'nodata'}", f"results_dir={tmp_path}"])
    assert code == 2
    assert "party subset is not in data/party" in caplog.text


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "faces" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.shared
def test_devset_every_photo_is_accounted_for(cfg_factory, shared):
    groups = shared("data", "groups")
    out = faces.run(cfg_factory("dataset=devset"))
    photos = pd.read_csv(out.photos)
    on_disk = sorted(p.name for p in groups.iterdir() if p.is_file())
    assert sorted(photos.photo) == on_disk
    table = pd.read_parquet(out.faces)
    assert len(table) >= 43
