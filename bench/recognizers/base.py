"""The recognizer protocol (after deepface's FacialRecognition base and insightface's
prepare()/get()): construct from config without touching weights; prepare() loads them;
embed() maps a batch of aligned crops to embeddings."""
from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

METRICS = ("cosine", "euclidean", "euclidean_l2")


class Recognizer(abc.ABC):
    """Attributes:
        name: the config stem; the name in every result file.
        input_size: side of the square crop embed() takes, aligned with
            bench.align.align_face(image, landmarks, size=input_size, margin=margin).
        margin: zoom-out of the ArcFace template for models trained on looser crops.
        batch_size: crops per model call.
    """

    name: str = "recognizer"

    def __init__(self, input_size: int = 112, margin: float = 0.0, batch_size: int = 32,
                 thresholds: dict | None = None):
        self.input_size = int(input_size)
        self.margin = float(margin)
        self.batch_size = int(batch_size)
        self.threshold_overrides = dict(thresholds or {})
        self._prepared = False

    def prepare(self) -> None:
        """Loads weights; raises bench.errors.WeightsNotFound if a required file is absent."""
        if not self._prepared:
            self._load()
            self._prepared = True

    @abc.abstractmethod
    def _load(self) -> None: ...

    @abc.abstractmethod
    def _embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB crops -> (N, D) embeddings, N <= batch_size."""

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, input_size, input_size, 3) uint8 RGB aligned crops -> (N, D) float32, batched."""
        self.prepare()
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (self.input_size, self.input_size, 3):
            raise ValueError(f"{self.name} takes (N, {self.input_size}, {self.input_size}, 3) crops, got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, 0), np.float32)
        parts = [self._embed(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts).astype(np.float32)

    @abc.abstractmethod
    def default_thresholds(self) -> dict[str, float]:
        """{metric: threshold} for METRICS; a pair is 'the same person' when distance <= threshold."""

    def threshold(self, metric: str) -> float:
        """The verification threshold for `metric`: a config override, else the default."""
        if metric not in METRICS:
            raise KeyError(f"unknown distance metric {metric!r}; known: {', '.join(METRICS)}")
        if metric in self.threshold_overrides:
            return float(self.threshold_overrides[metric])
        return float(self.default_thresholds()[metric])

    def weights(self) -> list[Path]:
        """The weight files this recognizer would load (for `bench weights status`)."""
        return []
