"""The leak check's look at an anonymized photo: which faces are in it, and where.

Every available detector (conf/detector/, ensembles left out: they only repeat their members'
faces) scans the photo upright and turned by `leaks.rotations` (bench.detectors.detect_turned);
their faces are merged by IoU (`leaks.merge_iou`; the first detector in name order that found a
face gives its box and five landmarks, `found_by` names every detector that found it), a face
found only on turned photos counts when `leaks.turned_min_detectors` detectors agree, and the
faces are listed in reading order. With `leaks.scan_margin` set, only windows around the pixels
that differ from the original are scanned and the original's faces are taken elsewhere
(bench.detectors.changed).

Two stages look through it: the leaks stage, which judges every face it lists, and the anonymize
stage's last guard check (bench.guard.recheck_photo), which checks each fake at the landmarks
the leak check will align it at. Both use the same per-photo caches
(<results_dir>/cache/detections/, keyed by detector settings, weights, code, turns and merge IoU),
so the leak check finds the anonymize stage's scans of the photo it published.

This module is the one reader of `leaks.detectors`, `leaks.rotations`, `leaks.merge_iou`,
`leaks.turned_min_detectors` and `leaks.scan_margin`.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig

from bench.detectors import build_detector, detect_turned, split_turned, turned_cache, turned_consensus
from bench.detectors.base import Detection, Detector, in_reading_order
from bench.detectors.changed import changed_mask, scan_edit
from bench.detectors.ensemble import EnsembleDetector, merge_detections
from bench.embeddings import na
from bench.facetable import DetectionCache, content_hash
from bench.registry import DETECTORS

log = logging.getLogger(__name__)


def available_detectors(cfg: DictConfig, names=None, prepared: dict | None = None
                        ) -> tuple[dict[str, Detector], dict[str, str]]:
    """({name: prepared detector}, {name: why not}) over `names` (default: conf/detector/),
    ensembles left out (recognised by their class: an ensemble only repeats its members' faces).
    `prepared`: {name: a detector of the same name already built from `cfg` and prepared}, used
    as it is (the anonymize stage's auditors: each model loaded once)."""
    ready, unavailable = {}, {}
    for name in (sorted(str(n) for n in names) if names else DETECTORS.names()):
        if prepared and name in prepared:
            ready[name] = prepared[name]
            continue
        try:
            detector = build_detector(name, cfg)
        except Exception as err:  # noqa: BLE001 - a broken config is one n/a, not a crash
            unavailable[name] = na(f"could not build: {err}")
            continue
        if isinstance(detector, EnsembleDetector):
            unavailable[name] = "not run: an ensemble of the other detectors"
            continue
        try:
            detector.prepare()
        except Exception as err:  # noqa: BLE001 - missing weights or library: n/a for this detector
            unavailable[name] = na(str(err))
            log.info("detector %s not available here: %s", name, err)
            continue
        ready[name] = detector
    return ready, unavailable


def detect_all(bgr: np.ndarray, sha: str, detectors: dict[str, Detector], caches: dict[str, DetectionCache],
               rotations=(), merge_iou: float = 0.4, original: np.ndarray | None = None, margin: float = 0.0,
               originals: dict | None = None):
    """({detector: its faces}, {detector: why it failed}) on one photo, upright and turned by
    `rotations` (bench.detectors.detect_turned), from the cache when this photo was seen
    before. A detector that fails here is reported; the others count.

    `original` (the original photo, BGR): scan only windows around the pixels that differ
    from it, `margin` wide, and take the detector's faces on the original elsewhere
    (bench.detectors.changed; the detector's memo holds its calls on the original).
    `originals`: {a detector's cache folder: its faces on `original`}, read and filled
    here (a caller that looks at several edits of one original keeps it: no memo lookup of
    the turned photo, which copies and hashes it four times)."""
    found, errors = {}, {}
    mask = None
    for name, detector in detectors.items():
        dets = caches[name].get(sha)
        if dets is None:
            try:
                def scan(image, as_is=False, detector=detector):
                    return detect_turned(detector, image, rotations, merge_iou, as_is=as_is)
                if original is None:
                    dets = scan(bgr)
                else:
                    slot = str(caches[name].folder)  # the detector's settings, weights, code, turns
                    before = None if originals is None else originals.get(slot)
                    if before is None:
                        before = scan(original)
                        if originals is not None:
                            originals[slot] = before
                    mask = changed_mask(bgr, original) if mask is None else mask  # once for every detector
                    dets = scan_edit(detector, bgr, original, before, margin, mask=mask, scan=scan)
            except Exception as err:  # noqa: BLE001 - one detector's bug must not hide the others' faces
                errors[name] = f"{type(err).__name__}: {err}"
                log.warning("%s failed on a photo (%s): its faces there are not counted", name, errors[name])
                continue
            caches[name].put(sha, dets)
        found[name] = dets
    return found, errors


# The faces each detector (by cache folder) finds on the last original looked at (keyed by its
# pixels' hash): the looks at several edits of one photo, in every cell of a stage, take the
# original's faces from here. One original at a time: a stage goes photo by photo.
_ORIGINALS: dict = {"key": None, "faces": {}}


def _originals_of(key: str) -> dict:
    if _ORIGINALS["key"] != key:
        _ORIGINALS.update(key=key, faces={})
    return _ORIGINALS["faces"]


@dataclass
class LeakScan:
    """The leak check's detectors with their caches and settings (`leaks.*`), built once per run."""

    detectors: dict[str, Detector]
    unavailable: dict[str, str]
    caches: dict[str, DetectionCache]
    rotations: list[int]
    merge_iou: float
    turned_min: int
    margin: float | None

    @classmethod
    def from_config(cls, cfg: DictConfig, prepared: dict | None = None) -> "LeakScan":
        """Builds and prepares every detector of `leaks.detectors` that can run here (the
        others are in `unavailable` with the reason); `prepared`: as available_detectors."""
        opts = cfg.leaks
        detectors, unavailable = available_detectors(cfg, opts.detectors, prepared)
        rotations = [int(r) for r in opts.rotations or []]
        margin = None if opts.scan_margin is None else float(opts.scan_margin)
        merge_iou = float(opts.merge_iou)
        # an anonymized photo's scans: whole (scan_margin null), or around its changes (keyed by the margin)
        caches = {name: turned_cache(cfg, name, det, rotations, merge_iou, scan_margin=margin)
                  for name, det in detectors.items()}
        return cls(detectors, unavailable, caches, rotations, merge_iou, int(opts.turned_min_detectors), margin)

    def key(self) -> str:
        """What decides the faces listed, for a result's cache key: each detector's cache (its
        settings, weights, code, turns and merge IoU), the consensus and the scan margin."""
        return json.dumps({"caches": sorted(str(c.folder.name) for c in self.caches.values()),
                           "turned_min": self.turned_min, "margin": self.margin})

    def faces(self, anonymized: np.ndarray, original: np.ndarray) -> tuple[list[Detection], dict[str, str]]:
        """(the faces in the anonymized photo, merged, in reading order; {detector: why it failed}).

        Args:
            anonymized, original: (H, W, 3) uint8 RGB of the same size. The cache key is the
                anonymized pixels' hash (bench.facetable.content_hash): the anonymize stage,
                which has the pixels before it writes the PNG, and the leaks stage, which
                decodes that lossless PNG, look up the same entry. With `leaks.scan_margin` set
                the scan depends on both photos and is cached under both pixels' hashes.
        """
        original_bgr, key, originals = None, content_hash(anonymized), None
        if self.margin is not None:
            original_bgr = np.ascontiguousarray(original[:, :, ::-1])
            original_key = content_hash(original)
            key = hashlib.sha256(f"{key}:{original_key}".encode()).hexdigest()
            originals = _originals_of(original_key)
        found, errors = detect_all(np.ascontiguousarray(anonymized[:, :, ::-1]), key, self.detectors, self.caches,
                                   self.rotations, self.merge_iou, original_bgr, float(self.margin or 0), originals)
        merged = in_reading_order([d for d in merge_detections(split_turned(found), self.merge_iou)
                                   if turned_consensus(d, self.turned_min)])
        return merged, errors
