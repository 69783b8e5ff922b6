"""`python -m bench perf`: the performance suite in one run (issue 11). It runs, in order,
the parts named in perf.suite.parts:

  profile  bench.benchmarks.profile: each stage of perf.profile.stages in its own process,
           as `dvc repro` runs it, cold caches; wall time split into start+imports, model
           load, decode, model calls, file I/O; faces/s and peak RSS per stage. When
           perf.profile.results_dir is null the stages run in a scratch results folder
           (perf.suite.work_dir, removed after), never in results_dir itself.
  naive    bench.benchmarks.naive_vs_harness: Table 1's Source-vs-Result column two ways, a
           DeepFace.verify loop and the evaluate stage from cold caches; both times, the
           ratio, the verdicts compared, and how many faces each way embeds.
  query    bench.benchmarks.query_scaling: the target query at 10k, 100k and 1M synthetic
           pool embeddings, a faiss index at 1M with its recall@1, the pixel spaces at 10k.
  projection  bench.benchmarks.projection: the wall time of the paper's run (Tables 1-3:
           193 photos, 1,282 faces, a 10k pool) on this machine, from the per-unit costs of
           the profile part's run (its stage outputs still in the scratch folder) and of
           query_scaling.json; it profiles on its own when run without them.
  dlib     bench.benchmarks.dlib_blas (only when named: perf.suite.parts=[...,dlib]): Dlib's
           descriptor, ms per face of the installed build and its difference from the
           dlib-bin wheel's on the same chips (dlib_blas.{json,md}).

then prints a summary of the headline figures beside their targets (perf.suite.targets) and
writes it to <results_dir>/benchmarks/perf.{json,md} (bench.layout.perf_files). A part that
cannot run here (no cells to time, no weights) is a row "n/a: <reason>" in the summary, and
the other parts still run; the command fails (exit 2) only when no part ran.

Each part's own report (profile.{json,md}, naive_vs_harness.{json,md},
query_scaling.{json,md}, projection.{json,md} in the same folder) keeps every figure with its provenance; this
summary only points at them. `dvc repro perf/dvc.yaml` runs this command as a DVC stage,
outside the default `dvc repro`.
"""
from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from bench import resultsio
from bench.errors import BenchError
from bench.layout import benchmarks_dir, perf_files, query_scaling_files

log = logging.getLogger(__name__)

PARTS = {
    "profile": "bench.benchmarks.profile",
    "naive": "bench.benchmarks.naive_vs_harness",
    "query": "bench.benchmarks.query_scaling",
    "projection": "bench.benchmarks.projection",
    "dlib": "bench.benchmarks.dlib_blas",
}
GIB = 1 << 30


def label_of(cfg: DictConfig, settings) -> str:
    """The label a part files its run under (its own `label`, else <dataset>-<pool>)."""
    return str(settings.get("label") or f"{cfg.dataset.name}-{cfg.pool.name}")


def part_config(cfg: DictConfig, part: str, scratch: Path) -> DictConfig:
    """The run's config for one part: the profile's stages go to a scratch folder unless
    perf.profile.results_dir names one."""
    out = cfg.copy()
    if part == "profile" and not cfg.perf.profile.results_dir:
        with open_dict(out):
            out.perf.profile.results_dir = str(scratch / "profile")
    return out


def read_runs(path: Path) -> dict:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("runs") or {})
    except (OSError, ValueError):
        return {}


# ---- headline figures, each beside its target ------------------------------------------

def row(part: str, figure: str, value, target: str = "", met: bool | None = None, note: str = "") -> dict:
    return {"part": part, "figure": figure, "value": value, "target": target,
            "met": None if met is None else bool(met), "note": note}


def profile_rows(report: dict, targets: DictConfig) -> list[dict]:
    """Total wall time, model-call share of evaluate and manifold, the largest peak RSS."""
    total, by_command = report.get("total") or {}, {r["stage"]: r for r in report.get("by_command") or []}
    share = float(targets.evaluate_model_call_share)
    rss = float(targets.max_rss_gib)
    rows = [row("profile", "wall time, every stage (s)", round(float(total.get("wall_s") or 0), 1),
                note=f"{total.get('runs')} processes; start+imports {float(total.get('start_imports') or 0):.1f} s, "
                     f"model calls {float(total.get('model_call') or 0):.1f} s")]
    for stage in ("evaluate", "manifold"):
        if stage in by_command:
            value = by_command[stage].get("model_call_share")
            rows.append(row("profile", f"{stage}: share of wall time in model calls",
                            None if value is None else round(float(value), 3),
                            f">= {share:g}" if stage == "evaluate" else "",
                            None if value is None or stage != "evaluate" else float(value) >= share))
    peaks = {r["stage"]: r.get("peak_rss_mb") for r in by_command.values() if r.get("peak_rss_mb") is not None}
    if peaks:
        stage = max(peaks, key=peaks.get)
        rows.append(row("profile", "largest peak RSS of a stage (MiB)", round(float(peaks[stage]), 1),
                        f"< {rss:g} GiB", float(peaks[stage]) * (1 << 20) < rss * GIB, note=stage))
    return rows


def naive_rows(report: dict, targets: DictConfig) -> list[dict]:
    ratio, want = report.get("ratio"), float(targets.naive_ratio)
    calls = report.get("model_calls") or {}
    verdicts = report.get("verdicts") or {}
    return [
        row("naive", "naive / harness, s per pair x recognizer", None if ratio is None else round(float(ratio), 2),
            f">= {want:g}", None if ratio is None else float(ratio) >= want,
            note=f"naive {_value(_round(report['naive']['s_per_pair']))} s, harness "
                 f"{_value(_round(report['harness']['s_per_pair']))} s; recognizers {', '.join(report.get('recognizers') or {})}"),
        row("naive", "bound at equal model time per face", calls.get("ratio_bound_at_equal_cost_per_face") and
            round(float(calls["ratio_bound_at_equal_cost_per_face"]), 2),
            note=f"faces embedded: naive {calls.get('naive_faces_embedded')}, harness {calls.get('harness_faces_embedded')}"),
        row("naive", "verdicts that agree", verdicts.get("agreement") and round(float(verdicts["agreement"]), 3),
            note=f"{verdicts.get('agree')} of {verdicts.get('both_judged')}"),
    ]


def query_rows(report: dict, targets: DictConfig) -> list[dict]:
    rows, ms = [], float(targets.query_ms_per_face_10k)
    exact = [r for r in report.get("exact") or [] if int(r["pool"]) == 10000]
    for threads in dict.fromkeys(r["threads"] for r in exact):
        worst = max(float(r["ms_per_face"]) for r in exact if r["threads"] == threads)
        rows.append(row("query", f"10k pool, exact, {threads} threads: ms per source face (slowest strategy)",
                        round(worst, 3), f"<= {ms:g}", worst <= ms))
    recall = float(targets.recall_at_1)
    for r in report.get("approximate") or []:
        rows.append(row("query", f"{int(r['pool']):,} pool, faiss {r['index']}: recall@1, {r['strategy']}",
                        round(float(r["recall_at_1"]), 4), f">= {recall:g}", float(r["recall_at_1"]) >= recall,
                        note=f"{float(r['ms_per_face']):.1f} ms/face, build {float(r['build_s']):.0f} s, "
                             f"index {int(r['index_bytes']) / (1 << 20):.0f} MiB"))
    memory = report.get("memory") or {}
    if memory.get("largest_pool_peak_rss_bytes"):
        peak = int(memory["largest_pool_peak_rss_bytes"])
        rss = float(targets.max_rss_gib)
        rows.append(row("query", f"{int(memory['largest_pool']):,} pool: peak RSS (MiB)", round(peak / (1 << 20), 1),
                        f"< {rss:g} GiB", peak < rss * GIB))
    for r in report.get("pixels") or []:
        rows.append(row("query", f"10k pool, {r['metric']}: ms per source face, {r['method']}",
                        round(float(r["ms_per_face"]), 1)))
    return rows


def projection_rows(report: dict) -> list[dict]:
    """The paper's run projected: total hours, the largest stages, what is not counted."""
    from bench.benchmarks.projection import headline

    hours, note = headline(report)
    u = report.get("units") or {}
    return [row("projection", f"paper's run ({u.get('photos')} photos, {u.get('faces')} faces, "
                f"{u.get('pool_faces')} pool faces, {len(u.get('cells') or [])} cells): projected wall time (h)",
                hours, note=note)]


def summarize(cfg: DictConfig, part: str) -> list[dict]:
    """The headline rows of one part, read back from the report it wrote."""
    out = benchmarks_dir(cfg.results_dir)
    targets = cfg.perf.suite.targets
    if part == "profile":
        runs = read_runs(out / "profile.json")
        report = runs.get(label_of(cfg, cfg.perf.profile))
        return profile_rows(report, targets) if report else []
    if part == "naive":
        runs = read_runs(out / "naive_vs_harness.json")
        report = runs.get(label_of(cfg, cfg.perf.naive))
        return naive_rows(report, targets) if report else []
    if part == "projection":
        from bench.benchmarks.projection import files

        path = files(cfg.results_dir)["json"]
        return projection_rows(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []
    if part == "dlib":
        from bench.benchmarks.dlib_blas import files, summary_rows

        path = files(cfg.results_dir)["json"]
        return summary_rows(json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else []
    path = query_scaling_files(cfg.results_dir)["json"]
    return query_rows(json.loads(path.read_text(encoding="utf-8")), targets) if path.is_file() else []


# ---- the command -------------------------------------------------------------------------

def run(cfg: DictConfig) -> dict[str, Path]:
    """Runs the parts of perf.suite.parts (module docstring); returns the summary's files."""
    settings = cfg.perf.suite
    parts = [str(p) for p in settings.parts]
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise BenchError(f"perf.suite.parts={parts}: choose from {', '.join(PARTS)}")
    scratch = Path(tempfile.mkdtemp(prefix="bench_perf_", dir=settings.work_dir or None))
    ran: dict[str, dict] = {}
    rows: list[dict] = []
    try:
        for part in parts:
            log.info("perf: %s (%s)", part, PARTS[part])
            start = time.perf_counter()
            try:
                importlib.import_module(PARTS[part]).run(part_config(cfg, part, scratch))
            except BenchError as err:  # this part cannot run here: said, and the others still run
                log.warning("perf %s: %s", part, err)
                ran[part] = {"status": f"n/a: {err}", "seconds": time.perf_counter() - start}
                rows.append(row(part, "not run", None, note=f"n/a: {err}"))
                continue
            ran[part] = {"status": "ok", "seconds": time.perf_counter() - start}
            rows.extend(summarize(cfg, part))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    placeholders(cfg, ran)
    files = perf_files(cfg.results_dir)
    summary = {
        "parts": ran, "rows": rows,
        "targets": OmegaConf.to_container(settings.targets, resolve=True),
        "config": {"dataset": str(cfg.dataset.name), "pool": str(cfg.pool.name), "generator": cfg.choices.generator,
                   "seed": int(cfg.seed)},
        "reports": {name: str(path) for name, path in report_files(cfg).items()},
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0],
    }
    resultsio.write_json(summary, files["json"])
    text = render_markdown(summary)
    resultsio.write_text(text, files["md"])
    print(text)
    if not any(info["status"] == "ok" for info in ran.values()):
        raise BenchError("no part of the performance suite could run: " +
                         "; ".join(f"{p}: {info['status']}" for p, info in ran.items()))
    return files


def placeholders(cfg: DictConfig, ran: dict[str, dict]) -> None:
    """Every report perf/dvc.yaml declares exists after a run (DVC fails a stage whose output
    is missing): a part not run, whose report was never written, gets one saying so."""
    out = benchmarks_dir(cfg.results_dir)
    from bench.benchmarks.projection import files

    reports = {"profile": ("profile.json", "profile.md"), "naive": ("naive_vs_harness.json", "naive_vs_harness.md"),
               "query": (query_scaling_files(cfg.results_dir)["json"].name, query_scaling_files(cfg.results_dir)["md"].name),
               "projection": (files(cfg.results_dir)["json"].name, files(cfg.results_dir)["md"].name)}
    for part, (json_name, md_name) in reports.items():
        why = ran[part]["status"] if part in ran else "not in perf.suite.parts"
        if not (out / json_name).exists():
            resultsio.write_json({"runs": {}, "status": f"not run: {why}"}, out / json_name)
        if not (out / md_name).exists():
            resultsio.write_text(f"# {part}: not run\n\n{why}\n", out / md_name)
    (out / "profile").mkdir(parents=True, exist_ok=True)


def report_files(cfg: DictConfig) -> dict[str, Path]:
    out = benchmarks_dir(cfg.results_dir)
    reports = {"profile": out / "profile.md", "naive": out / "naive_vs_harness.md",
               "query": query_scaling_files(cfg.results_dir)["md"]}
    if "projection" in cfg.perf.suite.parts:
        from bench.benchmarks.projection import files

        reports["projection"] = files(cfg.results_dir)["md"]
    if "dlib" in cfg.perf.suite.parts:
        from bench.benchmarks.dlib_blas import files

        reports["dlib"] = files(cfg.results_dir)["md"]
    return reports


def _round(value, digits: int = 3):
    return None if value is None else round(float(value), digits)


def _value(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render_markdown(summary: dict) -> str:
    c = summary["config"]
    lines = ["# Performance suite (`python -m bench perf`)", "",
             f"{c['dataset']} x {c['pool']}, generator {c['generator']}, seed {c['seed']}; {summary['cpus']} CPUs, "
             f"load average {summary['load_average']} at the end; {summary['when']}. Parts: "
             + ", ".join(f"{p} {info['status']} ({info['seconds']:.0f} s)" for p, info in summary["parts"].items())
             + ". Each figure's provenance is in its part's report: "
             + ", ".join(f"`{Path(p).name}`" for p in summary["reports"].values()) + ".", "",
             "| part | figure | value | target | met | note |", "|---|---|---|---|---|---|"]
    for r in summary["rows"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['part']} | {r['figure']} | {_value(r['value'])} | {r['target']} | {met} | {r['note']} |")
    return "\n".join(lines) + "\n"
