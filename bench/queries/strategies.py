"""The paper's query strategies (MFMC §3.2, Eq. 1); see base.py for the exact rules."""
from __future__ import annotations

import numpy as np

from bench.queries.base import Query


class Closest(Query):
    """The most similar pool face (smallest distance)."""

    def _pick(self, distances: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        index = int(np.argmin(distances))
        return index, int((distances == distances[index]).sum())

    def _ranked(self, distances, chosen, rng):
        order = np.argsort(distances, kind="stable")  # next closest (ties: pool order)
        return order[order != chosen]


class Furthest(Query):
    """The least similar pool face (largest distance)."""

    def _pick(self, distances: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        index = int(np.argmax(distances))
        return index, int((distances == distances[index]).sum())

    def _ranked(self, distances, chosen, rng):
        order = np.argsort(-np.asarray(distances, np.float64), kind="stable")  # next furthest (ties: pool order)
        return order[order != chosen]


def eq1_candidates(distances: np.ndarray) -> np.ndarray:
    """Eq. 1: the indices whose distance exceeds max − std (population std).

    -inf distances (PSNR of identical crops) take part in the max but not in the std;
    with std = 0 the candidates are the faces at the maximum.
    """
    distances = np.asarray(distances, dtype=np.float64)
    top = distances.max()
    finite_mask = np.isfinite(distances)
    finite = distances if finite_mask.all() else distances[finite_mask]
    spread = float(finite.std()) if len(finite) else 0.0
    if spread > 0:
        return np.flatnonzero(distances > top - spread)
    return np.flatnonzero(distances == top)


def draw(candidates: np.ndarray, rng: np.random.Generator) -> int:
    """Eq. 1's draw: one of `candidates` (pool indices, ascending), uniformly, with the face's
    generator (bench.queries.base.rng_for). Shared with bench.benchmarks.query_scaling, whose
    approximate index must draw exactly as the exact query does."""
    return int(candidates[rng.integers(len(candidates))])


class RandomFurthest(Query):
    """Eq. 1: one pool face drawn uniformly among those with distance > max − std."""

    @property
    def random(self) -> bool:
        return True

    def _pick(self, distances: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        candidates = eq1_candidates(distances)
        return draw(candidates, rng), len(candidates)

    def _ranked(self, distances, chosen, rng):
        """Eq. 1's other candidates in a random order (the face's generator, after the pick),
        then the faces outside the set, next furthest first."""
        candidates = eq1_candidates(distances)
        inside = rng.permutation(candidates[candidates != chosen])
        order = np.argsort(-np.asarray(distances, np.float64), kind="stable")
        outside = order[~np.isin(order, candidates)]
        return np.concatenate([inside, outside]).astype(int)


class RandomFurthestPerPerson(RandomFurthest):
    """Eq. 1 once per person: the query stage gives every labelled face of one person their
    mean distances (bench.queries.base.person_distances) and the person's generator, so all of
    them get the same target (linkability's worst case; beyond the paper)."""

    per_person = True
