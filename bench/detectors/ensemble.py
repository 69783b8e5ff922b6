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
from bench.detectors.base import Detection, Detector
from bench.errors import BenchError, WeightsNotFound

log = logging.getLogger(__name__)


def merge_detections(found: dict[str, list[Detection]], merge_iou: float) -> list[Detection]:
    """Union of several detectors' faces on one photo.

    Args:
        found: member name -> its detections, in priority order (dicts keep insertion order).
        merge_iou: two boxes are one face when their IoU is at least this.

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
            overlap = iou_matrix(boxes, np.array([m.box for m in merged], np.float32))
        else:
            overlap = np.zeros((len(dets), 0))
        for i, det in enumerate(dets):
            j = int(overlap[i].argmax()) if overlap.shape[1] else -1
            if j >= 0 and overlap[i, j] >= merge_iou:
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

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        return merge_detections({name: m.detect(bgr) for name, m in self._ready.items()}, self.merge_iou)
