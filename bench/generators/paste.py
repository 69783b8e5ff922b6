"""Shared crop geometry for generators: the five-point templates that public face swappers
were trained on, the aligned crop, feathered masks, and the paste-back into the photo.

The API is small on purpose:
    align_crop(image, landmarks, template, size) -> (crop, matrix)
    box_mask(size, feather, padding)             -> (size, size) float32 alpha
    paste_back(photo, crop, matrix, mask)        -> photo with the crop blended in
    blend(base, altered, alpha)                  -> uint8 alpha blend

Pixels where the mask is 0 are returned unchanged, bit for bit, so a test (or a reviewer)
can check that a generator touched nothing outside the face.
"""
from __future__ import annotations

import cv2
import numpy as np

from bench.align import ARCFACE_TEMPLATE

# Five points (left eye, right eye, nose tip, left and right mouth corner), as fractions of
# the crop side. The names follow facefusion's, whose exports most users of these swappers run.
TEMPLATES: dict[str, np.ndarray] = {
    # insightface's arcface_dst: the 112x112 ArcFace crop (inswapper, recognizers).
    "arcface_112_v2": ARCFACE_TEMPLATE / 112.0,
    # insightface's earlier frontal template: SimSwap's "newarc" frontal pose (src3 in
    # SimSwap's insightface_func/utils/face_align_ffhqandnewarc.py); facefusion aligns its
    # SimSwap exports with it.
    "arcface_112_v1": np.array(
        [[39.730, 51.138], [72.270, 51.138], [56.000, 68.493], [42.463, 87.010], [69.537, 87.010]],
        dtype=np.float32,
    ) / 112.0,
    # The FFHQ alignment at 512 (SimSwap's ffhq_src; its 512 model and BlendSwap use it).
    "ffhq_512": np.array(
        [[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
         [201.26117, 371.41043], [313.08905, 371.15118]],
        dtype=np.float32,
    ) / 512.0,
}


def template_points(template: str, size: int) -> np.ndarray:
    """The five template points of `template` in a `size`x`size` crop, in pixels."""
    if template not in TEMPLATES:
        raise KeyError(f"unknown alignment template {template!r}; known: {', '.join(TEMPLATES)}")
    return (TEMPLATES[template] * size).astype(np.float32)


def align_crop(image: np.ndarray, landmarks: np.ndarray, template: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The `size`x`size` crop whose five landmarks best match `template` (least-squares
    similarity), and the 2x3 matrix taking photo pixels to crop pixels.

    Raises:
        ValueError: the landmarks are not finite or are degenerate.
    """
    points = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or inf")
    if np.ptp(points, axis=0).max() < 1.0:
        raise ValueError("degenerate landmarks: all five within one pixel")
    matrix, _ = cv2.estimateAffinePartial2D(points, template_points(template, size), method=cv2.LMEDS)
    if matrix is None or not np.isfinite(matrix).all():
        raise ValueError("degenerate landmarks: no similarity transform")
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0.0)
    return crop, matrix


def box_mask(size: int, feather: float = 0.3, padding: float = 0.0) -> np.ndarray:
    """A square alpha mask for a `size`x`size` crop: 1 in the middle, falling smoothly to 0
    at the crop's border so that the pasted crop leaves no seam.

    Args:
        size: side of the crop in pixels.
        feather: width of the soft border as a fraction of `size` (facefusion's
            face_mask_blur, default 0.3).
        padding: fraction of `size` cut off each side before feathering.
    """
    mask = np.ones((size, size), dtype=np.float32)
    band = max(int(round(size * (padding + feather / 4.0))), 1)
    mask[:band], mask[-band:], mask[:, :band], mask[:, -band:] = 0, 0, 0, 0
    sigma = size * feather / 8.0
    if sigma > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    # The blur must not leak alpha back onto the outermost pixels.
    mask[0], mask[-1], mask[:, 0], mask[:, -1] = 0, 0, 0, 0
    return np.clip(mask, 0.0, 1.0)


def blend(base: np.ndarray, altered: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """uint8 `alpha * altered + (1 - alpha) * base`; where alpha is 0, `base` exactly."""
    a = np.asarray(alpha, dtype=np.float32)
    if a.ndim == 2:
        a = a[..., None]
    mixed = a * altered.astype(np.float32) + (1.0 - a) * base.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


def paste_back(photo: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A copy of `photo` with `crop` (from align_crop's `matrix`) warped back and blended
    through `mask` (crop-sized alpha). Only the crop's footprint is warped, not the photo.

    Raises:
        ValueError: the crop's footprint does not intersect the photo.
    """
    height, width = photo.shape[:2]
    size = crop.shape[0]
    inverse = cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], dtype=np.float64)
    footprint = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.maximum(np.floor(footprint.min(axis=0)).astype(int) - 1, 0)
    x1 = min(int(np.ceil(footprint[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(footprint[:, 1].max())) + 2, height)
    if x1 <= x0 or y1 <= y0:
        raise ValueError("the face's crop lies outside the photo")
    shifted = inverse.copy()
    shifted[:, 2] -= (x0, y0)  # warp straight into the footprint's rectangle
    roi = (slice(y0, y1), slice(x0, x1))
    size_wh = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop, shifted, size_wh, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), shifted, size_wh, flags=cv2.INTER_LINEAR, borderValue=0.0)
    result = photo.copy()
    result[roi] = blend(photo[roi], warped, alpha)
    return result
