"""Gaussian blur over the face: the obfuscation most photo tools and platforms offer."""
from __future__ import annotations


import cv2
import numpy as np

from bench.generators.obfuscation import Obfuscation, Region

# Above this sigma (pixels) the blur runs on a downscaled patch: the result is the same to
# the eye, and the cost no longer grows with the face's size.
_MAX_DIRECT_SIGMA = 8.0


class GaussianBlur(Obfuscation):
    """Blurs the face region with a Gaussian whose sigma is a fraction of the face's size."""

    def __init__(self, sigma: float = 0.1, expand: float = 1.3, shape: str = "ellipse", feather: float = 0.2) -> None:
        """
        Args:
            sigma: the Gaussian's standard deviation as a fraction of the face box's larger
                side (0.1 on a 100-pixel face: sigma = 10 pixels).
            expand, shape, feather: the region, see Obfuscation.
        """
        super().__init__(expand=expand, shape=shape, feather=feather)
        if sigma <= 0:
            raise ValueError(f"sigma must be positive, got {sigma}")
        self.sigma = float(sigma)

    def _pixels(self, region: Region) -> float:
        return self.sigma * region.face_size

    def _margin(self, region: Region) -> float:
        return 3.0 * self._pixels(region)  # the kernel reads real pixels, not a mirrored border

    def _obfuscate(self, patch: np.ndarray, region: Region, origin: tuple[int, int]) -> np.ndarray:
        sigma = self._pixels(region)
        height, width = patch.shape[:2]
        scale = min(1.0, _MAX_DIRECT_SIGMA / sigma)
        small_w, small_h = max(int(round(width * scale)), 1), max(int(round(height * scale)), 1)
        if scale < 1.0 and min(small_w, small_h) >= 2:
            small = cv2.resize(patch, (small_w, small_h), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigma * small_w / width, borderType=cv2.BORDER_REFLECT)
            return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        return cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
