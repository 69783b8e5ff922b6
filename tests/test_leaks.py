"""The leak check (stage `leaks`) on photos cut from insightface's t1.jpg in tmp_path: an
output identical to its original leaks every face, a blurred one leaves no face unchanged, a
readable photo without output is reported, a face cut by the image border is compared on
the part inside the photo."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.boxes import box_mean_abs_diff
from bench.layout import Cell
from bench.config import load_config
from bench.facetable import slug
from bench.images import load_photo
from bench import chance
from bench.layout import shrink_files
from bench.stages import anonymize, faces, leaks

# t1.jpg (1280x886) cut into: three faces well inside the photo, and one face whose box
# runs ~28 px past the left border (dlib's HOG still finds it: about a fifth of it is cut off).
CUTS = {"group.png": (0, 150, 600, 450), "border.png": (745, 300, 1000, 520)}
FAST = ["recognizers=[dlib,arcface]", "anonymize.audit_detectors=[]",
        "+recognizer_overrides.arcface.deepface_home=/nonexistent"]  # arcface: n/a everywhere
HOG = "leaks.detectors=[dlib_hog]"  # one detector: finds the four faces of the unchanged cuts


@pytest.fixture
def make_cfg(cfg_factory, tmp_path, warm_caches):
    """A two-photo folder dataset cut from t1.jpg; the faces stage run on it (detections
    shared by the module's tests: none patches a detector)."""
    t1 = load_photo(f"{load_config([]).dataset.path}/t1.jpg").rgb
    root = tmp_path / "photos"
    root.mkdir()
    for name, (x1, y1, x2, y2) in CUTS.items():
        Image.fromarray(np.ascontiguousarray(t1[y1:y2, x1:x2])).save(root / name)

    def make(*overrides):
        cfg = cfg_factory("dataset=folder", f"dataset.path={root}", "dataset.name=tiny", "generator=blur",
                          *FAST, *overrides)
        faces.run(cfg)
        return cfg
    return make


def fake_cell(cfg, transform=lambda rgb: rgb) -> Cell:
    """A cell folder written by hand: each readable photo's output is transform(original)."""
    cell = Cell.from_config(cfg)
    manifest = pd.read_csv(cell.dataset_dir / "photos.csv", keep_default_na=False)
    for photo in manifest.photo[manifest.status == "ok"]:
        rgb = load_photo(f"{cfg.dataset.path}/{photo}").rgb
        cell.photos.mkdir(parents=True, exist_ok=True)
        Image.fromarray(transform(rgb)).save(cell.photos / f"{slug(photo)}.png")
    pd.DataFrame({"source_face": [], "photo": [], "status": []}).to_parquet(cell.pairs)
    return cell


def read(cell: Cell) -> tuple[dict, pd.DataFrame]:
    return json.loads(cell.metrics.read_text())["leaks"], pd.read_parquet(cell.leaks)


@pytest.mark.parametrize("scan", ["leaks.scan_margin=null", "leaks.scan_margin=1.0"])
def test_output_identical_to_the_original_leaks_every_face(make_cfg, caplog, scan):
    """Whole-photo scans, and scans of the changes only (none here: the original's faces)."""
    cfg = make_cfg(HOG, scan)
    cell = fake_cell(cfg)
    with caplog.at_level(logging.INFO):
        leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["faces_found"] == 4 and metrics["detectors"] == ["dlib_hog"]
    assert metrics["unchanged_faces"] == 4 and metrics["leaking_faces"] == 4 and metrics["status"] == "ok"
    assert metrics["per_recognizer"]["dlib"] == {"leaks": 4, "leaks_vs_chance": 4, "faces_compared": 4, "status": "ok",
                                                 "threshold": pytest.approx(0.07), "metric": "cosine", "guard": False}
    # a cell without the anonymize stage's guard record: no recognizer guarded it, dlib judges
    assert metrics["guard"]["recognizers"] == [] and metrics["guard"]["verified_by_non_guard"] == 4
    arcface = metrics["per_recognizer"]["arcface"]
    assert arcface["status"].startswith("n/a: weights not found") and arcface["faces_compared"] == 0
    assert metrics["per_photo"]["group.png"]["per_recognizer"] == {"dlib": 3}
    dlib = table[table.recognizer == "dlib"]
    assert len(dlib) == 4 and dlib.verified.all() and (dlib.distance < 1e-6).all()
    assert table[table.recognizer == "arcface"].verified.isna().all()
    unchanged = table[table.check == leaks.UNCHANGED]
    assert (unchanged.mean_abs_diff == 0).all() and unchanged.leak.all()
    assert "LEAK" in caplog.text and "leaks per recognizer" in caplog.text
    # against chance: unchanged pixels leak whatever the recognizers; no shrink table here
    assert metrics["leaking_faces_vs_chance"] == 4 and metrics["too_small_to_tell"] == 0
    assert metrics["chance"]["shrink"].startswith("n/a: shrink.csv not found")
    assert metrics["per_recognizer"]["dlib"]["leaks_vs_chance"] == 4
    assert (dlib.verdict == chance.UNCHANGED_LEAK).all() and dlib.leak_vs_chance.all()
    assert (table[table.check == leaks.UNCHANGED].treatment == "unchanged").all()
    rows = pd.read_csv(cell.leaks_chance_csv, keep_default_na=False)
    assert set(rows.recognizer) == {"dlib", "arcface"} and (rows[rows.recognizer == "dlib"].verdict == chance.UNCHANGED_LEAK).all()
    assert rows[rows.recognizer == "dlib"].leaks.sum() == 4 and cell.leaks_chance_md.is_file()
    assert cell.leak_sheet.stat().st_size > 10_000 and cell.leaks_provenance.is_file()
    sheet = np.asarray(Image.open(cell.leak_sheet))
    assert ((sheet[..., 0] > 200) & (sheet[..., 1] < 60) & (sheet[..., 2] < 60)).sum() > 200  # red boxes


def test_blurred_output_has_no_unchanged_face(make_cfg):
    cfg = make_cfg()  # every detector that runs here
    cell = anonymize.run(cfg)  # the real blur generator
    leaks.run(cfg)
    metrics, table = read(cell)
    assert "dlib_hog" in metrics["detectors"] and "ensemble" not in metrics["detectors"]
    if set(metrics["detectors"]) - {"dlib_hog", "dlib_hog_up2"}:  # HOG finds no blurred face; CNNs do
        assert metrics["faces_found"] >= 1
    assert metrics["unchanged_faces"] == 0
    assert metrics["missing_output"] == [] and metrics["per_recognizer"]["dlib"]["status"] == "ok"
    assert (table[table.check == leaks.UNCHANGED].mean_abs_diff > 1).all()
    before = cell.metrics.read_bytes()
    leaks.run(cfg)  # deterministic, and from the detection cache
    assert cell.metrics.read_bytes() == before


def test_readable_photo_without_output_is_reported(make_cfg, caplog):
    cfg = make_cfg(HOG)
    cell = fake_cell(cfg, lambda rgb: np.zeros_like(rgb))
    (cell.photos / f"{slug('border.png')}.png").unlink()
    leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["missing_output"] == ["border.png"]
    assert metrics["per_photo"]["border.png"] == {"status": leaks.MISSING_OUTPUT}
    missing = table[table.check == leaks.MISSING_OUTPUT]
    assert missing.photo.tolist() == ["border.png"] and missing.status.iloc[0].startswith("missing_output")
    assert metrics["faces_found"] == 0 and "have no anonymized photo" in caplog.text


def test_face_cut_by_the_border_is_compared_inside_the_photo(make_cfg):
    cfg = make_cfg(HOG)
    cell = fake_cell(cfg)
    leaks.run(cfg)
    _, table = read(cell)
    border = table[(table.photo == "border.png") & (table.check == leaks.UNCHANGED)]
    assert len(border) == 1 and border.x1.iloc[0] < 0  # the box runs past the left edge
    assert border.mean_abs_diff.iloc[0] == 0 and border.leak.iloc[0]
    dlib = table[(table.photo == "border.png") & (table.recognizer == "dlib")]
    assert dlib.status.iloc[0] == "ok" and dlib.verified.iloc[0]


def test_face_too_small_to_align_is_checked_for_unchanged_pixels_only(make_cfg):
    cfg = make_cfg(HOG, "faces.min_face_size=200")  # every face of these photos is "tiny"
    cell = fake_cell(cfg)
    leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["too_small_to_embed"] == metrics["faces_found"] == metrics["unchanged_faces"] == 4
    assert metrics["per_recognizer"]["dlib"]["faces_compared"] == 0
    assert table[table.recognizer == "dlib"].status.str.startswith("n/a: face too small to align").all()


def test_mean_abs_diff_clips_the_box_to_the_photo():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[:, :5] = 30  # the left half differs
    assert box_mean_abs_diff(a, b, [-5, 0, 5, 10]) == 30  # only the part inside counts
    assert box_mean_abs_diff(a, b, [5, 0, 20, 10]) == 0
    assert np.isnan(box_mean_abs_diff(a, b, [20, 20, 30, 30]))


def test_cell_of_a_generator_that_cannot_run_is_na_not_missing(make_cfg):
    cfg = make_cfg(HOG, "generator=fsgan")  # not installed: anonymize writes the cell as n/a
    cell = anonymize.run(cfg)
    leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["status"].startswith("n/a: the cell is n/a") and metrics["missing_output"] == []
    assert metrics["faces_found"] == 0 and table.empty and cell.leak_sheet.is_file()


def test_a_face_found_only_on_turned_photos_needs_two_detectors():
    from bench.detectors.base import Detection

    def det(x, found_by):
        return Detection(np.array([x, 0, x + 20, 20], np.float32), 0.9, np.zeros((5, 2), np.float32), found_by)

    found = {"a": [det(0, ("a",)), det(100, ("a@180",)), det(200, ("a@90",))],
             "b": [det(100, ("b@180",)), det(300, ("b", "b@90"))]}
    from bench.detectors import split_turned, turned_consensus
    from bench.detectors.ensemble import merge_detections

    merged = merge_detections(split_turned(found), 0.4)
    kept = sorted(int(d.box[0]) for d in merged if turned_consensus(d, 2))
    assert kept == [0, 100, 300]  # upright (any), turned by two detectors; not turned by one


def test_the_detection_cache_is_keyed_by_how_the_turns_are_merged(make_cfg):
    """detect_turned merges a photo's upright and turned faces at leaks.merge_iou before they
    are stored: another merge_iou must not read faces merged at the old one."""
    cfg = make_cfg(HOG)
    fake_cell(cfg)
    leaks.run(cfg)
    folders = lambda: sorted(p.name for p in (Path(cfg.results_dir) / "cache" / "detections").iterdir())  # noqa: E731
    before = folders()
    leaks.run(cfg)
    assert folders() == before  # the same settings: the same cache
    other = make_cfg(HOG, "leaks.merge_iou=0.9")
    leaks.run(other)
    assert len(folders()) == len(before) + 1


def test_verified_faces_leak_against_chance_unless_too_small_to_tell(make_cfg):
    """Outputs 3 gray levels off the originals: not unchanged, but dlib still verifies each as
    its owner and no other face, so every face leaks above chance (or flagged, alone in its
    band); where the shrink table says dlib cannot tell people apart, they are too small to tell."""
    cfg = make_cfg(HOG, "leaks.min_impostor_pairs=1")
    cell = fake_cell(cfg, lambda rgb: np.clip(rgb.astype(int) + 3, 0, 255).astype(np.uint8))
    leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["unchanged_faces"] == 0 and metrics["leaking_faces"] == 4
    assert metrics["leaking_faces_vs_chance"] == 4 and metrics["too_small_to_tell"] == 0
    rows = pd.read_csv(cell.leaks_chance_csv)
    dlib = rows[rows.recognizer == "dlib"]
    assert (dlib.treatment == "audit").all()  # no pairs.parquet rows: no inventory face's status
    assert dlib.faces_compared.sum() == 4 and dlib.owner_verified.sum() == 4
    assert set(dlib.verdict) <= {chance.ABOVE_CHANCE} | {v for v in dlib.verdict if v.startswith("n/a: too few")}
    assert metrics["leaks_flagged_too_few_impostors"] == int(dlib[dlib.flagged].leaks.sum())

    bands = sorted(set(dlib.band))
    shrink_files(cfg.results_dir)["csv"].parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([{"recognizer": "dlib", "band": b, "status": "ok", "verdict": chance.INDISTINGUISHABLE, "p_value": 0.5}
                  for b in bands]).to_csv(shrink_files(cfg.results_dir)["csv"], index=False)
    leaks.run(cfg)
    metrics, table = read(cell)
    assert metrics["leaking_faces"] == 4, "the plain count is kept"
    assert metrics["leaking_faces_vs_chance"] == 0 and metrics["too_small_to_tell"] == 4
    assert metrics["chance"]["shrink"] == "ok"
    assert (table[table.recognizer == "dlib"].verdict == chance.TOO_SMALL).all()
    assert not table.leak_vs_chance.fillna(False).any()
