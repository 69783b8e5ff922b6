"""Distances for the attacks, exactly as deepface computes them (bench.verification), in the
two shapes the attacks need: every probe against every gallery entry, and every unordered
pair within one set with its same-person label."""
from __future__ import annotations

import numpy as np

from bench.verification import pair_distances


def cross_distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """(A, B) distances between the rows of a (A, D) and b (B, D), deepface's `metric`
    (cosine, euclidean_l2, euclidean; larger = less alike)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or (len(a) and len(b) and a.shape[1] != b.shape[1]):
        raise ValueError(f"cross_distances() takes (A, D) and (B, D) matrices, got {a.shape} and {b.shape}")
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)), np.float64)
    i, j = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
    return pair_distances(a[i.ravel()], b[j.ravel()], metric).reshape(len(a), len(b))


def labelled_pairs(identities) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) over every unordered pair i < j of the rows; same: one identity."""
    values = np.asarray(identities, dtype=object)
    i, j = np.triu_indices(len(values), k=1)
    return i, j, values[i] == values[j]


def within_distances(embeddings: np.ndarray, identities, metric: str):
    """(i, j, same, distance) for every unordered pair of rows of `embeddings` (N, D)."""
    i, j, same = labelled_pairs(identities)
    matrix = np.asarray(embeddings, dtype=np.float64)
    d = pair_distances(matrix[i], matrix[j], metric) if len(i) else np.zeros(0, np.float64)
    return i, j, same, d
