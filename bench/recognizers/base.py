"""The recognizer protocol (after deepface's FacialRecognition base and insightface's
prepare()/get()): construct from config without touching weights; prepare() loads them;
embed() maps a batch of aligned crops to embeddings.

A model whose call holds Python's GIL and runs on one core (dlib's ResNet: dlib's Python
binding does not release the GIL, and the PyPI wheel has no BLAS) can spread embed() over
`processes` forked worker processes, each holding the parent's already loaded model
(copy-on-write). Each crop's embedding does not depend on the batch it is in for such models
(tests/test_recognizers.py checks it for dlib), so the numbers are the same either way.
"""
from __future__ import annotations

import abc
import ctypes
import multiprocessing
import signal
import weakref
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from bench.component import Component
from bench.cores import resolve_count

# Recognizers whose forked workers are running, by id(): what a worker finds after the fork
# (weak: a recognizer no longer used is collected, and its workers end).
_FORKED: dict[int, "weakref.ref[Recognizer]"] = {}
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _worker_start() -> None:
    """A forked embed worker: dies with its parent (Linux), ignores Ctrl-C (the parent handles it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the pool's own shutdown ends the workers
        pass


def _embed_in_worker(task: tuple[int, np.ndarray]) -> np.ndarray:
    key, crops = task
    return np.asarray(_FORKED[key]()._embed(crops), dtype=np.float32)

METRICS = ("cosine", "euclidean", "euclidean_l2")


class Recognizer(Component, abc.ABC):
    """Attributes:
        name: the config stem; the name in every result file.
        input_size: side of the square crop embed() takes, aligned with
            bench.align.align_face(image, landmarks, size=input_size, margin=margin).
        margin: zoom-out of the ArcFace template for models trained on looser crops.
        batch_size: crops per model call.
        processes: worker processes embed() spreads its batches over (see the module
            docstring); 1 = every call in this process; "auto" = one per usable core.
    """

    name: str = "recognizer"

    def __init__(self, input_size: int = 112, margin: float = 0.0, batch_size: int = 32,
                 thresholds: dict | None = None, processes: int | str = 1):
        self.input_size = int(input_size)
        self.margin = float(margin)
        self.batch_size = int(batch_size)
        self.threshold_overrides = dict(thresholds or {})
        self.processes = resolve_count(processes, "processes")
        self._pool = None
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
        if self.processes > 1 and len(crops) > 1:
            return self._embed_in_workers(crops)
        parts = [self._embed(crops[i:i + self.batch_size]) for i in range(0, len(crops), self.batch_size)]
        return np.concatenate(parts).astype(np.float32)

    def _embed_in_workers(self, crops: np.ndarray) -> np.ndarray:
        """embed() over the forked workers: the crops in about equal chunks of at most
        batch_size, one chunk per worker at a time, results in input order."""
        per_worker = -(-len(crops) // self.processes)
        size = max(1, min(self.batch_size, per_worker))
        tasks = [(id(self), crops[i:i + size]) for i in range(0, len(crops), size)]
        parts = list(self._workers().map(_embed_in_worker, tasks))
        return np.concatenate(parts).astype(np.float32)

    def _workers(self) -> ProcessPoolExecutor:
        """The worker pool, forked at its first task, after the model is loaded (so each
        worker has it). A worker that dies fails the call (BrokenProcessPool), never hangs it."""
        if self._pool is None:
            _FORKED[id(self)] = weakref.ref(self)
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("fork"),
                                             initializer=_worker_start)
            weakref.finalize(self, _close_pool, self._pool, id(self))
        return self._pool

    def close(self) -> None:
        """Ends the worker processes, if any (also done when the recognizer is collected)."""
        if self._pool is not None:
            _close_pool(self._pool, id(self))
            self._pool = None

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



def _close_pool(pool: ProcessPoolExecutor, key: int) -> None:
    pool.shutdown(wait=True, cancel_futures=True)
    _FORKED.pop(key, None)


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
