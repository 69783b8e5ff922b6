"""Embedding faces with a recognizer: the code every stage that needs embeddings shares
(the embed, evaluate and leaks stages, the query spaces' features, calibration).

`embed_faces(faces, photo_root, name, cfg)` / `embed_with(recognizer, ...)` re-align each
face from its photo with the table's landmarks at the recognizer's input size and margin,
then embed it. A face that cannot be embedded gets status "n/a: <reason>" (never a number);
a recognizer without weights gets "n/a: weights not found at <paths>" on every row.
Cache: <results_dir>/cache/embeddings/<recognizer>-<key>/<crop sha256>.npz, where key hashes
the weights' sha256, the recognizer's settings and its code, so a rerun embeds only new crops.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.align import align_face
from bench.datasets import dataset_root
from bench.embeddings import OK, na, write_embeddings
from bench.errors import BenchError, ImageLoadError, WeightsNotFound
from bench.facetable import content_hash
from bench.images import DEFAULT_MAX_PIXELS, load_photo
from bench.progress import chunks, progress
from bench.provenance import code_sha256, record
from bench.recognizers import build_recognizer, recognizer_config, selected_recognizers
from bench.recognizers.base import METRICS, Recognizer
from bench.status import EMBEDDING_NOT_ALIGNED
from bench.layout import DatasetLayout, cache_dir

log = logging.getLogger(__name__)

NOT_ALIGNED = EMBEDDING_NOT_ALIGNED
# Settings that do not change an embedding, left out of the cache key.
NOT_IN_KEY = ("thresholds", "threshold_source", "batch_size", "deepface_home", "model_paths")


def embed_dataset(cfg: DictConfig) -> Path:
    """Embeds every aligned face of cfg.dataset (its faces.parquet) with every recognizer in
    cfg.recognizers: <dataset>/embeddings/<recognizer>.parquet (bench.embeddings: one row per
    face, in faces.parquet order) and provenance.json; returns the folder. The embed stage's
    work, here because the baseline stage embeds the identities set with it too.

    Raises:
        BenchError: no faces.parquet for cfg.dataset (the faces stage has not run).
    """
    layout = DatasetLayout.from_config(cfg)
    faces_path, out = layout.faces, layout.embeddings
    if not faces_path.is_file():
        raise BenchError(f"{faces_path} not found: run `python -m bench faces dataset={cfg.dataset.name}` first")
    faces = pd.read_parquet(faces_path)
    photo_root = dataset_root(cfg.dataset)
    summary = {}
    recognizers = [build_recognizer(name, cfg) for name in selected_recognizers(cfg)]  # configs: nothing loaded
    # each photo decoded once for every recognizer; each model loaded in turn, then dropped
    tables = embed_many(recognizers, faces, photo_root, cfg, rebuild=lambda name: build_recognizer(name, cfg))
    for recognizer in recognizers:
        name, table = recognizer.name, tables[recognizer.name]
        write_embeddings(table, out / f"{name}.parquet")
        summary[name] = describe(recognizer, table, cfg)
        log.info("%s: %s", name, summary[name]["status"])
    resultsio.write_json(record(
        cfg, "embed", recognizers=summary,
        faces={"path": str(faces_path), "sha256": resultsio.sha256_file(faces_path), "rows": len(faces)},
    ), out / "provenance.json")
    return out


def embed_faces(faces: pd.DataFrame, photo_root: Path, recognizer_name: str, cfg: DictConfig) -> pd.DataFrame:
    """Embeds any faces table with one recognizer.

    Args:
        faces: columns face_id, photo (relative to photo_root), landmarks (10 floats, the
            five (x, y) points), aligned (bool).
        photo_root: the folder the photo paths are relative to.
        recognizer_name: a conf/recognizer/ name.
        cfg: the run's config (paths, results_dir for the cache, recognizer_overrides).

    Returns:
        DataFrame face_id, status ("ok" / "n/a: <reason>"), embedding (float32 array, empty
        when n/a), one row per input row in input order. Never raises for a missing model or
        a bad face: those become n/a rows.
    """
    return embed_with(build_recognizer(recognizer_name, cfg), faces, Path(photo_root), cfg)


def embed_with(recognizer: Recognizer, faces: pd.DataFrame, photo_root: Path, cfg: DictConfig) -> pd.DataFrame:
    """embed_faces with an already built recognizer."""
    return embed_many([recognizer], faces, photo_root, cfg)[recognizer.name]


def embed_many(recognizers, faces: pd.DataFrame, photo_root: Path, cfg: DictConfig,
               chunk_crops: int = 4096, rebuild=None) -> dict[str, pd.DataFrame]:
    """embed_with for several recognizers at once, decoding each photo once: each face is
    aligned once per distinct (input_size, margin) of the recognizers, not once per recognizer.

    Args:
        recognizers: built Recognizers (distinct names); loaded on first use.
        faces, photo_root, cfg: as embed_faces.
        chunk_crops: at most about this many aligned crops are held at once (faces x
            distinct geometries); photos are taken in order, whole, chunk by chunk.
        rebuild: name -> a new Recognizer of that name (not loaded); when given, each chunk's
            embeddings come from a fresh copy, dropped before the next recognizer loads, so
            one model is in memory at a time (`recognizers` then only give names and
            geometries, and are never loaded).

    Returns:
        {recognizer name: embed_with's table}, rows in `faces` order; the same tables as
        embed_with on each recognizer alone.
    """
    recognizers = list(recognizers)
    n = len(faces)
    status = {r.name: [NOT_ALIGNED] * n for r in recognizers}
    vectors = {r.name: [np.zeros(0, np.float32)] * n for r in recognizers}
    geometries: dict[tuple[int, float], list[Recognizer]] = {}
    for recognizer in recognizers:
        geometries.setdefault((recognizer.input_size, recognizer.margin), []).append(recognizer)
    caches: dict[str, EmbeddingCache | str] = {}

    def cache_of(recognizer: Recognizer) -> EmbeddingCache | str:
        """Its cache, or "n/a: <why>" (no weights: nothing to key the cache on, nothing to
        run); looked up once, and only for a recognizer with something to embed."""
        if recognizer.name not in caches:
            try:
                caches[recognizer.name] = EmbeddingCache(cache_folder(recognizer, cfg))
            except BenchError as err:
                caches[recognizer.name] = na(str(err))
        return caches[recognizer.name]

    for rows in photo_chunks(faces, max(1, chunk_crops // max(1, len(geometries)))):
        crops, failed = crop_faces(faces, rows, photo_root, list(geometries), cfg)
        for geometry, members in geometries.items():
            for recognizer in members:
                name = recognizer.name
                for row, reason in failed[geometry].items():
                    status[name][row] = reason
                if not crops[geometry]:
                    continue
                cache = cache_of(recognizer)
                if isinstance(cache, str):
                    for row in crops[geometry]:
                        status[name][row] = cache
                else:
                    model = rebuild(name) if rebuild is not None else recognizer
                    fill(model, crops[geometry], cache, status[name], vectors[name])
                    del model  # with rebuild: the only reference to the loaded copy
        del crops
    ids = faces["face_id"].astype(str).to_numpy()
    return {r.name: pd.DataFrame({"face_id": ids, "status": status[r.name], "embedding": vectors[r.name]},
                                 columns=["face_id", "status", "embedding"]) for r in recognizers}


def embed_crops(recognizer: Recognizer, crops: list[np.ndarray], cfg: DictConfig,
                cache: "EmbeddingCache | None" = None) -> list[tuple[str, np.ndarray]]:
    """(status, embedding) of each aligned crop ((input_size, input_size, 3) uint8 RGB) held
    in memory, through the same cache as embed_many (bench.guard's checks of a fake before it
    is written; `cache`: the recognizer's EmbeddingCache when the caller keeps it, else found
    from `cfg`). Never raises: a missing model or a failed batch is "n/a: <reason>"."""
    status = [NOT_ALIGNED] * len(crops)
    vectors = [np.zeros(0, np.float32)] * len(crops)
    if cache is None:
        try:
            cache = EmbeddingCache(cache_folder(recognizer, cfg))
        except BenchError as err:
            return [(na(str(err)), vectors[0])] * len(crops)
    fill(recognizer, dict(enumerate(crops)), cache, status, vectors, quiet=True)
    return list(zip(status, vectors))


def photo_chunks(faces: pd.DataFrame, max_faces: int) -> list[dict[str, list[int]]]:
    """The aligned faces' rows grouped by photo ({photo: [row, ...]}, first-seen order), in
    chunks of whole photos holding about max_faces faces (a photo with more is one chunk)."""
    rows = np.flatnonzero(faces["aligned"].fillna(False).astype(bool).to_numpy())
    by_photo: dict[str, list[int]] = {}
    photos = faces["photo"].astype(str).to_numpy()
    for row in rows:
        by_photo.setdefault(photos[row], []).append(int(row))
    chunks_out: list[dict[str, list[int]]] = [{}]
    size = 0
    for photo, photo_rows in by_photo.items():
        if size and size + len(photo_rows) > max_faces:
            chunks_out.append({})
            size = 0
        chunks_out[-1][photo] = photo_rows
        size += len(photo_rows)
    return chunks_out


def crop_faces(faces: pd.DataFrame, by_photo: dict[str, list[int]], photo_root: Path, geometries, cfg: DictConfig
               ) -> tuple[dict, dict]:
    """Each photo of `by_photo` decoded once, its faces aligned at every (input_size, margin).

    Returns ({geometry: {row: aligned crop}}, {geometry: {row: "n/a: <reason>"}}) for the
    faces that could and could not be cropped (photo unreadable, alignment failed).
    """
    max_pixels = int((cfg.get("faces") or {}).get("max_image_pixels", DEFAULT_MAX_PIXELS))
    crops: dict = {g: {} for g in geometries}
    failed: dict = {g: {} for g in geometries}
    label = "align faces" if len(geometries) != 1 else f"align faces at {geometries[0][0]} px"
    for photo, photo_rows in progress(by_photo.items(), label, total=len(by_photo), unit="photo"):
        try:
            rgb = load_photo(photo_root / photo, max_pixels=max_pixels).rgb
        except ImageLoadError as err:
            for geometry in geometries:
                failed[geometry].update({row: na(f"photo unreadable: {err}") for row in photo_rows})
            continue
        for row in photo_rows:
            try:
                landmarks = np.asarray(faces["landmarks"].iloc[row], dtype=np.float32).reshape(5, 2)
            except ValueError as err:
                for geometry in geometries:
                    failed[geometry][row] = na(f"alignment failed: {err}")
                continue
            for geometry in geometries:
                size, margin = geometry
                try:
                    crops[geometry][row] = align_face(rgb, landmarks, size=size, margin=margin)
                except ValueError as err:
                    failed[geometry][row] = na(f"alignment failed: {err}")
    return crops, failed


def fill(recognizer: Recognizer, crops: dict[int, np.ndarray], cache: "EmbeddingCache",
         status: list[str], vectors: list[np.ndarray], quiet: bool = False) -> None:
    """Embeddings for `crops` from the cache, else from the recognizer in batches (`quiet`: no
    progress bars, for one crop at a time)."""
    pending: list[tuple[int, str]] = []
    items = crops.items() if quiet else progress(crops.items(), f"{recognizer.name}: embedding cache", total=len(crops))
    for row, crop in items:
        key = content_hash(crop)
        cached = cache.get(key)
        if cached is None:
            pending.append((row, key))
        else:
            status[row], vectors[row] = OK, cached
    if not pending:
        return
    try:
        recognizer.prepare()
    except Exception as err:  # noqa: BLE001 - any load failure is an n/a for this recognizer, not a crash
        reason = na(str(err) if isinstance(err, WeightsNotFound) else f"could not load the model: {err}")
        log.warning("%s: %s", recognizer.name, reason)
        for row, _ in pending:
            status[row] = reason
        return
    batches = ([pending[i:i + recognizer.batch_size] for i in range(0, len(pending), recognizer.batch_size)] if quiet
               else chunks(pending, recognizer.batch_size, f"{recognizer.name}: embed"))
    for chunk in batches:
        try:
            out = recognizer.embed(np.stack([crops[row] for row, _ in chunk]))
        except Exception as err:  # noqa: BLE001 - one failing batch must not sink the run
            log.warning("%s: a batch of %d faces failed: %s", recognizer.name, len(chunk), err)
            for row, _ in chunk:
                status[row] = na(f"embedding failed: {err}")
            continue
        for (row, key), vector in zip(chunk, out):
            if not np.isfinite(vector).all():
                status[row] = na("the model returned a non-finite embedding")
                continue
            cache.put(key, vector)
            status[row], vectors[row] = OK, np.asarray(vector, dtype=np.float32)


def used_weights(recognizer: Recognizer) -> Path:
    """The weight file the recognizer loads (its first existing candidate)."""
    for path in recognizer.weights():
        if Path(path).is_file():
            return Path(path)
    recognizer.prepare()  # raises the recognizer's own WeightsNotFound, naming every path
    raise WeightsNotFound(recognizer.name, recognizer.weights())


def cache_folder(recognizer: Recognizer, cfg: DictConfig) -> Path:
    """<results_dir>/cache/embeddings/<name>-<hash of weights sha256, settings and code>: the
    code is the recognizer's class's module and what it imports (bench.provenance.code_sha256),
    so a changed preprocessing embeds again."""
    weights_sha = resultsio.file_sha256(str(used_weights(recognizer)))
    settings = {k: v for k, v in recognizer_config(recognizer.name, cfg).items() if k not in NOT_IN_KEY}
    key = json.dumps({"weights": weights_sha, "settings": settings, "code": code_sha256(type(recognizer).__module__)},
                     sort_keys=True, default=str)
    return cache_dir(cfg.results_dir, "embeddings") / f"{recognizer.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def describe(recognizer: Recognizer, table: pd.DataFrame, cfg: DictConfig) -> dict:
    """The provenance entry of one recognizer: weights with sha256, settings, counts."""
    ok = table.status == OK
    thresholds = {}
    for metric in METRICS:
        try:
            thresholds[metric] = recognizer.threshold(metric)
        except (BenchError, KeyError) as err:
            thresholds[metric] = na(str(err))
    statuses = table.status[~ok].value_counts()
    return {
        "status": OK if ok.any() else (statuses.index[0] if len(statuses) else "no faces"),
        "class": type(recognizer).__name__,
        "config": recognizer_config(recognizer.name, cfg),
        "weights": [{"path": str(p), "sha256": resultsio.file_sha256(str(p)) if Path(p).is_file() else "absent"}
                    for p in recognizer.weights()],
        "input_size": recognizer.input_size,
        "margin": recognizer.margin,
        "thresholds": thresholds,
        "faces": len(table),
        "embedded": int(ok.sum()),
        "dim": int(len(table.embedding[ok].iloc[0])) if ok.any() else 0,
        "not_embedded": {str(k): int(v) for k, v in statuses.items()},
    }


class EmbeddingCache:
    """One npz per crop content hash. Never pickle."""

    def __init__(self, folder: Path):
        self.folder = folder

    def get(self, key: str) -> np.ndarray | None:
        path = self.folder / f"{key}.npz"
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return np.asarray(data["embedding"], dtype=np.float32)
        except (OSError, ValueError, KeyError):  # a damaged entry is recomputed
            return None

    def put(self, key: str, vector: np.ndarray) -> None:
        resultsio.write_npz(self.folder / f"{key}.npz", embedding=np.asarray(vector, dtype=np.float32))
