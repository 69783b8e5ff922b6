"""Pixel spaces: RMSE, SSIM and PSNR between the fixed-size aligned crops, by torchmetrics.

Every face's feature is its aligned 112x112 crop resized to `manifold.pixel_size` (64 by
default), uint8 RGB (bench.spaces.features). Values are scaled to [0, 1] (data range 1).
One query face is compared with the whole pool in chunks of `chunk` pool faces, each a
single batched torchmetrics call with reduction="none" (one value per pair).

`method="fast"` (opt-in; the default stays torchmetrics, whose values every result so far
holds) computes the same quantities with less work, for large pools
(bench/benchmarks/query_scaling.py measures both):

    rmse, psnr  the sum of squared differences as ||a||² + ||b||² − 2a·b, one float64 matrix
                product per pool chunk for all queries at once, on the integer levels (0-255;
                grayscale: 299R + 587G + 114B). Every term is an integer below 2^53, so the
                sums are exact whatever BLAS's order: the exact value, where torchmetrics
                sums in float32 (the two differ by ~1e-7 relative). Identical crops: exactly
                0 (RMSE 0, PSNR distance −inf), as torchmetrics. (Exact up to crops of 2^53 /
                (2 x 255000²) ≈ 69,000 grayscale values; beyond, ValueError.)
    ssim        the same formula and Gaussian window as torchmetrics (reflect padding, the
                map averaged over every pixel), factorised: each image's local mean and
                variance are filtered once, not once per pair, and the one per-pair map, the
                filtered product, goes through the separable window as two small matrix
                products (the reflect padding folded into the matrices), not an 11x11
                convolution. float32, as torchmetrics: the two differ by ~1e-6.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure
from torchmetrics.functional.regression import mean_squared_error

from bench.progress import progress
from bench.spaces.base import Space

# method="fast" SSIM: values (pairs x pixels) per tensor operation, about 32 MB of float32.
PAIR_VALUES = 8 << 20
# ITU-R BT.601 luma, for spaces computed on grayscale.
LUMA = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32).view(1, 3, 1, 1)


class PixelSpace(Space):
    """Base of the three pixel spaces.

    Args:
        grayscale: compare BT.601 luma instead of RGB.
        chunk: pool faces per torchmetrics call or fast-method block (bounds memory).
        method: "torchmetrics" (default) or "fast" (see the module docstring).
    """

    feature = "pixels"
    METHODS = ("torchmetrics", "fast")

    def __init__(self, grayscale: bool = False, chunk: int = 1024, method: str = "torchmetrics"):
        if method not in self.METHODS:
            raise ValueError(f"unknown method {method!r}: {' or '.join(self.METHODS)}")
        self.grayscale = bool(grayscale)
        self.chunk = int(chunk)
        self.method = method

    def tensor(self, images: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, C, S, S) float32 in [0, 1]."""
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(torch.float32) / 255.0
        return (x * LUMA).sum(dim=1, keepdim=True) if self.grayscale else x

    @property
    def how(self) -> str:
        """How the values are computed, for describe()."""
        return "torchmetrics" if self.method == "torchmetrics" else "fast method of bench.spaces.pixels"

    def levels(self, images: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, int]:
        """(N, S, S, 3) uint8 -> ((N, S*S*C) float64 integer levels, the level of white):
        RGB 0-255, or grayscale luma x 1000 (299R + 587G + 114B, 0-255000), exact integers.
        `out`: a float64 buffer of at least that shape to fill (no fresh allocation per chunk)."""
        x = np.asarray(images)
        if self.grayscale:
            x = x[..., 0].astype(np.int64) * 299 + x[..., 1].astype(np.int64) * 587 + x[..., 2].astype(np.int64) * 114
        flat = x.reshape(len(x), -1)
        dest = np.empty(flat.shape, np.float64) if out is None else out[:len(x), :flat.shape[1]]
        np.copyto(dest, flat, casting="safe")
        return dest, 255_000 if self.grayscale else 255

    def squared_errors(self, queries: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, float]:
        """((Q, N) exact sums of squared level differences, the divisor that makes them MSE
        in [0, 1] units): ||a||² + ||b||² − 2a·b on integer levels, all terms exact in float64."""
        q, white = self.levels(queries)
        # every partial sum below is an integer of magnitude <= 2 n white²: exact under 2^53
        if 2 * q.shape[1] * float(white) ** 2 >= 2.0 ** 53:
            raise ValueError(f"{self.name}: {q.shape[1]} values per crop are too many for exact float64 sums")
        q_sq = np.einsum("ij,ij->i", q, q)
        out = np.empty((len(q), len(pool)), np.float64)
        buffer = np.empty((min(self.chunk, len(pool)), q.shape[1]), np.float64)
        for start in range(0, len(pool), self.chunk):
            p, _ = self.levels(pool[start:start + self.chunk], buffer)
            block = np.dot(q, p.T)
            block *= -2
            block += q_sq[:, None]
            block += np.einsum("ij,ij->i", p, p)[None, :]
            out[:, start:start + len(p)] = block
        return out, q.shape[1] * float(white) ** 2

    def _distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        if self.method == "fast":
            return self._fast(queries, pool)
        pool_t = self.tensor(pool)
        out = np.empty((len(queries), len(pool)), np.float64)
        with torch.inference_mode():
            for qi, q in enumerate(progress(self.tensor(queries), f"{self.name}: distances to the pool")):
                for start in range(0, len(pool_t), self.chunk):
                    part = pool_t[start:start + self.chunk]
                    out[qi, start:start + len(part)] = self._pair(part, q.unsqueeze(0).expand_as(part)).double().numpy()
        return out

    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        """(M, C, S, S) pool chunk and the query repeated M times -> (M,) distances."""
        raise NotImplementedError

    def _fast(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """method="fast": (Q, N) distances."""
        raise NotImplementedError


class RmseSpace(PixelSpace):
    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        # num_outputs=M: one RMSE per column, i.e. per (pool face, query) pair.
        m = len(pool)
        return mean_squared_error(pool.reshape(m, -1).T, query.reshape(m, -1).T, squared=False, num_outputs=m)

    def _fast(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        sse, scale = self.squared_errors(queries, pool)
        return np.sqrt(sse / scale)

    def describe(self) -> str:
        return f"{self.name}: RMSE of {'grayscale' if self.grayscale else 'RGB'} aligned crops ({self.how})"


class SsimSpace(PixelSpace):
    """Distance = 1 − SSIM (Wang et al. 2004: Gaussian window 11, sigma 1.5, k1 0.01, k2 0.03)."""

    similarity = True

    # torchmetrics' SSIM constants (k1, k2; data range 1).
    C1 = 0.01 ** 2
    C2 = 0.03 ** 2

    def __init__(self, grayscale: bool = True, chunk: int = 1024, kernel_size: int = 11, sigma: float = 1.5,
                 method: str = "torchmetrics"):
        super().__init__(grayscale, chunk, method)
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    def window(self, size: int) -> torch.Tensor:
        """(size, size) float32 matrix W with W @ x = torchmetrics' Gaussian filter of x along
        one axis, reflect padding included. torchmetrics sizes the Gaussian window from sigma
        alone (int(3.5 sigma + 0.5) * 2 + 1; `kernel_size` applies to its uniform window only)."""
        taps = int(3.5 * self.sigma + 0.5) * 2 + 1
        pad = (taps - 1) // 2
        if size <= pad:
            raise ValueError(f"{self.name}: crops of {size} pixels are too small for a {taps}-tap window")
        offsets = np.arange(taps, dtype=np.float64) - pad
        gauss = np.exp(-((offsets / self.sigma) ** 2) / 2)
        gauss /= gauss.sum()
        source = np.arange(-pad, size + pad)
        source = np.abs(source)  # reflect at 0 ...
        source = np.where(source > size - 1, 2 * (size - 1) - source, source)  # ... and at size - 1
        out = np.zeros((size, size), np.float64)
        for row in range(size):
            np.add.at(out[row], source[row:row + taps], gauss)
        return torch.from_numpy(out.astype(np.float32))

    def _fast(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        q = self.tensor(queries)
        rows, cols = self.window(q.shape[2]), self.window(q.shape[3])

        def blur(x: torch.Tensor) -> torch.Tensor:  # (..., H, W): the Gaussian filter of each map
            return torch.matmul(torch.matmul(rows, x), cols.T)

        c1, c2 = self.C1, self.C2
        out = np.empty((len(q), len(pool)), np.float64)
        with torch.inference_mode():
            mu_q = blur(q)
            mu_q2 = mu_q * mu_q
            var_q = torch.clamp(blur(q * q) - mu_q2, min=0.0)
            for start in range(0, len(pool), self.chunk):
                p = self.tensor(pool[start:start + self.chunk])
                mu_p = blur(p)
                mu_p2 = mu_p * mu_p
                var_p = torch.clamp(blur(p * p) - mu_p2, min=0.0)
                # Several queries per operation: fewer, larger tensor operations (each small one
                # is a synchronisation of torch's threads, slow on a core other jobs share).
                step = max(1, PAIR_VALUES // p.numel())
                for first in range(0, len(q), step):
                    qb, mu_qb = q[first:first + step, None], mu_q[first:first + step, None]
                    mu_pq = mu_p * mu_qb                                            # (b, M, C, H, W)
                    upper = blur(p * qb).sub_(mu_pq).mul_(2).add_(c2)              # 2 cov + c2
                    ssim_map = mu_pq.mul_(2).add_(c1).mul_(upper)
                    ssim_map.div_((mu_p2 + mu_q2[first:first + step, None] + c1)
                                  .mul_(var_p + var_q[first:first + step, None] + c2))
                    ssim = ssim_map.reshape(len(qb), len(p), -1).mean(-1)
                    out[first:first + len(qb), start:start + len(p)] = (1.0 - ssim).double().numpy()
        return out

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
        return f"{self.name}: 1 - SSIM of {'grayscale' if self.grayscale else 'RGB'} aligned crops ({self.how})"


class PsnrSpace(PixelSpace):
    """Distance = −PSNR (dB); identical crops have PSNR +inf, so distance −inf."""

    similarity = True

    def _pair(self, pool: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
        return -peak_signal_noise_ratio(pool, query, data_range=1.0, reduction="none", dim=(1, 2, 3))

    def _fast(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        sse, scale = self.squared_errors(queries, pool)
        with np.errstate(divide="ignore"):  # identical crops: MSE 0, PSNR +inf, distance -inf
            return 10.0 * np.log10(sse / scale)

    def describe(self) -> str:
        return f"{self.name}: -PSNR of {'grayscale' if self.grayscale else 'RGB'} aligned crops ({self.how})"
