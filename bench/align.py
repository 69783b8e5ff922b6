"""Alignment to the standard ArcFace five-point template (insightface's `arcface_dst`).

112x112 crops come from insightface's own `norm_crop`; other sizes (FaceNet's 160, the
generators' 224/256, ...) use the same template scaled, optionally zoomed out by `margin`
so that models trained on looser crops see the context they expect."""
from __future__ import annotations

from functools import cache

import cv2
import numpy as np


@cache
def _face_align():
    """insightface.utils.face_align, imported on first use: importing insightface loads its
    model zoo, onnx and ml_dtypes (about 0.9 s), which stages that never align a face skip."""
    from insightface.utils import face_align

    return face_align


@cache
def arcface_template() -> np.ndarray:
    """(5, 2) float32: insightface's `arcface_dst`, the five template points in a 112x112 crop."""
    template = np.asarray(_face_align().arcface_dst, dtype=np.float32)
    template.flags.writeable = False
    return template


def __getattr__(name: str):
    if name == "ARCFACE_TEMPLATE":  # the module constant, computed on first use
        return arcface_template()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def template(size: int, margin: float = 0.0) -> np.ndarray:
    """The five template points for a `size`x`size` crop; `margin` > 0 zooms out about the
    centre (0.25 leaves a quarter of the crop's width of extra context)."""
    points = arcface_template() / 112.0
    points = (points - 0.5) / (1.0 + margin) + 0.5
    return (points * size).astype(np.float32)


def similarity_transform(landmarks: np.ndarray, size: int, margin: float = 0.0) -> np.ndarray:
    """2x3 matrix of the least-squares similarity taking `landmarks` onto the template."""
    if size % 112 == 0 and margin == 0.0:
        return _face_align().estimate_norm(np.asarray(landmarks, dtype=np.float32), image_size=size)
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
        return _face_align().norm_crop(image, landmarks, image_size=112)
    matrix = similarity_transform(landmarks, size, margin)
    return cv2.warpAffine(image, matrix, (size, size), borderValue=0.0)
