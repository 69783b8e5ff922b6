"""The ensemble detector: union of members merged by IoU, priority for box and landmarks,
`found_by`, and members without weights left out rather than failing the run."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from bench.detectors import build_detector
from bench.detectors.base import Detection, Detector
from bench.detectors.ensemble import EnsembleDetector, merge_detections
from bench.errors import WeightsNotFound
from bench.facetable import content_hash
from bench.images import load_photo


def det(x1, y1, x2, y2, score=0.9, mark=0.0):
    return Detection(np.array([x1, y1, x2, y2], np.float32), score, np.full((5, 2), mark, np.float32))


def test_union_keeps_every_face_once_with_the_first_members_geometry():
    found = {
        "a": [det(0, 0, 10, 10, mark=1.0)],
        "b": [det(1, 1, 11, 11, mark=2.0), det(50, 50, 60, 60, mark=2.0)],
        "c": [det(100, 0, 120, 20, mark=3.0), det(0, 0, 10, 10, mark=3.0)],
    }
    merged = merge_detections(found, 0.4)
    assert len(merged) == 3
    first = merged[0]
    assert first.found_by == ("a", "b", "c") and (first.landmarks == 1.0).all()
    assert merged[1].found_by == ("b",) and merged[2].found_by == ("c",)


def test_boxes_below_the_merge_iou_stay_apart():
    merged = merge_detections({"a": [det(0, 0, 10, 10)], "b": [det(6, 6, 16, 16)]}, 0.4)  # IoU 16/184
    assert len(merged) == 2


def test_members_without_weights_are_left_out(cfg_factory):
    cfg = cfg_factory("paths.shared=/nonexistent", "paths.insightface_home=/nonexistent")
    ensemble = build_detector("ensemble", cfg)
    assert isinstance(ensemble, EnsembleDetector)
    ensemble.prepare()
    assert {"scrfd_1280", "scrfd", "yunet"} <= set(ensemble.missing())
    assert "dlib_hog" in ensemble.available()  # ships with installed packages
    faces = ensemble.detect(load_photo(cfg.dataset.path + "/t1.jpg").bgr)
    assert len(faces) >= 6 and all(f.found_by for f in faces)


def test_an_ensemble_with_no_runnable_member_raises_weights_not_found(cfg_factory):
    ensemble = EnsembleDetector({"x": build_detector("yunet", cfg_factory("paths.shared=/nonexistent"))})
    with pytest.raises(WeightsNotFound):
        ensemble.prepare()


def test_faces_stage_records_which_members_found_each_face(cfg_factory):
    from bench.stages import faces

    out = faces.run(cfg_factory("detector=ensemble"))
    import pandas as pd

    table = pd.read_parquet(out.faces)
    assert len(table) >= 6 and (table.found_by.str.len() > 0).all()
    assert (table.detector == "ensemble").all()


def test_a_tight_box_inside_a_loose_one_is_the_same_face_but_a_tiny_one_is_not():
    loose = det(0, 0, 100, 120)
    tight = det(20, 30, 80, 100)  # IoU 0.35, fully inside, area ratio 2.9
    tiny = det(40, 40, 55, 55)  # inside, but 53x smaller: a face of its own
    merged = merge_detections({"a": [loose], "b": [tight, tiny]}, 0.4)
    assert len(merged) == 2 and merged[0].found_by == ("a", "b") and merged[1].found_by == ("b",)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_a_face_found_on_the_turned_photo_maps_back_onto_the_original(k):
    from bench.detectors import rotate_detection

    height, width = 60, 100
    marked = np.zeros((height, width), np.uint8)
    marked[15, 20] = 1  # the pixel whose top-left corner is (20, 15)
    y, x = np.argwhere(np.rot90(marked, k))[0]
    found = Detection(np.array([x, y, x + 1, y + 1], np.float32), 1.0, np.full((5, 2), 0.5, np.float32) + [x, y])
    back = rotate_detection(found, k, width, height)
    assert back.box.tolist() == [20, 15, 21, 16] and np.allclose(back.landmarks, [20.5, 15.5])


class CountingDetector(Detector):
    """A detector whose answer depends on the pixels, counting its real calls."""

    name = "counting"

    def __init__(self):
        super().__init__()
        self.calls = 0

    def _load(self):
        pass

    def _detect(self, bgr):
        self.calls += 1
        v = float(bgr.mean()) + 0.1  # not a float32 value: the memo stores float32
        return [Detection(np.array([v, 1, v + 10, 11], np.float64), 0.123456789,
                          np.arange(10, dtype=np.float64).reshape(5, 2) + v)]


def test_memo_detects_each_pixels_once_and_a_hit_equals_a_miss(tmp_path):
    from omegaconf import OmegaConf

    from bench.detectors import memoize

    node = OmegaConf.create({"_target_": "counting", "setting": 1})
    first = memoize(CountingDetector(), node, tmp_path)
    image = np.zeros((20, 30, 3), np.uint8)
    miss = first.detect(image)
    again = first.detect(image.copy())
    turned = first.detect(np.ascontiguousarray(np.rot90(image)))  # other pixels (shape): its own call
    assert first.calls == 2
    second = memoize(CountingDetector(), node, tmp_path)  # another stage, same config
    hit = second.detect(image)
    assert second.calls == 0
    for a in (again, hit):
        assert len(a) == len(miss) == 1
        np.testing.assert_array_equal(a[0].box, miss[0].box)
        np.testing.assert_array_equal(a[0].landmarks, miss[0].landmarks)
        assert a[0].score == miss[0].score == float(np.float32(0.123456789))
        assert a[0].box.dtype == np.float32 and a[0].found_by == ()
    assert len(turned) == 1
    other = memoize(CountingDetector(), OmegaConf.create({"_target_": "counting", "setting": 2}), tmp_path)
    other.detect(image)
    assert other.calls == 1  # another setting: another memo


def test_an_ensembles_members_share_their_memo_with_the_same_detector_alone(cfg_factory):
    """The faces stage's ensemble and the platform's / leak check's lone detectors run on the
    same pixels: a member's call is the lone detector's."""
    cfg = cfg_factory("paths.shared=/nonexistent", "paths.insightface_home=/nonexistent")
    ensemble = build_detector("ensemble", cfg)
    ensemble.prepare()
    bgr = load_photo(cfg.dataset.path + "/t1.jpg").bgr
    faces = ensemble.detect(bgr)
    alone = build_detector("dlib_hog", cfg)
    assert alone.memo.folder == ensemble.members["dlib_hog"].memo.folder
    assert alone.memo.get(content_hash(bgr)) is not None
    alone._detect = lambda image: pytest.fail("detected again: the ensemble's member already did")
    assert len(alone.detect(bgr)) >= 1
    again = ensemble.detect(bgr)
    assert [(f.box.tolist(), f.found_by) for f in again] == [(f.box.tolist(), f.found_by) for f in faces]


def test_a_detection_cache_asks_the_detector_only_for_the_photos_it_lacks(tmp_path):
    from bench.facetable import DetectionCache

    cache = DetectionCache(tmp_path / "cache")
    images = [np.full((8, 8, 3), v, np.uint8) for v in (10, 20, 30)]
    first = CountingDetector()
    found = cache.detect_many(first, ["a", "b"], images[:2])
    assert first.calls == 2
    second = CountingDetector()
    again = cache.detect_many(second, ["b", "c", "a"], [images[1], images[2], images[0]])
    assert second.calls == 1  # only "c" is new
    assert [float(f[0].box[0]) for f in again] == pytest.approx([20.1, 30.1, 10.1])
    assert float(found[1][0].box[0]) == pytest.approx(20.1)


class WeightedDetector:
    """What detector_key reads from a detector: its name and its weight files."""

    name = "weighted"

    def __init__(self, *paths):
        self.paths = [Path(p) for p in paths]

    def weights(self):
        return self.paths


def test_a_detector_key_follows_the_weights_contents_and_settings_not_their_paths(tmp_path):
    from bench.facetable import detector_key

    here, there = tmp_path / "here" / "w.onnx", tmp_path / "there" / "w.onnx"
    for path in (here, there):
        path.parent.mkdir()
        path.write_bytes(b"weights v1")
    node = {"_target_": "x", "score_threshold": 0.5, "model_paths": [str(here)], "threads": 2}
    key = detector_key(node, WeightedDetector(here))
    # the same file read from elsewhere (BENCH_SHARED, a copy of ../shared), other threads
    assert detector_key({**node, "model_paths": [str(there)], "threads": 1}, WeightedDetector(there)) == key
    # an ensemble's members: their paths are left out too
    members = {"members": {"a": node}}
    assert detector_key(members, WeightedDetector(here)) == detector_key(
        {"members": {"a": {**node, "model_paths": [str(there)]}}}, WeightedDetector(there))
    assert detector_key({**node, "score_threshold": 0.4}, WeightedDetector(here)) != key
    assert detector_key(node, WeightedDetector(here, tmp_path / "absent.onnx")) == key
    os.utime(there, ns=(1, 1))  # after the first hash of it: the new contents must be hashed
    there.write_bytes(b"weights v2")
    assert detector_key(node, WeightedDetector(there)) != key


def test_the_audit_cache_key_changes_with_the_audit_detectors_settings(cfg_factory, tmp_path, monkeypatch):
    """The audit's cached detections were keyed by the detector's name and weights alone, so
    a new threshold in conf/detector/ reused detections made under the old one."""
    import shutil

    import bench.registry
    from bench.config import CONF_DIR
    from bench.stages.anonymize import build_auditors

    cfg = cfg_factory("anonymize.audit_detectors=[dlib_hog]")
    before = [a.cache.folder for a in build_auditors(cfg)]
    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    yaml = conf / "detector" / "dlib_hog.yaml"
    yaml.write_text(yaml.read_text().replace("threads: auto", "threads: 1"))
    monkeypatch.setattr(bench.registry, "CONF_DIR", conf)
    assert [a.cache.folder for a in build_auditors(cfg)] == before  # threads: how, not what
    yaml.write_text(yaml.read_text().replace("score_threshold: 0.0", "score_threshold: -0.3"))
    after = [a.cache.folder for a in build_auditors(cfg)]
    assert len(after) == 1 and after != before
    # the overlap at which the turns' faces are merged before they are stored
    merged = [a.cache.folder for a in build_auditors(cfg_factory("anonymize.audit_detectors=[dlib_hog]",
                                                                 "anonymize.redetect_iou=0.9"))]
    assert merged != after and merged != before
