"""Generators the paper used that this harness cannot run (no installable code or weights):
each is a config of `NotInstalled`, whose prepare() raises ModelNotInstalled with what the
model is, where to get it and how to add it, so a stage writes an "n/a: not installed" row
instead of crashing or inventing a number."""
from __future__ import annotations

import numpy as np

from bench.errors import BenchError
from bench.generators.base import Face, Generator


class ModelNotInstalled(BenchError):
    """A known model that cannot run here; the message says how to add it."""


class NotInstalled(Generator):
    """Stands for a generator that is not installed; never swaps anything."""

    def __init__(self, model: str, what: str, where: str, how: str) -> None:
        """
        Args:
            model: the model's name as the paper gives it.
            what: one line on what it is.
            where: where its code and weights are published.
            how: what adding it to this harness takes.
        """
        super().__init__()
        self.model, self.what, self.where, self.how = model, what, where, how

    @property
    def message(self) -> str:
        return f"not installed: {self.model} ({self.what}). Get it: {self.where}. To add it: {self.how}"

    def _load(self) -> None:
        raise ModelNotInstalled(self.message)

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        raise ModelNotInstalled(self.message)  # prepare() already raised; kept for direct calls
