"""The FID space: Euclidean distance between InceptionV3 pool3 features (bench.inception).

FID compares two sets of images through Gaussians fitted to their Inception features:
||mu_a − mu_b||² + Tr(S_a + S_b − 2 (S_a S_b)^½). A single face has no covariance, so the
per-pair distance is the mean term alone; we report its square root, ||f_a − f_b||₂ (the
same order, in feature units).
"""
from __future__ import annotations

import numpy as np
import torch

from bench.spaces.base import Space


class FidSpace(Space):
    feature = "inception"

    def _distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float64))
        p = torch.from_numpy(np.ascontiguousarray(pool, dtype=np.float64))
        # The exact (non-matmul) path: deterministic and exact 0 for identical features.
        return torch.cdist(q, p, compute_mode="donot_use_mm_for_euclid_dist").numpy()

    def describe(self) -> str:
        return f"{self.name}: Euclidean distance of 2048-d InceptionV3 pool3 features"
