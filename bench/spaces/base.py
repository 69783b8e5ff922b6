"""The query-space protocol (conf/metric/): how far apart two faces are.

"Distance" is defined here, once, for every space: a number that grows as two faces become
LESS alike, so that "closest" is the smallest distance and "furthest" the largest in every
space, and Eq. 1 (max − std) reads the same everywhere. Dissimilarity measures are used as
they are; similarity measures are turned around:

    embedding  deepface's find_distance (cosine by default) between the query recognizer's
               embeddings                                     identical faces -> 0
    fid        Euclidean distance between the 2048-d InceptionV3 pool3 features of the two
               aligned crops (bench.inception): the mean term, the only one a single image
               has, of the Fréchet distance between feature Gaussians      identical -> 0
    rmse       torchmetrics' root mean squared error over the fixed-size crops, [0, 1] range
                                                                             identical -> 0
    ssim       1 − SSIM (torchmetrics, Gaussian window 11, sigma 1.5)        identical -> 0
    psnr       −PSNR in dB (torchmetrics, data range 1)                      identical -> −inf

A space reads one kind of per-face feature (`feature`, one of bench.spaces.features.KINDS);
the same feature pipeline serves pool faces (manifold stage) and source faces (query stage).
Construct from config without loading anything; `distances()` is vectorised over the pool.
"""
from __future__ import annotations

import abc

import numpy as np


class Space(abc.ABC):
    """Attributes:
        name: the config stem (conf/metric/<name>.yaml); the `space` column of result files.
        feature: the per-face feature this space compares (bench.spaces.features.KINDS).
        similarity: True when the underlying measure grows with likeness (SSIM, PSNR) and
            the distance is its turned-around form (see the module docstring).
    """

    name: str = "space"
    feature: str = ""
    similarity: bool = False

    def distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """(Q, ...) query features x (N, ...) pool features -> (Q, N) float64 distances.

        Larger = less alike. A row of NaN features (a face without this feature) gives NaN.
        """
        queries = np.asarray(queries)
        pool = np.asarray(pool)
        if len(queries) == 0 or len(pool) == 0:
            return np.zeros((len(queries), len(pool)), np.float64)
        if queries.shape[1:] != pool.shape[1:]:
            raise ValueError(f"{self.name}: query features {queries.shape[1:]} do not match pool features {pool.shape[1:]}")
        return np.asarray(self._distances(queries, pool), dtype=np.float64).reshape(len(queries), len(pool))

    @abc.abstractmethod
    def _distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray: ...

    def describe(self) -> str:
        """One line for provenance and figure captions."""
        return self.name
