"""MFMC Supp. D, the k-anonymity argument: an attacker who collects k fakes of one face, each
made with a different synthetic target, and averages them in a recognizer's space. If the
fakes kept some of the source's identity, the targets' contributions would average out and
the mean would move toward the source as k grows; if not, it stays as far as a stranger.

`distance_vs_k` gives, for k = 1..K, the distance between the source embedding and the mean
of the first k fakes' embeddings (each L2-normalized first, so every fake weighs the same;
deepface's distances). A mean of many faces also drifts toward the average face, closer to
everyone: `control_vs_k` measures the same mean against other people's real faces, and only
the gap between the two is the source's identity coming back. `distinct_targets` picks the K targets with the run's query strategy,
each pick excluding the targets already taken, so they are K different pool faces.
"""
from __future__ import annotations

import numpy as np

from bench.attacks.pairs import cross_distances
from bench.queries.base import AgeGender, NoCandidate, Query, Selection
from bench.verification import pair_distances


def mean_embedding(fakes: np.ndarray, normalize: bool = True) -> np.ndarray:
    """(D,) the mean of fakes (K, D), each row L2-normalized first when `normalize`."""
    fakes = np.asarray(fakes, dtype=np.float64)
    if fakes.ndim != 2 or not len(fakes):
        raise ValueError(f"mean_embedding() takes a non-empty (K, D) matrix, got {fakes.shape}")
    if normalize:
        fakes = fakes / np.maximum(np.linalg.norm(fakes, axis=1, keepdims=True), 1e-12)
    return fakes.mean(axis=0)


def running_means(fakes: np.ndarray, normalize: bool = True) -> np.ndarray:
    """(K, D): row k-1 is the mean of fakes[:k] (fakes (K, D), in the order they were made)."""
    fakes = np.asarray(fakes, dtype=np.float64)
    if fakes.ndim != 2 or not len(fakes):
        raise ValueError(f"running_means() takes a non-empty (K, D) matrix of fakes, got {fakes.shape}")
    return np.stack([mean_embedding(fakes[:k], normalize) for k in range(1, len(fakes) + 1)])


def distance_vs_k(source: np.ndarray, fakes: np.ndarray, metric: str, normalize: bool = True) -> np.ndarray:
    """(K,) distance (deepface's `metric`) between `source` (D,) and the mean of fakes[:k]
    for k = 1..K (fakes (K, D), in the order they were made)."""
    means = running_means(fakes, normalize)
    sources = np.repeat(np.asarray(source, dtype=np.float64)[None], len(means), axis=0)
    return pair_distances(sources, means, metric)


def control_vs_k(others: np.ndarray, fakes: np.ndarray, metric: str, normalize: bool = True) -> np.ndarray:
    """(K,) the mean distance between the mean of fakes[:k] and each of `others` (M, D):
    real faces of other people. The control for distance_vs_k: a mean of many fakes drifts
    toward the average face and so toward everyone; only a fall below this control says the
    mean moves toward the source in particular."""
    means = running_means(fakes, normalize)
    return cross_distances(means, others, metric).mean(axis=1)


def distinct_targets(query: Query, distances: np.ndarray, rng: np.random.Generator, k: int,
                     source: AgeGender | None = None, pool_age=None, pool_gender=None) -> list[Selection]:
    """Up to k different pool faces for one source face, picked in turn by `query` (its rule
    applied to the pool faces not yet taken; Eq. 1's max and std over those), so that
    `furthest` gives the k furthest and `random_furthest` k distinct draws. Fewer than k when
    the pool runs out of eligible faces.

    Args:
        query: a strategy (bench.queries); distances: (N,) this face's distances to the pool.
        rng: this face's generator (bench.queries.base.rng_for).
        k: how many targets.
        source, pool_age, pool_gender: for the *_ag strategies.
    """
    taken = np.zeros(len(distances), bool)
    picks = []
    for _ in range(int(k)):
        try:
            sel = query.select(distances, rng, source, pool_age, pool_gender, exclude=taken)
        except NoCandidate:
            break
        taken[sel.index] = True
        picks.append(sel)
    return picks
