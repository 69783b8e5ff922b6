"""Face detectors: each returns boxes, scores and the five ArcFace landmarks.

`build_detector(name, cfg)` is the way a stage gets a detector other than the run's own
`cfg.detector` (the manifold's, the audit's, the leak check's): conf/detector/<name>.yaml
composed against the run's config, so `paths.*` overrides apply to it too.
"""
from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.detectors.base import Detection

# Photos a stage decodes and hands to Detector.detect_many at once (the faces stage, the
# platform's sources): enough for a detector's threads, few enough to bound the memory.
PHOTOS_AT_ONCE = 8


def build_detector(name: str, cfg: DictConfig):
    """The Detector `name` configured for this run; loads no weights (see prepare()).

    Raises:
        UnknownComponent: no conf/detector/<name>.yaml.
    """
    from bench.registry import DETECTORS, component_config

    node = OmegaConf.create(component_config("detector", str(name), cfg))
    return memoize(DETECTORS.build(node, name=str(name)), node, cfg.results_dir)


def memoize(detector, node: DictConfig, results_dir):
    """Gives `detector` (each member of an ensemble) a memo of its calls: a DetectionCache under
    <results_dir>/cache/detector_calls/<detector key>/ keyed by the pixels it is run on
    (bench.facetable.content_hash). The faces, anonymize (inventory and audit), leaks, baseline
    and platform stages run the same detectors on the same pixels (an original photo upright,
    an anonymized photo upright and turned, the identities photos): each (detector config,
    pixels) is then detected once. Returns `detector`.

    Issue 11 (cache each face's detection once); the key is bench.facetable.detector_key: a
    changed setting, changed weights or a weights file that appears gives a new folder; the
    same weights read from another path do not.
    """
    from bench.detectors.ensemble import EnsembleDetector
    from bench.facetable import DetectionCache, detector_key
    from bench.layout import cache_dir

    if isinstance(detector, EnsembleDetector):  # a union of its members' calls, cheap to merge again
        for name, member in detector.members.items():
            memoize(member, node.members[name], results_dir)
        return detector
    detector.memo = DetectionCache(cache_dir(results_dir, "detector_calls") / detector_key(node, detector))
    return detector


def detect_scaled(detector, images, max_side: int | None) -> list[list[Detection]]:
    """detector.detect_many(images), each BGR image first scaled down (cv2.INTER_AREA) so that
    its longer side is at most `max_side` pixels, and each face's box and landmarks mapped back
    onto the image's own pixels (x times width / scaled width, y likewise). Images within
    `max_side`, and every image when it is None, are detected as they are.

    The usual practice for photos far larger than their faces (insightface's FaceAnalysis
    detects at det_size 640): a dataset's `detect_max_side` (conf/dataset/; the identities
    set's 13-megapixel portraits) sets it. The aligned crops are still cut from the
    full-resolution photo at the mapped landmarks (bench.facetable.write_crop).
    """
    import cv2

    scaled, factors = [], []
    for bgr in images:
        height, width = bgr.shape[:2]
        if max_side and max(height, width) > int(max_side):
            ratio = int(max_side) / max(height, width)
            size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
            scaled.append(cv2.resize(bgr, size, interpolation=cv2.INTER_AREA))
            factors.append(np.array([width / size[0], height / size[1]], np.float32))
        else:
            scaled.append(bgr)
            factors.append(None)
    found = detector.detect_many(scaled)
    return [faces if factor is None else [scale_detection(d, factor) for d in faces]
            for faces, factor in zip(found, factors)]


def scale_detection(det, factor: np.ndarray):
    """A Detection with its box and landmarks multiplied by `factor` (x, y)."""
    box = np.asarray(det.box, np.float32) * np.tile(factor, 2)
    landmarks = np.asarray(det.landmarks, np.float32).reshape(5, 2) * factor
    return Detection(box.astype(np.float32), float(det.score), landmarks.astype(np.float32), det.found_by)


def rotate_detection(det, k: int, width: int, height: int):
    """A Detection found on `np.rot90(image, k)` mapped back onto `image` (width x height).

    np.rot90 turns counter-clockwise; a point (x', y') of the turned image is, in the
    original, k=1: (W - y', x'); k=2: (W - x', H - y'); k=3: (y', H - x'). The box is the
    bounds of its mapped corners. Landmarks are mapped point by point (their image-left /
    image-right order holds for the turned image, not necessarily for the original).
    """
    def back(points):
        x, y = points[:, 0], points[:, 1]
        if k % 4 == 1:
            return np.stack([width - y, x], axis=1)
        if k % 4 == 2:
            return np.stack([width - x, height - y], axis=1)
        if k % 4 == 3:
            return np.stack([y, height - x], axis=1)
        return points

    box = np.asarray(det.box, np.float32)
    corners = back(np.array([[box[0], box[1]], [box[2], box[3]]], np.float32))
    new_box = np.array([corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()], np.float32)
    return Detection(new_box, float(det.score), back(np.asarray(det.landmarks, np.float32)).astype(np.float32), det.found_by)


def detect_turned(detector, bgr, rotations, merge_iou: float, as_is: bool = False) -> list:
    """The detector's faces on `bgr` upright and turned by each of `rotations` (degrees,
    multiples of 90: faces upside down or sideways, which upright detectors miss), mapped
    back and merged (bench.detectors.ensemble.merge_detections); `found_by` names the turn,
    e.g. "yunet@180". `as_is`: `bgr` is a window of the detector's view() of a photo
    (Detector.detect_many)."""
    from bench.detectors.ensemble import merge_detections  # the ensemble imports this package

    height, width = bgr.shape[:2]
    turns = [(int(degrees), int(degrees) // 90 % 4) for degrees in rotations or []]
    turns = [(degrees, k) for degrees, k in turns if k]
    # one call: a detector with `parallel` > 1 scans the turns at once
    upright, *turned = detector.detect_many([bgr] + [np.rot90(bgr, k) for _, k in turns], as_is=as_is)
    found = {detector.name: upright}
    for (degrees, k), faces in zip(turns, turned):
        found[f"{detector.name}@{degrees}"] = [rotate_detection(d, k, width, height) for d in faces]
    return merge_detections(found, merge_iou)


def turned_cache(cfg, name: str, detector, rotations, merge_iou: float, scan_margin: float | None = None):
    """The DetectionCache of `detect_turned(detector, ..., rotations, merge_iou)` results per
    photo content (the anonymize audit's and the leak check's), under
    <results_dir>/cache/detections/: keyed by all that decides what it stores, the detector's
    settings, weights and code, the turns and the IoU they are merged at; `scan_margin`: the
    scans of an edited photo around its changes only (bench.detectors.changed), apart from
    the whole-photo scans."""
    from bench.facetable import DetectionCache, detector_key
    from bench.layout import cache_dir
    from bench.registry import component_config

    key = detector_key({"detector": component_config("detector", str(name), cfg),
                        "rotations": [int(r) for r in rotations or []], "merge_iou": float(merge_iou),
                        **({} if scan_margin is None else {"scan_margin": float(scan_margin)})}, detector,
                       # detect_turned, merge_detections; the windows around the changes
                       code=(__name__, "bench.detectors.ensemble",
                             *(() if scan_margin is None else ("bench.detectors.changed",))))
    return DetectionCache(cache_dir(cfg.results_dir, "detections") / key)


TURNED = "@turned"


def split_turned(found: dict) -> dict:
    """{detector: faces} -> {detector: faces it found upright, detector@turned: faces it found
    only on a turned photo} (detect_turned marks those "name@degrees" in `found_by`), ready for
    bench.detectors.ensemble.merge_detections and turned_consensus."""
    out = {}
    for name, dets in found.items():
        out[name] = [d for d in dets if not d.found_by or any("@" not in f for f in d.found_by)]
        turned = [d for d in dets if d.found_by and all("@" in f for f in d.found_by)]
        if turned:
            out[name + TURNED] = turned
    return out


def turned_consensus(det, turned_min: int) -> bool:
    """Whether a merged face counts: found upright by any detector, or found only on turned
    photos by at least `turned_min` detectors (alone, a turned photo gives false faces in
    hands, poker chips and chandeliers; a real upside-down face is found by several)."""
    if any(not f.endswith(TURNED) for f in det.found_by):
        return True
    return len(det.found_by) >= turned_min
