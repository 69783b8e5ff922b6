"""Stage `embed`: every aligned face of a dataset, embedded once per recognizer.

Reads:  <results_dir>/<dataset>/faces.parquet (the faces stage: photo, face_id, landmarks,
        aligned), the photos under dataset.path, each recognizer's weights (conf/recognizer/).
Writes: <results_dir>/<dataset>/embeddings/<recognizer>.parquet   face_id, status, embedding
        (bench.embeddings; one row per face, in faces.parquet order)
        <results_dir>/<dataset>/embeddings/provenance.json         weights paths + sha256
Cache:  <results_dir>/cache/embeddings/<recognizer>-<key>/<crop sha256>.npz, where key hashes
        the weights' sha256, the recognizer's settings and code, so a rerun embeds only new faces.

Each recognizer gets its own crop: the face is re-aligned from the original photo with the
faces stage's landmarks at the recognizer's input size and margin. A face that cannot be
embedded gets status "n/a: <reason>" (never a number); a recognizer without weights gets
"n/a: weights not found at <paths>" on every row, and the run goes on.
"""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

# The embedding code lives in bench.embedding_runner (stages share code through library
# modules, never through each other: the baseline stage embeds the identities set with it);
# re-exported here because it is this stage's public API.
from bench.embedding_runner import NOT_ALIGNED, describe, embed_dataset, embed_faces, embed_with  # noqa: F401
from bench.embeddings import load_embeddings, write_embeddings  # noqa: F401 (load_embeddings: public API)
from bench.layout import DatasetLayout


def outputs(cfg: DictConfig) -> Path:
    """The embeddings folder of cfg.dataset."""
    return DatasetLayout.from_config(cfg).embeddings


def run(cfg: DictConfig) -> Path:
    """Embeds every aligned face of cfg.dataset with every recognizer in cfg.recognizers
    (bench.embedding_runner.embed_dataset); returns the embeddings folder."""
    return embed_dataset(cfg)
