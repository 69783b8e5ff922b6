"""The face inventory of a dataset: every photo's faces detected, aligned and listed.

The faces stage's work (bench/stages/faces.py is its entry), in a library module because the
baseline stage and the threshold calibration build the identities set's inventory with it too
(stages share code through library modules, never through each other).

It writes the files of bench.layout.DatasetLayout that the faces stage's docstring lists;
detections are cached per photo content (bench.detectors.memoize, bench.facetable.DetectionCache).
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.datasets import PhotoRef, list_photos
from bench.detectors import PHOTOS_AT_ONCE, memoize
from bench.detectors.base import Detector
from bench.errors import BenchError, ImageLoadError
from bench.facetable import (
    FACE_COLUMNS, DetectionCache, detector_key, face_row, failure,
    remove_stale_crops, slug, weights_manifest, write_crop,
)
from bench.images import load_photo
from bench.layout import DatasetLayout, cache_dir
from bench.progress import chunks
from bench.provenance import record
from bench.registry import DETECTORS

log = logging.getLogger(__name__)

PHOTO_COLUMNS = ["photo", "sha256", "width", "height", "source_mode", "exif_rotated", "n_faces", "status"]


def build(cfg: DictConfig) -> DatasetLayout:
    """Detects, aligns and lists every face of `cfg.dataset` (bench.layout.DatasetLayout:
    faces.parquet, photos.csv, failures.csv, crops/, faces.provenance.json); returns where it
    wrote. Never raises on a bad photo: each is a failure row.

    Raises:
        WeightsNotFound: the detector cannot run here (before anything is written).
        DatasetNotFound: no dataset at cfg.dataset.path.
    """
    out = DatasetLayout.from_config(cfg)
    detector: Detector = memoize(DETECTORS.build(cfg.detector, name=cfg.choices.detector), cfg.detector, cfg.results_dir)
    detector.prepare()  # a missing weights file stops here, before anything is written
    max_side = detect_max_side(cfg.dataset)
    cache = DetectionCache(cache_dir(cfg.results_dir, "detections") / detector_key(cfg.detector, detector, max_side=max_side))
    photos, skipped = list_photos(cfg.dataset, cfg.faces.image_extensions)

    face_rows, photo_rows, failures = [], [], []
    for ref in skipped:
        failures.append(failure(ref.photo, "", "list", ref.reason))
        photo_rows.append({"photo": ref.photo, "status": "skipped"})
    for batch in chunks(photos, PHOTOS_AT_ONCE, f"{cfg.dataset.name}: detect faces", unit="photo"):
        for ref, photo, sha, detections in detect_photos(batch, detector, cache, cfg.faces, max_side):
            faces, photo_row, photo_failures = inventory_photo(ref, photo, sha, detections, detector, cfg.faces, out.crops)
            face_rows += faces
            photo_rows.append(photo_row)
            failures += photo_failures

    faces_df = pd.DataFrame(face_rows, columns=FACE_COLUMNS)
    if faces_df.face_id.duplicated().any():
        raise RuntimeError("two faces got the same face_id: bench.facetable.slug is not unique (a bug)")
    photos_df = pd.DataFrame(photo_rows, columns=PHOTO_COLUMNS).sort_values("photo", kind="stable")
    # whole numbers stay whole where unreadable or skipped rows leave them empty
    photos_df = photos_df.astype({"width": "Int64", "height": "Int64", "n_faces": "Int64"})
    remove_stale_crops(out.crops, set(faces_df.crop[faces_df.aligned].map(lambda c: Path(c).name)))
    resultsio.write_parquet(faces_df, out.faces)
    resultsio.write_csv(photos_df, out.photos)
    resultsio.write_failures(failures, out.failures)
    resultsio.write_json(record(
        cfg, "faces",
        detector={"name": detector.name, "weights": weights_manifest(detector), "detect_max_side": max_side},
        data_manifest={"path": str(out.photos), "sha256": resultsio.sha256_file(out.photos)},
        counts={"photos": len(photos), "skipped_files": len(skipped), "faces": len(faces_df),
                "aligned": int(faces_df.aligned.sum()), "failures": len(failures)},
    ), out.provenance)
    log.info("%s: %d photos, %d faces (%d aligned), %d failure rows -> %s",
             cfg.dataset.name, len(photos), len(faces_df), int(faces_df.aligned.sum()), len(failures), out.root)
    return out


def detect_max_side(dataset: DictConfig) -> int | None:
    """The dataset's `detect_max_side` (conf/dataset/): its photos are detected scaled down so
    that their longer side is at most this many pixels (bench.detectors.detect_scaled); None:
    at their own resolution.

    Raises:
        BenchError: a value that is not a whole number of pixels of at least 32.
    """
    value = dataset.get("detect_max_side")
    if value is None:
        return None
    try:
        side = int(value)
    except (TypeError, ValueError):
        side = 0
    if side < 32 or str(value).strip() not in (str(side), f"{side}.0"):
        raise BenchError("dataset.detect_max_side (identities.detect_max_side for the identities set) must be "
                         f"null or a whole number of pixels >= 32, got {value!r}")
    return side


def detect_photos(refs, detector: Detector, cache: "DetectionCache", opts: DictConfig,
                  max_side: int | None = None) -> list[tuple]:
    """(ref, Photo or the ImageLoadError, sha256, detections) per ref, in order: each photo is
    decoded once, its detections come from the cache or else from one detect_many call over
    the batch (a detector with `parallel` > 1, e.g. an ensemble's dlib_hog, scans several
    photos at once), scaled down to `max_side` (detect_max_side)."""
    loaded = []
    for ref in refs:
        try:
            photo = load_photo(ref.path, max_pixels=int(opts.max_image_pixels))
        except ImageLoadError as err:
            loaded.append((ref, err, "", None))
            continue
        loaded.append((ref, photo, resultsio.sha256_file(ref.path), None))
    read = [i for i, (_, photo, _, _) in enumerate(loaded) if not isinstance(photo, ImageLoadError)]
    found = cache.detect_many(detector, [loaded[i][2] for i in read], [loaded[i][1].bgr for i in read], max_side)
    for i, detections in zip(read, found):
        loaded[i] = (*loaded[i][:3], detections)
    return loaded


def inventory_photo(ref: PhotoRef, photo, sha: str, detections, detector: Detector, opts: DictConfig, crops_dir: Path):
    """(face rows, photo row, failure rows) for one photo (from detect_photos); never raises on bad input."""
    if isinstance(photo, ImageLoadError):
        return [], {"photo": ref.photo, "status": "unreadable"}, [failure(ref.photo, "", "load", str(photo))]
    height, width = photo.rgb.shape[:2]
    photo_row = {"photo": ref.photo, "sha256": sha, "width": width, "height": height,
                 "source_mode": photo.source_mode, "exif_rotated": photo.exif_rotated,
                 "n_faces": len(detections), "status": "ok" if detections else "no_face"}
    if not detections:
        return [], photo_row, [failure(ref.photo, "", "detect", f"no face found by {detector.name}")]
    rows, failures = [], []
    for index, det in enumerate(detections):
        face_id = f"{slug(ref.photo)}-{index:03d}"
        row = face_row(ref.photo, face_id, index, detector.name, det)
        try:
            crop_rel, crop_sha = write_crop(photo.rgb, det, face_id, opts, crops_dir)
            row.update(aligned=True, crop=crop_rel, crop_sha256=crop_sha)
        except ValueError as err:
            failures.append(failure(ref.photo, face_id, "align", str(err)))
        rows.append(row)
    return rows, photo_row, failures

