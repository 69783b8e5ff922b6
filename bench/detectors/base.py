"""The detector protocol (after insightface's prepare()/get()): construct from config
without touching weights, prepare() loads them, detect() runs on one BGR photo."""
from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.component import Component
from bench.errors import WeightsNotFound


@dataclass(frozen=True)
class Detection:
    """One face: box (x1, y1, x2, y2) in pixels, a detector-specific score, and five
    landmarks (left eye, right eye, nose tip, left and right mouth corner, image left first).
    `found_by` names the detectors that found it (an ensemble's members; empty for one
    detector, whose name the caller knows)."""

    box: np.ndarray
    score: float
    landmarks: np.ndarray  # (5, 2)
    found_by: tuple[str, ...] = field(default=())

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


class Detector(Component, abc.ABC):
    name: str = "detector"
    # Set by bench.detectors.memoize: a DetectionCache of this detector's calls keyed by the
    # photo's pixels, shared by every stage that runs this detector (config) on those pixels.
    memo = None

    def __init__(self) -> None:
        self._prepared = False

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _detect(self, bgr: np.ndarray) -> list[Detection]: ...

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """All faces in one BGR uint8 photo, in a deterministic order (left to right, top to bottom).

        With a `memo` (bench.detectors.memoize), a photo whose pixels this detector has seen
        before, in any stage, is answered from it; every answer, computed or not, is then the
        stored one (float32 boxes, scores and landmarks), so a hit and a miss give the same.
        """
        bgr = np.ascontiguousarray(bgr)
        if self.memo is not None:
            from bench.facetable import content_hash

            key = content_hash(bgr)
            found = self.memo.get(key)
            if found is None:
                found = self.memo.put(key, self._detect_sorted(bgr))
            return found
        return self._detect_sorted(bgr)

    def _detect_sorted(self, bgr: np.ndarray) -> list[Detection]:
        self.prepare()
        faces = self._detect(bgr)
        return sorted(faces, key=lambda d: (round(float(d.box[0]), 1), round(float(d.box[1]), 1)))


def first_existing(model: str, candidates) -> Path:
    """The first of `candidates` that exists, else WeightsNotFound naming all of them."""
    paths = [Path(str(c)).expanduser() for c in (candidates or [])]
    for path in paths:
        if path.is_file():
            return path
    raise WeightsNotFound(model, paths)
