"""Benchmark `perf-profile`: where each stage's wall time goes.

Each stage runs as `dvc repro` runs it, in its own `python -m bench <stage> ...` process, but
started through bench.benchmarks.profile_runner, which installs timing probes
(bench.benchmarks.probes) before anything is imported; stage code is unchanged. Each run's
wall time is split into:

    start+imports  process start (interpreter, until the runner's first line), every import
                   (before the stage's entry function and the lazy ones inside it), Hydra's
                   config composition, and the exit after the entry returns
    model load     prepare() of every detector, recognizer, generator (bench.component),
                   onnxruntime sessions, torch.load, dlib and OpenCV model constructors
    decode         photo decoding (bench.images.load_photo, cv2.imread/imdecode, PIL)
    model calls    onnxruntime run, torch modules, dlib detectors/predictors/descriptors,
                   OpenCV's YuNet and DNN forward
    file I/O       parquet, CSV, JSON, npz reads and writes, PNG writes, sha256 of files, copies
    other          the rest of the entry function: numpy work, alignment, rendering, pandas,
                   Python itself

plus faces per second (faces the stage's outputs list, per wall second), the share of the
wall time (and of the entry function's time) inside model calls, and peak RSS.

Which stages (perf.profile.stages): a list of bench commands, each run with the cell of this
command's config (dataset, detector, pool, generator, metric, query) and
perf.profile.results_dir, e.g. [faces, pool, manifold, query, anonymize, evaluate]; an entry
may add overrides ("evaluate query=furthest"). Or `dvc`: every command of dvc.yaml as DVC
resolves it from params.yaml (its choices, not this config's), in dependency order, with
results_dir replaced; perf.profile.only keeps some stage names.

Writes <results_dir>/benchmarks/profile.{json,md} (one entry per perf.profile.label, other
labels kept) and, per stage run, <results_dir>/benchmarks/profile/<label>/<nn>-<stage>.{json,log}
(.prof too with perf.profile.cprofile). Timings on shared cores are noisy: the load average
before and after is recorded beside them.

    python -m bench perf-profile perf.profile.results_dir=/tmp/perf_default
    python -m bench perf-profile perf.profile.stages=dvc perf.profile.results_dir=/tmp/perf_default
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.benchmarks.probes import CATEGORIES
from bench.config import CONF_DIR
from bench.errors import BenchError
from bench.layout import Cell, DatasetLayout, benchmarks_dir, cache_dir, pool_dir

log = logging.getLogger(__name__)

REPO = CONF_DIR.parent
# The columns a stage's wall time is split into (they add up to it), with their headers.
PARTS = {"start_imports": "start+imports", "model_load": "model load", "decode": "decode",
         "model_call": "model calls", "io": "file I/O", "other": "other"}
CELL_KEYS = ("dataset", "detector", "pool", "generator", "metric", "query")
RESULTS_DIR_ARG = re.compile(r"^results_dir=")


@dataclass(frozen=True)
class Invocation:
    """One stage process: `name` (dvc.yaml's stage name where it comes from there) and the
    arguments after `python -m bench`."""

    name: str
    argv: tuple[str, ...]

    @property
    def command(self) -> str:
        return self.argv[0]


# ---- which stages -------------------------------------------------------------------------

def cell_overrides(cfg: DictConfig, results_dir: Path) -> list[str]:
    """The Hydra overrides that give a stage this config's cell and results_dir."""
    choices = cfg.get("choices") or {}
    return [f"{key}={choices[key]}" for key in CELL_KEYS if choices.get(key)] + [f"results_dir={results_dir}"]


def listed_invocations(stages, base: list[str], extra: list[str]) -> list[Invocation]:
    """perf.profile.stages as a list: "command [override ...]" each."""
    out = []
    for entry in stages:
        words = shlex.split(str(entry))
        if not words:
            continue
        own = {_key(word) for word in (*words[1:], *extra)}
        kept = [word for word in base if _key(word) not in own]  # the entry's own value replaces the cell's
        out.append(Invocation(words[0], (words[0], *kept, *words[1:], *extra)))
    return out


def _key(override: str) -> str:
    """`query=furthest` -> `query`; `+a.b=1` -> `a.b`."""
    return override.split("=", 1)[0].lstrip("+~")


def dvc_invocations(repo: Path, results_dir: Path, only=None, extra: list[str] = ()) -> list[Invocation]:
    """Every `python -m bench` command of dvc.yaml as DVC resolves it (params.yaml), in
    dependency order (ties in dvc.yaml's order), results_dir replaced by `results_dir`; a
    stage whose cmd chains commands with && gives one invocation per command (name:command)."""
    import networkx as nx
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        stages = list(dvc.index.stages)
        position = {stage: i for i, stage in enumerate(stages)}
        order = list(nx.lexicographical_topological_sort(dvc.index.graph.reverse(), key=lambda s: position[s]))
        commands = [(stage.addressing, stage.cmd) for stage in order]
    wanted = {str(name) for name in only} if only else None
    out = []
    for name, cmd in commands:
        if wanted is not None and name.split("@")[0] not in wanted and name not in wanted:
            continue
        parts = [part.strip() for part in " ".join(cmd if isinstance(cmd, list) else [cmd]).split("&&")]
        for part in parts:
            words = shlex.split(part)
            if words[:3] != ["python", "-m", "bench"] or len(words) < 4:
                log.warning("%s: skipped %r (not a `python -m bench` command)", name, part)
                continue
            args = [w if not RESULTS_DIR_ARG.match(w) else f"results_dir={results_dir}" for w in words[3:]]
            if not any(RESULTS_DIR_ARG.match(w) for w in args):
                args.append(f"results_dir={results_dir}")
            label = name if len(parts) == 1 else f"{name}:{args[0]}"
            out.append(Invocation(label, (*args, *extra)))
    return out


# ---- one stage process ----------------------------------------------------------------------

def run_invocation(invocation: Invocation, files: Path, index: int, cprofile: bool, timeout: float,
                   env: dict | None = None) -> dict:
    """Runs one stage under the profile runner (with `env` added to the environment); returns
    its runner record plus the caller's launch and end times, the log file and, where the
    process left none, the reason."""
    stem = files / f"{index:02d}-{re.sub(r'[^A-Za-z0-9._@-]+', '_', invocation.name)}"
    out, log_file = stem.with_suffix(".json"), stem.with_suffix(".log")
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "bench.benchmarks.profile_runner", "--out", str(out)]
    if cprofile:
        cmd += ["--cprofile", str(stem.with_suffix(".prof"))]
    env = {**os.environ, "BENCH_PROGRESS": "0", **(env or {})}  # no progress bars in the measurement
    launched = time.time()
    cmd += ["--launched", repr(launched), "--", *invocation.argv]
    with open(log_file, "w", encoding="utf-8") as log_out:
        try:
            code = subprocess.run(cmd, cwd=REPO, env=env, stdout=log_out, stderr=subprocess.STDOUT,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            code = None
    ended = time.time()
    record = read_json(out) or {}
    record.update({"name": invocation.name, "launched": launched, "ended": ended, "log": str(log_file),
                   "returncode": code})
    if code is None:
        record["error"] = f"timed out after {timeout:.0f} s"
    elif not record.get("started"):
        record["error"] = f"exit code {code} before the runner wrote its record (see {log_file})"
    elif code != 0:
        record["error"] = f"exit code {code} (see {log_file})"
    return record


def read_json(path: Path) -> dict | None:
    """A JSON file's object, or None where it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---- the split of one stage's wall time -------------------------------------------------------

def split_wall_time(record: dict) -> dict:
    """One row: wall seconds and its PARTS (which add up to it), from a runner record with the
    caller's `launched` and `ended` (seconds since the epoch)."""
    launched, ended = float(record["launched"]), float(record["ended"])
    wall = max(ended - launched, 0.0)
    row = {"wall_s": wall, **{part: 0.0 for part in PARTS}}
    entry = record.get("entry")
    started = record.get("started")
    if not entry or started is None:  # failed before the entry function (or a command without one)
        row["start_imports"] = wall
        row["process_start_s"] = (float(started) - launched) if started is not None else wall
        return row
    inside = record["categories"]["entry"]
    total = record["categories"]["total"]
    in_entry = float(entry["seconds"])
    for name in CATEGORIES:
        if name != "imports":
            row[name] = max(float(inside.get(name, 0.0)), 0.0)
    row["other"] = max(in_entry - sum(float(inside.get(name, 0.0)) for name in CATEGORIES), 0.0)
    row["start_imports"] = max(wall - sum(row[part] for part in PARTS if part != "start_imports"), 0.0)
    row["process_start_s"] = float(started) - launched
    row["imports_s"] = float(total.get("imports", 0.0))
    row["imports_in_entry_s"] = float(inside.get("imports", 0.0))
    row["entry_s"] = in_entry
    row["before_entry_s"] = float(entry["called"]) - launched
    row["after_entry_s"] = ended - (float(entry["called"]) + in_entry)
    return row


def stage_faces(command: str, config: dict | None) -> tuple[int | None, str]:
    """(faces the stage's outputs list, what they are) for the stages that handle faces; the
    runner's record of the composed config names the files."""
    if not config or "results_dir" not in config:
        return None, ""
    results = Path(config["results_dir"])
    data = DatasetLayout(results, str(config.get("dataset")))
    cell = None
    if all(config.get(key) for key in ("metric", "query", "generator")):
        cell = Cell(results, data.name, str(config.get("pool")), config["metric"], config["query"], config["generator"])
    if command == "faces":
        return _rows(data.faces), "faces detected"
    if command == "manifold":
        return _rows(pool_dir(results, str(config.get("pool"))).faces), "pool faces"
    if command == "query" and cell is not None:
        return _rows(cell.targets), "source faces"
    if command == "anonymize" and cell is not None:
        return _rows(cell.pairs), "faces anonymized"
    if command == "evaluate" and cell is not None:
        tables = sorted(cell.embeddings.glob("*/*.parquet"))
        count = sum(int((pd.read_parquet(t, columns=["status"]).status == "ok").sum()) for t in tables)
        return count, "face embeddings (face x recognizer)"
    if command == "leaks" and cell is not None:
        return _rows(cell.leaks), "leak checks (face x check)"
    return None, ""


def _rows(path: Path) -> int | None:
    try:
        return int(len(pd.read_parquet(path)))
    except (OSError, ValueError):
        return None


def profile_row(record: dict) -> dict:
    """The table row of one stage run: its name, the wall split, faces, shares, peak RSS."""
    row = {"stage": record["name"], "command": (record.get("argv") or [record["name"]])[0]}
    row.update(split_wall_time(record))
    faces, unit = stage_faces(row["command"], record.get("config"))
    row["faces"], row["faces_unit"] = faces, unit
    row["faces_per_s"] = faces / row["wall_s"] if faces and row["wall_s"] > 0 else None
    row["model_call_share"] = row["model_call"] / row["wall_s"] if row["wall_s"] > 0 else None
    row["model_call_share_in_entry"] = (row["model_call"] / row["entry_s"]) if row.get("entry_s") else None
    rss = record.get("peak_rss_mb") or {}
    row["peak_rss_mb"] = max(rss.values()) if rss else None
    cpu = record.get("cpu_s") or {}
    row["cpu_s"] = sum(cpu.values()) if cpu else None
    row["status"] = record.get("error") or "ok"
    row["not_probed"] = sorted(record.get("not_probed") or {})
    row["top_probes"] = sorted(((target, v["seconds"], v["calls"]) for target, v in (record.get("probes") or {}).items()
                                if v["seconds"] > 0), key=lambda t: -t[1])[:8]
    if record.get("cprofile"):
        row["cprofile_top"] = record["cprofile"]
    return row


def by_command(rows: list[dict]) -> list[dict]:
    """The rows summed per bench command (a command may run as several processes, e.g. a stage
    listed with different overrides)."""
    out: dict[str, dict] = {}
    for row in rows:
        agg = out.setdefault(row["command"], {"stage": row["command"], "runs": 0, "wall_s": 0.0, "cpu_s": 0.0,
                                              "faces": 0, "peak_rss_mb": 0.0, **{part: 0.0 for part in PARTS}})
        agg["runs"] += 1
        agg["wall_s"] += row["wall_s"]
        agg["cpu_s"] += row.get("cpu_s") or 0.0
        for part in PARTS:
            agg[part] += row[part]
        agg["faces"] = (agg["faces"] or 0) + (row["faces"] or 0)
        agg["peak_rss_mb"] = max(agg["peak_rss_mb"], row["peak_rss_mb"] or 0.0)
    for agg in out.values():
        agg["faces_per_s"] = agg["faces"] / agg["wall_s"] if agg["faces"] and agg["wall_s"] > 0 else None
        agg["model_call_share"] = agg["model_call"] / agg["wall_s"] if agg["wall_s"] > 0 else None
        agg["faces"] = agg["faces"] or None
    return list(out.values())


def totals(rows: list[dict]) -> dict:
    wall = sum(row["wall_s"] for row in rows)
    out = {"stage": "total", "runs": len(rows), "wall_s": wall, "cpu_s": sum(row.get("cpu_s") or 0.0 for row in rows),
           **{part: sum(row[part] for row in rows) for part in PARTS}}
    out["model_call_share"] = out["model_call"] / wall if wall > 0 else None
    out["peak_rss_mb"] = max((row["peak_rss_mb"] or 0.0 for row in rows), default=None)
    return out


# ---- output -------------------------------------------------------------------------------

def render_markdown(runs: dict) -> str:
    """profile.md: per run, the table per stage run and per command (seconds; shares in %)."""
    lines = ["# Stage profile", "",
             "Wall time of each stage process split into parts that add up to it (seconds): "
             "start+imports = process start, imports (also those inside the stage), Hydra config and exit; "
             "model load = prepare() of detectors, recognizers, generators and model constructors; "
             "decode = photo decoding; model calls = onnxruntime, torch, dlib, OpenCV models; "
             "file I/O = parquet/CSV/JSON/npz reads and writes, PNG writes, file hashing; other = the rest "
             "(numpy, alignment, rendering, pandas, Python). calls % = model calls / wall "
             "(in-stage: / the entry function's time); CPU s = the process's user + system CPU time (all threads). "
             "faces/s = the faces the stage's outputs list per wall second. Timings on shared cores are noisy "
             "(load average beside).", ""]
    for label, run in runs.items():
        lines += [f"## {label}", "",
                  f"results_dir `{run['results_dir']}`, stages: {run['stages']}, "
                  f"environment {(run.get('settings') or {}).get('env') or {}}, {run['cpus']} CPUs, "
                  f"load average {run['load_before']} before, {run['load_after']} after; {run['when']}.", ""]
        lines += _table(run["rows"] + [run["total"]], per_run=True) + [""]
        if len(run["by_command"]) < len(run["rows"]):
            lines += ["Per command:", ""] + _table(run["by_command"] + [run["total"]], per_run=False) + [""]
        failed = [row for row in run["rows"] if row["status"] != "ok"]
        for row in failed:
            lines.append(f"- {row['stage']}: {row['status']}")
        if failed:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _fmt(value, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(rows: list[dict], per_run: bool) -> list[str]:
    head = ["stage", "wall s", *PARTS.values(), "CPU s", "faces", "faces/s", "calls %", "in-stage calls %", "peak RSS MB"]
    if not per_run:
        head.insert(1, "runs")
        head.remove("in-stage calls %")
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["stage"]] + ([str(row.get("runs", ""))] if not per_run else [])
        cells += [_fmt(row["wall_s"])] + [_fmt(row[part]) for part in PARTS] + [_fmt(row.get("cpu_s"))]
        cells += [_fmt(row.get("faces")), _fmt(row.get("faces_per_s"))]
        share = row.get("model_call_share")
        cells.append(_fmt(None if share is None else 100 * share, 0))
        if per_run:
            inner = row.get("model_call_share_in_entry")
            cells.append(_fmt(None if inner is None else 100 * inner, 0))
        cells.append(_fmt(row.get("peak_rss_mb"), 0))
        out.append("| " + " | ".join(cells) + " |")
    return out


def write_report(out_dir: Path, label: str, run: dict) -> dict[str, Path]:
    """Merges `run` into <out_dir>/profile.json under `label` (other labels kept) and renders
    profile.md from all of them."""
    json_path, md_path = out_dir / "profile.json", out_dir / "profile.md"
    report = read_json(json_path) or {}
    runs = dict(report.get("runs") or {})
    runs[label] = run
    resultsio.write_json({"runs": runs}, json_path)
    resultsio.write_text(render_markdown(runs), md_path)
    return {"json": json_path, "md": md_path}


# ---- the benchmark ------------------------------------------------------------------------

def run(cfg: DictConfig) -> dict[str, Path]:
    """Profiles the stages of perf.profile (module docstring); returns the written files."""
    settings = cfg.perf.profile
    results_dir = Path(str(settings.results_dir or cfg.results_dir)).expanduser().resolve()
    label = str(settings.label or f"{cfg.dataset.name}-{cfg.pool.name}")
    extra = [str(o) for o in (settings.overrides or [])]
    stages = settings.stages
    if isinstance(stages, str):
        if stages != "dvc":
            raise BenchError(f"perf.profile.stages={stages!r}: a list of bench commands, or dvc")
        invocations = dvc_invocations(REPO, results_dir, settings.only, extra)
        described = "dvc.yaml (params.yaml's choices)"
    else:
        invocations = listed_invocations(list(stages), cell_overrides(cfg, results_dir), extra)
        described = ", ".join(str(s) for s in stages)
    if not invocations:
        raise BenchError("perf.profile: no stage to run")
    files = benchmarks_dir(cfg.results_dir) / "profile" / label
    if files.exists():
        shutil.rmtree(files)
    files.mkdir(parents=True)
    if settings.fresh_cache:
        cache = cache_dir(results_dir, "")  # <results_dir>/cache: every kind
        if cache.exists():
            log.info("perf.profile.fresh_cache: removing %s (cold caches)", cache)
            shutil.rmtree(cache)
    load_before = [round(x, 2) for x in os.getloadavg()]
    records = []
    for index, invocation in enumerate(invocations, start=1):
        log.info("[%d/%d] %s: python -m bench %s", index, len(invocations), invocation.name, " ".join(invocation.argv))
        record = run_invocation(invocation, files, index, bool(settings.cprofile), float(settings.timeout),
                                {str(k): str(v) for k, v in (settings.get("env") or {}).items()})
        records.append(record)
        row = profile_row(record)
        log.info("  %.1f s (%s)%s", row["wall_s"], ", ".join(f"{PARTS[p]} {row[p]:.1f}" for p in PARTS),
                 "" if row["status"] == "ok" else f"; {row['status']}")
        if row["status"] != "ok" and settings.stop_on_error:
            break
    rows = [profile_row(record) for record in records]
    run_report = {
        "results_dir": str(results_dir), "stages": described,
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(), "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
        "python": sys.version.split()[0], "settings": OmegaConf.to_container(settings, resolve=True),
        "rows": rows, "by_command": by_command(rows), "total": totals(rows),
    }
    written = write_report(benchmarks_dir(cfg.results_dir), label, run_report)
    print(render_markdown({label: run_report}))
    return written
