"""The detector protocol (after insightface's prepare()/get()): construct from config
without touching weights, prepare() loads them, detect() runs on one BGR photo."""
from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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

    # How many _detect calls may run at once, each in its own thread (detect_many): > 1 only
    # for a detector whose model call is single-threaded and releases the GIL (dlib's HOG
    # scan); multi-threaded runtimes (onnxruntime, OpenCV DNN) already use every core.
    parallel: int = 1

    def native_scale(self, height: int, width: int) -> bool:
        """Whether this detector scans a part of a height x width photo at the scale it scans
        the whole photo (then a window's faces are the whole scan's there; bench.detectors.
        changed). False for one that resizes its input to a fixed size (SCRFD)."""
        return True

    def view(self, bgr: np.ndarray) -> tuple[np.ndarray, float] | None:
        """For a detector that resizes a photo before its network sees it (native_scale False):
        (the photo as its network sees it, (h', w', 3) uint8 before any padding; the factor
        from photo to view pixels, the same on both axes), when a window cut from that view can
        be scanned as it is (detect_many(..., as_is=True)): the windows around an edit are then
        cut from the view (bench.detectors.changed). None: this detector cannot (a network of
        one fixed input size), so an edited photo is scanned whole."""
        return None

    def _detect_as_is(self, bgr: np.ndarray) -> list[Detection]:
        """_detect without the resizing to the network's input size (see view()): the
        network runs on `bgr` as it is, padded to its stride."""
        raise NotImplementedError(f"{type(self).__name__} has no view to scan windows of (view() is None)")

    def detect(self, bgr: np.ndarray) -> list[Detection]:
        """All faces in one BGR uint8 photo, in a deterministic order (left to right, top to bottom).

        With a `memo` (bench.detectors.memoize), a photo whose pixels this detector has seen
        before, in any stage, is answered from it; every answer, computed or not, is then the
        stored one (float32 boxes, scores and landmarks), so a hit and a miss give the same.
        """
        return self.detect_many([bgr])[0]

    def detect_many(self, images: Sequence[np.ndarray], as_is: bool = False) -> list[list[Detection]]:
        """detect() of each BGR uint8 image, in order; the images not in the memo are detected
        `parallel` at a time (threads), else one after another. The answers do not depend
        on `parallel`: each image is detected on its own. `as_is`: each image is a window of
        this detector's view() of a photo, scanned without resizing (_detect_as_is; memo
        entries of their own)."""
        images = [np.ascontiguousarray(bgr) for bgr in images]
        keys: list = [None] * len(images)
        found: list = [None] * len(images)
        if self.memo is not None:
            from bench.facetable import content_hash

            keys = [("as-is-" if as_is else "") + content_hash(bgr) for bgr in images]
            found = [self.memo.get(key) for key in keys]
        todo = [i for i, f in enumerate(found) if f is None]
        if not todo:
            return found
        self.prepare()  # before any thread starts: weights load once
        if int(self.parallel) > 1:
            fresh = self._detect_in_threads([images[i] for i in todo], as_is)
        else:
            fresh = [self._detect_sorted(images[i], as_is) for i in todo]
        for i, faces in zip(todo, fresh):
            found[i] = self.memo.put(keys[i], faces) if self.memo is not None else faces
        return found

    def _detect_in_threads(self, images: list[np.ndarray], as_is: bool = False) -> list[list[Detection]]:
        """_detect_sorted of each image on the process's pool of `parallel` threads (threads
        that live on, so what a detector keeps per thread is built once; bench.benchmarks.probes
        times this wait as model calls: its probes time the main thread only)."""
        return list(thread_pool(int(self.parallel)).map(lambda bgr: self._detect_sorted(bgr, as_is), images))

    def _detect_sorted(self, bgr: np.ndarray, as_is: bool = False) -> list[Detection]:
        self.prepare()
        return in_reading_order(self._detect_as_is(bgr) if as_is else self._detect(bgr))


# size -> this process's pool of detection threads (thread_pool); a forked child starts without
# any (its parent's threads do not exist there).
_POOLS: dict[int, ThreadPoolExecutor] = {}
os.register_at_fork(after_in_child=_POOLS.clear)


def thread_pool(size: int) -> ThreadPoolExecutor:
    """The process's pool of `size` detection threads, made on first use and kept (idle
    threads cost nothing; they end with the process)."""
    pool = _POOLS.get(size)
    if pool is None:
        pool = _POOLS[size] = ThreadPoolExecutor(size, thread_name_prefix=f"detect{size}")
    return pool


def in_reading_order(faces: list[Detection]) -> list[Detection]:
    """Faces sorted left to right, then top to bottom (box corner to 0.1 px)."""
    return sorted(faces, key=lambda d: (round(float(d.box[0]), 1), round(float(d.box[1]), 1)))


def first_existing(model: str, candidates) -> Path:
    """The first of `candidates` that exists, else WeightsNotFound naming all of them."""
    paths = [Path(str(c)).expanduser() for c in (candidates or [])]
    for path in paths:
        if path.is_file():
            return path
    raise WeightsNotFound(model, paths)
