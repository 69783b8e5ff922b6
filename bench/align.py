"""Alignment to the standard ArcFace five-point template (insightface's `arcface_dst`).

112x112 crops come from insightface's own `norm_crop`; other sizes (FaceNet's 160, the
generators' 224/256, ...) use the same template scaled, optionally zoomed out by `margin`
so that models trained on looser crops see the context they expect."""
from __future__ import annotations

import cv2
import numpy as np
from insightface.utils import face_align

ARCFACE_TEMPLATE = np.asarray(face_align.arcface_dst, dtype=np.float32)  # in a 112x112 crop


def template(size: int, margin: float = 0.0) -> np.ndarray:
    """The five template points for a `size`x`size` crop; `margin` > 0 zooms out about the
    centre (0.25 leaves a quarter of the crop's width of extra context)."""
    points = ARCFACE_TEMPLATE / 112.0
    points = (points - 0.5) / (1.0 + margin) + 0.5
    return (points * size).astype(np.float32)


def similarity_transform(landmarks: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """2x3 matrix of the least-squares similarity taking `landmarks` onto the template."""
    if size % 112 == 0 and margin == 0.0:
        return face_align.estimate_norm(np.asarray(landmarks, dtype=np.float32), image_size=size)
    matrix, _ = cv2.estimateAffinePartial2D(
        np.asarray(landmarks, dtype=np.float32), template(size, margin), method=cv2.LMEDS
    )
    if matrix is None:
        raise ValueError("degenerate landmarks: no similarity transform")
    return matrix


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 112, margin: float = 0.0) -> np.ndarray:
    """The `size`x`size` aligned crop of one face (any channel order; it is kept)."""
    landmarks = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    if not np.isfinite(landmarks).all():
        raise ValueError("landmarks contain NaN or inf")
    if np.ptp(landmarks, axis=0).max() < 1.0:
        raise ValueError("degenerate landmarks: all five within one pixel")
    if size == 112 and margin == 0.0:
        return face_align.norm_crop(image, landmarks, image_size=112)
    matrix = similarity_transform(landmarks, size, margin)
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
