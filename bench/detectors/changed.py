"""Scan only what changed: detections on an edited photo from the original's detections plus
detector runs on windows around the edited pixels.

An anonymized photo equals its original everywhere but the regions the generator replaced
(PNG, lossless). A face whose box holds no changed pixel is the original's face, found by the
original's scan (cached per photo content); only the changed regions, with a margin of
context around them, need a detector again. Used by the anonymize stage's output audit and by
the leak check (`scan_margin`; null: scan the whole photo).

Windows are scanned at the photo's own resolution, their corners on a 32-px grid counted
from each side of the photo (the strides of the CNN detectors, in every turn). A detector
that resizes its input to a fixed size (SCRFD; `Detector.native_scale`) would see a window
magnified, finding faces (and false faces) that the whole scan does not: it scans the whole
photo instead.
"""
from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np

from bench.detectors.base import Detection


def changed_mask(edited: np.ndarray, original: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels where any channel differs. Both (H, W, C) uint8 of the same shape."""
    if edited.shape != original.shape:
        raise ValueError(f"edited {edited.shape} and original {original.shape} differ in shape")
    diff = edited != original
    return diff.any(axis=2) if diff.ndim == 3 else diff


GRID = 32


def _snap(x1: int, y1: int, x2: int, y2: int, width: int, height: int) -> list[int]:
    """A window grown to GRID-px steps counted from the photo's left/top (x1, y1) and
    right/bottom (x2, y2) sides, so that it sits on the photo's stride grid however turned."""
    return [x1 // GRID * GRID, y1 // GRID * GRID,
            width - (width - x2) // GRID * GRID, height - (height - y2) // GRID * GRID]


def changed_windows(mask: np.ndarray, margin: float, min_margin: int = 32) -> list[tuple[int, int, int, int]]:
    """Windows (x1, y1, x2, y2; pixels, end exclusive) that cover every changed pixel of `mask`
    with context: each connected changed region's bounds grown by `margin` times its longer
    side (at least `min_margin` px) on every side, clipped to the image and snapped to the
    GRID; overlapping windows are joined until none overlap. Empty when nothing changed."""
    height, width = mask.shape
    if not mask.any():
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = []
    for x, y, w, h, _ in stats[1:count]:
        grow = max(int(np.ceil(margin * max(w, h))), int(min_margin))
        boxes.append(_snap(max(0, x - grow), max(0, y - grow), min(width, x + w + grow), min(height, y + h + grow),
                           width, height))
    merged = True
    while merged:
        merged = False
        out: list[list[int]] = []
        for box in boxes:
            for other in out:
                if box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]:
                    other[:] = [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])]
                    merged = True
                    break
            else:
                out.append(list(box))
        boxes = out
    return [tuple(int(v) for v in box) for box in sorted(boxes)]


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


def detect_changed(detect: Callable[[np.ndarray], list[Detection]], edited: np.ndarray, original: np.ndarray,
                   original_faces: Sequence[Detection], margin: float, min_margin: int = 32,
                   native: bool = True) -> list[Detection]:
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

    Returns:
        The original's faces whose box is not within TOUCH_PX of a changed pixel, then each
        window's faces whose box is (a window's face away from the changes is the original's).
    """
    mask = changed_mask(edited, original)
    if not native:
        return detect(edited) if mask.any() else list(original_faces)
    kept = [d for d in original_faces if not touches(d, mask)]
    found = []
    for x1, y1, x2, y2 in changed_windows(mask, margin, min_margin):
        window = np.ascontiguousarray(edited[y1:y2, x1:x2])
        found += [f for f in (shifted(d, x1, y1) for d in detect(window)) if touches(f, mask)]
    return kept + found


def scan_changed(detector, edited: np.ndarray, original: np.ndarray, margin: float,
                 min_margin: int = 32) -> list[Detection]:
    """`detector.detect(edited)` (BGR uint8) computed as detect_changed does: the detector's
    own (memoized) faces on `original` where unchanged, windows around the changes elsewhere;
    the whole photo for a detector that does not scan windows at its native scale. An
    ensemble runs so member by member and merges their faces as its detect() does."""
    from bench.detectors.base import in_reading_order
    from bench.detectors.ensemble import EnsembleDetector, merge_detections

    if isinstance(detector, EnsembleDetector):
        found = {name: scan_changed(member, edited, original, margin, min_margin)
                 for name, member in detector.ready().items()}
        return in_reading_order(merge_detections(found, detector.merge_iou))
    height, width = edited.shape[:2]
    return detect_changed(detector.detect, edited, original, detector.detect(original), margin, min_margin,
                          native=detector.native_scale(height, width))
