"""The performance benchmarks (bench/benchmarks/): how time is classified, what the reports
hold. Tiny inputs, no timing thresholds (timings on shared cores are noise)."""
from __future__ import annotations

import builtins
import json
import sys
import types

import numpy as np
import pandas as pd
import pytest
from omegaconf import open_dict

from bench.benchmarks import naive_vs_harness as naive
from bench.benchmarks import profile, probes
from bench.layout import Cell, benchmarks_dir


class FakeTime:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


# ---- probes: exclusive time per category ---------------------------------------------------------

def test_an_import_inside_a_model_load_is_import_time():
    now = FakeTime()
    clock = probes.CategoryClock(now=now)
    load = clock.enter("model_load", "prepare")
    now.t = 2.0
    imp = clock.enter("imports", "__import__")
    now.t = 5.0
    clock.exit(imp)
    now.t = 10.0
    clock.exit(load)
    assert clock.seconds == {"model_load": 7.0, "imports": 3.0}
    assert clock.target_seconds == {"prepare": 7.0, "__import__": 3.0}


def test_a_lower_priority_call_inside_belongs_to_the_outer_one():
    now = FakeTime()
    clock = probes.CategoryClock(now=now)
    call = clock.enter("model_call", "run")
    now.t = 1.0
    io = clock.enter("io", "np.load")  # e.g. a model reading a file while it runs
    now.t = 3.0
    clock.exit(io)
    inner = clock.enter("model_call", "run")  # a model inside a model: counted once
    now.t = 4.0
    clock.exit(inner)
    now.t = 6.0
    assert clock.snapshot()["model_call"] == 6.0  # the running call counts in a snapshot
    clock.exit(call)
    assert clock.seconds == {"model_call": 6.0}
    assert clock.calls == {"run": 2, "np.load": 1}


def test_categories_never_add_up_to_more_than_the_time_that_passed():
    now = FakeTime()
    clock = probes.CategoryClock(now=now)
    frames = []
    for step, category in enumerate(["io", "decode", "model_call", "model_load", "imports", "io"]):
        frames.append(clock.enter(category, category))
        now.t = step + 1.0
    for frame in reversed(frames):
        now.t += 0.5
        clock.exit(frame)
    assert sum(clock.seconds.values()) == pytest.approx(now.t)


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(source, module.__dict__)
    sys.modules[name] = module
    return module


def test_installer_wraps_functions_methods_and_lists_what_it_cannot():
    module = _module("perf_dummy_a", "def f(x):\n    return x + 1\nclass C:\n    def m(self):\n        return f(1)\n")
    clock = probes.CategoryClock()
    installer = probes.install(clock, {"model_call": ("perf_dummy_a:f", "perf_dummy_a:C.m"),
                                       "io": ("perf_dummy_a:absent", "perf_dummy_never_imported:g")})
    try:
        assert module.C().m() == 2 and module.f(1) == 2
        missing = installer.finish()
    finally:
        installer.uninstall()
        del sys.modules["perf_dummy_a"]
    assert clock.calls == {"perf_dummy_a:C.m": 1, "perf_dummy_a:f": 2}
    assert set(clock.seconds) == {"model_call"}
    assert "no such attribute" in missing["perf_dummy_a:absent"]
    assert "not imported" in missing["perf_dummy_never_imported:g"]
    assert not hasattr(module.f, "__probed__")  # uninstall put the originals back


def test_targets_of_a_module_imported_later_are_installed_once_it_has_run_its_body(tmp_path, monkeypatch):
    # The body imports another module before it defines `g`: a probe installed while the body
    # runs would find no `g` (how numpy's and pandas' functions went unprobed at first).
    (tmp_path / "perf_lazy_dep.py").write_text("X = 1\n")
    (tmp_path / "perf_lazy_mod.py").write_text("import perf_lazy_dep\n\ndef g():\n    return perf_lazy_dep.X\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    original_import = builtins.__import__
    clock = probes.CategoryClock()
    installer = probes.install(clock, {"imports": ("builtins:__import__",), "decode": ("perf_lazy_mod:g",)})
    try:
        import perf_lazy_mod

        assert perf_lazy_mod.g() == 1
        assert installer.finish() == {}
    finally:
        installer.uninstall()
        for name in ("perf_lazy_mod", "perf_lazy_dep"):
            sys.modules.pop(name, None)
    assert builtins.__import__ is original_import
    assert clock.calls["perf_lazy_mod:g"] == 1
    assert clock.seconds["imports"] > 0


# ---- profile: the split of a stage's wall time ----------------------------------------------------

def _record(**overrides) -> dict:
    inside = {"imports": 1.0, "model_load": 2.0, "model_call": 10.0, "decode": 0.5, "io": 0.5}
    record = {
        "name": "evaluate@embedding-furthest", "argv": ["evaluate", "results_dir=x"],
        "launched": 100.0, "started": 100.5, "ended": 120.0,
        "entry": {"name": "run", "called": 103.0, "returned": 119.0, "seconds": 16.0, "calls": 1},
        "categories": {"entry": inside, "total": {**inside, "imports": 3.0}},
        "peak_rss_mb": {"self": 812.0, "children": 0.0}, "probes": {"onnxruntime:InferenceSession.run": {"calls": 3, "seconds": 10.0}},
        "not_probed": {}, "config": None, "exit_code": 0,
    }
    record.update(overrides)
    return record


def test_the_parts_add_up_to_the_wall_time():
    row = profile.split_wall_time(_record())
    assert row["wall_s"] == 20.0
    assert sum(row[part] for part in profile.PARTS) == pytest.approx(20.0)
    # 16 s in the entry: 1 import, 2 load, 10 calls, 0.5 decode, 0.5 I/O -> 2 s other;
    # start+imports = the 4 s outside the entry + the 1 s of imports inside it.
    assert (row["model_call"], row["model_load"], row["decode"], row["io"], row["other"]) == (10.0, 2.0, 0.5, 0.5, 2.0)
    assert row["start_imports"] == pytest.approx(5.0)
    assert row["process_start_s"] == 0.5 and row["imports_s"] == 3.0


def test_a_stage_that_failed_before_its_entry_is_all_start():
    row = profile.split_wall_time(_record(entry=None))
    assert row["start_imports"] == row["wall_s"] == 20.0
    assert row["model_call"] == row["other"] == 0.0


def test_profile_rows_report_and_merge_by_label(tmp_path):
    row = profile.profile_row(_record())
    assert row["command"] == "evaluate" and row["peak_rss_mb"] == 812.0 and row["status"] == "ok"
    assert row["model_call_share"] == pytest.approx(0.5) and row["model_call_share_in_entry"] == pytest.approx(10 / 16)
    rows = [row, profile.profile_row(_record(name="evaluate@x", exit_code=2, error="exit code 2 (see log)"))]
    commands = profile.by_command(rows)
    assert len(commands) == 1 and commands[0]["runs"] == 2 and commands[0]["wall_s"] == 40.0
    run = {"results_dir": "r", "stages": "evaluate", "cpus": 2, "load_before": [1.0], "load_after": [1.0],
           "when": "now", "rows": rows, "by_command": commands, "total": profile.totals(rows)}
    profile.write_report(tmp_path, "one", run)
    written = profile.write_report(tmp_path, "two", run)
    report = json.loads(written["json"].read_text())
    assert sorted(report["runs"]) == ["one", "two"]
    text = written["md"].read_text()
    assert "## one" in text and "## two" in text and "| total |" in text and "exit code 2" in text
    assert "Per command:" in text


def test_faces_per_stage_come_from_its_outputs(tmp_path):
    config = {"results_dir": str(tmp_path), "dataset": "d", "pool": "p", "metric": "embedding",
              "query": "furthest", "generator": "blur"}
    cell = Cell(tmp_path, "d", "p", "embedding", "furthest", "blur")
    (tmp_path / "d").mkdir()
    pd.DataFrame({"face_id": ["a", "b", "c"]}).to_parquet(tmp_path / "d" / "faces.parquet")
    (cell.embeddings / "sources").mkdir(parents=True)
    pd.DataFrame({"status": ["ok", "n/a: x", "ok"]}).to_parquet(cell.embeddings / "sources" / "dlib.parquet")
    assert profile.stage_faces("faces", config) == (3, "faces detected")
    assert profile.stage_faces("evaluate", config)[0] == 2
    assert profile.stage_faces("anonymize", config) == (None, "faces anonymized")  # no pairs.parquet yet
    assert profile.stage_faces("tables", config) == (None, "")


def test_listed_stages_get_the_cell_and_their_own_overrides(cfg_factory, tmp_path):
    cfg = cfg_factory("query=furthest")
    base = profile.cell_overrides(cfg, tmp_path / "r")
    assert "query=furthest" in base and f"results_dir={tmp_path / 'r'}" in base
    found = profile.listed_invocations(["faces", "evaluate query=random_furthest"], base, ["recognizers=[dlib]"])
    assert [i.command for i in found] == ["faces", "evaluate"]
    assert "query=furthest" in found[0].argv
    assert found[1].argv[-2:] == ("query=random_furthest", "recognizers=[dlib]")
    assert "query=furthest" not in found[1].argv  # the entry's own query replaces the cell's


def test_dvc_mode_runs_every_bench_command_of_dvc_yaml_in_dependency_order(tmp_path):
    found = profile.dvc_invocations(profile.REPO, tmp_path, only=["anonymize", "query", "faces"])
    assert [i.name for i in found] == ["faces", "query", "anonymize"]
    assert [i.command for i in found] == ["faces", "query", "anonymize"]
    # a cell stage is one process over its cells, passed as one Hydra override
    assert any(a.startswith("pipeline.cells=[{") for a in found[2].argv)
    for invocation in found:
        assert sum(a.startswith("results_dir=") for a in invocation.argv) == 1
        assert f"results_dir={tmp_path}" in invocation.argv


def test_profile_runs_stages_in_their_own_processes_and_writes_its_files(cfg_factory, tmp_path):
    cfg = cfg_factory()
    with open_dict(cfg):
        cfg.perf.profile.results_dir = str(tmp_path / "stages")
        cfg.perf.profile.stages = ["pool pool.n=2", "tables"]  # tables fails: nothing to tabulate
        cfg.perf.profile.stop_on_error = False
        cfg.perf.profile.label = "tiny"
    written = profile.run(cfg)
    report = json.loads(written["json"].read_text())["runs"]["tiny"]
    pool, tables = report["rows"]
    assert pool["status"] == "ok" and pool["entry_s"] > 0 and pool["peak_rss_mb"] > 0
    assert pool["model_call"] > 0  # the DCGAN generator is a torch module
    assert sum(pool[part] for part in profile.PARTS) == pytest.approx(pool["wall_s"], rel=1e-6)
    assert tables["status"].startswith("exit code 2")
    files = benchmarks_dir(cfg.results_dir) / "profile" / "tiny"
    assert (files / "01-pool.json").is_file() and (files / "02-tables.log").is_file()
    assert "## tiny" in written["md"].read_text()


# ---- naive vs harness ---------------------------------------------------------------------------

def test_the_naive_crop_is_the_box_grown_and_clipped():
    image = np.arange(100 * 80 * 3, dtype=np.uint8).reshape(100, 80, 3)
    assert naive.crop_box(image, (10, 20, 30, 60), 0.0).shape == (40, 20, 3)
    assert naive.crop_box(image, (10, 20, 30, 60), 0.5).shape == (80, 40, 3)
    assert naive.crop_box(image, (70, 90, 90, 120), 0.0).shape == (10, 10, 3)  # clipped at the border
    with pytest.raises(ValueError):
        naive.crop_box(image, (90, 10, 95, 20), 0.0)


def test_deepface_reports_no_face_as_the_whole_crop():
    assert naive.face_found({"x": 3, "y": 4, "w": 20, "h": 20}, (40, 30, 3))
    assert not naive.face_found({"x": 0, "y": 0, "w": 29, "h": 39}, (40, 30, 3))  # deepface clips to w - 1, h - 1
    assert not naive.face_found({"x": 0, "y": 0, "w": 30, "h": 40}, (40, 30, 3))
    assert not naive.face_found(None, (40, 30, 3))


def test_verdicts_are_compared_where_both_ways_judged():
    keys = {"recognizer": ["dlib"] * 4, "cell": ["c"] * 4, "source_face": ["a", "b", "c", "d"]}
    naive_rows = pd.DataFrame({**keys, "naive_verified": [True, False, False, None],
                               "naive_distance": [0.05, 0.2, 0.3, None], "naive_faces_found": [2, 2, 0, None]})
    harness = pd.DataFrame({**keys, "verified": pd.array([True, True, False, False], dtype="boolean"),
                            "distance": [0.04, 0.06, 0.25, 0.3]})
    harness.loc[2, "verified"] = pd.NA
    summary = naive.compare_verdicts(naive_rows, harness)
    assert summary["both_judged"] == 2 and summary["agree"] == 1 and summary["agreement"] == 0.5
    assert summary["naive_only"] == 1 and summary["harness_only"] == 1
    assert summary["disagreements_by_faces_found"] == {"2": 1}


def test_the_column_is_one_cell_per_strategy_in_the_tables_space(cfg_factory, tmp_path):
    cfg = cfg_factory()
    cells, metric = naive.column_cells(cfg, tmp_path, "table1")
    assert metric == "cosine"
    assert [(c.metric, c.query) for c in cells] == [("embedding", q) for q in cfg.tables.strategies.values()]
    with pytest.raises(Exception, match="tables.specs"):
        naive.column_cells(cfg, tmp_path, "table9")


def test_the_harness_scratch_links_inputs_and_owns_its_outputs(tmp_path):
    source, scratch = tmp_path / "src", tmp_path / "scratch"
    cell = Cell(source, "d", "p", "embedding", "furthest", "blur")
    cell.photos.mkdir(parents=True)
    for path in (cell.pairs, cell.faces, cell.photo_table, source / "d" / "faces.parquet"):
        path.write_text("x")
    (source / "pools" / "p").mkdir(parents=True)
    (cell.root / "outcomes.parquet").write_text("old")  # an earlier evaluate's output: not taken along
    (mine,) = naive.scratch_results(source, scratch, [cell], "d", "p")
    assert mine.root.is_dir() and not mine.root.is_symlink()
    assert mine.pairs.is_symlink() and mine.photos.is_symlink() and (scratch / "pools" / "p").is_symlink()
    assert not mine.outcomes.exists() and not (scratch / "cache").exists()


def test_naive_report_renders_every_label(tmp_path):
    verdicts = {"pairs": 2, "both_judged": 2, "agree": 2, "agreement": 1.0, "naive_only": 0, "harness_only": 0,
                "neither": 0, "naive_verified": 0, "harness_verified": 0, "disagreements_by_faces_found": {},
                "judged_by_faces_found": {"2": 2}}
    report = {"table": "table1", "metric": "cosine", "generator": "faceswap", "cells": ["embedding-furthest"],
              "missing_cells": [], "pairs_per_cell": {"embedding-furthest": 2}, "recognizers": {"dlib": "Dlib"},
              "results_dir": "r", "cpus": 2, "load_average": [1.0], "when": "now",
              "naive": {"seconds": 4.0, "pairs_x_recognizers": 2, "s_per_pair": 2.0, "decode_s": 1.0, "verify_s": 3.0},
              "harness": {"seconds": 1.0, "pairs_x_recognizers": 2, "s_per_pair": 0.5, "per_cell": {"embedding-furthest": 1.0},
                          "process_overhead_s": 3.0, "s_per_pair_as_dvc_runs_it": 2.0},
              "ratio": 4.0, "ratio_as_dvc_runs_it": 1.0, "verdicts": verdicts, "verdicts_per_recognizer": {"dlib": verdicts}}
    naive.write_report(tmp_path, "a", report)
    written = naive.write_report(tmp_path, "b", report)
    assert sorted(json.loads(written["json"].read_text())["runs"]) == ["a", "b"]
    text = written["md"].read_text()
    assert "## a" in text and "## b" in text and "**4.00x**" in text
