"""The embeddings file format, shared by the embed stage (writer) and every reader.

<results_dir>/<dataset>/embeddings/<recognizer>.parquet holds one row per face of
faces.parquet, in its order: face_id (str), status ("ok" or "n/a: <reason>") and
embedding (list<float32>, empty unless status is "ok"). `read_embeddings(folder, name)`
reads one as `Embeddings` (ids, matrix, per-face status, or why the recognizer has none),
the form the evaluate and baseline stages compare.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench import resultsio
from bench.status import EMBEDDING_NOT_ALIGNED

OK = "ok"
COLUMNS = ["face_id", "status", "embedding"]
SCHEMA = pa.schema([("face_id", pa.string()), ("status", pa.string()), ("embedding", pa.list_(pa.float32()))])


def na(reason: str) -> str:
    """The status of a face without an embedding: "n/a: <reason>" (idempotent)."""
    reason = str(reason)
    return reason if reason.startswith("n/a") else f"n/a: {reason}"


def write_embeddings(table: pd.DataFrame, path: Path) -> Path:
    """Writes an embeddings table atomically with the fixed schema (list<float32>)."""
    embeddings = [np.asarray(e, dtype=np.float32).reshape(-1) for e in table["embedding"]]
    arrow = pa.Table.from_pydict({
        "face_id": [str(f) for f in table["face_id"]],
        "status": [str(s) for s in table["status"]],
        "embedding": embeddings,
    }, schema=SCHEMA)
    with resultsio.atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)
    return Path(path)


def load_embeddings(path) -> tuple[list[str], np.ndarray, pd.Series]:
    """Reads one recognizer's embeddings file.

    Returns:
        face_ids: the ids of the faces whose status is "ok", in file order.
        matrix: (len(face_ids), D) float32, row i is face_ids[i]'s embedding
            ((0, 0) when no face has one).
        status: every face's status ("ok" or "n/a: <reason>"), indexed by face_id, in file order.
    """
    table = pq.read_table(path).to_pandas()
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path} is not an embeddings file: it lacks {', '.join(missing)}")
    status = pd.Series(table.status.astype(str).to_numpy(), index=table.face_id.astype(str).to_numpy(), name="status")
    ok = (table.status == OK).to_numpy()
    face_ids = table.face_id[ok].astype(str).tolist()
    rows = [np.asarray(e, dtype=np.float32) for e in table.embedding[ok]]
    matrix = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    return face_ids, matrix, status


@dataclass(frozen=True)
class Embeddings:
    """One recognizer's embeddings of a set of faces, or why there are none.

    ids: face ids; matrix: (len(ids), D); status: per face "ok" or "n/a: <reason>" (the
    embed stage's status column). `unavailable` holds the reason when the whole recognizer
    has nothing (e.g. its weights are missing).
    """

    ids: tuple[str, ...] = ()
    matrix: np.ndarray | None = None
    status: tuple[str, ...] = ()
    unavailable: str | None = None

    @classmethod
    def of(cls, face_ids, matrix, status=None) -> "Embeddings":
        """From face ids, their (N, D) matrix and per-face statuses (default: all "ok")."""
        ids = tuple(str(i) for i in face_ids)
        status = tuple(str(s) for s in status) if status is not None else (OK,) * len(ids)
        matrix = np.asarray(matrix, dtype=np.float32)
        matrix = matrix.reshape(len(ids), -1) if matrix.size else np.zeros((len(ids), 0), np.float32)
        return cls(ids, matrix, status)

    @classmethod
    def missing(cls, reason: str) -> "Embeddings":
        return cls(unavailable=na(reason))

    def index(self) -> dict[str, int]:
        return {face_id: i for i, face_id in enumerate(self.ids)}


def read_embeddings(folder: Path, recognizer: str) -> Embeddings:
    """<folder>/<recognizer>.parquet (bench.embeddings format) as Embeddings of every face
    in it, or Embeddings.missing(why) when there is no file or no face has an embedding for
    one shared reason (e.g. the recognizer's weights are missing; faces that could not be
    aligned have their own reason and do not hide it)."""
    path = folder / f"{recognizer}.parquet"
    if not path.is_file():
        return Embeddings.missing(f"no embeddings at {path}")
    ok_ids, ok_matrix, status = load_embeddings(path)  # status: every face's, indexed by face_id
    reasons = set(status.tolist())
    shared = reasons - {EMBEDDING_NOT_ALIGNED}  # a per-face reason, never the recognizer's
    if OK not in reasons and len(shared) <= 1:
        return Embeddings.missing(shared.pop() if shared else EMBEDDING_NOT_ALIGNED)
    row_of = {face_id: i for i, face_id in enumerate(ok_ids)}
    matrix = np.zeros((len(status), ok_matrix.shape[1] if len(ok_ids) else 0), np.float32)
    for k, face_id in enumerate(status.index):
        if face_id in row_of:
            matrix[k] = ok_matrix[row_of[face_id]]
    return Embeddings.of(status.index.tolist(), matrix, status.tolist())
