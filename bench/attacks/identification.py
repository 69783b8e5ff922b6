"""Closed-set gallery identification: the attacker holds a gallery of N identities and ranks
them for each probe face; the rank-k identification rate is the share of probes whose true
identity is among the k closest.

Three attackers use this one function, differing only in what the gallery and probes are:
the baseline (real probes, real gallery), the naive attacker (anonymized probes, real
gallery) and the parrot attacker (anonymized probes, a gallery anonymized by the same method;
Hanisch et al., arXiv:2304.01635; SEBA, arXiv:2407.06648). Chance is k/N.

Ranking: an identity's distance to a probe is its nearest gallery entry's (deepface's
distances, larger = less alike). Ties are broken at random, in expectation: with `less`
identities strictly closer than the true one and `ties` at the same distance, the true
identity is within rank k with probability clip((k - less) / (ties + 1), 0, 1). So identical
embeddings everywhere give chance, not 0 or 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.attacks.pairs import cross_distances


@dataclass(frozen=True)
class Identification:
    """One attacker's result.

    Attributes:
        probes: probes ranked (n).
        identities: gallery identities N.
        rates: {k: rank-k identification rate in [0, 1]} (expected under random tie-breaking).
        chance: {k: min(k, N) / N}, the rate of an attacker guessing.
    """

    probes: int
    identities: int
    rates: dict
    chance: dict


def chance_rate(k: int, identities: int) -> float:
    """The rank-k rate of a random ranking of N identities: min(k, N) / N (nan for N = 0)."""
    return min(int(k), identities) / identities if identities else float("nan")


def true_identity_ranks(probe: np.ndarray, probe_ids, gallery: np.ndarray, gallery_ids,
                        metric: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(less, ties, N): per probe, how many other gallery identities are strictly closer than
    its true identity, and how many are exactly as close; N gallery identities.

    Args:
        probe: (P, D) probe embeddings; probe_ids: (P,) their identities.
        gallery: (G, D) gallery embeddings; gallery_ids: (G,) their identities.
        metric: deepface's distance (cosine, euclidean_l2, euclidean).

    Raises:
        ValueError: a probe's identity has no gallery entry (closed-set identification).
    """
    gallery_ids = np.asarray(gallery_ids, dtype=object)
    probe_ids = np.asarray(probe_ids, dtype=object)
    names = sorted(set(gallery_ids.tolist()))
    absent = sorted(set(probe_ids.tolist()) - set(names))
    if absent:
        raise ValueError(f"probe identities without a gallery entry: {', '.join(map(str, absent[:5]))}")
    d = cross_distances(probe, gallery, metric)
    per_identity = np.stack([d[:, gallery_ids == name].min(axis=1) for name in names], axis=1) if len(probe) \
        else np.zeros((0, len(names)))
    column = {name: k for k, name in enumerate(names)}
    true = per_identity[np.arange(len(probe_ids)), [column[p] for p in probe_ids]] if len(probe_ids) else np.zeros(0)
    less = (per_identity < true[:, None]).sum(axis=1)
    ties = (per_identity == true[:, None]).sum(axis=1) - 1  # the true identity itself is not a tie
    return less, ties, len(names)


def rank_k_rate(less: np.ndarray, ties: np.ndarray, k: int) -> float:
    """Mean over probes of P(true identity within rank k) under random tie-breaking (nan for
    no probe)."""
    less, ties = np.asarray(less, dtype=np.float64), np.asarray(ties, dtype=np.float64)
    if not len(less):
        return float("nan")
    return float(np.clip((int(k) - less) / (ties + 1), 0.0, 1.0).mean())


def identify(probe: np.ndarray, probe_ids, gallery: np.ndarray, gallery_ids, metric: str,
             ranks=(1, 5)) -> Identification:
    """Closed-set identification of every probe against the gallery (module docstring).

    Args:
        probe: (P, D) probe embeddings (any recognizer's space); probe_ids: (P,) identities.
        gallery: (G, D) gallery embeddings in the same space; gallery_ids: (G,) identities.
        metric: deepface's distance name.
        ranks: the k of each rank-k rate.

    Returns:
        Identification with the rank-k rates and chance levels.
    """
    less, ties, n = true_identity_ranks(probe, probe_ids, gallery, gallery_ids, metric)
    return Identification(probes=len(less), identities=n,
                          rates={int(k): rank_k_rate(less, ties, k) for k in ranks},
                          chance={int(k): chance_rate(k, n) for k in ranks})
