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

    def __init__(self) -> None:
        self._prepared = False

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _detect(self, bgr: np.ndarray) -> list[Detection]: ...

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """All faces in one BGR uint8 photo, in a deterministic order (left to right, top to bottom)."""
        self.prepare()
        faces = self._detect(np.ascontiguousarray(bgr))
        return sorted(faces, key=lambda d: (round(float(d.box[0]), 1), round(float(d.box[1]), 1)))


def first_existing(model: str, candidates) -> Path:
    """The first of `candidates` that exists, else WeightsNotFound naming all of them."""
    paths = [Path(str(c)).expanduser() for c in (candidates or [])]
    for path in paths:
        if path.is_file():
            return path
    raise WeightsNotFound(model, paths)
