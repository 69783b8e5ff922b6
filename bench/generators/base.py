"""The generator protocol: construct from config without touching weights; prepare() loads
them; swap() replaces ONE face of a photo with the target's identity, keeping the source's
pose and expression. The anonymize stage calls swap() once per face on the same photo, so
every face of a multi-face photo is replaced."""
from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from bench.component import Component
from bench.errors import BenchError


class SwapFailed(BenchError):
    """The generator could not replace this face; the message says why (a failure row)."""


@dataclass(frozen=True)
class Face:
    """A face in a photo: box (x1, y1, x2, y2) and the five ArcFace landmarks (5, 2), in pixels."""

    box: np.ndarray
    landmarks: np.ndarray


class Generator(Component, abc.ABC):
    name: str = "generator"
    # True for generators that take an identity from a target (swappers); False for
    # obfuscations (blur, pixelate) that ignore the target.
    uses_target: bool = True

    def __init__(self) -> None:
        self._prepared = False

    @abc.abstractmethod
    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray: ...

    def swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        """Returns a copy of `photo` (HxWx3 uint8 RGB) whose face `face` carries the identity of
        the face `target_face` in the image `target` (HxWx3 uint8 RGB, e.g. a pool face).

        Raises:
            SwapFailed: this face could not be replaced (the caller records a failure row).
        """
        self.prepare()
        result = self._swap(np.ascontiguousarray(photo), face, np.ascontiguousarray(target), target_face)
        if result.shape != photo.shape or result.dtype != np.uint8:
            raise SwapFailed(f"{self.name} returned {result.shape} {result.dtype}, expected {photo.shape} uint8")
        return result
