"""`python -m bench perf` (bench/benchmarks/suite.py): the parts run in order, a part that
cannot run is an n/a row (the others still run), the summary holds each headline figure
beside its target, and the command fails only when no part ran."""
from __future__ import annotations

import json

import pytest

from bench.benchmarks import suite
from bench.errors import BenchError
from bench.layout import perf_files

Q = "perf.query_scaling."
SMALL_QUERY = (f"{Q}sources=4", f"{Q}dim=16", f"{Q}exact.pool_sizes=[10000]", f"{Q}exact.repeats=1",
               f"{Q}exact.threads=[1]", f"{Q}approximate.pool_sizes=[]", f"{Q}pixels.pool_size=0", f"{Q}threads=1")


def test_command_is_registered():
    from bench.cli import COMMANDS

    assert COMMANDS["perf"][0] == suite.__name__


def test_query_part_and_an_na_part(cfg_factory, tmp_path):
    """naive has no cells to time in an empty results_dir: an n/a row saying so; query runs."""
    cfg = cfg_factory("perf.suite.parts=[naive,query]", *SMALL_QUERY,
                      f"perf.naive.results_dir={tmp_path / 'nothing'}")
    files = suite.run(cfg)
    assert files == perf_files(cfg.results_dir)
    summary = json.loads(files["json"].read_text())
    assert summary["parts"]["naive"]["status"].startswith("n/a: none of the column's cells exists")
    assert summary["parts"]["query"]["status"] == "ok"
    rows = {(r["part"], r["figure"]): r for r in summary["rows"]}
    na_row = rows[("naive", "not run")]
    assert na_row["value"] is None and na_row["note"].startswith("n/a: ")
    query = rows[("query", "10k pool, exact, 1 threads: ms per source face (slowest strategy)")]
    assert query["target"] == "<= 1" and query["met"] == (query["value"] <= 1.0) and query["value"] > 0
    text = files["md"].read_text()
    assert "| naive | not run | n/a |" in text and "10k pool, exact" in text
    # what perf/dvc.yaml declares exists, a part that did not run saying so
    from bench.layout import perf_stage_outputs

    assert all(path.exists() for path in perf_stage_outputs(cfg.results_dir))
    assert json.loads((files["json"].parent / "profile.json").read_text())["status"] == "not run: not in perf.suite.parts"
    assert "n/a: none of the column" in (files["json"].parent / "naive_vs_harness.md").read_text()


def test_nothing_runs_is_an_error(cfg_factory, tmp_path):
    cfg = cfg_factory("perf.suite.parts=[naive]", f"perf.naive.results_dir={tmp_path / 'nothing'}")
    with pytest.raises(BenchError, match="no part of the performance suite"):
        suite.run(cfg)
    with pytest.raises(BenchError, match="choose from"):
        suite.run(cfg_factory("perf.suite.parts=[speed]"))


def test_headline_rows_against_targets(cfg_factory):
    targets = cfg_factory().perf.suite.targets
    naive = {"ratio": 12.5, "naive": {"s_per_pair": 0.25}, "harness": {"s_per_pair": 0.02},
             "recognizers": {"dlib": "Dlib"}, "verdicts": {"agreement": 0.9, "agree": 9, "both_judged": 10},
             "model_calls": {"ratio_bound_at_equal_cost_per_face": 1.5, "naive_faces_embedded": 20,
                             "harness_faces_embedded": 13}}
    first = suite.naive_rows(naive, targets)[0]
    assert first["met"] is True and first["value"] == 12.5
    assert suite.naive_rows({**naive, "ratio": 3.0}, targets)[0]["met"] is False
    profile = {"total": {"wall_s": 10, "runs": 2},
               "by_command": [{"stage": "evaluate", "model_call_share": 0.79, "peak_rss_mb": 5000.0},
                              {"stage": "manifold", "model_call_share": 0.9, "peak_rss_mb": 100.0}]}
    rows = {r["figure"]: r for r in suite.profile_rows(profile, targets)}
    assert rows["evaluate: share of wall time in model calls"]["met"] is False
    assert rows["manifold: share of wall time in model calls"]["met"] is None
    peak = rows["largest peak RSS of a stage (MiB)"]
    assert peak["met"] is False and peak["note"] == "evaluate"
