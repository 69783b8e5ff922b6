"""Stage `embed`: every aligned face of a dataset, embedded once per recognizer.

Reads:  <results_dir>/<dataset>/faces.parquet (the faces stage: photo, face_id, landmarks,
        aligned), the photos under dataset.path, each recognizer's weights (conf/recognizer/).
Writes: <results_dir>/<dataset>/embeddings/<recognizer>.parquet   face_id, status, embedding
        (bench.embeddings; one row per face, in faces.parquet order)
        <results_dir>/<dataset>/embeddings/provenance.json         weights paths + sha256
Cache:  <results_dir>/cache/embeddings/<recognizer>-<key>/<crop sha256>.npz, where key hashes
        the weights' sha256 and the recognizer's settings, so a rerun embeds only new faces.

Each recognizer gets its own crop: the face is re-aligned from the original photo with the
faces stage's landmarks at the recognizer's input size and margin. A face that cannot be
embedded gets status "n/a: <reason>" (never a number); a recognizer without weights gets
"n/a: weights not found at <paths>" on every row, and the run goes on.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from bench.datasets import dataset_root
from bench import resultsio
# The embedding code lives in bench.embedding_runner (stages share code through library
# modules, never through each other); re-exported here because it is this stage's public API.
from bench.embedding_runner import NOT_ALIGNED, describe, embed_faces, embed_with  # noqa: F401
from bench.embeddings import load_embeddings, write_embeddings  # noqa: F401 (load_embeddings: public API)
from bench.errors import BenchError
from bench.layout import DatasetLayout
from bench.provenance import record
from bench.recognizers import build_recognizer, selected_recognizers

log = logging.getLogger(__name__)


def outputs(cfg: DictConfig) -> Path:
    """The embeddings folder of cfg.dataset."""
    return DatasetLayout.from_config(cfg).embeddings


def run(cfg: DictConfig) -> Path:
    """Embeds every aligned face of cfg.dataset with every recognizer in cfg.recognizers."""
    faces_path = DatasetLayout.from_config(cfg).faces
    if not faces_path.is_file():
        raise BenchError(f"{faces_path} not found: run `python -m bench faces dataset={cfg.dataset.name}` first")
    faces = pd.read_parquet(faces_path)
    photo_root = dataset_root(cfg.dataset)
    out = outputs(cfg)
    summary = {}
    for name in selected_recognizers(cfg):
        recognizer = build_recognizer(name, cfg)
        table = embed_with(recognizer, faces, photo_root, cfg)
        write_embeddings(table, out / f"{name}.parquet")
        summary[name] = describe(recognizer, table, cfg)
        log.info("%s: %s", name, summary[name]["status"])
    resultsio.write_json(record(
        cfg, "embed", recognizers=summary,
        faces={"path": str(faces_path), "sha256": resultsio.sha256_file(faces_path), "rows": len(faces)},
    ), out / "provenance.json")
    return out
