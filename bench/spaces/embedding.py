"""The embedding space: deepface's distance between the query recognizer's embeddings."""
from __future__ import annotations

import numpy as np
from deepface.modules.verification import find_distance

from bench.spaces.base import Space


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
        return find_distance(pool.astype(np.float64), queries.astype(np.float64), self.distance_metric)

    def describe(self) -> str:
        return f"{self.name}: {self.distance_metric} distance of {self.recognizer} embeddings"
