"""Pixelation (mosaic) of the face: each block of a grid laid over the face becomes its
mean colour."""
from __future__ import annotations

import numpy as np

from bench.generators.obfuscation import Obfuscation, Region


class Pixelate(Obfuscation):
    """Replaces the face region by `blocks` blocks across its width (square blocks)."""

    def __init__(self, blocks: int = 8, expand: float = 1.2, shape: str = "box", feather: float = 0.0) -> None:
        """
        Args:
            blocks: blocks across the (expanded) face region's width; fewer is coarser.
            expand, shape, feather: the region, see Obfuscation.
        """
        super().__init__(expand=expand, shape=shape, feather=feather)
        if int(blocks) < 1:
            raise ValueError(f"blocks must be at least 1, got {blocks}")
        self.blocks = int(blocks)

    def _obfuscate(self, patch: np.ndarray, region: Region, origin: tuple[int, int]) -> np.ndarray:
        # The grid is anchored at the region's top-left corner, so the mosaic sits on the
        # face even where the photo's border cuts the region.
        block = 2.0 * region.a / self.blocks
        height, width, channels = patch.shape
        cols = np.floor((np.arange(width) + origin[0] - (region.cx - region.a)) / block).astype(np.int64)
        rows = np.floor((np.arange(height) + origin[1] - (region.cy - region.b)) / block).astype(np.int64)
        cols -= cols.min()
        rows -= rows.min()
        n_cols = int(cols.max()) + 1
        cell = (rows[:, None] * n_cols + cols[None, :]).ravel()
        n_cells = int(cell.max()) + 1
        counts = np.bincount(cell, minlength=n_cells).astype(np.float64)
        pixels = patch.reshape(-1, channels).astype(np.float64)
        means = np.stack([np.bincount(cell, pixels[:, c], minlength=n_cells) for c in range(channels)], axis=1)
        means = np.rint(means / np.maximum(counts, 1)[:, None]).astype(np.uint8)
        return means[cell].reshape(height, width, channels)
