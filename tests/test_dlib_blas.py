"""Dlib as scripts/install.sh installs it (one distribution provides `import dlib`: dlib built
against OpenBLAS, or the dlib-bin wheel) and bench/benchmarks/dlib_blas.py, which measures
its descriptor against the wheel's."""
from __future__ import annotations

import json
from importlib import metadata

import pytest

from bench.benchmarks import dlib_blas, suite


def installed(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def test_exactly_one_distribution_provides_dlib():
    """dlib and dlib-bin install the same files: with both, uninstalling one breaks the other."""
    import dlib

    assert [installed("dlib"), installed("dlib-bin")].count(True) == 1
    assert isinstance(dlib.DLIB_USE_BLAS, bool)


def report(diff=3e-7, ms=13.0, wheel_ms=72.0, wheel_ok=True) -> dict:
    build = {"distribution": "dlib", "version": "20.0.1", "blas": True, "status": "ok",
             "ms_per_face": ms, "seconds": [ms * 24 / 1000] * 3}
    wheel = ({"distribution": "dlib-bin", "version": "20.0.1", "blas": False, "status": "ok",
              "ms_per_face": wheel_ms, "seconds": [wheel_ms * 24 / 1000] * 3} if wheel_ok
             else {"status": "n/a: pip could not install dlib-bin"})
    return {"command": "python -m bench.benchmarks.dlib_blas", "when": "2026-01-01T00:00:00+00:00",
            "machine": {"cpus": 2, "load_average": [1.0, 1.0, 1.0], "python": "3.11"},
            "chips": {"count": 24, "size": 150, "padding": 0.25, "source": "identities set"}, "passes": 3,
            "builds": {"installed": build, "wheel": wheel}, "max_abs_diff": diff if wheel_ok else None,
            "speedup": wheel_ms / ms if wheel_ok else None, "targets": dlib_blas.TARGETS,
            "met": {"ms_per_face": ms <= 20, "max_abs_diff": diff <= 1e-4 if wheel_ok else None}}


def test_headline_rows_and_table():
    rows = dlib_blas.summary_rows(report(diff=2e-4, ms=25.0))
    assert [r["met"] for r in rows] == [False, False]
    assert rows[0]["value"] == 25.0 and rows[1]["value"] == 2e-4
    text = dlib_blas.render_markdown(report())
    assert "| installed | dlib 20.0.1 | yes | 13.0 |" in text and "3.00e-07" in text and "5.5x" in text
    missing = report(wheel_ok=False)
    assert dlib_blas.summary_rows(missing)[1]["value"] is None
    assert "n/a: pip could not install dlib-bin" in dlib_blas.render_markdown(missing)


def test_the_suite_reads_the_dlib_part(cfg_factory, tmp_path):
    cfg = cfg_factory(f"results_dir={tmp_path}", "perf.suite.parts=[dlib]")
    path = dlib_blas.files(cfg.results_dir)["json"]
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(report()))
    assert [r["value"] for r in suite.summarize(cfg, "dlib")] == [13.0, 3e-7]
    assert suite.report_files(cfg)["dlib"].name == "dlib_blas.md"


def test_no_identities_is_a_bench_error(cfg_factory, tmp_path):
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="identities"):
        dlib_blas.run(cfg_factory(f"identities.path={tmp_path}"))


@pytest.mark.shared
@pytest.mark.slow
def test_both_builds_on_three_chips(cfg_factory, tmp_path, shared):
    """The installed dlib and the dlib-bin wheel (pip; its cache after the first time) on the
    same chips: the same descriptors; the wheel's side is n/a where pip cannot get it."""
    shared("data", "identities", "labels.csv")
    files = dlib_blas.run(cfg_factory(f"results_dir={tmp_path}", "+perf.dlib.chips=3", "+perf.dlib.passes=1"))
    out = json.loads(files["json"].read_text())
    assert out["chips"]["count"] == 3 and out["builds"]["installed"]["ms_per_face"] > 0
    if out["builds"]["wheel"]["status"] == "ok":
        assert out["builds"]["wheel"]["distribution"] == "dlib-bin" and not out["builds"]["wheel"]["blas"]
        assert out["max_abs_diff"] <= 1e-4
    assert "| installed |" in files["md"].read_text()
