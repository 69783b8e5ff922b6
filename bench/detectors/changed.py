"""Scan only what changed: detections on an edited photo from the original's detections plus
detector runs on windows around the edited pixels.

An anonymized photo equals its original everywhere but the regions the generator replaced
(PNG, lossless). A face whose box holds no changed pixel is the original's face, found by the
original's scan (cached per photo content); only the changed regions, with a margin of
context around them, need a detector again. Used by the anonymize stage's output audit and by
the leak check (`scan_margin`; null: scan the whole photo).

Each changed region gets its own window (faces spread across a photo are not scanned with
everything between them), and so does each face of the original that a change touches (it is
scanned whole, not cut by a window). A window's scan goes through the detector's memo like any
photo's, keyed by its pixels: a window whose pixels another cell or an earlier look already
scanned (the same fake of a face, a face nothing changed since) costs nothing.

Windows are scanned at the photo's own resolution, their corners on a 32-px grid counted
from each side of the photo (the strides of the CNN detectors, in every turn). A detector
that resizes the photo to its input size first (SCRFD; `Detector.native_scale` False) would
see a window of the photo magnified, finding faces (and false faces) that the whole scan does
not: its windows are cut from its own view of the photo (`Detector.view`, the resized photo,
where the windows lie on the same grid) and scanned as they are (scan_edit). A detector
with no view (a network of one fixed input size) scans the whole photo.
"""
from __future__ import annotations

import itertools
from typing import Callable, Sequence

import cv2
import numpy as np

from bench.boxes import iou_matrix
from bench.detectors.base import Detection


def changed_mask(edited: np.ndarray, original: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels where any channel differs. Both (H, W, C) uint8 of the same shape."""
    if edited.shape != original.shape:
        raise ValueError(f"edited {edited.shape} and original {original.shape} differ in shape")
    if edited.dtype != np.uint8 or original.dtype != np.uint8 or edited.ndim not in (2, 3) or not edited.size:
        diff = edited != original
        return diff.any(axis=2) if diff.ndim == 3 else diff
    diff = cv2.absdiff(edited, original)  # OpenCV's absolute difference: 0 exactly where equal
    if diff.ndim == 2:
        return diff != 0
    merged = diff[..., 0].copy()
    for channel in range(1, diff.shape[2]):  # bitwise or of the channels: 8x faster than any(axis=2)
        merged |= diff[..., channel]
    return merged != 0


GRID = 32


def _snap(x1: int, y1: int, x2: int, y2: int, width: int, height: int) -> list[int]:
    """A window grown to GRID-px steps counted from the photo's left/top (x1, y1) and
    right/bottom (x2, y2) sides, so that it sits on the photo's stride grid however turned."""
    return [x1 // GRID * GRID, y1 // GRID * GRID,
            width - (width - x2) // GRID * GRID, height - (height - y2) // GRID * GRID]


def _area(box) -> int:
    return (box[2] - box[0]) * (box[3] - box[1])


def changed_windows(mask: np.ndarray, margin: float, min_margin: int = 32,
                    seeds: Sequence = ()) -> list[tuple[int, int, int, int]]:
    """Windows (x1, y1, x2, y2; pixels, end exclusive) that cover every changed pixel of `mask`
    with context. A region is a connected set of changed pixels; each box of `seeds` (a face of
    the original that touches a change, which must be scanned whole) is one region together
    with every changed region it touches (within TOUCH_PX), and regions that share a seed or a
    changed region are one: a face that an edit extends is never split between two windows.
    Each region's bounds are grown by `margin` times their longer side (at least `min_margin`
    px, and more than TOUCH_PX, so a face inside is clear of the window's sides) on every side,
    clipped to the image and snapped to the GRID. Two windows that overlap are joined when
    their bounds cost no more pixels than the two apart (else both are scanned and a face found
    in both is kept once, detect_changed): faces spread across a photo keep a window each.
    Empty when nothing changed."""
    height, width = mask.shape
    if not mask.any():
        return []
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    bounds = [[int(x), int(y), int(x + w), int(y + h)] for x, y, w, h, _ in stats[1:count]]
    parent = list(range(len(bounds)))  # union-find over the changed regions

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for box in seeds:
        x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64)[:4])
        x1, y1 = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        x2, y2 = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
        if x2 <= x1 or y2 <= y1:
            continue
        near = labels[max(0, y1 - TOUCH_PX):y2 + TOUCH_PX, max(0, x1 - TOUCH_PX):x2 + TOUCH_PX]
        touched = [int(v) - 1 for v in np.unique(near) if v]
        bounds.append([x1, y1, x2, y2])
        parent.append(len(parent))
        for region in touched:
            parent[root(region)] = root(len(parent) - 1)
    groups: dict[int, list[int]] = {}
    for i, (x1, y1, x2, y2) in enumerate(bounds):
        group = groups.setdefault(root(i), [x1, y1, x2, y2])
        group[:] = [min(group[0], x1), min(group[1], y1), max(group[2], x2), max(group[3], y2)]
    boxes = []
    for x1, y1, x2, y2 in groups.values():
        grow = max(int(np.ceil(margin * max(x2 - x1, y2 - y1))), int(min_margin), TOUCH_PX + 1)
        boxes.append(_snap(max(0, x1 - grow), max(0, y1 - grow), min(width, x2 + grow), min(height, y2 + grow),
                           width, height))
    joined = True
    while joined:
        joined = False
        for i, j in itertools.combinations(range(len(boxes)), 2):
            a, b = boxes[i], boxes[j]
            if not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]):
                continue
            union = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
            if _area(union) <= _area(a) + _area(b):
                boxes[i] = union
                del boxes[j]
                joined = True
                break
    return sorted({tuple(int(v) for v in box) for box in boxes})


# A box this close to a changed pixel counts as touching it (a face cut by an edit's border).
TOUCH_PX = 2


def touches(det: Detection, mask: np.ndarray, grow: int = TOUCH_PX) -> bool:
    """Whether a changed pixel lies inside the detection's box grown by `grow` px (clipped)."""
    height, width = mask.shape
    x1, y1, x2, y2 = np.asarray(det.box, np.float64)
    x1, y1 = max(0, int(np.floor(x1)) - grow), max(0, int(np.floor(y1)) - grow)
    x2, y2 = min(width, int(np.ceil(x2)) + grow), min(height, int(np.ceil(y2)) + grow)
    return x2 > x1 and y2 > y1 and bool(mask[y1:y2, x1:x2].any())


def shifted(det: Detection, dx: float, dy: float) -> Detection:
    """The detection moved by (dx, dy) pixels: a window's face in the whole photo's coordinates."""
    offset = np.array([dx, dy], np.float32)
    box = np.asarray(det.box, np.float32) + np.tile(offset, 2)
    return Detection(box, float(det.score), np.asarray(det.landmarks, np.float32) + offset, det.found_by)


# Two boxes of one detector found in two overlapping windows are one face from this IoU.
SAME_FACE_IOU = 0.5


def _inside(det: Detection, window, width: int, height: int, grow: int = TOUCH_PX) -> bool:
    """Whether the box keeps `grow` px from each side of `window` that is not the photo's own
    side (a box at a window's inner side may be a face the window cut)."""
    x1, y1, x2, y2 = np.asarray(det.box, np.float64)
    wx1, wy1, wx2, wy2 = window
    return ((wx1 == 0 or x1 >= wx1 + grow) and (wy1 == 0 or y1 >= wy1 + grow)
            and (wx2 == width or x2 <= wx2 - grow) and (wy2 == height or y2 <= wy2 - grow))


def detect_changed(detect: Callable[[np.ndarray], list[Detection]], edited: np.ndarray, original: np.ndarray,
                   original_faces: Sequence[Detection], margin: float, min_margin: int = 32,
                   native: bool = True, mask: np.ndarray | None = None) -> list[Detection]:
    """The faces `detect` would find on `edited`, from `original_faces` (its faces on
    `original`) where the pixels are unchanged and from `detect` run on windows around the
    changed pixels (changed_windows) elsewhere.

    Args:
        detect: one detector's call on an (h, w, 3) uint8 image (any channel order, as long as
            `edited` and `original` use the same); returns faces in that image's pixels.
        edited, original: (H, W, 3) uint8, the same shape.
        original_faces: `detect`'s faces on `original` (e.g. from its cache).
        margin, min_margin: the context around each changed region (changed_windows).
        native: whether `detect` scans a window at the scale it scans the whole photo
            (Detector.native_scale); False: `detect(edited)`, the whole photo.
        mask: changed_mask(edited, original) when the caller has it (several detectors on
            one photo); None: computed here.

    Returns:
        The original's faces whose box is not within TOUCH_PX of a changed pixel, then each
        window's faces whose box is, or that the original's faces lack (a face whose context
        the changes altered, found whole in the window), in window order. A face found in two overlapping windows (IoU >= SAME_FACE_IOU) is
        kept once: the box clear of its window's inner sides first, then the higher score.
    """
    mask = changed_mask(edited, original) if mask is None else mask
    if not native:
        return detect(edited) if mask.any() else list(original_faces)
    touched = [d for d in original_faces if touches(d, mask)]
    kept = [d for d in original_faces if not touches(d, mask)]
    height, width = mask.shape
    found: list[tuple[bool, float, int, int, Detection]] = []
    windows = changed_windows(mask, margin, min_margin, seeds=[d.box for d in touched])
    for index, (x1, y1, x2, y2) in enumerate(windows):
        window = np.ascontiguousarray(edited[y1:y2, x1:x2])
        for det in (shifted(d, x1, y1) for d in detect(window)):
            inside = _inside(det, (x1, y1, x2, y2), width, height)
            # a face over the changes, or one the changes beside it made findable (its
            # context changed: a score now over the threshold), which the original lacks
            if touches(det, mask) or (inside and not (kept and _seen(det, kept, cut=False))):
                found.append((inside, float(det.score), len(found), index, det))
    chosen: list[tuple[int, int, Detection]] = []
    for inside, score, order, index, det in sorted(found, key=lambda f: (not f[0], -f[1], f[2])):
        # one window's own faces are all kept (the detector's answer); a face is dropped only
        # as another window's find of a face already kept
        others = [c for _, w, c in chosen if w != index]
        if others and _seen(det, others, cut=not inside):
            continue
        chosen.append((order, index, det))
    return kept + [det for _, _, det in sorted(chosen, key=lambda c: c[0])]


def _seen(det: Detection, chosen: list[Detection], cut: bool) -> bool:
    """Whether `det` is a face of `chosen` found again in another window: IoU >= SAME_FACE_IOU,
    or, for a box at its window's inner side (`cut`), half of it or more inside a chosen box
    (the part of a face that window cut off)."""
    box = np.asarray(det.box, np.float64)[None]
    others = np.array([c.box for c in chosen], np.float64)
    if iou_matrix(box, others).max() >= SAME_FACE_IOU:
        return True
    if not cut:
        return False
    width = np.clip(np.minimum(box[:, 2], others[:, 2]) - np.maximum(box[:, 0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[:, 3], others[:, 3]) - np.maximum(box[:, 1], others[:, 1]), 0, None)
    own = max(float((box[0, 2] - box[0, 0]) * (box[0, 3] - box[0, 1])), 1e-9)
    return bool((width * height / own).max() >= 0.5)


def scan_edit(detector, edited: np.ndarray, original: np.ndarray, original_faces: Sequence[Detection],
              margin: float, min_margin: int = 32, mask: np.ndarray | None = None,
              scan: Callable[..., list[Detection]] | None = None) -> list[Detection]:
    """The faces one detector finds on `edited`, scanning only what changed (detect_changed).

    A detector that scans a photo at its own resolution (Detector.native_scale) scans windows
    of `edited`. One that resizes the photo first (SCRFD into its input size) scans windows
    of its view() of `edited`, as they are, around the pixels where the views differ, and
    its faces there are mapped back to the photo's pixels; where it has no view (a network of
    one fixed input size), `edited` is scanned whole.

    Args:
        detector: a single detector (bench.detectors.base.Detector).
        edited, original: (H, W, 3) uint8 BGR, the same shape.
        original_faces: the detector's faces on `original` (scan(original)), photo pixels.
        margin, min_margin, mask: as detect_changed (min_margin in the pixels scanned: the
            view's for a resizing detector; `mask` is the photo's, unused for a view).
        scan: scan(image, as_is=False) -> faces, the detector's call (default: its memoized
            detect_many; the leak check's: detect_turned). as_is=True on a window of a view.
    """
    from bench.detectors import scale_detection

    if scan is None:
        def scan(image, as_is=False):
            return detector.detect_many([image], as_is=as_is)[0]
    height, width = edited.shape[:2]
    if detector.native_scale(height, width):
        return detect_changed(scan, edited, original, original_faces, margin, min_margin, mask=mask)
    mask = changed_mask(edited, original) if mask is None else mask
    seen = detector.view(edited) if mask.any() else None
    if seen is None:  # nothing changed, or no view to cut windows from: as detect_changed(native=False)
        return detect_changed(scan, edited, original, original_faces, margin, min_margin, native=False, mask=mask)
    (edited_view, factor), (original_view, _) = seen, detector.view(original)
    to_view = np.array([factor, factor], np.float32)
    faces_view = [scale_detection(d, to_view) for d in original_faces]
    photo_face = {id(v): d for v, d in zip(faces_view, original_faces)}  # unchanged faces come back as given
    found = detect_changed(lambda image: scan(image, as_is=True), edited_view, original_view, faces_view,
                           margin, min_margin)
    back = np.array([1 / factor, 1 / factor], np.float32)  # as SCRFD.detect maps its faces back
    return [photo_face[id(d)] if id(d) in photo_face else scale_detection(d, back) for d in found]


def scan_changed(detector, edited: np.ndarray, original: np.ndarray, margin: float,
                 min_margin: int = 32) -> list[Detection]:
    """`detector.detect(edited)` (BGR uint8) computed as scan_edit does: the detector's own
    (memoized) faces on `original` where unchanged, windows around the changes elsewhere. An
    ensemble runs so member by member and merges their faces as its detect() does."""
    from bench.detectors.base import in_reading_order
    from bench.detectors.ensemble import EnsembleDetector, merge_detections

    if isinstance(detector, EnsembleDetector):
        found = {name: scan_changed(member, edited, original, margin, min_margin)
                 for name, member in detector.ready().items()}
        return in_reading_order(merge_detections(found, detector.merge_iou))
    return scan_edit(detector, edited, original, detector.detect(original), margin, min_margin)
