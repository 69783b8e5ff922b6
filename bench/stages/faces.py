"""Stage `faces`: the face inventory of a dataset.

Reads:  the dataset's photos (conf/dataset/), the detector's weights (conf/detector/).
Writes: <results_dir>/<dataset>/faces.parquet   one row per detected face
        <results_dir>/<dataset>/photos.csv      one row per file (the data manifest)
        <results_dir>/<dataset>/failures.csv    photo or face, stage, reason
        <results_dir>/<dataset>/crops/<face_id>.png   aligned crops (ArcFace template)
        <results_dir>/<dataset>/faces.provenance.json
Detections are cached per photo content under <results_dir>/cache/detections/, so a rerun
(or another dataset holding the same photo) resumes instead of detecting again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.align import align_face
from bench.datasets import PhotoRef, list_photos
from bench.detectors.base import Detection, Detector
from bench.errors import ImageLoadError
from bench.images import load_photo
from bench.provenance import record
from bench.registry import DETECTORS

log = logging.getLogger(__name__)

FACE_COLUMNS = [
    "photo", "face_id", "face_index", "detector", "x1", "y1", "x2", "y2", "score",
    "landmarks", "face_size", "aligned", "crop", "crop_sha256",
]
PHOTO_COLUMNS = ["photo", "sha256", "width", "height", "source_mode", "exif_rotated", "n_faces", "status"]


@dataclass(frozen=True)
class FacesOutputs:
    root: Path

    @property
    def faces(self) -> Path:
        return self.root / "faces.parquet"

    @property
    def photos(self) -> Path:
        return self.root / "photos.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def provenance(self) -> Path:
        return self.root / "faces.provenance.json"


def outputs(cfg: DictConfig) -> FacesOutputs:
    return FacesOutputs(Path(cfg.results_dir) / str(cfg.dataset.name))


def run(cfg: DictConfig) -> FacesOutputs:
    """Detects, aligns and lists every face of `cfg.dataset`; returns where it wrote."""
    out = outputs(cfg)
    detector: Detector = DETECTORS.build(cfg.detector, name=cfg.choices.detector)
    detector.prepare()  # a missing weights file stops here, before anything is written
    cache = DetectionCache(Path(cfg.results_dir) / "cache" / "detections" / detector_key(cfg.detector, detector.name))
    photos, skipped = list_photos(cfg.dataset, cfg.faces.image_extensions)

    face_rows, photo_rows, failures = [], [], []
    for ref in skipped:
        failures.append(failure(ref.photo, "", "list", f"skipped: extension {ref.path.suffix or '(none)'!r} is not in faces.image_extensions"))
        photo_rows.append({"photo": ref.photo, "status": "skipped"})
    for ref in photos:
        faces, photo_row, photo_failures = inventory_photo(ref, detector, cache, cfg.faces, out.crops)
        face_rows += faces
        photo_rows.append(photo_row)
        failures += photo_failures

    faces_df = pd.DataFrame(face_rows, columns=FACE_COLUMNS)
    if faces_df.face_id.duplicated().any():
        raise RuntimeError("two faces got the same face_id; photo names collide after slugging")
    photos_df = pd.DataFrame(photo_rows, columns=PHOTO_COLUMNS).sort_values("photo", kind="stable")
    remove_stale_crops(out.crops, set(faces_df.crop[faces_df.aligned].map(lambda c: Path(c).name)))
    resultsio.write_parquet(faces_df, out.faces)
    resultsio.write_csv(photos_df, out.photos)
    resultsio.write_failures(failures, out.failures)
    resultsio.write_json(record(
        cfg, "faces",
        detector={"name": detector.name, "weights": weights_manifest(detector)},
        data_manifest={"path": str(out.photos), "sha256": resultsio.sha256_file(out.photos)},
        counts={"photos": len(photos), "skipped_files": len(skipped), "faces": len(faces_df),
                "aligned": int(faces_df.aligned.sum()), "failures": len(failures)},
    ), out.provenance)
    log.info("%s: %d photos, %d faces (%d aligned), %d failure rows -> %s",
             cfg.dataset.name, len(photos), len(faces_df), int(faces_df.aligned.sum()), len(failures), out.root)
    return out


def inventory_photo(ref: PhotoRef, detector: Detector, cache: "DetectionCache", opts: DictConfig, crops_dir: Path):
    """(face rows, photo row, failure rows) for one photo; never raises on bad input."""
    try:
        photo = load_photo(ref.path, max_pixels=int(opts.max_image_pixels))
    except ImageLoadError as err:
        return [], {"photo": ref.photo, "status": "unreadable"}, [failure(ref.photo, "", "load", str(err))]
    sha = resultsio.sha256_file(ref.path)
    detections = cache.get(sha)
    if detections is None:
        detections = detector.detect(photo.bgr)
        cache.put(sha, detections)
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


def face_row(photo: str, face_id: str, index: int, detector: str, det: Detection) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in det.box)
    return {
        "photo": photo, "face_id": face_id, "face_index": index, "detector": detector,
        "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": round(float(det.score), 5),
        "landmarks": [round(float(v), 2) for v in det.landmarks.reshape(-1)],
        "face_size": round(det.size, 2), "aligned": False, "crop": "", "crop_sha256": "",
    }


def write_crop(rgb: np.ndarray, det: Detection, face_id: str, opts: DictConfig, crops_dir: Path) -> tuple[str, str]:
    """Aligns one face, writes its PNG; raises ValueError (a failure row) if it can't."""
    if det.size < float(opts.min_face_size):
        raise ValueError(f"face too small to align: {det.size:.0f} px < faces.min_face_size={opts.min_face_size}")
    crop = align_face(rgb, det.landmarks, size=int(opts.crop_size))
    resultsio.write_png(crop, crops_dir / f"{face_id}.png")
    return f"crops/{face_id}.png", content_hash(crop)


def content_hash(pixels: np.ndarray) -> str:
    """sha256 of an image's pixels and shape: the key of every per-face cache downstream."""
    h = hashlib.sha256(repr(pixels.shape).encode())
    h.update(np.ascontiguousarray(pixels).tobytes())
    return h.hexdigest()


def failure(photo: str, face_id: str, stage: str, reason: str) -> dict:
    return {"photo": photo, "face_id": face_id, "stage": stage, "reason": reason}


def slug(photo: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", photo)


def remove_stale_crops(crops_dir: Path, keep: set[str]) -> None:
    if crops_dir.is_dir():
        for path in crops_dir.glob("*.png"):
            if path.name not in keep:
                path.unlink()


def detector_key(node: DictConfig, name: str) -> str:
    """Cache folder name: the detector's name plus a hash of its settings."""
    settings = json.dumps(OmegaConf.to_container(node, resolve=True), sort_keys=True)
    return f"{name}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


def weights_manifest(component) -> list[dict]:
    return [
        {"path": str(p), "sha256": resultsio.sha256_file(p) if p.is_file() else "absent"}
        for p in component.weights()
    ]


class DetectionCache:
    """One npz per photo content hash: boxes, scores, landmarks. Never pickle."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, sha: str) -> list[Detection] | None:
        path = self.folder / f"{sha}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return [Detection(box=b, score=float(s), landmarks=l)
                        for b, s, l in zip(data["boxes"], data["scores"], data["landmarks"])]
        except (OSError, ValueError, KeyError):  # a damaged cache entry is recomputed
            return None

    def put(self, sha: str, detections: list[Detection]) -> None:
        resultsio.write_npz(
            self.folder / f"{sha}.npz",
            boxes=np.array([d.box for d in detections], dtype=np.float32).reshape(-1, 4),
            scores=np.array([d.score for d in detections], dtype=np.float32),
            landmarks=np.array([d.landmarks for d in detections], dtype=np.float32).reshape(-1, 5, 2),
        )
