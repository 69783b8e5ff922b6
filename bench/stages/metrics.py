"""Stage `metrics`: every number of the result tables in one JSON file, for the regression
gate (`python -m bench check`, bench.gate) and for `dvc metrics show` / `dvc metrics diff`.

Reads result files only (no photo, no model), for the configured dataset and pool:
    <results_dir>/tables/<dataset>/<pool>/verification/<generator>/<table>.csv   Tables 1-3
    <results_dir>/tables/<dataset>/<pool>/verification/tables.provenance.json    the table specs
        they were written with (each table's distance, query spaces, column -> query strategy)
    <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>.csv           Fig. 4's table
    <results_dir>/<dataset>/photos.csv                        the face inventory (n_faces per photo)
    each cell's photos.csv, provenance.json, failures.csv (anonymize) and metrics.json (leaks)
Writes: <results_dir>/metrics.json (bench.layout.metrics_json)

Schema (nested; `dvc metrics` and the gate flatten it with "." between keys). D = dataset,
P = pool, G = generator, S = the space targets were queried in (conf/metric), Q = the query
strategy (conf/query), R = recognizer (or "average", the tables' unweighted mean, whose `n`
is the number of recognizers averaged), M = distance (cosine, euclidean_l2):

    verification.D.P.G.S.Q.R.M.source_vs_target.verified_fraction   fraction of pairs verified
    verification.D.P.G.S.Q.R.M.source_vs_target.n                   as the same person (0-1), pairs
    verification.D.P.G.S.Q.R.M.source_vs_result.verified_fraction   (lower = better anonymization)
    verification.D.P.G.S.Q.R.M.source_vs_result.n
    quality.D.P.G.S.Q.<column>         every figure of the quality table: psnr (dB), ssim (0-1),
                                       rmse (0-1 intensities), fid, redetection_rate, n, ...
    cells.D.P.G.S.Q.<count>            the cell's face accounting (photos.csv, failures.csv):
        inventory_faces, faces, swapped, fallback, audit_found, audit_covered, left_real,
        photos_left_real, unaccounted_faces, failures, status
    cells.D.P.G.S.Q.leaks.<count>      the leak check (metrics.json): faces_found,
        unchanged_faces, leaking_faces, missing_output; against chance (bench.chance):
        leaking_faces_vs_chance, too_small_to_tell, verified_at_chance,
        leaks_flagged_too_few_impostors

A value without a number is the table's "n/a: <reason>" string (`n` is then 0). A cell that
was not run (no outcomes.parquet / pairs.parquet) is left out of every section rather than
listed as hundreds of "n/a: no pairs". Floats are rounded to ROUND_DIGITS and keys sorted, so
the same inputs give a byte-identical file.
"""
from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.errors import BenchError
from bench.layout import Cell, DatasetLayout, find_cells as layout_find_cells, metrics_json, quality_files, verification_dir, verification_provenance
from bench.tablespec import TableSpec, table_specs
from bench.status import READABLE
# The dotted metric names (`dvc metrics show`'s) are the gate's too: a library function.
from bench.resultsio import flatten

log = logging.getLogger(__name__)

ROUND_DIGITS = 6  # the tables hold 4 decimals; 6 keeps every digit they have and no float noise
NA = "n/a"
# The anonymize stage's photos.csv columns summed per cell (bench.stages.anonymize.PHOTO_COLUMNS).
PHOTO_COUNTS = ("faces", "swapped", "fallback", "audit_found", "audit_covered", "left_real")
# The leak check's totals kept per cell (bench.stages.leaks.summarize).
LEAK_COUNTS = ("faces_found", "unchanged_faces", "leaking_faces", "leaking_faces_vs_chance", "too_small_to_tell",
               "verified_at_chance", "leaks_flagged_too_few_impostors")
# The closed loop's counts of a cell (anonymize provenance `counts`, bench.guard).
GUARD_COUNTS = ("guard_retried", "guard_fallback", "guard_still_verified", "guard_unchecked", "guard_identified",
                "guard_still_identified")


def run(cfg: DictConfig) -> Path:
    """Writes <results_dir>/metrics.json for the configured dataset and pool; returns its path.

    Raises:
        BenchError: when the tables stage has not run (no tables.provenance.json), or a
            cell's photos.csv and provenance.json disagree (stale files: rerun anonymize).
    """
    results, dataset, pool = Path(cfg.results_dir), str(cfg.dataset.name), str(cfg.pool.name)
    metrics = collect(results, dataset, pool)
    path = resultsio.write_json(metrics, metrics_json(results))
    log.info("%d metrics of %d cells (%s, pool %s) -> %s", len(flatten(metrics)),
             len(flatten(metrics["cells"], depth=5)), dataset, pool, path)
    return path


def collect(results: Path, dataset: str, pool: str) -> dict:
    """The metrics dict of one dataset and pool: {"verification": ..., "quality": ..., "cells": ...}."""
    cells = find_cells(results, dataset, pool)
    faces = sum(inventory(results, dataset).values())
    return {
        "verification": nest(dataset, pool, verification_metrics(results, dataset, pool, cells)),
        "quality": nest(dataset, pool, quality_metrics(results, dataset, pool, cells)),
        "cells": nest(dataset, pool, {(c.generator, c.metric, c.query + (f"-{c.guard}" if c.guard else "")):
                                      cell_metrics(c, faces) for c in cells}),
    }


def find_cells(results: Path, dataset: str, pool: str) -> list[Cell]:
    """Every cell folder of the dataset and pool that the anonymize stage wrote, sorted
    (bench.layout.find_cells); a folder not named <metric>-<query> is left out with a warning."""
    cells = layout_find_cells(results, dataset, pool)
    found = {cell.root for cell in cells}
    for table in sorted(DatasetLayout(results, dataset).cells(pool).glob("*/*/photos.csv")):
        if table.parent not in found:
            log.warning("%s is not a cell folder: left out", table.parent)
    return cells


# ---- Tables 1-3 ------------------------------------------------------------------------------

def verification_metrics(results: Path, dataset: str, pool: str, cells: list[Cell]) -> dict:
    """{(G, S, Q): {R: {M: {comparison: {"verified_fraction", "n"}}}}} from Tables 1-3."""
    folder = verification_dir(results, dataset, pool)
    provenance = verification_provenance(results, dataset, pool)
    if not provenance.is_file():
        raise BenchError(f"{provenance} not found: run `python -m bench tables` for this dataset and pool first")
    # The specs the tables were written with, not today's config: the file is the record.
    specs = table_specs(OmegaConf.create(json.loads(provenance.read_text(encoding="utf-8"))["config"]))
    evaluated = {(c.generator, c.metric, c.query) for c in cells if c.outcomes.is_file() and not c.guard}
    out: dict = {}
    for gen_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for spec in specs:
            path = gen_dir / f"{spec.name}.csv"
            if not path.is_file():
                log.warning("%s missing (the tables stage writes one per spec): left out", path)
                continue
            for row in read_csv(path):
                for space, comparison, label in spec.columns():
                    query = spec.strategies[label]
                    if (gen_dir.name, space, query) not in evaluated:
                        continue  # a cell that was not run: every recognizer says "n/a: no pairs"
                    key = column_key(spec, space, comparison, label)
                    if key not in row or f"{key} n" not in row:
                        raise BenchError(f"{path} has no column {key!r}: rerun `python -m bench tables`")
                    entry = out.setdefault((gen_dir.name, space, query), {}).setdefault(row["recognizer"], {})
                    entry.setdefault(spec.metric, {})[comparison] = fraction(row[key], row[f"{key} n"])
    return out


def column_key(spec: TableSpec, space: str, comparison: str, label: str) -> str:
    """A column of the tables' CSV: "<comparison>/<label>", prefixed by "<space>/" when the
    table has several query spaces (Table 2)."""
    return "/".join(([space] if len(spec.spaces) > 1 else []) + [comparison, label])


def fraction(text: str, n: str) -> dict:
    """A table cell: the verified fraction (or its "n/a: ..." reason) and its pairs count."""
    value = number(text)
    return {"verified_fraction": value, "n": int(number(n)) if isinstance(value, (int, float)) else 0}


# ---- Fig. 4's quality table --------------------------------------------------------------------

def quality_metrics(results: Path, dataset: str, pool: str, cells: list[Cell]) -> dict:
    """{(G, S, Q): {column: value}} from every quality table of a (space, query) that has cells."""
    run_cells = {(c.generator, c.metric, c.query) for c in cells if not c.guard}
    out = {}
    for metric, query in sorted({(c.metric, c.query) for c in cells if not c.guard}):
        path = quality_files(results, dataset, pool, metric, query)["csv"]
        if not path.is_file():
            continue
        for row in read_csv(path):
            generator, status = row.pop("generator"), row.pop("status")
            if (generator, metric, query) not in run_cells:
                continue  # "n/a: cell not run"
            missing = status if status.startswith(NA) else f"{NA}: not measured"
            out[(generator, metric, query)] = {k: number(v) if v != "" else missing for k, v in row.items()}
    return out


# ---- the cells' accounting -----------------------------------------------------------------------

def inventory(results: Path, dataset: str) -> dict[str, int]:
    """{photo: faces the faces stage found} over the photos it could read."""
    path = DatasetLayout(results, dataset).photos
    if not path.is_file():
        raise BenchError(f"{path} not found: run `python -m bench faces` for this dataset first")
    return {r["photo"]: int(number(r["n_faces"])) for r in read_csv(path) if r["status"] in READABLE}


def cell_metrics(cell: Cell, inventory_faces: int) -> dict:
    """One cell's face accounting (photos.csv, failures.csv, provenance.json) and leak totals.

    unaccounted_faces = inventory_faces (faces the faces stage found in readable photos) -
    (swapped + fallback + inventory faces left real + faces of an n/a cell): faces that are
    in the inventory and in none of these states (or, negative, counted twice)."""
    photos = read_csv(cell.photo_table)
    sums = {k: sum(int(number(r[k])) for r in photos) for k in PHOTO_COUNTS}
    audit_left_real = sums["audit_found"] - sums["audit_covered"]
    na_faces = sum(int(number(r["faces"])) for r in photos if r["status"].startswith(NA))
    provenance = json.loads(cell.provenance.read_text(encoding="utf-8")) if cell.provenance.is_file() else {}
    counts = provenance.get("counts") or {}
    stale = sorted(k for k in PHOTO_COUNTS if k in counts and int(counts[k]) != sums[k])
    if stale:
        raise BenchError(f"{cell.photo_table} and {cell.provenance} disagree on {', '.join(stale)}: "
                         "rerun `python -m bench anonymize` for this cell")
    accounted = sums["swapped"] + sums["fallback"] + (sums["left_real"] - audit_left_real) + na_faces
    out = {
        **sums,
        "inventory_faces": inventory_faces,
        "unaccounted_faces": inventory_faces - accounted,
        "photos_left_real": sum(int(number(r["left_real"])) > 0 for r in photos),
        "failures": len(read_csv(cell.failures)) if cell.failures.is_file() else f"{NA}: {cell.failures.name} missing",
        "status": str(provenance.get("unavailable") or "ok"),
        **{k: int(counts[k]) for k in GUARD_COUNTS if k in counts},
    }
    if cell.metrics.is_file():
        leaks = json.loads(cell.metrics.read_text(encoding="utf-8")).get("leaks", {})
        out["leaks"] = {k: int(leaks[k]) for k in LEAK_COUNTS if k in leaks}
        out["leaks"]["missing_output"] = len(leaks.get("missing_output", []))
        guard = leaks.get("guard") or {}  # found faces verified as their owner by a guard / by a non-guard
        out["leaks"].update({k: int(guard[k]) for k in ("verified_by_guard", "verified_by_non_guard") if k in guard})
    return out


# ---- helpers ---------------------------------------------------------------------------------------

def read_csv(path: Path) -> list[dict[str, str]]:
    """Rows as strings, exactly as written (no type guessing: "n/a: ..." stays a string)."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def number(text: str) -> int | float | str:
    """"6" -> 6, "0.1667" -> 0.1667 (rounded to ROUND_DIGITS), anything else as it is."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return round(value, ROUND_DIGITS) if value == value else f"{NA}: not measured"  # NaN is not JSON


def nest(dataset: str, pool: str, entries: dict[tuple[str, str, str], dict]) -> dict:
    """{(G, S, Q): value} -> {D: {P: {G: {S: {Q: value}}}}} (empty dict when no entries)."""
    out: dict = {}
    for (generator, space, query), value in sorted(entries.items()):
        out.setdefault(dataset, {}).setdefault(pool, {}).setdefault(generator, {}).setdefault(space, {})[query] = value
    return out
