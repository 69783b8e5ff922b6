"""No real face left (issue 7): faces at the border, tiny, in profile, and a face the
inventory misses each end up covered in the anonymized photo, and none of them leaks."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.config import load_config
from bench.detectors.base import Detection
from bench.stages import anonymize, faces, leaks

# Four faces cut from insightface's t1.jpg (boxes found by dlib on the original), placed on a
# plain 640x360 canvas: at the left border (half cut off), tiny (16 px), "profile" (squeezed
# to a third of its width, as a turned head is narrow), and one the inventory will miss.
CANVAS = (360, 640)
# The leak check's detectors here (and so the anonymize stage's look through them): the stub only.
# The stub detectors below answer in the whole photo's pixels, so their looks at the
# anonymized photo scan it whole (windows around the changes: tests/test_detect_changed.py).
LEAKS = ("leaks.detectors=[yunet]", "leaks.rotations=[]", "leaks.scan_margin=null", "anonymize.scan_margin=null")


def _t1():
    return np.asarray(Image.open(load_config().dataset.path + "/t1.jpg").convert("RGB"))


def _paste(canvas, face, x, y):
    h, w = face.shape[:2]
    x0, y0 = max(x, 0), max(y, 0)
    canvas[y0:y + h, x0:x + w] = face[y0 - y:, x0 - x:][: canvas.shape[0] - y0, : canvas.shape[1] - x0]
    return np.array([x0, y0, min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])], np.float32)


def _landmarks(box):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    # where t1's face sits in the pasted patch (measured with dlib on t1): eyes, nose, mouth
    rel = np.array([[0.38, 0.42], [0.62, 0.42], [0.5, 0.55], [0.4, 0.68], [0.6, 0.68]], np.float32)
    return (np.array([x1, y1], np.float32) + rel * np.array([w, h], np.float32)).astype(np.float32)


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(0)
    t1 = _t1()
    face = t1[255:420, 40:205]  # one person's face (dlib's box 67-176 x 283-391) with a margin
    canvas = (rng.integers(60, 200, size=(*CANVAS, 3))).astype(np.uint8)
    boxes = {
        "border": _paste(canvas, face, -60, 40),
        "tiny": _paste(canvas, np.asarray(Image.fromarray(face).resize((14, 16))), 200, 60),
        "profile": _paste(canvas, np.asarray(Image.fromarray(face).resize((100, 165))), 290, 100),
        "missed": _paste(canvas, face, 460, 180),
    }
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(canvas).save(folder / "scene.png")
    return folder, canvas, boxes


def _stub(boxes, names):
    dets = [Detection(boxes[n], 0.9, _landmarks(boxes[n])) for n in names]
    return lambda self, bgr: list(dets)


def test_border_tiny_profile_and_missed_faces_are_all_covered(cfg_factory, scene, monkeypatch):
    folder, original, boxes = scene
    # the inventory (dlib_hog, stubbed) misses one face; the audit detector (yunet, stubbed) finds all
    monkeypatch.setattr("bench.detectors.dlib_hog.DlibHogDetector._detect", _stub(boxes, ["border", "tiny", "profile"]))
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._load", lambda self: None)
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._detect", _stub(boxes, list(boxes)))
    overrides = ("dataset=folder", f"dataset.path={folder}", "dataset.name=scene", "detector=dlib_hog",
                 "generator=blur", "anonymize.audit_detectors=[yunet]", "anonymize.audit_rotations=[]",
                 *LEAKS)
    cfg = cfg_factory(*overrides)
    faces.run(cfg)
    inventory = pd.read_parquet(faces.outputs(cfg).faces)
    assert len(inventory) == 3 and not inventory.set_index("x1").aligned[boxes["tiny"][0]]  # tiny: too small to align
    cell = anonymize.run(cfg)
    photos = pd.read_csv(cell.photo_table, keep_default_na=False)
    result = np.asarray(Image.open(cell.root / photos.result.iloc[0])).astype(int)
    for name, (x1, y1, x2, y2) in boxes.items():
        region = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
        changed = np.abs(result[region] - original[region].astype(int)).mean()
        assert changed > 3, f"the {name} face is unchanged in the output (mean abs diff {changed:.1f})"
    assert photos.loc[0, "faces"] == 3 and photos.loc[0, "audit_found"] == 1
    assert photos.loc[0, "audit_covered"] == 1 and photos.loc[0, "left_real"] == 0
    # and the leak check (the stubbed detector finds all four faces in the output) finds none
    leaks.run(cfg_factory(*overrides, "recognizers=[dlib]"))
    metrics = json.loads(cell.metrics.read_text())["leaks"]
    assert metrics["faces_found"] == 4 and metrics["unchanged_faces"] == 0
    assert metrics["per_recognizer"]["dlib"]["leaks"] == 0


def test_photo_where_the_inventory_finds_nothing_is_audited_and_covered(cfg_factory, scene, monkeypatch):
    folder, original, boxes = scene
    # as with masked faces: the inventory finds none, the audit detector finds every face
    monkeypatch.setattr("bench.detectors.dlib_hog.DlibHogDetector._detect", lambda self, bgr: [])
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._load", lambda self: None)
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._detect", _stub(boxes, list(boxes)))
    cfg = cfg_factory("dataset=folder", f"dataset.path={folder}", "dataset.name=masked", "detector=dlib_hog",
                      "generator=faceswap", "anonymize.audit_detectors=[yunet]", "anonymize.audit_rotations=[]",
                      *LEAKS)
    faces.run(cfg)
    assert len(pd.read_parquet(faces.outputs(cfg).faces)) == 0
    cell = anonymize.run(cfg)  # no face in the inventory: no targets needed, the audit still runs
    photos = pd.read_csv(cell.photo_table, keep_default_na=False)
    assert photos.loc[0, "audit_found"] == 4 and photos.loc[0, "audit_covered"] == 4
    assert photos.loc[0, "left_real"] == 0 and photos.loc[0, "status"] == "anonymized"
    result = np.asarray(Image.open(cell.root / photos.result.iloc[0])).astype(int)
    for name, (x1, y1, x2, y2) in boxes.items():
        region = (slice(int(y1), int(y2)), slice(int(x1), int(x2)))
        assert np.abs(result[region] - original[region].astype(int)).mean() > 3, name


def test_face_that_turns_up_only_in_the_anonymized_photo_is_covered(cfg_factory, scene, monkeypatch):
    folder, original, boxes = scene
    # the audit detector misses the face on the original (a score just under its threshold)
    # and finds it once the faces around it are anonymized
    calls = []

    def flaky(self, bgr):
        calls.append(1)
        return [] if len(calls) == 1 else [Detection(boxes["missed"], 0.61, _landmarks(boxes["missed"]))]

    monkeypatch.setattr("bench.detectors.dlib_hog.DlibHogDetector._detect", _stub(boxes, ["border", "profile"]))
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._load", lambda self: None)
    monkeypatch.setattr("bench.detectors.yunet.YunetDetector._detect", flaky)
    cfg = cfg_factory("dataset=folder", f"dataset.path={folder}", "dataset.name=flaky", "detector=dlib_hog",
                      "generator=blur", "anonymize.audit_detectors=[yunet]", "anonymize.audit_rotations=[]",
                      *LEAKS)
    faces.run(cfg)
    cell = anonymize.run(cfg)
    failures = pd.read_csv(cell.failures, keep_default_na=False)
    audit = failures[failures.stage == "audit"]
    assert len(audit) == 1 and "in the anonymized photo" in audit.reason.iloc[0]
    photos = pd.read_csv(cell.photo_table, keep_default_na=False)
    assert photos.loc[0, "audit_covered"] == 1 and photos.loc[0, "left_real"] == 0
    result = np.asarray(Image.open(cell.root / photos.result.iloc[0])).astype(int)
    x1, y1, x2, y2 = (int(v) for v in boxes["missed"])
    assert np.abs(result[y1:y2, x1:x2] - original[y1:y2, x1:x2].astype(int)).mean() > 3


@pytest.mark.shared
def test_upside_down_faces_are_found_by_the_turned_audit_and_covered(cfg_factory, shared, tmp_path):
    shared("weights", "face_detection_yunet_2026may.onnx")
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    folder = tmp_path / "turned"
    folder.mkdir()
    t1 = _t1()
    Image.fromarray(np.ascontiguousarray(t1[::-1, ::-1])).save(folder / "upside_down.png")  # no EXIF to undo it
    cfg = cfg_factory("dataset=folder", f"dataset.path={folder}", "dataset.name=turned", "detector=dlib_hog",
                      "generator=blur", "anonymize.audit_detectors=[yunet,scrfd]", "leaks.detectors=[yunet,scrfd]")
    faces.run(cfg)
    assert len(pd.read_parquet(faces.outputs(cfg).faces)) < 6  # the upright detector misses them
    cell = anonymize.run(cfg)
    photos = pd.read_csv(cell.photo_table, keep_default_na=False)
    assert photos.loc[0, "faces"] + photos.loc[0, "audit_covered"] >= 6 and photos.loc[0, "left_real"] == 0
    result = np.asarray(Image.open(cell.root / photos.result.iloc[0])).astype(int)
    h, w = t1.shape[:2]
    for x1, y1, x2, y2 in [(67, 283, 176, 391), (870, 67, 1000, 197)]:  # two of t1's faces, turned
        region = (slice(h - y2, h - y1), slice(w - x2, w - x1))
        assert np.abs(result[region] - t1[::-1, ::-1][region].astype(int)).mean() > 5
