"""Scanning only what changed (bench.detectors.changed) finds what a whole scan finds, for a
detector that does not depend on where in the photo a face is."""
from __future__ import annotations

import cv2
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.detectors.base import Detection, Detector
from bench.detectors.changed import changed_mask, changed_windows, detect_changed


def squares(image: np.ndarray) -> list[Detection]:
    """A translation-invariant stand-in detector: every 8-connected blob of white pixels."""
    count, _, stats, centroids = cv2.connectedComponentsWithStats((image[:, :, 0] == 255).astype(np.uint8), connectivity=8)
    out = []
    for (x, y, w, h, _), (cx, cy) in zip(stats[1:count], centroids[1:count]):
        out.append(Detection(np.array([x, y, x + w, y + h], np.float32), 1.0,
                             np.tile(np.array([cx, cy], np.float32), (5, 1))))
    return out


class Squares(Detector):
    """squares() as a Detector (bench.detectors.base), recording the (h, w) of each image it scans."""

    name = "squares"

    def __init__(self, native: bool = True):
        super().__init__()
        self.native, self.calls = native, []

    def _load(self):
        pass

    def native_scale(self, height, width):
        return self.native

    def _detect(self, bgr):
        self.calls.append(bgr.shape[:2])
        return squares(bgr)


def boxes(dets: list[Detection]) -> list[tuple]:
    return sorted(tuple(np.asarray(d.box).round(3)) for d in dets)


def _draw(image: np.ndarray, rng: np.random.Generator, n: int, x0=0, y0=0, x1=None, y1=None) -> None:
    height, width = image.shape[:2]
    x1, y1 = x1 or width, y1 or height
    for _ in range(n):
        size = int(rng.integers(2, 11))
        if x1 - x0 <= size or y1 - y0 <= size:
            return
        x, y = int(rng.integers(x0, x1 - size)), int(rng.integers(y0, y1 - size))
        image[y:y + size, x:x + size] = 255


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), edits=st.integers(0, 4), margin=st.sampled_from([0.0, 0.5, 1.0]))
def test_scan_of_changes_equals_the_whole_scan(seed, edits, margin):
    rng = np.random.default_rng(seed)
    original = np.zeros((120, 160, 3), np.uint8)
    _draw(original, rng, 12)
    edited = original.copy()
    for _ in range(edits):  # a generator replaces a region: new content, some new blobs
        w, h = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        x, y = int(rng.integers(0, 160 - w)), int(rng.integers(0, 120 - h))
        edited[y:y + h, x:x + w] = rng.choice([0, 128])
        _draw(edited, rng, int(rng.integers(0, 3)), x, y, x + w, y + h)
    calls = []

    def detect(image):
        calls.append(image.shape)
        return squares(image)

    got = detect_changed(detect, edited, original, squares(original), margin)
    assert boxes(got) == boxes(squares(edited))
    # landmarks move with their boxes
    for det in got:
        assert det.box[0] <= det.landmarks[0, 0] <= det.box[2] and det.box[1] <= det.landmarks[0, 1] <= det.box[3]
    if not changed_mask(edited, original).any():
        assert calls == []  # nothing changed: no detector call at all


def test_windows_cover_every_change_and_join_only_when_that_costs_no_more():
    mask = np.zeros((200, 300), bool)
    mask[10:20, 10:20] = True
    mask[15:25, 35:45] = True  # near the first: one window costs less than two
    mask[150:160, 250:260] = True
    windows = changed_windows(mask, margin=1.0, min_margin=8)
    covered = np.zeros_like(mask)
    for x1, y1, x2, y2 in windows:
        covered[y1:y2, x1:x2] = True
    assert covered[mask].all() and len(windows) == 2
    assert sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in windows) < mask.size / 2
    assert changed_windows(np.zeros((5, 5), bool), 1.0) == []


def test_faces_spread_across_a_photo_keep_a_window_each():
    """Changes at opposite corners of a wide photo: their bounds would scan most of it."""
    mask = np.zeros((640, 960), bool)
    mask[40:140, 40:140] = True      # top left
    mask[300:400, 420:520] = True    # middle: its window overlaps neither corner's
    mask[500:600, 820:920] = True    # bottom right
    mask[100:200, 150:250] = True    # overlaps the top-left window: joined only if cheaper
    windows = changed_windows(mask, margin=0.5, min_margin=32)
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in windows)
    assert len(windows) >= 3 and area < 0.6 * mask.size
    covered = np.zeros_like(mask)
    for x1, y1, x2, y2 in windows:
        covered[y1:y2, x1:x2] = True
    assert covered[mask].all()


def test_a_face_of_the_original_that_a_change_touches_is_scanned_whole():
    """A small change at the edge of a big face (a neighbour's blur halo): the window grows
    around the face, so the scan sees all of it and finds it again."""
    original = np.zeros((300, 400, 3), np.uint8)
    original[60:240, 100:280] = 255            # a big "face"
    edited = original.copy()
    edited[60:70, 270:290] = 128               # a halo cuts its corner
    calls = []

    def detect(image):
        calls.append(image.shape[:2])
        return squares(image)

    got = detect_changed(detect, edited, original, squares(original), margin=0.25, min_margin=8)
    assert boxes(got) == boxes(squares(edited))
    assert all(h >= 180 and w >= 180 for h, w in calls)  # the window holds the whole face


def test_a_face_in_two_overlapping_windows_is_kept_once():
    original = np.zeros((256, 384, 3), np.uint8)
    edited = original.copy()
    edited[80:100, 150:170] = 255              # a new blob, its window up and left...
    edited[150:170, 230:250] = 255             # ...another's down and right: apart they cost less
    edited[128:134, 196:202] = 255             # a small one where the two windows overlap
    mask = changed_mask(edited, original)
    windows = changed_windows(mask, margin=2.0, min_margin=8)
    holding = [w for w in windows if w[0] <= 196 and 202 <= w[2] and w[1] <= 128 and 134 <= w[3]]
    assert len(windows) == 2 and len(holding) == 2, windows  # the geometry this test is about
    got = detect_changed(squares, edited, original, [], margin=2.0, min_margin=8)
    assert boxes(got) == boxes(squares(edited))


def test_windows_sit_on_the_stride_grid_from_every_side():
    mask = np.zeros((300, 410), bool)
    mask[100:120, 150:170] = True
    (x1, y1, x2, y2), = changed_windows(mask, margin=1.0, min_margin=8)
    assert x1 % 32 == 0 and y1 % 32 == 0 and (410 - x2) % 32 == 0 and (300 - y2) % 32 == 0
    assert x1 <= 130 and y1 <= 80 and x2 >= 190 and y2 >= 140


def test_a_detector_that_resizes_its_input_scans_the_whole_photo():
    original = np.zeros((64, 96, 3), np.uint8)
    edited = original.copy()
    edited[10:20, 10:20] = 255
    shapes = []

    def detect(image):
        shapes.append(image.shape[:2])
        return squares(image)

    got = detect_changed(detect, edited, original, [], margin=1.0, native=False)
    assert shapes == [(64, 96)] and boxes(got) == boxes(squares(edited))
    shapes.clear()
    assert detect_changed(detect, original, original, [], margin=1.0, native=False) == [] and shapes == []


def test_scan_changed_runs_an_ensemble_member_by_member():
    from bench.detectors.changed import scan_changed
    from bench.detectors.ensemble import EnsembleDetector

    rng = np.random.default_rng(3)
    original = np.zeros((128, 160, 3), np.uint8)
    _draw(original, rng, 10)
    edited = original.copy()
    edited[40:70, 50:90] = 0
    _draw(edited, rng, 2, 50, 40, 90, 70)
    members = {"a": Squares(True), "b": Squares(False)}
    ensemble = EnsembleDetector(members)
    expected = boxes(ensemble.detect(edited))
    for m in members.values():
        m.calls.clear()
    assert boxes(scan_changed(ensemble, edited, original, margin=0.5)) == expected
    assert (128, 160) not in members["a"].calls[1:] and (128, 160) in members["b"].calls


def test_a_face_the_changes_beside_it_make_findable_is_found():
    """A detector whose answer for a face depends on its surroundings (a score that crosses the
    threshold once a neighbour changes): the gray square counts as a face only with a white
    square within 16 px. The edit adds a white square beside it without touching its box: the
    window around the edit sees the gray square whole and finds it, as a whole scan does."""
    def contextual(image):
        faces = squares(image)
        gray = (image[:, :, 0] == 200).astype(np.uint8)
        count, _, stats, centroids = cv2.connectedComponentsWithStats(gray, connectivity=8)
        white = np.array([d.box for d in faces], np.float32).reshape(-1, 4)
        for (x, y, w, h, _), (cx, cy) in zip(stats[1:count], centroids[1:count]):
            near = ((white[:, 0] < x + w + 16) & (white[:, 2] > x - 16)
                    & (white[:, 1] < y + h + 16) & (white[:, 3] > y - 16))
            if near.any():
                faces.append(Detection(np.array([x, y, x + w, y + h], np.float32), 0.5,
                                       np.tile(np.array([cx, cy], np.float32), (5, 1))))
        return faces

    original = np.zeros((160, 240, 3), np.uint8)
    original[60:80, 100:120] = 200               # not a face on its own
    edited = original.copy()
    edited[62:78, 126:140] = 255                 # a change beside it, clear of its box
    assert not contextual(original)
    got = detect_changed(contextual, edited, original, contextual(original), margin=0.5, min_margin=8)
    assert boxes(got) == boxes(contextual(edited)) and len(got) == 2


def test_the_scan_windows_benchmark_lists_the_faces_only_one_look_finds():
    from bench.benchmarks.scan_windows import compare

    def face(x, size=40.0):
        return Detection(np.array([x, 10, x + size, 10 + size], np.float32), 1.0, np.zeros((5, 2), np.float32))

    whole = [face(0), face(100), face(200)]
    windows = [face(2), face(205, 30.0), face(400)]   # 0 again; 100 missed; 200 drawn smaller; 400 new
    only_whole, only_windows = compare(whole, windows)
    assert [d.box[0] for d in only_whole] == [100] and [d.box[0] for d in only_windows] == [400]
    assert compare([], windows) == ([], windows) and compare(whole, []) == (whole, [])


def test_a_face_an_edit_extends_is_found_whole():
    """An edit that adds to an original face (a bar joined to its end): the face, the edit and
    the window between them are scanned as one region, never split between two windows."""
    original = np.zeros((600, 600, 3), np.uint8)
    original[35:39, 298:577] = 255
    edited = original.copy()
    edited[35:318, 577:581] = 255
    for margin, min_margin in [(0.5, 32), (0.0, 32), (0.25, 8)]:
        got = detect_changed(squares, edited, original, squares(original), margin, min_margin)
        assert boxes(got) == boxes(squares(edited)) == [(298.0, 35.0, 581.0, 318.0)]


def test_two_faces_one_window_finds_are_both_kept():
    """A window's own faces are the detector's answer: two that overlap much (a ring around a
    square) are both kept; only the same face found again in another window is dropped."""
    original = np.zeros((64, 64, 3), np.uint8)
    edited = original.copy()
    edited[10:24, 10:24] = 255
    edited[11:23, 11:23] = 0
    edited[12:22, 12:22] = 255
    got = detect_changed(squares, edited, original, [], margin=0.5, min_margin=32)
    assert boxes(got) == boxes(squares(edited)) and len(got) == 2


def test_a_tiny_min_margin_still_leaves_each_face_clear_of_its_window():
    original = np.zeros((100, 100, 3), np.uint8)
    original[33:60, 5:40] = 255
    edited = original.copy()
    edited[33, 6] = 128
    edited[5:17, 0:4] = 255
    for min_margin in (0, 1, 2):
        got = detect_changed(squares, edited, original, squares(original), margin=0.0, min_margin=min_margin)
        assert boxes(got) == boxes(squares(edited))


def test_changed_mask_is_any_channel_differing():
    rng = np.random.default_rng(5)
    for shape in [(37, 53, 3), (37, 53), (20, 30, 4)]:
        a = rng.integers(0, 256, shape).astype(np.uint8)
        b = a.copy()
        b[rng.random(shape) < 0.02] ^= 1  # a difference of one gray level in one channel counts
        expected = (a != b).any(axis=2) if a.ndim == 3 else a != b
        assert changed_mask(a, b).shape == shape[:2] and (changed_mask(a, b) == expected).all()


def test_the_leak_check_scans_an_original_once_for_all_its_edits(tmp_path):
    from bench.facetable import DetectionCache
    from bench.leakscan import LeakScan

    rng = np.random.default_rng(8)
    original = np.zeros((128, 160, 3), np.uint8)
    _draw(original, rng, 10)
    detector = Squares()
    scan = LeakScan({"squares": detector}, {}, {"squares": DetectionCache(tmp_path / "squares")}, [], 0.4, 2, 0.5)
    for k in range(3):  # three edits of the same original: three looks
        edited = original.copy()
        edited[20 + 20 * k:50 + 20 * k, 30:70] = 0
        _draw(edited, rng, 2, 30, 20 + 20 * k, 70, 50 + 20 * k)
        found, errors = scan.faces(edited[:, :, ::-1], original[:, :, ::-1])
        assert errors == {} and boxes(found) == boxes(squares(edited))
    assert detector.calls.count((128, 160)) == 1  # the original, once; then windows only


def test_two_originals_do_not_share_their_faces(tmp_path):
    """The leak check's memo of an original's faces is keyed by its pixels: two originals
    looked at one after the other each give their own faces."""
    from bench.facetable import DetectionCache
    from bench.leakscan import LeakScan

    one = np.zeros((100, 120, 3), np.uint8)
    one[50:60, 60:70] = 255
    two = np.zeros((100, 120, 3), np.uint8)
    edited = two.copy()
    edited[10:20, 10:20] = 255
    scan = LeakScan({"squares": Squares()}, {}, {"squares": DetectionCache(tmp_path / "s")}, [], 0.4, 2, 0.5)
    scan.faces(one, one)
    found, _ = scan.faces(edited, two)
    assert boxes(found) == boxes(squares(edited))


def test_changed_mask_of_an_empty_image_is_empty():
    empty = np.zeros((0, 5, 3), np.uint8)
    assert changed_mask(empty, empty).shape == (0, 5)


class Halves(Squares):
    """A detector that resizes a photo before it scans it (as SCRFD does): squares() on every
    second pixel, its faces mapped back by 2. `view()` is that half-size photo; `viewable`
    False: no view (a network of one fixed input size)."""

    name = "halves"

    def __init__(self, viewable: bool = True):
        super().__init__(native=False)
        self.viewable, self.as_is_calls = viewable, []

    def view(self, bgr):
        return (np.ascontiguousarray(bgr[::2, ::2]), 0.5) if self.viewable else None

    def _detect(self, bgr):
        self.calls.append(bgr.shape[:2])
        return [Detection(d.box * 2, d.score, d.landmarks * 2) for d in squares(np.ascontiguousarray(bgr[::2, ::2]))]

    def _detect_as_is(self, bgr):
        self.as_is_calls.append(bgr.shape[:2])
        return squares(bgr)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), edits=st.integers(1, 4))
def test_a_resizing_detector_scans_windows_of_its_view(seed, edits):
    """scan_edit on a detector with a view(): the faces of a whole scan, windows cut from the
    view (smaller than it), the original's unchanged faces given back as they were."""
    from bench.detectors.changed import scan_edit

    rng = np.random.default_rng(seed)
    original = np.zeros((192, 256, 3), np.uint8)
    _draw(original, rng, 14)
    edited = original.copy()
    for _ in range(edits):
        w, h = int(rng.integers(4, 40)), int(rng.integers(4, 40))
        x, y = int(rng.integers(0, 256 - w)), int(rng.integers(0, 192 - h))
        edited[y:y + h, x:x + w] = rng.choice([0, 128])
        _draw(edited, rng, int(rng.integers(0, 3)), x, y, x + w, y + h)
    detector = Halves()
    before = detector.detect(original)
    got = scan_edit(detector, edited, original, before, margin=0.5, min_margin=8)
    assert boxes(got) == boxes(detector.detect(edited))
    assert all(h * w < 96 * 128 for h, w in detector.as_is_calls)
    from bench.detectors.changed import touches

    away = [b for b in before if not touches(b, changed_mask(edited, original), grow=6)]
    assert all(any(d is b for d in got) for b in away)  # given back as they were, not mapped twice


def test_a_resizing_detector_without_a_view_scans_the_whole_photo():
    from bench.detectors.changed import scan_edit

    original = np.zeros((64, 96, 3), np.uint8)
    original[10:20, 10:20] = 255
    edited = original.copy()
    edited[40:50, 60:70] = 255
    detector = Halves(viewable=False)
    before = detector.detect(original)
    detector.calls.clear()
    got = scan_edit(detector, edited, original, before, margin=0.5)
    assert detector.calls == [(64, 96)] and detector.as_is_calls == []
    assert boxes(got) == boxes(detector.detect(edited))
    assert scan_edit(detector, original, original, before, margin=0.5) == before  # nothing changed: nothing scanned


def test_an_ensemble_is_scanned_turned():
    """detect_turned on an ensemble (named in anonymize.audit_detectors or leaks.detectors):
    its detect_many takes no as_is, and none is passed for a whole photo."""
    from bench.detectors import detect_turned
    from bench.detectors.ensemble import EnsembleDetector

    image = np.zeros((64, 96, 3), np.uint8)
    image[10:20, 30:44] = 255
    ensemble = EnsembleDetector({"a": Squares(), "b": Squares()})
    found = detect_turned(ensemble, image, [90, 180, 270], 0.4)
    assert boxes(found) == [(30.0, 10.0, 44.0, 20.0)]
