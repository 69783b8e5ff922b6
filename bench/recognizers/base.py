"""The recognizer protocol (after deepface's FacialRecognition base and insightface's
prepare()/get()): construct from config without touching weights; prepare() loads them;
embed() maps a batch of aligned crops to embeddings.

embed() calls the model in this process, batch after batch; it never forks a worker (a fork
taken while another thread holds a lock can hang the child). Dlib's descriptor runs at BLAS
speed when dlib is built against OpenBLAS (scripts/install.sh).
"""
from __future__ import annotations

import abc
from pathlib import Path

import numpy as np

from bench.component import Component

METRICS = ("cosine", "euclidean", "euclidean_l2")


class Recognizer(Component, abc.ABC):
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


class ModelFileRecognizer(Recognizer):
    """A recognizer loaded from one model file, the first of `model_paths` that exists, with
    thresholds from `threshold_source` (bench.recognizers.thresholds)."""

    def __init__(self, model_paths, threshold_source: str | None = None, input_size: int = 112,
                 margin: float = 0.0, batch_size: int = 32, thresholds: dict | None = None):
        super().__init__(input_size=input_size, margin=margin, batch_size=batch_size, thresholds=thresholds)
        self.model_paths = [str(p) for p in (model_paths or []) if p]
        self.threshold_source = threshold_source

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def default_thresholds(self) -> dict[str, float]:
        from bench.recognizers.thresholds import load_thresholds

        return load_thresholds(self.threshold_source, self.name)
