"""`python -m bench perf-projection` (bench/benchmarks/projection.py) on made-up cost files: each
cost times the paper's unit count, the totals, and the n/a path (a cost not measured is a row
saying why, left out of the total)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.benchmarks import projection
from bench.layout import Cell, DatasetLayout, benchmarks_dir, pool_dir, query_scaling_files

PARAMS = {"table_metrics": ["embedding", "ssim"], "table_queries": ["furthest", "random_furthest_ag"]}


def stage_row(stage: str, wall: float, faces=None, start: float = 1.0, load: float = 0.5) -> dict:
    return {"stage": stage, "wall_s": wall, "start_imports": start, "model_load": load, "faces": faces}


def write_profile(cfg, stages: str) -> dict:
    """profile.json with one run whose stage outputs (photos.csv: 2 photos; manifold
    provenance; 3 recognizers' embeddings of the cell) lie in <tmp>/stages."""
    results = benchmarks_dir(cfg.results_dir).parent / "stages"
    data = DatasetLayout(results, str(cfg.dataset.name))
    data.root.mkdir(parents=True)
    pd.DataFrame({"photo": ["a.jpg", "b.jpg"]}).to_csv(data.photos, index=False)
    pool = pool_dir(results, str(cfg.pool.name))
    pool.root.mkdir(parents=True)
    pool.provenance.write_text(json.dumps({
        "seconds": {"detect_align": 10.0, "embedding": 2.0, "inception": 40.0, "pixels": 0.2, "agegender": 1.0,
                    "total": 53.2},
        "counts": {"images": 120, "faces": 100, "embedding_ok": 100, "inception_ok": 100, "pixels_ok": 100,
                   "agegender_ok": 50}}))
    cell = Cell(results, str(cfg.dataset.name), str(cfg.pool.name), str(cfg.choices.metric), str(cfg.choices.query),
                str(cfg.choices.generator))
    for r in ("dlib", "facenet", "arcface"):
        (cell.embeddings / "sources").mkdir(parents=True, exist_ok=True)
        (cell.embeddings / "sources" / f"{r}.parquet").write_bytes(b"")
    rows = [stage_row("faces", 5.5, 6), stage_row("manifold", 60.0, 100), stage_row("anonymize", 13.5, 4),
            stage_row("evaluate", 7.5, 36), stage_row("leaks", 9.5, 20)]
    rows = [r for r in rows if r["stage"] in stages.split(",")]
    run = {"results_dir": str(results), "by_command": rows}
    path = benchmarks_dir(cfg.results_dir) / "profile.json"
    path.write_text(json.dumps({"runs": {f"{cfg.dataset.name}-{cfg.pool.name}": run}}))
    return run


def write_query_scaling(cfg) -> None:
    exact = [{"pool": 10000, "threads": "default", "strategy": s, "ms_per_face": ms}
             for s, ms in (("closest", 0.5), ("random_furthest", 2.0))]
    exact += [{"pool": 10000, "threads": "1", "strategy": "closest", "ms_per_face": 9.0},
              {"pool": 100000, "threads": "default", "strategy": "closest", "ms_per_face": 50.0}]
    pixels = [{"metric": "ssim", "pool": 10000, "method": "torchmetrics (full pass)", "ms_per_face": 800.0},
              {"metric": "ssim", "pool": 10000, "method": "fast (exact)", "ms_per_face": 70.0}]
    query_scaling_files(cfg.results_dir)["json"].write_text(json.dumps({"exact": exact, "pixels": pixels}))


@pytest.fixture
def cfg(cfg_factory):
    cfg = cfg_factory("perf.projection.measure=false", "perf.projection.paper.photos=10",
                      "perf.projection.paper.faces=100", "perf.projection.paper.pool_faces=1000")
    benchmarks_dir(cfg.results_dir).mkdir(parents=True)
    return cfg


def projected(cfg, monkeypatch) -> dict:
    from bench import stagetable

    monkeypatch.setattr(stagetable, "load_params", lambda path=None: PARAMS)
    projection.run(cfg)
    return json.loads(projection.files(cfg.results_dir)["json"].read_text())


def test_command_is_registered():
    from bench.cli import COMMANDS

    assert COMMANDS["perf-projection"][0] == projection.__name__


def test_each_cost_times_the_papers_count(cfg, monkeypatch):
    write_profile(cfg, "faces,manifold,anonymize,evaluate,leaks")
    write_query_scaling(cfg)
    report = projected(cfg, monkeypatch)
    u = report["units"]
    assert (u["photos"], u["faces"], u["pool_faces"], len(u["cells"]), len(u["recognizers"])) == (10, 100, 1000, 4, 7)
    assert u["kinds"] == ["detect_align", "embedding", "pixels", "agegender"]  # no InceptionV3: no FID cell
    rows = {(r["stage"], r["what"]): r for r in report["rows"]}
    expected = {  # s per unit x count
        ("faces", "detection"): (4.0 / 2, 10),                 # (5.5 - 1.5) s / 2 photos x 10 photos
        ("manifold", "detect_align"): (10.0 / 100, 1000),
        ("manifold", "embedding"): (2.0 / 100, 1000),
        ("manifold", "pixels"): (0.2 / 100, 1000),
        ("manifold", "agegender"): (1.0 / 50, 1000),
        ("manifold", "inception"): (40.0 / 100, 0),             # measured, not needed by these cells
        ("query", "query, embedding space"): (0.002, 200),     # slowest strategy, default threads, 10k
        ("query", "query, ssim space"): (0.8, 200),            # conf/metric/ssim.yaml: torchmetrics
        ("anonymize", "swap + audit"): (12.0 / 4, 400),        # 100 faces x 4 cells
        ("evaluate", "verification"): (6.0 / (4 * 3), 2800),  # 4 faces x 3 recognizers; 100 x 7 x 4
        ("leaks", "leak check"): (8.0 / 2, 40),                # 10 photos x 4 cells
    }
    for key, (per_unit, count) in expected.items():
        assert rows[key]["s_per_unit"] == pytest.approx(per_unit), key
        assert rows[key]["count"] == count, key
        assert rows[key]["projected_s"] == pytest.approx(per_unit * count), key
    fixed = [r for r in report["rows"] if r["unit"] == "stage"]
    assert len(fixed) == 5 and all(r["projected_s"] == pytest.approx(1.5) for r in fixed)
    assert report["by_stage"]["manifold"] == pytest.approx(100 + 20 + 2 + 20 + 1.5)
    assert report["total_s"] == pytest.approx(sum(p * c for p, c in expected.values()) + 5 * 1.5)
    assert report["missing"] == []
    assert "**Projected wall time:" in projection.files(cfg.results_dir)["md"].read_text()


def test_costs_not_measured_are_na_rows_left_out_of_the_total(cfg, monkeypatch):
    run = write_profile(cfg, "faces,manifold,anonymize")  # no evaluate, no leaks; no query_scaling.json
    DatasetLayout(Path(run["results_dir"]), str(cfg.dataset.name)).photos.unlink()
    report = projected(cfg, monkeypatch)
    rows = {(r["stage"], r["what"]): r for r in report["rows"]}
    for key, why in ((("faces", "detection"), "photos.csv not found"),
                     (("evaluate", "verification"), "evaluate not profiled"),
                     (("leaks", "leak check"), "leaks not profiled"),
                     (("query", "query, embedding space"), "python -m bench perf-query")):
        assert rows[key]["s_per_unit"] is None and rows[key]["projected_s"] is None, key
        assert rows[key]["note"].startswith("n/a: ") and why in rows[key]["note"], key
    assert set(report["missing"]) == {"faces: detection", "evaluate: verification", "leaks: leak check",
                                      "query: query, embedding space", "query: query, ssim space"}
    assert report["total_s"] == pytest.approx(sum(report["by_stage"].values()))
    assert report["by_stage"]["anonymize"] == pytest.approx(3.0 * 400 + 1.5)
    hours, note = projection.headline(report)
    assert hours == pytest.approx(round(report["total_s"] / 3600, 2)) and "without faces: detection" in note
    assert "not counted (n/a)" in projection.files(cfg.results_dir)["md"].read_text()


def test_no_profile_run_at_all(cfg, monkeypatch):
    report = projected(cfg, monkeypatch)
    assert report["by_stage"] == {} and report["total_s"] == 0
    assert projection.headline(report) == (None, "n/a: no cost measured")
    assert all(r["note"].startswith("n/a: ") for r in report["rows"])


def test_the_suite_prints_the_headline(cfg, monkeypatch):
    from bench.benchmarks import suite

    write_profile(cfg, "faces,manifold,anonymize,evaluate,leaks")
    write_query_scaling(cfg)
    report = projected(cfg, monkeypatch)
    assert "projection" in cfg.perf.suite.parts and suite.PARTS["projection"] == projection.__name__
    [row] = suite.summarize(cfg, "projection")
    assert row["part"] == "projection" and row["value"] == round(report["total_s"] / 3600, 2)
    assert "10 photos, 100 faces, 1000 pool faces, 4 cells" in row["figure"]
