"""One stage as `python -m bench <stage> ...` runs it, with the timing probes of
bench.benchmarks.probes installed first (stage code unchanged):

    python -m bench.benchmarks.profile_runner --out RUN.json [--cprofile RUN.prof] \\
        [--launched UNIX_TIME] -- <stage> [Hydra overrides]

Writes RUN.json: the process's timeline (started, the stage's entry function called and
returned, finished; seconds since the Unix epoch), seconds per probe category before, during
and after the entry function, each probe's calls and seconds, the targets that could not be
probed, peak RSS (getrusage: this process and any child it waited for), the exit code and
the stage's composed choices (dataset, pool, cell, results_dir, recognizers) so that the
caller can count the faces in its outputs. With --cprofile, cProfile runs as well (its
overhead inflates the Python-heavy parts) and its stats go to RUN.prof.

Only the standard library and bench.benchmarks.probes are imported before the probes are in
place; bench.cli and the stage module are imported through them (import time).
"""
from __future__ import annotations

import time

STARTED = time.time()  # as early as this module can say: the interpreter has started

import argparse  # noqa: E402 (after the clock above)
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402

from bench.benchmarks import probes  # noqa: E402 (standard library only)

TOP_FUNCTIONS = 30  # cProfile: functions listed by cumulative time


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bench.benchmarks.profile_runner")
    parser.add_argument("--out", required=True, help="the run's JSON file")
    parser.add_argument("--cprofile", default=None, help="also run cProfile; its stats go here")
    parser.add_argument("--launched", type=float, default=None, help="time.time() when the caller started the process")
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    stage_argv = argv[split + 1:]
    if not stage_argv:
        parser.error("give the stage after --, e.g. -- evaluate dataset=devset")

    perf_zero, wall_zero = time.perf_counter(), time.time()

    def wall(perf: float) -> float:
        return wall_zero + (perf - perf_zero)

    clock = probes.CategoryClock()
    installer = probes.install(clock)
    marks: dict = {"entries": []}

    import importlib

    import bench.cli  # through the import probe

    stage = stage_argv[0]
    module_name = bench.cli.COMMANDS.get(stage, (None, ""))[0]
    if module_name:
        module = importlib.import_module(module_name)
        names = {"run", *getattr(module, "VERBS", {}).values()}
        for name in names:
            if callable(getattr(module, name, None)):
                setattr(module, name, _timed_entry(getattr(module, name), clock, marks))

    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        code = profiler.runcall(bench.cli.main, stage_argv)
    else:
        code = bench.cli.main(stage_argv)
    finished = time.perf_counter()
    missing = installer.finish()
    total = clock.snapshot()

    entries = marks["entries"]
    record = {
        "argv": stage_argv,
        "exit_code": int(code or 0),
        "launched": args.launched,
        "started": STARTED,
        "probes_installed": wall(perf_zero),
        "finished": wall(finished),
        "entry": None,
        "categories": {"total": total},
        "probes": {target: {"calls": clock.calls.get(target, 0), "seconds": round(clock.target_seconds.get(target, 0.0), 6)}
                   for target in sorted(clock.calls)},
        "not_probed": missing,
        "peak_rss_mb": _peak_rss_mb(),
        "cpu_s": _cpu_s(),
        "config": marks.get("config"),
    }
    if entries:
        first, last = entries[0], entries[-1]
        record["entry"] = {"name": first["name"], "called": wall(first["start"]), "returned": wall(last["end"]),
                           "seconds": sum(e["end"] - e["start"] for e in entries), "calls": len(entries)}
        during = {name: sum(e["after"][name] - e["before"][name] for e in entries) for name in probes.CATEGORIES}
        before = first["before"]
        record["categories"].update({
            "before_entry": before,
            "entry": during,
            "after_entry": {name: total[name] - before[name] - during[name] for name in probes.CATEGORIES},
        })
    if profiler is not None:
        record["cprofile"] = _dump_cprofile(profiler, args.cprofile)
    _write_json(record, args.out)
    return record["exit_code"]


def _timed_entry(fn, clock: probes.CategoryClock, marks: dict):
    """The stage's entry function, its start, end and category totals recorded in `marks`
    (and the composed config's choices: what its outputs are named by)."""
    import functools

    @functools.wraps(fn)
    def entry(cfg, *args, **kwargs):
        marks["config"] = _choices(cfg)
        mark = {"name": fn.__name__, "before": clock.snapshot(), "start": time.perf_counter()}
        try:
            return fn(cfg, *args, **kwargs)
        finally:
            mark["end"] = time.perf_counter()
            mark["after"] = clock.snapshot()
            marks["entries"].append(mark)

    return entry


def _choices(cfg) -> dict:
    """What names a stage's outputs: results_dir, dataset and pool names, the cell, recognizers."""
    try:
        choices = dict(cfg.get("choices") or {})
        return {
            "results_dir": str(cfg.results_dir),
            "dataset": str(cfg.dataset.name) if "dataset" in cfg else None,
            "pool": str(cfg.pool.name) if "pool" in cfg else None,
            "metric": choices.get("metric"), "query": choices.get("query"), "generator": choices.get("generator"),
            "recognizers": [str(r) for r in cfg.get("recognizers") or []],
        }
    except Exception as err:  # noqa: BLE001 - a measurement must not fail on a config it cannot read
        return {"error": str(err)}


def _cpu_s() -> dict:
    """CPU seconds of this process (all its threads), user and system: less sensitive than
    wall time to other work on shared cores, but model calls on several threads add up."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    return {"user": round(own.ru_utime, 3), "system": round(own.ru_stime, 3)}


def _peak_rss_mb() -> dict:
    """Peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return {"self": round(own, 1), "children": round(children, 1)}


def _dump_cprofile(profiler, path: str) -> list[dict]:
    """Writes the stats to `path`; returns the top functions by cumulative time."""
    import pstats

    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, name), (cc, nc, tt, ct, _) in stats.stats.items():
        rows.append({"function": f"{os.path.basename(file)}:{line}({name})" if line else name,
                     "calls": nc, "tottime": round(tt, 4), "cumtime": round(ct, 4)})
    rows.sort(key=lambda row: row["cumtime"], reverse=True)
    return rows[:TOP_FUNCTIONS]


def _write_json(record: dict, path: str) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2, sort_keys=True, default=str)
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
