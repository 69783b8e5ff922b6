"""The classic obfuscations (blur, pixelation) as generators, so that every table can show
them beside the deepfakes (as DeepPrivacy2 does; MFMC §2.3 argues against them).

An obfuscation alters a region around the face box, blended in through a feathered
ellipse or box mask; it takes no identity from a target (uses_target = False).
Subclasses implement one method, `_obfuscate(patch, region)`.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass

import numpy as np

from bench.generators.base import Face, Generator, SwapFailed
from bench.generators.paste import blend

SHAPES = ("ellipse", "box")


@dataclass(frozen=True)
class Region:
    """The obfuscated region: centre (cx, cy) and half-extents (a, b) in photo pixels
    (pixel centres at integer coordinates); `face_size` is the larger side of the face box."""

    cx: float
    cy: float
    a: float
    b: float
    face_size: float

    @classmethod
    def from_box(cls, box, expand: float) -> "Region":
        """The face box scaled by `expand` about its centre.

        Raises:
            SwapFailed: the box is not finite or has no area.
        """
        x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 - x1 < 1.0 or y2 - y1 < 1.0:
            raise SwapFailed(f"face box {[x1, y1, x2, y2]} is empty or not finite")
        return cls((x1 + x2) / 2, (y1 + y2) / 2, expand * (x2 - x1) / 2, expand * (y2 - y1) / 2, max(x2 - x1, y2 - y1))

    def bounds(self, margin: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the region grown by `margin` pixels, clipped to an image of `shape`."""
        height, width = shape[:2]
        x0 = max(int(math.floor(self.cx - self.a - margin)), 0)
        y0 = max(int(math.floor(self.cy - self.b - margin)), 0)
        x1 = min(int(math.ceil(self.cx + self.a + margin)) + 1, width)
        y1 = min(int(math.ceil(self.cy + self.b + margin)) + 1, height)
        return x0, y0, x1, y1

    def alpha(self, bounds: tuple[int, int, int, int], shape: str, feather: float) -> np.ndarray:
        """The blending mask over `bounds`: 1 well inside the region, a smooth fall to 0 over
        the outer `feather` fraction of its radius, 0 outside."""
        x0, y0, x1, y1 = bounds
        dx = (np.arange(x0, x1, dtype=np.float32) - self.cx) / self.a
        dy = (np.arange(y0, y1, dtype=np.float32) - self.cy) / self.b
        if shape == "ellipse":
            radius = np.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        else:
            radius = np.maximum(np.abs(dy)[:, None], np.abs(dx)[None, :])
        if feather <= 0:
            return (radius <= 1.0).astype(np.float32)
        t = np.clip((1.0 - radius) / feather, 0.0, 1.0)
        return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: no visible ring


class Obfuscation(Generator):
    """Alters the face region in place; subclasses say how (blur, pixelate)."""

    uses_target = False

    def __init__(self, expand: float = 1.3, shape: str = "ellipse", feather: float = 0.2) -> None:
        """
        Args:
            expand: the region is the face box scaled by this about its centre.
            shape: "ellipse" (inscribed in the expanded box) or "box".
            feather: fraction of the region's radius over which the effect fades out.
        """
        super().__init__()
        if expand <= 0:
            raise ValueError(f"expand must be positive, got {expand}")
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
        if not 0.0 <= feather <= 1.0:
            raise ValueError(f"feather must be within [0, 1], got {feather}")
        self.expand, self.shape, self.feather = float(expand), shape, float(feather)

    def _margin(self, region: Region) -> float:
        """Extra context (pixels) `_obfuscate` needs around the region (a blur's kernel)."""
        return 0.0

    @abc.abstractmethod
    def _obfuscate(self, patch: np.ndarray, region: Region, origin: tuple[int, int]) -> np.ndarray:
        """The altered `patch` (same shape, uint8); `origin` is the patch's top-left (x, y)
        in the photo, so that `region` can be located inside it."""

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        region = Region.from_box(face.box, self.expand)
        x0, y0, x1, y1 = bounds = region.bounds(self._margin(region), photo.shape)
        if x1 <= x0 or y1 <= y0:
            raise SwapFailed(f"face box {np.asarray(face.box).tolist()} lies outside the photo")
        alpha = region.alpha(bounds, self.shape, self.feather)
        if not alpha.any():
            raise SwapFailed(f"face box {np.asarray(face.box).tolist()} covers no pixel of the photo")
        patch = photo[y0:y1, x0:x1]
        result = photo.copy()
        result[y0:y1, x0:x1] = blend(patch, self._obfuscate(patch, region, (x0, y0)), alpha)
        return result
