"""Box geometry shared by detection recall and re-detection after anonymization."""
from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (N, 4) and b (M, 4), as x1, y1, x2, y2."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)


def greedy_match(a: np.ndarray, b: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """One-to-one pairs (i, j), highest IoU first, each with IoU >= min_iou."""
    overlap = iou_matrix(a, b)
    pairs = []
    while overlap.size and overlap.max() >= min_iou:
        i, j = np.unravel_index(overlap.argmax(), overlap.shape)
        pairs.append((int(i), int(j)))
        overlap[i, :] = -1
        overlap[:, j] = -1
    return sorted(pairs)


def box_mean_abs_diff(a: np.ndarray, b: np.ndarray, box) -> float:
    """Mean |a - b| (gray levels) of two same-size images over `box` (x1, y1, x2, y2 pixels)
    clipped to the image; NaN when nothing of the box is inside."""
    height, width = a.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return float("nan")
    return float(np.abs(a[y1:y2, x1:x2].astype(np.int16) - b[y1:y2, x1:x2]).mean())


def box_changed_fraction(a: np.ndarray, b: np.ndarray, box, tolerance: int = 2) -> float:
    """The fraction of `box`'s pixels (clipped to the image) where two same-size images
    differ by more than `tolerance` gray levels in some channel; NaN when nothing of the
    box is inside."""
    height, width = a.shape[:2]
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(width, int(np.ceil(box[2]))), min(height, int(np.ceil(box[3])))
    if x2 <= x1 or y2 <= y1:
        return float("nan")
    diff = np.abs(a[y1:y2, x1:x2].astype(np.int16) - b[y1:y2, x1:x2])
    return float((diff.reshape(y2 - y1, x2 - x1, -1).max(axis=2) > tolerance).mean())
