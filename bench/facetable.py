"""Face records shared by every stage that lists faces (a dataset's, a pool's, the
anonymized photos'): the faces.parquet schema, aligned crops, content hashes, the
per-photo detection cache. One schema, so embed_faces works on any of them."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.align import align_face
from bench.detectors.base import Detection

FACE_COLUMNS = [
    "photo", "face_id", "face_index", "detector", "x1", "y1", "x2", "y2", "score",
    "landmarks", "face_size", "aligned", "crop", "crop_sha256", "found_by",
]


def face_row(photo: str, face_id: str, index: int, detector: str, det: Detection) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in det.box)
    return {
        "photo": photo, "face_id": face_id, "face_index": index, "detector": detector,
        "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": round(float(det.score), 5),
        "landmarks": [round(float(v), 2) for v in det.landmarks.reshape(-1)],
        "face_size": round(det.size, 2), "aligned": False, "crop": "", "crop_sha256": "",
        # which detectors found it: an ensemble's members, else the detector itself
        "found_by": ",".join(det.found_by) if det.found_by else detector,
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


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_SLUG = 120  # file names stay well under the 255-byte limit of common file systems


def slug(photo: str) -> str:
    """A file-name-safe id for a photo id (its path in the dataset), unique per photo id.

    Names made only of [A-Za-z0-9._-] are kept as they are. Any other name (a sub-folder,
    a space, non-ASCII letters) or an overlong one gets its unsafe runs replaced by "_" and
    "~" plus 8 hex digits of the name's sha256 appended: "~" never occurs in a kept name, so
    `x/a.jpg` -> `x_a.jpg~1a2b3c4d` cannot collide with `x_a.jpg`, nor `张三.jpg` with `李四.jpg`.
    """
    safe = _UNSAFE.sub("_", photo)
    if safe == photo and len(photo) <= _MAX_SLUG and photo not in ("", ".", ".."):
        return photo
    return f"{safe[:_MAX_SLUG]}~{hashlib.sha256(photo.encode('utf-8')).hexdigest()[:8]}"


def remove_stale_crops(crops_dir: Path, keep: set[str]) -> None:
    if crops_dir.is_dir():
        for path in crops_dir.glob("*.png"):
            if path.name not in keep:
                path.unlink()


# Detector settings that say where its files are or how its work is scheduled, not what it
# finds: left out of the cache key, which hashes the weight files' contents instead.
NOT_IN_KEY = ("model_paths", "landmarks_model", "threads")


def detector_key(node, detector, code: tuple[str, ...] = (), max_side: int | None = None) -> str:
    """Cache folder name: the detector's name plus a hash of its settings (`node`: its config,
    or a dict holding it, e.g. with the turns a cache covers), of the sha256 of each of its
    weight files present here and of its code (bench.provenance.code_sha256 of its class's
    module, an ensemble's members' too, of bench.images, which decodes the photo files the
    caches are keyed by, and of the modules named in `code`: what else computes what the
    cache stores, e.g. the turning and merging of a turned detection).

    Two runs that compute the same detections share the folder: the same weights read from
    another path (BENCH_SHARED, a copy of ../shared) or a different `threads` give the same
    key. A changed setting or weight file, or a weight file that appears (an ensemble finds
    more faces once a member's weights do), gives a new one. Keys in NOT_IN_KEY are dropped
    at every depth (an ensemble's members too). `max_side`: the photos are detected scaled
    down to it (bench.detectors.detect_scaled), a key of its own.
    """
    from bench.provenance import code_sha256

    node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    if max_side:
        node, code = {"detector": node, "detect_max_side": int(max_side)}, (*code, "bench.detectors")
    present = [resultsio.file_sha256(p) for p in detector.weights() if Path(p).is_file()]
    members = getattr(detector, "members", None) or {}
    # bench.images too: most detection caches are keyed by the photo file's sha256, and what
    # the detector sees of that file is load_photo's decoding (EXIF turn, modes, size cap)
    source = code_sha256(type(detector).__module__, *(type(m).__module__ for m in members.values()),
                         "bench.images", *code)
    settings = json.dumps([_without_locations(node), present, source], sort_keys=True, default=str)
    return f"{detector.name}-{hashlib.sha256(settings.encode()).hexdigest()[:12]}"


def _without_locations(value):
    if isinstance(value, dict):
        return {k: _without_locations(v) for k, v in value.items() if k not in NOT_IN_KEY}
    if isinstance(value, (list, tuple)):
        return [_without_locations(v) for v in value]
    return value


def weights_manifest(component) -> list[dict]:
    return [
        {"path": str(p), "sha256": resultsio.file_sha256(p) if p.is_file() else "absent"}
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
                found_by = data["found_by"] if "found_by" in data.files else [""] * len(data["scores"])
                return _detections(data["boxes"], data["scores"], data["landmarks"], found_by)
        except (OSError, ValueError, KeyError):  # a damaged cache entry is recomputed
            return None

    def detect_many(self, detector, shas: list[str], images: list[np.ndarray],
                    max_side: int | None = None) -> list[list[Detection]]:
        """The detections of each photo (its file's sha256 in `shas`, its BGR pixels in
        `images`): from this cache, else from one `detector.detect_many` call over the photos
        it lacks (a detector with `parallel` > 1 scans several at once), which are then stored.
        `max_side`: photos are detected scaled down to it (bench.detectors.detect_scaled); a
        cache holds one setting, so its folder's name says which (detector_key's `max_side`)."""
        from bench.detectors import detect_scaled

        found = [self.get(sha) for sha in shas]
        todo = [i for i, faces in enumerate(found) if faces is None]
        if todo:
            for i, faces in zip(todo, detect_scaled(detector, [images[i] for i in todo], max_side)):
                self.put(shas[i], faces)
                found[i] = faces
        return found

    def put(self, sha: str, detections: list[Detection]) -> list[Detection]:
        """Stores the detections of one photo; returns them as get() will (float32 values)."""
        arrays = {
            "boxes": np.array([d.box for d in detections], dtype=np.float32).reshape(-1, 4),
            "scores": np.array([d.score for d in detections], dtype=np.float32),
            "landmarks": np.array([d.landmarks for d in detections], dtype=np.float32).reshape(-1, 5, 2),
            "found_by": np.array([",".join(d.found_by) for d in detections], dtype=np.str_).reshape(-1),
        }
        resultsio.write_npz(self.folder / f"{sha}.npz", **arrays)
        return _detections(**arrays)


def _detections(boxes, scores, landmarks, found_by) -> list[Detection]:
    return [Detection(box=b, score=float(s), landmarks=l, found_by=tuple(f.split(",")) if f else ())
            for b, s, l, f in zip(boxes, scores, landmarks, found_by)]
