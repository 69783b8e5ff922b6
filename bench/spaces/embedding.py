"""The embedding space: deepface's distance between the query recognizer's embeddings."""
from __future__ import annotations

import numpy as np
from deepface.modules.verification import find_distance, l2_normalize

from bench.spaces.base import Space

# Pool rows normalised per block (cosine): a block of float64 rows stays in the CPU cache.
NORMALISE_ROWS = 1024
L2_EPSILON = 1e-10  # deepface's l2_normalize default (deepface==0.0.103, pinned)
# euclidean, euclidean_l2: deepface broadcasts a (Q, N, D) float64 difference; query blocks
# keep it below about this many bytes (a 1M-face pool would otherwise need Q x 4 GiB).
DIFFERENCE_BYTES = 256 << 20


class EmbeddingSpace(Space):
    """Distances between embeddings of `recognizer` (cfg.query_recognizer by default).

    Args:
        recognizer: the recognizer (conf/recognizer/) whose embeddings the manifold and query
            stages compute; ArcFace in the paper (§3.2).
        distance_metric: deepface's name: cosine, euclidean or euclidean_l2.
    """

    feature = "embedding"

    def __init__(self, recognizer: str, distance_metric: str = "cosine"):
        if distance_metric not in ("cosine", "euclidean", "euclidean_l2"):
            raise ValueError(f"unknown distance_metric {distance_metric!r}: cosine, euclidean or euclidean_l2")
        self.recognizer = str(recognizer)
        self.distance_metric = distance_metric

    def _distances(self, queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
        # deepface's batch form: (N, D) alpha x (Q, D) beta -> (Q, N); float64 as in verify().
        if self.distance_metric == "cosine":
            return cosine_distances(queries, pool)
        step = max(1, DIFFERENCE_BYTES // max(1, pool.size * 8))
        pool64 = pool.astype(np.float64)
        return np.concatenate([find_distance(pool64, queries[i:i + step].astype(np.float64), self.distance_metric)
                               for i in range(0, len(queries), step)])

    def describe(self) -> str:
        return f"{self.name}: {self.distance_metric} distance of {self.recognizer} embeddings"


def cosine_distances(queries: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """(Q, D) x (N, D) -> (Q, N): bit for bit deepface's `find_distance(pool, queries, "cosine")`
    (float64, l2_normalize's x / (||x|| + 1e-10), one matrix product, rounded to 6 decimals;
    tests/test_query_scaling.py checks the bits against deepface's own function).

    The same operations in the same order, with fewer passes over memory: the pool is cast
    and normalised in row blocks through one buffer, straight into the normalised matrix
    (row-wise operations: the same bits as on the whole array), and 1 − similarity and the
    rounding are done in place. The product stays one call over the whole pool: BLAS's
    summation order depends on the matrix shapes, so a pool split into column blocks could
    differ in the last bit, and after deepface's rounding in a pick.
    """
    pool_n = np.empty(pool.shape, np.float64)
    buffer = np.empty((min(NORMALISE_ROWS, len(pool)), pool.shape[1]), np.float64)
    for start in range(0, len(pool), NORMALISE_ROWS):
        rows = buffer[:len(pool[start:start + NORMALISE_ROWS])]
        np.copyto(rows, pool[start:start + NORMALISE_ROWS])
        np.divide(rows, np.linalg.norm(rows, axis=1, keepdims=True) + L2_EPSILON, out=pool_n[start:start + len(rows)])
    out = np.dot(l2_normalize(queries.astype(np.float64), axis=1, epsilon=L2_EPSILON), pool_n.T)
    del pool_n
    np.subtract(1, out, out=out)
    return np.round(out, 6, out=out)
