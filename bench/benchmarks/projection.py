"""`python -m bench perf-projection`: the wall time of the paper's run (Tables 1-3) on this
machine, projected from per-unit costs measured here.

The paper's run (perf.projection.paper, from conf/paper/paper.yaml's `setup`): its photos and
faces, a pool of `pool_faces`, Tables 1-3's cells (bench.stagetable.table_cells over
params.yaml's table_metrics x table_queries) and the paper's recognizers (conf/paper/'s seven).

Costs and where each comes from:
    detection          s per photo: the faces stage's time in the profile (wall less process
                       start+imports and model load) / the profiled dataset's photos (photos.csv)
    manifold, by kind  s per pool face: the manifold's own timings per feature kind
                       (<profiled results_dir>/pools/<pool>/manifold.provenance.json `seconds`:
                       detect_align / pool faces, each kind / faces it computed); without that
                       file, the manifold stage's profiled time per pool face (every kind)
    query, by metric   s per source face at a 10k pool: query_scaling.json (perf-query): the
                       embedding space's exact query at 10,000 (default threads, the slowest
                       strategy), a pixel space's row of its configured `method`
    anonymize          s per face per cell (swap + audit): profiled anonymize time / faces anonymized
    evaluate           s per face x recognizer per cell: profiled evaluate time / (faces
                       anonymized x recognizers with embeddings in the profiled cell)
    leaks              s per photo per cell: profiled leaks time / photos
    fixed              one process start+imports and model load per stage, as profiled
Per-cell costs are measured on the profiled cell (this config's metric, query, generator) and
stand for every cell of Tables 1-3. The manifold counts only the feature kinds Tables 1-3's
cells need (each table metric's space feature; age/gender when a table query restricts to
the source's band); the others are listed with a count of 0.

Where the costs come from (perf.projection.measure): `auto` reuses
<results_dir>/benchmarks/profile.json's run `label` when that run's stage outputs still exist
(e.g. inside `python -m bench perf`, after its profile part), else profiles
perf.projection.stages first in a scratch folder (perf.profile's settings, perf.projection.work_dir,
removed after); `true` always profiles first; `false` only reuses. A cost it cannot measure
is an "n/a: <reason>" row, left out of the total (which then says so).

Writes <results_dir>/benchmarks/projection.{json,md} (`files`) and prints the table.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.benchmarks import write_report
from bench.errors import BenchError
from bench.layout import Cell, DatasetLayout, benchmarks_dir, pool_dir, projection_files, query_scaling_files

log = logging.getLogger(__name__)

EXACT_POOL = 10000  # query_scaling's pool size whose exact rows are the query cost
STAGE_ORDER = ("faces", "manifold", "query", "anonymize", "evaluate", "leaks")


def files(results_dir: Path | str) -> dict[str, Path]:
    """This part's report: {"json": .../benchmarks/projection.json, "md": ...projection.md}."""
    return projection_files(results_dir)


# ---- the paper's run -------------------------------------------------------------------------

def paper_units(cfg: DictConfig, params: dict | None = None) -> dict:
    """The unit counts of the paper's run: {"photos", "faces", "pool_faces" (ints), "cells"
    (Tables 1-3's [{metric, query}]), "recognizers" (the paper's, our names), "kinds" (the
    manifold feature kinds those cells need)}. `params`: params.yaml (None: the repository's).

    Raises:
        UnknownComponent: a table metric or query without a config (conf/metric/, conf/query/).
    """
    from bench.paperdata import load_paper
    from bench.stagetable import load_params, table_cells

    paper = cfg.perf.projection.paper
    cells = table_cells(params if params is not None else load_params())
    kinds = ["detect_align"]
    for cell in cells:
        feature = _space_feature(cell["metric"], cfg)
        if feature not in kinds:
            kinds.append(feature)
    if any(_component("query", c["query"], cfg).get("same_age_gender") for c in cells) and "agegender" not in kinds:
        kinds.append("agegender")
    return {"photos": int(paper.photos), "faces": int(paper.faces), "pool_faces": int(paper.pool_faces),
            "cells": cells, "recognizers": load_paper().seven, "kinds": kinds}


def _component(group: str, name: str, cfg: DictConfig) -> dict:
    """conf/<group>/<name>.yaml resolved against the run (UnknownComponent names the known ones)."""
    from bench.registry import component_config

    return dict(component_config(group, str(name), cfg))


def _space_feature(metric: str, cfg: DictConfig) -> str:
    """The per-face feature kind a metric's space reads (bench.spaces: class attribute `feature`)."""
    from bench.registry import SPACES

    return str(SPACES.build(OmegaConf.create(_component("metric", metric, cfg)), name=metric).feature)


# ---- measured costs -------------------------------------------------------------------------

def cost(stage: str, what: str, unit: str, seconds, source: str, note: str = "") -> dict:
    """One cost row; `seconds` per unit, None with note "n/a: <reason>" when not measured."""
    return {"stage": stage, "what": what, "unit": unit,
            "s_per_unit": None if seconds is None else float(seconds), "source": source, "note": note}


def variable_seconds(row: dict) -> float:
    """A profiled stage's time that grows with its work: wall less start+imports and model load."""
    return max(0.0, float(row["wall_s"]) - float(row.get("start_imports") or 0) - float(row.get("model_load") or 0))


def stage_costs(run: dict | None, source: str, cfg: DictConfig) -> list[dict]:
    """Costs from one profile.json run (bench.benchmarks.profile) and the stage outputs its
    `results_dir` still holds; rows that need a missing file are n/a."""
    if not run:
        why = f"n/a: no profile run in {source} (python -m bench perf-profile, or perf.projection.measure=true)"
        return [cost(stage, what, unit, None, source, why) for stage, what, unit in (
            ("faces", "detection", "photo"), ("manifold", "every kind", "pool face"),
            ("anonymize", "swap + audit", "face x cell"), ("evaluate", "verification", "face x recognizer x cell"),
            ("leaks", "leak check", "photo x cell"))]
    rows = {r["stage"]: r for r in run.get("by_command") or []}
    results = Path(str(run.get("results_dir") or ""))
    data = DatasetLayout(results, str(cfg.dataset.name))
    cell = Cell(results, str(cfg.dataset.name), str(cfg.pool.name), str(cfg.choices.metric), str(cfg.choices.query),
                str(cfg.choices.generator))
    photos = _csv_rows(data.photos)
    out: list[dict] = []

    def per(stage: str, what: str, unit: str, units: int | None, units_from: str) -> None:
        if stage not in rows:
            out.append(cost(stage, what, unit, None, source, f"n/a: {stage} not profiled in this run"))
        elif not units:
            out.append(cost(stage, what, unit, None, source, f"n/a: {units_from} not found or empty"))
        else:
            out.append(cost(stage, what, unit, variable_seconds(rows[stage]) / units, source,
                            f"{variable_seconds(rows[stage]):.2f} s / {units} ({units_from})"))

    per("faces", "detection", "photo", photos, str(data.photos))
    out += manifold_costs(rows.get("manifold"), pool_dir(results, str(cfg.pool.name)).provenance, source)
    per("anonymize", "swap + audit", "face x cell", rows.get("anonymize", {}).get("faces"), "faces anonymized, profile")
    recognizers = sorted({p.stem for p in cell.embeddings.glob("*/*.parquet")})
    faces = rows.get("anonymize", {}).get("faces")
    per("evaluate", "verification", "face x recognizer x cell", faces * len(recognizers) if faces else None,
        f"faces anonymized x {len(recognizers)} recognizers in {cell.embeddings}")
    per("leaks", "leak check", "photo x cell", photos, str(data.photos))
    for stage in STAGE_ORDER:
        if stage in rows:
            fixed = float(rows[stage]["wall_s"]) - variable_seconds(rows[stage])
            out.append(cost(stage, "process start+imports, model load", "stage", fixed, source))
    return out


def manifold_costs(row: dict | None, provenance: Path, source: str) -> list[dict]:
    """Per pool face of each feature kind from the manifold's own timings; else the profiled
    manifold stage per pool face (every kind together)."""
    try:
        record = json.loads(provenance.read_text(encoding="utf-8"))
        seconds, counts = record["seconds"], record["counts"]
    except (OSError, ValueError, KeyError):
        record = None
    if record is not None:
        out = []
        for kind, secs in seconds.items():
            if kind == "total":
                continue
            n = int(counts.get("faces") if kind == "detect_align" else counts.get(f"{kind}_ok") or 0)
            note = f"{float(secs):.2f} s / {n} faces"
            if kind == "detect_align":
                note += f" (of {counts.get('images')} images)"
            out.append(cost("manifold", kind, "pool face", float(secs) / n if n else None, str(provenance),
                            note if n else f"n/a: no face computed {kind}"))
        return out
    if row is None or not row.get("faces"):
        return [cost("manifold", "every kind", "pool face", None, source,
                     f"n/a: neither {provenance} nor a profiled manifold with pool faces")]
    return [cost("manifold", "every kind", "pool face", variable_seconds(row) / int(row["faces"]), source,
                 f"no {provenance}: the profiled stage per pool face, every feature kind together")]


def query_costs(report: dict | None, source: str, metrics: list[str], cfg: DictConfig) -> list[dict]:
    """s per source face at a 10k pool for each metric (query_scaling.json)."""
    out = []
    for metric in metrics:
        what = f"query, {metric} space"
        if not report:
            out.append(cost("query", what, "face x cell", None, source, f"n/a: no {source} (python -m bench perf-query)"))
            continue
        if metric == str(cfg.perf.query_scaling.metric):
            exact = [r for r in report.get("exact") or [] if int(r["pool"]) == EXACT_POOL]
            default = [r for r in exact if r["threads"] == exact[0]["threads"]] if exact else []
            if not default:
                out.append(cost("query", what, "face x cell", None, source, f"n/a: no exact row at a {EXACT_POOL:,} pool"))
                continue
            worst = max(default, key=lambda r: float(r["ms_per_face"]))
            out.append(cost("query", what, "face x cell", float(worst["ms_per_face"]) / 1000, source,
                            f"exact, {worst['threads']} threads, {worst['strategy']} (slowest), "
                            f"{int(worst['pool']):,} synthetic pool faces"))
            continue
        method = str(_component("metric", metric, cfg).get("method") or "")
        rows = [r for r in report.get("pixels") or []
                if r["metric"] == metric and int(r["pool"]) == EXACT_POOL and str(r["method"]).startswith(method)]
        if not rows or not method:
            out.append(cost("query", what, "face x cell", None, source,
                            f"n/a: no {metric} row of method {method or '?'} at a {EXACT_POOL:,} pool"))
            continue
        out.append(cost("query", what, "face x cell", float(rows[0]["ms_per_face"]) / 1000, source,
                        f"{rows[0]['method']}, {int(rows[0]['pool']):,} pool faces"))
    return out


def _csv_rows(path: Path) -> int | None:
    try:
        return int(len(pd.read_csv(path)))
    except (OSError, ValueError):
        return None


# ---- the projection -------------------------------------------------------------------------

def unit_count(row: dict, units: dict) -> tuple[int, str]:
    """(how many of `row`'s unit the paper's run has, how that count is made)."""
    cells = len(units["cells"])
    stage, what = row["stage"], row["what"]
    if row["unit"] == "stage":
        return 1, "one process"
    if stage == "faces":
        return units["photos"], f"{units['photos']:,} photos"
    if stage == "manifold":
        needed = what in units["kinds"] or what == "every kind"
        return (units["pool_faces"] if needed else 0,
                f"{units['pool_faces']:,} pool faces" if needed else "not needed by Tables 1-3")
    if stage == "query":
        metric = what.split(", ")[1].removesuffix(" space")
        n = sum(c["metric"] == metric for c in units["cells"])
        return units["faces"] * n, f"{units['faces']:,} faces x {n} cells"
    if stage == "anonymize":
        return units["faces"] * cells, f"{units['faces']:,} faces x {cells} cells"
    if stage == "evaluate":
        r = len(units["recognizers"])
        return units["faces"] * r * cells, f"{units['faces']:,} faces x {r} recognizers x {cells} cells"
    if stage == "leaks":
        return units["photos"] * cells, f"{units['photos']:,} photos x {cells} cells"
    raise BenchError(f"perf-projection: no unit count for stage {stage!r}")


def project(costs: list[dict], units: dict) -> dict:
    """Each cost times its unit count; totals per stage and overall (n/a rows left out and
    listed). Returns {"rows", "by_stage": {stage: s}, "total_s", "missing": [...]}."""
    rows, by_stage, missing = [], {}, []
    for c in costs:
        count, how = unit_count(c, units)
        seconds = None if c["s_per_unit"] is None else c["s_per_unit"] * count
        rows.append({**c, "count": count, "count_from": how, "projected_s": seconds})
        if seconds is None:
            if count:
                missing.append(f"{c['stage']}: {c['what']}")
            continue
        by_stage[c["stage"]] = by_stage.get(c["stage"], 0.0) + seconds
    return {"rows": rows, "by_stage": by_stage, "total_s": sum(by_stage.values()), "missing": missing}


# ---- the command ----------------------------------------------------------------------------

def profile_run(cfg: DictConfig) -> tuple[dict | None, str, Path | None]:
    """(the profile.json run to take stage costs from, where it came from, the scratch folder
    it was profiled in now or None), profiling perf.projection.stages first when
    perf.projection.measure asks for it."""
    settings = cfg.perf.projection
    label = str(settings.label or f"{cfg.dataset.name}-{cfg.pool.name}")
    path = benchmarks_dir(cfg.results_dir) / "profile.json"
    measure = str(settings.measure).lower()
    if measure not in ("auto", "true", "false"):
        raise BenchError(f"perf.projection.measure={settings.measure}: choose auto, true or false")
    run = _read_run(path, label)
    if measure == "false" or (measure == "auto" and run and Path(str(run.get("results_dir"))).is_dir()):
        return run, f"{path} run {label!r} (reused)", None
    from bench.benchmarks import profile

    scratch = Path(tempfile.mkdtemp(prefix="bench_projection_", dir=settings.work_dir or None))
    sub = cfg.copy()
    with open_dict(sub):
        sub.perf.profile.results_dir = str(scratch)
        sub.perf.profile.label = label
        sub.perf.profile.stages = list(settings.stages)
    log.info("perf-projection: profiling %s in %s", ", ".join(map(str, settings.stages)), scratch)
    try:
        profile.run(sub)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return _read_run(path, label), f"{path} run {label!r} (profiled now, in a scratch folder since removed)", scratch


def _read_run(path: Path, label: str) -> dict | None:
    try:
        return (json.loads(path.read_text(encoding="utf-8")).get("runs") or {}).get(label)
    except (OSError, ValueError):
        return None


def run(cfg: DictConfig) -> dict[str, Path]:
    """Projects the paper's run (module docstring); writes and prints the report."""
    units = paper_units(cfg)
    run_, profile_source, scratch = profile_run(cfg)
    try:
        costs = stage_costs(run_, profile_source, cfg)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    query_path = query_scaling_files(cfg.results_dir)["json"]
    query_report = json.loads(query_path.read_text(encoding="utf-8")) if query_path.is_file() else None
    metrics = list(dict.fromkeys(str(c["metric"]) for c in units["cells"]))
    costs += query_costs(query_report, str(query_path), metrics, cfg)
    order = {s: i for i, s in enumerate(STAGE_ORDER)}
    costs.sort(key=lambda c: (order.get(c["stage"], len(order)), c["unit"] == "stage"))
    result = project(costs, units)
    report = {
        "units": units, **result,
        "profile": profile_source, "query_scaling": str(query_path),
        "config": {"dataset": str(cfg.dataset.name), "pool": str(cfg.pool.name), "generator": str(cfg.choices.generator),
                   "metric": str(cfg.choices.metric), "query": str(cfg.choices.query)},
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }
    return write_report(report, files(cfg.results_dir), render_markdown)


def headline(report: dict) -> tuple[float | None, str]:
    """(projected hours, a note naming the largest stages and what is missing) for the suite."""
    if not report.get("by_stage"):
        return None, "n/a: no cost measured"
    top = sorted(report["by_stage"].items(), key=lambda kv: -kv[1])[:3]
    note = ", ".join(f"{s} {v / 3600:.1f} h" for s, v in top)
    if report.get("missing"):
        note += "; without " + ", ".join(report["missing"])
    return round(report["total_s"] / 3600, 2), note


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}g}"


def render_markdown(report: dict) -> str:
    u, c = report["units"], report["config"]
    cells = ", ".join(f"{x['metric']}/{x['query']}" for x in u["cells"])
    lines = ["# The paper's run, projected (`python -m bench perf-projection`)", "",
             f"The paper's run: {u['photos']:,} photos, {u['faces']:,} faces, {u['pool_faces']:,} pool faces, "
             f"Tables 1-3's {len(u['cells'])} cells ({cells}), {len(u['recognizers'])} recognizers "
             f"({', '.join(u['recognizers'])}); manifold kinds {', '.join(u['kinds'])}. Costs measured on "
             f"{c['dataset']} x {c['pool']}, cell {c['metric']}/{c['query']}/{c['generator']}; stage costs from "
             f"{report['profile']}, query costs from {report['query_scaling']}. {report['cpus']} CPUs, load average "
             f"{report['load_average']}; {report['when']}.", "",
             f"**Projected wall time: {report['total_s'] / 3600:.2f} h** ({report['total_s']:,.0f} s)"
             + (f"; not counted (n/a): {', '.join(report['missing'])}" if report["missing"] else "") + ".", "",
             "| stage | projected s | h |", "|---|---|---|"]
    for stage, seconds in report["by_stage"].items():
        lines.append(f"| {stage} | {seconds:,.0f} | {seconds / 3600:.2f} |")
    lines += ["", "| stage | what | s per unit | unit | count | projected s | source | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['stage']} | {r['what']} | {_fmt(r['s_per_unit'])} | {r['unit']} | "
                     f"{r['count']:,} ({r['count_from']}) | {_fmt(r['projected_s'], 6)} | `{r['source']}` | {r['note']} |")
    return "\n".join(lines) + "\n"
