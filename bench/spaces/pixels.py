"""Pixel spaces: RMSE, SSIM and PSNR between the fixed-size aligned crops, by torchmetrics.

Every face's feature is its aligned 112x112 crop resized to `manifold.pixel_size` (64 by
default), uint8 RGB (bench.spaces.features). Values are scaled to [0, 1] (data range 1).
One query face is compared with the whole pool in chunks of `chunk` pool faces, each a
single batched torchmetrics call with reduction="none" (one value per pair).
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.functional.regression import mean_squared_error

from bench.spaces.base import Space

# ITU-R BT.601 luma, for spaces computed on grayscale.
LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)


class PixelSpace(Space):
    """Base of the three pixel spaces.

    Args:
        grayscale: compare BT.601 luma instead of RGB.
        chunk: pool faces per torchmetrics call (bounds memory).
    """

    feature = "pixels"

    def __init__(self, grayscale: bool = False, chunk: int = 1024):
        self.grayscale = bool(grayscale)
        self.chunk = int(chunk)

    def tensor(self, images: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, C, S, S) float32 in [0, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return (x * LUMA).sum(dim=1, keepdim=True) if self.grayscale else x

    def _distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        pool_t = self.tensor(pool)
        out = np.empty((len(queries), len(pool)), np.float64)
        with torch.inference_mode():
            for qi, q in enumerate(self.tensor(queries)):
                for start in range(0, len(pool_t), self.chunk):
                    part = pool_t[start:start + self.chunk]
                    out[qi, start:start + len(part)] = self._pair(part, q.unsqueeze(0).expand_as(part)).double().numpy()
        return out

    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(M, C, S, S) pool chunk and the query repeated M times -> (M,) distances."""
        raise NotImplementedError


class RmseSpace(PixelSpace):
    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        # num_outputs=M: one RMSE per column, i.e. per (pool face, query) pair.
        m = len(pool)
        return mean_squared_error(pool.reshape(m, -1).T, query.reshape(m, -1).T, squared=False, num_outputs=m)

    def describe(self) -> str:
        return f"{self.name}: RMSE of {'grayscale' if self.grayscale else 'RGB'} aligned crops (torchmetrics)"


class SsimSpace(PixelSpace):
    """Distance = 1 − SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03)."""

    similarity = True

    def __init__(self, grayscale: bool = True, chunk: int = 1024, kernel_size: int = 11, sigma: float = 1.5):
        super().__init__(grayscale, chunk)
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        # PyTorch's native depthwise convolution is about twice as fast as oneDNN's for
        # SSIM's 5-map Gaussian filter on small images (measured: 0.6 s vs 1.2 s per
        # 500 pairs at 64x64); flags() warns about Intel-GPU TF32, irrelevant on CPU.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            with torch.backends.mkldnn.flags(enabled=False):
                ssim = structural_similarity_index_measure(
                    pool, query, gaussian_kernel=True, sigma=self.sigma, kernel_size=self.kernel_size,
                    reduction="none", data_range=1.0)
        return 1.0 - ssim

    def describe(self) -> str:
        return f"{self.name}: 1 - SSIM of {'grayscale' if self.grayscale else 'RGB'} aligned crops (torchmetrics)"


class PsnrSpace(PixelSpace):
    """Distance = −PSNR (dB); identical crops have PSNR +inf, so distance −inf."""

    similarity = True

    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return -peak_signal_noise_ratio(pool, query, data_range=1.0, reduction="none", dim=(1, 2, 3))

    def describe(self) -> str:
        return f"{self.name}: -PSNR of {'grayscale' if self.grayscale else 'RGB'} aligned crops (torchmetrics)"
