"""Evaluation: per-pair verification outcomes of anonymized faces, the input of Tables 1-3.

`evaluate_pairs(pairs, embeddings_by_recognizer, recognizers, metrics)` turns the anonymize
stage's pairs (one row per source face: its target and its result face) into a long table
with one row per (pair, recognizer, metric, comparison):

    recognizer, metric, comparison, strategy, space, generator, seed, source_face,
    other_face, threshold, distance, verified, status

comparison is "source_vs_target" (source face vs the synthetic target chosen for it) or
"source_vs_result" (source face vs the face re-detected in the anonymized photo). verified is
deepface's decision (distance <= the recognizer's default threshold for the metric); it is
<NA> and status says "n/a: <reason>" when a face has no embedding (recognizer without
weights, face not embedded, no result face), so that nothing is dropped silently.

Face ids are looked up per pair column: a recognizer's embeddings are either one
`Embeddings` for every column (ids unique across source, target and result faces) or a
mapping {pair column: Embeddings} (the anonymized photos keep their names, so a result face's
id may equal its source face's id).

`load_cell_outcomes(pairs, dirs, recognizers)` reads the embedding files of a cell's three
kinds of faces (see `EmbeddingDirs`, `default_embedding_dirs`) and calls evaluate_pairs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench.datasets import dataset_root
from bench import resultsio
from bench.layout import Cell, DatasetLayout
from bench.embedding_runner import embed_many
# Embeddings, read_embeddings and threshold_of live in library modules (the baseline stage and
# the leaks stage use them too); re-exported here, where the evaluation's API always had them.
from bench.embeddings import OK, Embeddings, na, read_embeddings, write_embeddings  # noqa: F401
from bench.errors import BenchError
from bench.facetable import FACE_COLUMNS, weights_manifest
from bench.provenance import record
from bench.recognizers import build_recognizer, selected_recognizers
from bench.verification import METRICS, pair_distances, threshold_of  # noqa: F401

log = logging.getLogger(__name__)

# comparison -> (left face column, right face column) of pairs.parquet
COMPARISONS = {
    "source_vs_target": ("source_face", "target"),
    "source_vs_result": ("source_face", "result_face"),
}
# Pair columns copied into every outcome row, with the value used when pairs.parquet lacks them.
PASS_THROUGH = {"strategy": "", "space": "", "generator": "", "seed": None}
OUTCOME_COLUMNS = [
    "recognizer", "metric", "comparison", *PASS_THROUGH, "source_face", "other_face",
    "threshold", "distance", "verified", "status",
]
SIDE_NAMES = {"source_face": "source face", "target": "target face", "result_face": "result face"}


def evaluate_pairs(
    pairs: pd.DataFrame,
    embeddings_by_recognizer: Mapping[str, Embeddings],
    recognizers: Iterable,
    metrics: Iterable[str] = METRICS,
    comparisons: Iterable[str] = tuple(COMPARISONS),
) -> pd.DataFrame:
    """Per-pair verification outcomes (the long table described in the module docstring).

    Args:
        pairs: one row per source face with columns source_face, target, result_face and
            optionally strategy, space, generator, seed.
        embeddings_by_recognizer: recognizer name -> Embeddings covering the faces of every
            pair column, or -> {pair column: Embeddings}. A recognizer absent from the
            mapping is n/a.
        recognizers: objects with `.name` and `.threshold(metric)` (bench Recognizers,
            built from conf/recognizer/ without loading weights).
        metrics: distance metrics (deepface's names).
        comparisons: keys of COMPARISONS.

    Returns:
        DataFrame with OUTCOME_COLUMNS, ordered by recognizer, metric, comparison, pair.
    """
    metrics, comparisons = list(metrics), list(comparisons)
    frames = []
    for recognizer in recognizers:
        embeddings = embeddings_by_recognizer.get(recognizer.name) or Embeddings.missing(
            f"no embeddings for {recognizer.name}")
        for comparison in comparisons:
            left, right = COMPARISONS[comparison]
            status, li, ri = pair_status(pairs, left, right, embeddings)
            for metric in metrics:
                threshold, why_not = threshold_of(recognizer, metric)
                metric_status = status if why_not is None else np.full(len(pairs), why_not, dtype=object)
                ok = np.flatnonzero(metric_status == OK)
                distances = np.full(len(pairs), np.nan)
                if len(ok):
                    distances[ok] = pair_distances(side(embeddings, left).matrix[li[ok]],
                                                   side(embeddings, right).matrix[ri[ok]], metric)
                verified = pd.array(distances <= threshold, dtype="boolean")
                verified[metric_status != OK] = pd.NA
                frames.append(outcome_frame(pairs, recognizer.name, metric, comparison, right,
                                            threshold, distances, verified, metric_status))
    if not frames:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    return pd.concat(frames, ignore_index=True)[OUTCOME_COLUMNS]


def side(embeddings, column: str) -> Embeddings:
    """The Embeddings in which `column`'s face ids are looked up."""
    if isinstance(embeddings, Embeddings):
        return embeddings
    return embeddings.get(column) or Embeddings.missing(f"no embeddings given for the {SIDE_NAMES.get(column, column)}s")


def pair_status(pairs: pd.DataFrame, left: str, right: str, embeddings):
    """(status per pair, row of the left face, row of the right face) in their matrices."""
    n = len(pairs)
    status = np.full(n, OK, dtype=object)
    rows = {left: np.zeros(n, dtype=np.int64), right: np.zeros(n, dtype=np.int64)}
    for column in (left, right):
        found = side(embeddings, column)
        if found.unavailable is not None:
            status[status == OK] = found.unavailable
            continue
        index, name = found.index(), SIDE_NAMES.get(column, column)
        values = pairs[column] if column in pairs.columns else pd.Series([None] * n, index=pairs.index)
        for k, face_id in enumerate(values.tolist()):
            if status[k] != OK:
                continue
            if face_id is None or (isinstance(face_id, float) and np.isnan(face_id)) or str(face_id) == "":
                status[k] = na(f"no {name}")
            elif str(face_id) not in index:
                status[k] = na(f"{name} not embedded")
            else:
                rows[column][k] = index[str(face_id)]
                face_status = found.status[rows[column][k]]
                if face_status != OK:
                    status[k] = na(f"{name}: {face_status.removeprefix('n/a: ')}")
    return status, rows[left], rows[right]


def outcome_frame(pairs, recognizer, metric, comparison, right, threshold, distances, verified, status):
    n = len(pairs)
    frame = {"recognizer": [recognizer] * n, "metric": [metric] * n, "comparison": [comparison] * n}
    for column, missing in PASS_THROUGH.items():
        frame[column] = pairs[column].to_numpy() if column in pairs.columns else [missing] * n
    frame["source_face"] = pairs["source_face"].astype(str).to_numpy()
    other = pairs[right] if right in pairs.columns else pd.Series([""] * n)
    frame["other_face"] = other.fillna("").astype(str).to_numpy()
    frame["threshold"] = np.full(n, float(threshold))
    frame["distance"] = distances
    frame["verified"] = verified
    frame["status"] = status.astype(str)
    return pd.DataFrame(frame)


# ---- reading one cell's files ---------------------------------------------------------------

@dataclass(frozen=True)
class EmbeddingDirs:
    """Folders holding <recognizer>.parquet embedding files (the embed stage's format), one
    per kind of face in a pairs.parquet: the dataset's source faces, the pool's targets and
    the cell's re-detected result faces."""

    source: Path
    target: Path
    result: Path


def default_embedding_dirs(cell: Cell) -> EmbeddingDirs:
    """Where the evaluate stage puts each kind of face's embeddings: inside the cell
    (<cell>/embeddings/{sources,targets,results}), so that cells running at once never
    write the same file; the content-addressed embedding cache makes the repeats cheap."""
    return EmbeddingDirs(source=cell.embeddings / "sources", target=cell.embeddings / "targets",
                         result=cell.embeddings / "results")


def load_cell_outcomes(pairs: pd.DataFrame, dirs: EmbeddingDirs, recognizers, metrics=METRICS) -> pd.DataFrame:
    """evaluate_pairs on one cell's pairs, with the embeddings read from `dirs`."""
    embeddings = {
        recognizer.name: {column: read_embeddings(folder, recognizer.name) for column, folder in
                          (("source_face", dirs.source), ("target", dirs.target), ("result_face", dirs.result))}
        for recognizer in recognizers
    }
    return evaluate_pairs(pairs, embeddings, recognizers, metrics)


# ---- the stage ---------------------------------------------------------------------------

def outcomes_path(cell: Cell) -> Path:
    return cell.outcomes


def run(cfg: DictConfig) -> Path:
    """Stage `evaluate` for one cell: embeds the cell's source, target and result faces with
    every selected recognizer, then verifies each pair.

    Reads:  the cell's pairs.parquet and faces.parquet (anonymize stage), the dataset's
            faces.parquet, the pool's faces.parquet (manifold stage), the photos.
    Writes: <cell>/embeddings/{sources,targets,results}/<recognizer>.parquet,
            <cell>/outcomes.parquet (evaluate_pairs' long table), <cell>/evaluate.provenance.json
    """
    cell = Cell.from_config(cfg)
    if not cell.pairs.is_file():
        raise BenchError(f"{cell.pairs} not found: run `python -m bench anonymize` for this cell first")
    pairs = pd.read_parquet(cell.pairs)
    dirs = default_embedding_dirs(cell)
    face_sets = {
        dirs.source: (subset(DatasetLayout(cell.results_dir, cell.dataset).faces, pairs.source_face), dataset_root(cfg.dataset)),
        dirs.target: target_faces(cfg, pairs),
        dirs.result: (subset(cell.faces, pairs.result_face), cell.root),
    }
    names = selected_recognizers(cfg)
    recognizers = [build_recognizer(name, cfg) for name in names]
    for folder, (faces, root) in face_sets.items():  # each photo decoded once for every recognizer
        for name, table in embed_many(recognizers, faces, root, cfg).items():
            write_embeddings(table, folder / f"{name}.parquet")
    summary = {recognizer.name: {"weights": weights_manifest(recognizer)} for recognizer in recognizers}
    outcomes = load_cell_outcomes(pairs, dirs, recognizers, cfg.baseline.metrics)
    resultsio.write_parquet(outcomes, outcomes_path(cell))
    resultsio.write_json(record(cfg, "evaluate", cell=str(cell.root), recognizers=summary,
                                pairs={"path": str(cell.pairs), "sha256": resultsio.sha256_file(cell.pairs)}),
                         cell.evaluate_provenance)
    log.info("%s: %d outcome rows for %d pairs x %d recognizers -> %s",
             cell.generator, len(outcomes), len(pairs), len(names), outcomes_path(cell))
    return outcomes_path(cell)


def subset(faces_path: Path, ids: pd.Series) -> pd.DataFrame:
    """The rows of a faces table whose face_id the pairs name, in table order."""
    faces = pd.read_parquet(faces_path)
    wanted = set(ids.dropna().astype(str)) - {""}
    return faces[faces.face_id.astype(str).isin(wanted)].reset_index(drop=True)


def target_faces(cfg: DictConfig, pairs: pd.DataFrame) -> tuple[pd.DataFrame, Path]:
    """The pool faces chosen as targets, and the folder their photos are relative to."""
    from bench.layout import pool_outputs
    from bench.pools.base import build_pool

    faces_path = pool_outputs(cfg).faces
    if not faces_path.is_file():  # obfuscations run without a pool: no targets to embed
        return pd.DataFrame(columns=FACE_COLUMNS), Path(".")
    return subset(faces_path, pairs.target), build_pool(cfg).path
