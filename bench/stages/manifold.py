"""Stage `manifold`: the pool's faces and their features in every query space.

Reads:  the pool's images (conf/pool/: a folder, or the generated DCGAN pool), the
        detector (conf/detector/), the query recognizer (`query_recognizer`), the
        InceptionV3 and age/gender models.
Writes: <results_dir>/pools/<pool.name>/faces.parquet   the pool's faces, faces.parquet schema
                                                        (photo relative to pool.path)
        <results_dir>/pools/<pool.name>/crops/          aligned 112x112 crops
        <results_dir>/pools/<pool.name>/images.csv      one row per image (the data manifest):
                       photo, sha256, width, height, status (ok / no_face / not_aligned / unreadable /
                       not in the balanced subset: pool.balanced, bench.pools.balanced)
        <results_dir>/pools/<pool.name>/failures.csv    images without a usable face
        <results_dir>/pools/<pool.name>/manifold.parquet  one row per pool face: photo,
                       box, the status of each feature, estimated age and gender
        <results_dir>/pools/<pool.name>/manifold.npz    the feature arrays, row-aligned with
                       manifold.parquet (bench.spaces.features.Features.load)
        <results_dir>/pools/<pool.name>/manifold.provenance.json

Pool images hold one aligned face each, often filling the frame. Five landmarks come from
the configured detector, tried on each of `manifold.detect_pads` in turn (the image padded
by that fraction of its side, border replicated: HOG needs context around a face that fills
the frame) until one finds a face; images whose (padded) shorter side is below
`manifold.detect_min_side` are upscaled by an integer factor first (bicubic). Landmarks
and boxes are mapped back to the original image. Several detections: the largest box.
An image without a detection is a failure row, and is never a target.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.detectors.base import Detection, Detector
from bench.errors import BenchError, ImageLoadError
from bench.facetable import (
    FACE_COLUMNS, DetectionCache, detector_key, face_row, failure, remove_stale_crops, slug,
    weights_manifest, write_crop,
)
from bench.images import load_photo
from bench.layout import PoolOutputs, cache_dir, pool_outputs
from bench.pools.base import Pool, build_pool
from bench.progress import progress
from bench.provenance import record
from bench.detectors import build_detector
from bench.registry import component_config
from bench.spaces.features import KINDS, compute_features

log = logging.getLogger(__name__)

MANIFOLD_COLUMNS = ["face_id", "photo", "x1", "y1", "x2", "y2", "face_size"]
IMAGE_COLUMNS = ["photo", "sha256", "width", "height", "status"]


def run(cfg: DictConfig) -> PoolOutputs:
    """Lists the pool's faces and computes their features; returns where it wrote."""
    started = time.perf_counter()
    pool = build_pool(cfg)
    out = pool_outputs(cfg)
    refs = pool.images(cfg.faces.image_extensions)  # DatasetNotFound names how to get them
    detector: Detector = build_detector(str(cfg.manifold.detector), cfg)
    detector.prepare()
    how = PoolDetection(int(cfg.manifold.detect_min_side), tuple(float(p) for p in cfg.manifold.detect_pads))
    cache = DetectionCache(detection_cache_dir(cfg, detector, how))

    rows, images, failures = [], [], []
    for ref in progress(refs, f"pool {pool.name}: detect faces", unit="image"):
        row, image, fail = pool_face(ref, detector, cache, cfg, out, how)
        images.append(image)
        if row is not None:
            rows.append(row)
        if fail is not None:
            failures.append(fail)
    faces = pd.DataFrame(rows, columns=FACE_COLUMNS)
    # A balanced pool (pool.balanced) keeps an equal number per estimated gender x age band.
    faces, images, balance = pool.select(faces, images, lambda f: compute_features(f, out.root, pool.path, ["agegender"], cfg))
    remove_stale_crops(out.crops, set(faces.crop[faces.aligned].map(lambda c: c.split("/")[-1])))
    detect_s = time.perf_counter() - started

    feats = compute_features(faces, out.root, pool.path, feature_kinds(cfg), cfg)
    manifold = faces[MANIFOLD_COLUMNS].reset_index(drop=True).join(feats.table().drop(columns="face_id"))
    manifold.insert(2, "aligned", faces.aligned.to_numpy())
    elapsed = time.perf_counter() - started

    resultsio.write_parquet(faces, out.faces)
    resultsio.write_csv(pd.DataFrame(images, columns=IMAGE_COLUMNS), out.images)
    resultsio.write_failures(failures, out.failures)
    feats.save(out.arrays)
    resultsio.write_parquet(manifold, out.manifold)
    counts = {"images": len(refs), "faces": len(faces), "aligned": int(faces.aligned.sum()),
              "failures": len(failures),
              **{f"{kind}_ok": int(feats.ok(kind).sum()) for kind in KINDS if kind in feats.status}}
    resultsio.write_json(record(
        cfg, "manifold",
        pool={"name": pool.name, "path": str(pool.path), "weights": _weights(pool), "balance": balance},
        detector={"name": detector.name, "weights": weights_manifest(detector),
                  "detect_min_side": how.min_side, "detect_pads": list(how.pads)},
        query_recognizer=str(cfg.query_recognizer),
        data_manifest={"path": str(out.images), "sha256": resultsio.sha256_file(out.images)},
        counts=counts,
        # Wall-clock time is provenance, not a result: it never enters the parquet tables.
        seconds={"detect_align": round(detect_s, 1), **feats.seconds, "total": round(elapsed, 1)},
    ), out.provenance)
    log.info("pool %s: %d images, %d faces with landmarks (%d failures); features: %s; %.0f s -> %s",
             pool.name, len(refs), int(faces.aligned.sum()), len(failures),
             ", ".join(f"{k} {counts[k + '_ok']}" for k in KINDS if k + "_ok" in counts), elapsed, out.root)
    return out


def feature_kinds(cfg: DictConfig) -> list[str]:
    """`manifold.features` (null: every kind of bench.spaces.features.KINDS), in KINDS' order.

    Raises:
        BenchError: a name that is not a feature kind.
    """
    wanted = cfg.manifold.get("features")
    if wanted is None:
        return list(KINDS)
    unknown = sorted(set(map(str, wanted)) - set(KINDS))
    if unknown:
        raise BenchError(f"manifold.features: unknown kind(s) {', '.join(unknown)} (known: {', '.join(KINDS)})")
    return [kind for kind in KINDS if kind in set(map(str, wanted))]


@dataclass(frozen=True)
class PoolDetection:
    """How pool images are prepared for the detector: upscaled to `min_side`, padded by each
    of `pads` (fractions of the side) in turn until a face is found."""

    min_side: int
    pads: tuple[float, ...] = (0.0,)

    def key(self) -> str:
        return f"pool{self.min_side}-pad" + "-".join(f"{p:g}" for p in self.pads)


def detection_cache_dir(cfg: DictConfig, detector: Detector, how: PoolDetection) -> Path:
    """Pool detections depend on the upscaling and padding too: their own cache folder."""
    key = detector_key(component_config("detector", detector.name, cfg), detector, code=(__name__,))  # pool_face
    return cache_dir(cfg.results_dir, "detections") / f"{key}-{how.key()}"


def pool_face(ref, detector: Detector, cache: DetectionCache, cfg: DictConfig, out: PoolOutputs, how: PoolDetection):
    """(face row or None, image row, failure row or None) for one pool image; never raises
    on bad input."""
    image = {"photo": ref.photo, "sha256": "", "width": 0, "height": 0, "status": "unreadable"}
    try:
        rgb = load_photo(ref.path, int(cfg.faces.max_image_pixels)).rgb
    except ImageLoadError as err:
        return None, image, failure(ref.photo, "", "load", str(err))
    sha = resultsio.sha256_file(ref.path)
    image.update(sha256=sha, width=rgb.shape[1], height=rgb.shape[0], status="no_face")
    detections = cache.get(sha)
    if detections is None:
        detections = detect_pool_face(rgb, detector, how)
        cache.put(sha, detections)
    if not detections:
        tried = ", ".join(f"pad {p:g} x{upscale_factor(padded_shape(rgb.shape, p), how.min_side)}" for p in how.pads)
        return None, image, failure(ref.photo, "", "detect", f"no face found by {detector.name} (tried {tried})")
    det = max(detections, key=lambda d: (d.box[2] - d.box[0]) * (d.box[3] - d.box[1]))
    face_id = f"{slug(ref.photo)}-000"
    row = face_row(ref.photo, face_id, 0, detector.name, det)
    try:
        crop_rel, crop_sha = write_crop(rgb, det, face_id, cfg.faces, out.crops)
        row.update(aligned=True, crop=crop_rel, crop_sha256=crop_sha)
    except ValueError as err:
        image["status"] = "not_aligned"
        return row, image, failure(ref.photo, face_id, "align", str(err))
    image["status"] = "ok"
    return row, image, None


def upscale_factor(shape, min_side: int) -> int:
    return max(1, math.ceil(min_side / max(1, min(shape))))


def padded_shape(shape, pad: float) -> tuple[int, int]:
    border = int(round(pad * min(shape[:2])))
    return shape[0] + 2 * border, shape[1] + 2 * border


def detect_pool_face(rgb: np.ndarray, detector: Detector, how: PoolDetection) -> list[Detection]:
    """Detections in original-image pixels from the first padding that finds any."""
    for pad in how.pads:
        border = int(round(pad * min(rgb.shape[:2])))
        image = cv2.copyMakeBorder(rgb, border, border, border, border, cv2.BORDER_REPLICATE) if border else rgb
        factor = upscale_factor(image.shape[:2], how.min_side)
        if factor > 1:
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        found = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
        if found:
            return [Detection(box=np.asarray(d.box, np.float32) / factor - border,
                              score=d.score, landmarks=np.asarray(d.landmarks, np.float32) / factor - border)
                    for d in found]
    return []


def _weights(pool: Pool) -> list[dict]:
    return [{"path": str(p), "sha256": resultsio.sha256_file(p) if p.is_file() else "absent"} for p in pool.weights()]
