"""Colour transfer and blending shared by the face swappers (faceswap, faceswap2d).

All images are HxWx3 uint8 RGB; masks are HxW, either bool/uint8 (hard) or float32 in
[0, 1] (soft alpha). The functions are pure: they return new arrays.

- `transfer_colour`: Reinhard et al.'s statistics transfer in CIE-Lab, restricted to a mask,
  so a rendered face takes the skin tone and brightness of the face it replaces.
- `seamless_clone`: Poisson blending (Pérez et al.) through cv2.seamlessClone, made safe
  near image borders by padding; raises BlendFailed where OpenCV cannot do it.
- `edge_weighted`, `harmonise`: Poisson blending whose correction is kept in full only near
  the seam, so it hides the seam without washing out the pasted face's own colours.
- `feather`: a hard mask -> soft alpha that is exactly zero outside the mask.
- `composite`: alpha blend that leaves pixels with alpha 0 byte-identical.
"""
from __future__ import annotations

import logging

import cv2
import numpy as np

from bench.errors import BenchError

log = logging.getLogger(__name__)


class BlendFailed(BenchError):
    """Poisson blending could not be done for this mask (the caller may fall back)."""


def _lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def transfer_colour(image: np.ndarray, reference: np.ndarray, mask: np.ndarray,
                    reference_mask: np.ndarray | None = None, max_gain: float = 1.5) -> np.ndarray:
    """`image` with its Lab mean and spread inside `mask` matched to `reference`'s inside
    `reference_mask` (default: the same mask).

    Args:
        image: the content to recolour (e.g. a rendered face).
        reference: the image whose colours to match (e.g. the photo being edited).
        mask: where `image`'s statistics are measured; the whole image is recoloured.
        reference_mask: where `reference`'s statistics are measured.
        max_gain: bound on the per-channel spread ratio, so a near-flat region cannot
            blow up the contrast.

    Returns:
        The recoloured image (uint8 RGB). Unchanged if either region has < 16 pixels.
    """
    mask = np.asarray(mask) > 0
    ref_mask = mask if reference_mask is None else np.asarray(reference_mask) > 0
    if mask.sum() < 16 or ref_mask.sum() < 16:
        return image.copy()
    src, ref = _lab(image), _lab(reference)
    s_mean, s_std = src[mask].mean(axis=0), src[mask].std(axis=0)
    r_mean, r_std = ref[ref_mask].mean(axis=0), ref[ref_mask].std(axis=0)
    gain = np.clip(r_std / np.maximum(s_std, 1e-3), 1.0 / max_gain, max_gain)
    out = (src - s_mean) * gain + r_mean
    out[..., 0] = np.clip(out[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def seamless_clone(content: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Poisson-blends `content` into `background` (same size) inside `mask`, in place:
    the content's gradients, the background's colours at the mask's boundary.

    The images are reflect-padded first, so a mask touching the image border (a face at
    the photo's edge) does not make cv2.seamlessClone fail or shift the result.

    Raises:
        BlendFailed: the mask is empty or OpenCV rejected the input.
    """
    hard = (np.asarray(mask) > 0).astype(np.uint8) * 255
    if hard.sum() == 0:
        raise BlendFailed("empty blending mask")
    pad = 8
    src = cv2.copyMakeBorder(content, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    dst = cv2.copyMakeBorder(background, pad, pad, pad, pad, cv2.BORDER_REFLECT)
    hard = cv2.copyMakeBorder(hard, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(hard)
    if w < 3 or h < 3:
        raise BlendFailed(f"blending mask too small ({w}x{h} px)")
    # seamlessClone centres the mask's bounding box on `centre` (integer halves): this
    # centre puts it back exactly where it came from.
    centre = (x + w // 2, y + h // 2)
    try:
        out = cv2.seamlessClone(src, dst, hard, centre, cv2.NORMAL_CLONE)
    except cv2.error as exc:
        raise BlendFailed(f"cv2.seamlessClone failed: {str(exc).strip().splitlines()[-1]}") from exc
    return out[pad:-pad, pad:-pad]


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """Soft alpha (float32 in [0, 1]) from a hard mask: 0 on and outside the mask's edge,
    rising smoothly to exactly 1 at `2 * radius` pixels inside, so nothing leaks outside."""
    hard = (np.asarray(mask) > 0).astype(np.uint8)
    if not hard.any():
        return np.zeros(hard.shape, dtype=np.float32)
    # Pad so that the image border does not count as the mask's edge.
    pad = int(np.ceil(2 * radius)) + 1
    padded = cv2.copyMakeBorder(hard, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    depth = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[pad:-pad, pad:-pad]
    ramp = np.clip((depth - 0.5) / max(2.0 * radius, 1.0), 0.0, 1.0)
    return (ramp * ramp * (3.0 - 2.0 * ramp)).astype(np.float32)


def composite(background: np.ndarray, foreground: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """background * (1 - alpha) + foreground * alpha, uint8; pixels with alpha == 0 keep the
    background's exact bytes."""
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)[..., None]
    mixed = background.astype(np.float32) * (1.0 - a) + foreground.astype(np.float32) * a
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    keep = a[..., 0] <= 0.0
    out[keep] = background[keep]
    return out


def edge_weighted(content: np.ndarray, cloned: np.ndarray, mask: np.ndarray, reach: float,
                  floor: float = 0.3, max_correction: float = 32.0) -> np.ndarray:
    """Keeps a Poisson result's colour correction (`cloned - content`) in full near the
    mask's edge, where it hides the seam, and only `floor` of it deeper than `reach`
    pixels, where it would wash the content's own colours out. The correction is capped
    at `max_correction` levels: where the mask's edge runs along something dark (hair, an
    occluding head), Poisson blending would otherwise smear it into the face."""
    hard = (np.asarray(mask) > 0).astype(np.uint8)
    depth = cv2.distanceTransform(hard, cv2.DIST_L2, 5)
    keep = floor + (1.0 - floor) * (1.0 - np.clip(depth / max(reach, 1.0), 0.0, 1.0))
    correction = np.clip(cloned.astype(np.float32) - content.astype(np.float32), -max_correction, max_correction)
    out = content.astype(np.float32) + correction * keep[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def harmonise(content: np.ndarray, background: np.ndarray, mask: np.ndarray, seam_reach: float = 0.15,
              fallback_to_feather: bool = True) -> np.ndarray:
    """Poisson-blends `content` into `background` inside `mask`, keeping the correction in
    full only near the seam (see edge_weighted; `seam_reach` is a fraction of the mask's
    size, sqrt of its area).

    Raises:
        BlendFailed: Poisson blending failed and `fallback_to_feather` is off; with it on,
            `content` is returned unchanged (the caller's feathered paste then blends it).
    """
    try:
        cloned = seamless_clone(content, background, mask)
    except BlendFailed as exc:
        if not fallback_to_feather:
            raise
        log.warning("%s; pasting with the feathered mask instead", exc)
        return content.copy()
    reach = seam_reach * float(np.sqrt((np.asarray(mask) > 0).sum()))
    return edge_weighted(content, cloned, mask, reach=reach)


def harmonise_or_refuse(rendered: np.ndarray, background: np.ndarray, mask: np.ndarray, seam_reach: float,
                        fallback_to_feather: bool) -> np.ndarray:
    """harmonise(), with a failed blend turned into the generator's SwapFailed (a failure row)."""
    from bench.generators.base import SwapFailed

    try:
        return harmonise(rendered, background, mask, seam_reach, fallback_to_feather)
    except BlendFailed as exc:
        raise SwapFailed(f"Poisson blending failed and the feathered fallback is off: {exc}") from exc
