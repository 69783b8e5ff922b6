"""An ensemble of detectors: the union of its members' faces, merged by IoU.

A face that any member finds is in the inventory, so a face one detector misses (turned,
tiny, masked, at the border) is still anonymized: MFMC's promise fails at the first step
when the detector misses a face. Members are full detector configs (conf/detector/), in
priority order: where several members find the same face (IoU >= `merge_iou`), the box,
score and landmarks are the first member's, and `found_by` lists every member that found it.
A member whose weights are absent here is left out (logged, and listed by `missing()`), so
the ensemble runs wherever at least one member can; with none it raises WeightsNotFound.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from bench.boxes import iou_matrix
from bench.detectors.base import Detection, Detector, in_reading_order
from bench.errors import BenchError, WeightsNotFound

log = logging.getLogger(__name__)


def same_face(a: np.ndarray, b: np.ndarray, merge_iou: float, containment: float = 0.8,
              max_area_ratio: float = 4.0) -> np.ndarray:
    """(N, M) bool: box a[i] and box b[j] show one face. Either their IoU is at least
    `merge_iou`, or the smaller lies mostly inside the larger (intersection over the smaller
    area >= `containment`) and is not tiny beside it (area ratio <= `max_area_ratio`):
    detectors draw boxes of different tightness, and at high resolution a tight box inside
    a loose one has a low IoU. A small box inside a much larger one stays a face of its own
    (a real face inside a false detection must not disappear)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    iou = iou_matrix(a, b)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    small = np.minimum(area_a[:, None], area_b[None, :])
    large = np.maximum(area_a[:, None], area_b[None, :])
    inter = iou * (area_a[:, None] + area_b[None, :]) / (1.0 + iou)
    contained = (inter >= containment * small) & (large <= max_area_ratio * np.maximum(small, 1e-9))
    return (iou >= merge_iou) | contained


def merge_detections(found: dict[str, list[Detection]], merge_iou: float) -> list[Detection]:
    """Union of several detectors' faces on one photo.

    Args:
        found: member name -> its detections, in priority order (dicts keep insertion order).
        merge_iou: two boxes are one face when their IoU is at least this (or one holds
            the other: see `same_face`).

    Returns:
        One Detection per distinct face: the highest-priority member's box, score and
        landmarks, `found_by` the sorted names of every member whose box overlaps it.
    """
    merged: list[Detection] = []
    for name, dets in found.items():
        if not dets:
            continue
        boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
        if merged:
            known = np.array([m.box for m in merged], np.float32)
            overlap = iou_matrix(boxes, known)
            match = same_face(boxes, known, merge_iou)
        else:
            overlap = match = np.zeros((len(dets), 0))
        for i, det in enumerate(dets):
            j = int(np.where(match[i], overlap[i] + 1.0, -1.0).argmax()) if match.shape[1] else -1
            if j >= 0 and match[i, j]:
                if name not in merged[j].found_by:
                    keep = merged[j]
                    merged[j] = Detection(keep.box, keep.score, keep.landmarks, tuple(sorted({*keep.found_by, name})))
            else:
                merged.append(Detection(np.asarray(det.box, np.float32), float(det.score),
                                        np.asarray(det.landmarks, np.float32), (name,)))
    return merged


class EnsembleDetector(Detector):
    """The union of several detectors (Hydra builds the members from their own configs)."""

    def __init__(self, members: dict[str, Detector], merge_iou: float = 0.4) -> None:
        """
        Args:
            members: name -> detector, highest priority first (their configs' stems).
            merge_iou: boxes of two members overlapping at least this are one face.
        """
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member detector")
        self.members = dict(members)
        for name, member in self.members.items():
            member.name = name
        self.merge_iou = float(merge_iou)
        self._ready: dict[str, Detector] = {}
        self._missing: dict[str, str] = {}

    def weights(self) -> list[Path]:
        return [p for m in self.members.values() for p in m.weights()]

    def _load(self) -> None:
        for name, member in self.members.items():
            try:
                member.prepare()
            except BenchError as err:
                self._missing[name] = str(err)
                log.warning("ensemble member %s left out: %s", name, err)
                continue
            self._ready[name] = member
        if not self._ready:
            raise WeightsNotFound("ensemble", [p for m in self.members.values() for p in m.weights()])

    def available(self) -> list[str]:
        """The members that run here, in priority order (after prepare())."""
        self.prepare()
        return list(self._ready)

    def missing(self) -> dict[str, str]:
        """Members left out here -> why (after prepare())."""
        self.prepare()
        return dict(self._missing)

    def ready(self) -> dict[str, Detector]:
        """The members that run here (after prepare()), by name."""
        self.prepare()
        return dict(self._ready)

    def native_scale(self, height: int, width: int) -> bool:
        return all(member.native_scale(height, width) for member in self.members.values())

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        return self.detect_many([bgr])[0]

    def detect_many(self, images, as_is: bool = False) -> list[list[Detection]]:
        """Each member runs on all `images` (its memo and its own `parallel`), then the faces
        of each image are merged; the same answers as detect() one image at a time.

        Raises:
            NotImplementedError: `as_is` (an ensemble has no view(): its members see a photo
                each at its own scale; bench.detectors.changed.scan_changed runs them apart).
        """
        if as_is:
            raise NotImplementedError("an ensemble has no view to scan windows of: scan its members")
        self.prepare()
        per_member = {name: m.detect_many(images) for name, m in self._ready.items()}
        merged = [merge_detections({name: found[i] for name, found in per_member.items()}, self.merge_iou)
                  for i in range(len(images))]
        return [in_reading_order(faces) for faces in merged]
