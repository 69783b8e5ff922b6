"""Checks on the faces handed to the landmark-driven swappers (faceswap, faceswap2d), so that
both refuse the same bad input with the same SwapFailed reasons."""
from __future__ import annotations

import numpy as np

from bench.generators.base import Face, SwapFailed


def checked(face: Face, what: str, min_size: float = 0.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(box (4,), five landmarks (5, 2), eye distance in pixels) of a usable face.

    Raises:
        SwapFailed: missing or non-finite values, a box under 8 px, a box whose shorter
            side is under `min_size` px, or landmarks whose eyes coincide.
    """
    box = np.asarray(face.box, dtype=np.float64).reshape(-1)[:4]
    given = np.asarray(face.landmarks, dtype=np.float64).reshape(-1, 2)
    if not (box.size == 4 and len(given) == 5 and np.all(np.isfinite(box)) and np.all(np.isfinite(given))):
        raise SwapFailed(f"{what}: box or five landmarks missing or not finite")
    if box[2] - box[0] < 8 or box[3] - box[1] < 8:
        raise SwapFailed(f"{what}: degenerate face box {box.round(1).tolist()} (< 8 px)")
    size = float(min(box[2] - box[0], box[3] - box[1]))
    if size < min_size:
        raise SwapFailed(f"{what}: {size:.0f} px, smaller than the {min_size:.0f} px this swap needs")
    eye_distance = float(np.linalg.norm(given[1] - given[0]))
    if eye_distance < 2.0:
        raise SwapFailed(f"{what}: degenerate landmarks (eye distance {eye_distance:.1f} px)")
    return box, given, eye_distance


def check_agreement(found: np.ndarray, given: np.ndarray, eye_distance: float, limit: float,
                    what: str, source: str) -> None:
    """Raises SwapFailed if the five points a swapper found (`found`) lie on average more
    than `limit` eye distances from the face's own five landmarks (`given`): the swapper
    is looking at something else (a wrong fit, a box around no face)."""
    error = float(np.linalg.norm(found - given, axis=1).mean()) / eye_distance
    if error > limit:
        raise SwapFailed(f"{what}: the {source} and the face's own landmarks disagree "
                         f"(mean error {error:.2f} eye distances > {limit})")
