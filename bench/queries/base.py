"""The query-strategy protocol (conf/query/): which pool face becomes a source face's target.

A strategy sees one source face's distances to the whole pool (bench.spaces.base: larger =
less alike, in every space) and picks one pool face:

    closest / furthest          the smallest / largest distance (ties: the first pool face
                                in face_id order)
    random_furthest             Eq. 1: the candidates are the pool faces whose distance
                                exceeds max − std (population std over the eligible pool);
                                one is drawn uniformly with the seeded generator. With
                                std = 0 (one face, or all equal) the candidates are those at
                                the maximum.
    random_furthest_per_person  Eq. 1 once per person: every labelled face of one person
                                (bench.identities; the dataset's `labels`) gets the same
                                target, drawn with the person's generator
                                (`rng_for(seed, person_key(identity))`) among the candidates
                                of the person's mean distance to each pool face (over their
                                labelled faces with the feature). Faces without a label
                                (strangers, unlabelled photos) get their own draw as in
                                random_furthest. Beyond the paper: linkability's worst case
                                (one fake identity per person, the same in every photo).
    *_ag                        the same, within the pool faces of the source's estimated
                                gender and an estimated age within ±band years. With no such
                                face the band doubles until max_band; past it, and for a
                                source without an age/gender estimate, NoCandidate (a failure
                                row). max and std of Eq. 1 are taken over that restricted pool.

Pool faces without the space's feature (distance NaN) are never eligible. The random draw
uses `rng_for(seed, source_face)`: each face's draw depends only on the seed and its own id,
so adding photos to a dataset does not change the other faces' targets.
"""
from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass

import numpy as np

from bench.errors import BenchError

GENDERS = ("female", "male")  # codes 0 and 1 in the feature arrays; -1 = no estimate


class NoCandidate(BenchError):
    """No pool face qualifies for this source face; the message says why (a failure row)."""


@dataclass(frozen=True)
class AgeGender:
    """One face's estimate: age in years, gender code (0 female, 1 male)."""

    age: float
    gender: int


@dataclass(frozen=True)
class Selection:
    """The chosen target: `index` into the pool arrays, `distance` to it; `n_eligible` pool
    faces were considered, `n_candidates` of them could have been chosen (Eq. 1's set, or the
    faces tied at the extreme); `age_band` is the band used (NaN without the constraint)."""

    index: int
    distance: float
    n_eligible: int
    n_candidates: int
    age_band: float = float("nan")
    # The next pool faces the same rule would give, best first (indices into the pool arrays):
    # the closed loop's later tries (bench.guard); empty unless select() was asked for them.
    alternates: tuple[int, ...] = ()


def rng_for(seed: int, source_face: str) -> np.random.Generator:
    """The generator for one source face's draw: depends on the seed and the face id only."""
    key = int.from_bytes(hashlib.sha256(source_face.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([int(seed), key])


def person_key(identity: str) -> str:
    """The key of a person's draw in rng_for (never a face id: those contain the photo name)."""
    return f"person:{identity}"


def person_distances(distances: np.ndarray, persons) -> np.ndarray:
    """Each labelled face's row replaced by its person's mean distance to each pool face.

    Args:
        distances: (F, N) distances of F source faces to N pool faces (NaN: no feature).
        persons: (F,) identity of each face, "" or None for a face without a label.

    Returns:
        (F, N): for a face of person p, the mean over p's faces whose row has any finite
        distance (NaN where none of them has one); other faces' rows unchanged.
    """
    out = np.array(distances, dtype=np.float64, copy=True)
    persons = np.asarray([p if p else "" for p in persons], dtype=object)
    for person in sorted(set(persons) - {""}):
        mine = np.flatnonzero(persons == person)
        usable = [i for i in mine if np.isfinite(distances[i]).any()]
        if not usable:
            continue
        block = np.asarray(distances, dtype=np.float64)[usable]
        counts = np.isfinite(block).sum(axis=0)
        mean = np.where(counts > 0, np.nansum(block, axis=0) / np.maximum(counts, 1), np.nan)
        out[mine] = mean
    return out


def age_gender_mask(source: AgeGender, pool_age: np.ndarray, pool_gender: np.ndarray,
                    band: float) -> np.ndarray:
    """Pool faces of the source's gender with |age − source age| <= band."""
    pool_age = np.asarray(pool_age, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (np.asarray(pool_gender) == source.gender) & (np.abs(pool_age - source.age) <= band)


class Query(abc.ABC):
    """Attributes:
        name: the config stem (conf/query/<name>.yaml); the `strategy` column of result files.
        same_age_gender: restrict the pool to the source's estimated gender and age band.
        band, max_band: the age band in years, and how far it may widen (doubling).
    """

    name: str = "query"
    # True: one draw per person (the query stage needs the dataset's identity labels).
    per_person: bool = False

    def __init__(self, same_age_gender: bool = False, band: float = 10.0, max_band: float | None = None):
        self.same_age_gender = bool(same_age_gender)
        self.band = float(band)
        self.max_band = float(max_band) if max_band is not None else self.band
        if self.band < 0 or self.max_band < self.band:
            raise ValueError(f"age band must satisfy 0 <= band <= max_band, got {self.band}, {self.max_band}")

    @property
    def random(self) -> bool:
        """Whether the pick draws from the seeded generator."""
        return False

    def select(self, distances: np.ndarray, rng: np.random.Generator, source: AgeGender | None = None,
               pool_age: np.ndarray | None = None, pool_gender: np.ndarray | None = None,
               exclude: np.ndarray | None = None, alternates: int = 0) -> Selection:
        """Picks one pool face for one source face.

        Args:
            distances: (N,) distances of this source face to every pool face (NaN: the pool
                face lacks the feature).
            rng: this face's generator (rng_for).
            source, pool_age, pool_gender: the estimates; required when same_age_gender.
            exclude: (N,) bool, pool faces that must not be picked (targets already given to
                other faces of the same photo); they leave the eligible pool before the rule
                (and Eq. 1's max and std) is applied.
            alternates: how many next targets of the same rule to add (Selection.alternates,
                `_ranked`); drawn after the pick, so the pick is the same whatever this is.

        Raises:
            NoCandidate: no pool face qualifies (the message says why).
        """
        distances = np.asarray(distances, dtype=np.float64)
        eligible = ~np.isnan(distances)
        if exclude is not None:
            eligible &= ~np.asarray(exclude, dtype=bool)
            if not eligible.any() and (~np.isnan(distances)).any():
                raise NoCandidate("every pool face with this space's feature is already another face's target in this photo")
        if not eligible.any():
            raise NoCandidate("no pool face has this space's feature")
        band = float("nan")
        if self.same_age_gender:
            eligible, band = self._restrict(eligible, source, pool_age, pool_gender)
        index_map = None if eligible.all() else np.flatnonzero(eligible)
        # the common case: the rule sees the row itself, not a copy of it
        local_distances = distances if index_map is None else distances[index_map]
        local, n_candidates = self._pick(local_distances, rng)
        index = int(local) if index_map is None else int(index_map[local])
        n_eligible = len(local_distances)
        more: tuple[int, ...] = ()
        if alternates > 0:
            ranked = [int(i) for i in self._ranked(local_distances, int(local), rng)[:int(alternates)]]
            more = tuple(ranked if index_map is None else (int(index_map[i]) for i in ranked))
        return Selection(index=index, distance=float(distances[index]), n_eligible=n_eligible,
                         n_candidates=int(n_candidates), age_band=band, alternates=more)

    def _restrict(self, eligible: np.ndarray, source: AgeGender | None, pool_age, pool_gender) -> tuple[np.ndarray, float]:
        if source is None or not np.isfinite(source.age) or source.gender not in (0, 1):
            raise NoCandidate("no age/gender estimate for the source face")
        if pool_age is None or pool_gender is None:
            raise NoCandidate("the pool has no age/gender estimates")
        same_gender = eligible & (np.asarray(pool_gender) == source.gender)
        if not same_gender.any():
            raise NoCandidate(f"no pool face of estimated gender {GENDERS[source.gender]}")
        band = self.band
        while True:
            mask = eligible & age_gender_mask(source, pool_age, pool_gender, band)
            if mask.any():
                return mask, band
            if band >= self.max_band:
                raise NoCandidate(f"no {GENDERS[source.gender]} pool face within ±{band:g} years of "
                                  f"estimated age {source.age:g} (age_gender.max_band={self.max_band:g})")
            band = min(max(band * 2, 1.0), self.max_band)

    @abc.abstractmethod
    def _pick(self, distances: np.ndarray, rng: np.random.Generator) -> tuple[int, int]:
        """(index into `distances`, number of candidates) over the eligible pool (no NaN)."""

    @abc.abstractmethod
    def _ranked(self, distances: np.ndarray, chosen: int, rng: np.random.Generator) -> np.ndarray:
        """The other indices into `distances` (the eligible pool) the rule would give next,
        best first, without `chosen` (the pick): the closed loop's next candidate targets."""
