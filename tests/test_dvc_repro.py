"""`dvc repro` as a user runs it, on a copy of this checkout with the embedded default shrunk
(one cell per cell list, a 24-face pool, Dlib as the only judge; its dvc.yaml regenerated
from the stage table for those lists):

- a second `dvc repro` runs no stage, and `dvc status dvc.yaml` is clean (the whole project
  lists only perf/dvc.yaml's suite, which the default `dvc repro` never runs);
- every file the stages wrote is declared in dvc.yaml (bench.stagetable.stage_outputs), but for
  the content-addressed caches under results/cache/;
- a second run from scratch with the same seed writes byte-identical tables and metrics.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bench import layout, stagetable

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# One query per matrix: the compare cells (compare_metric-compare_query) need those targets.
SMALL_PARAMS = {"table_metrics": ["embedding"], "table_queries": ["random_furthest_ag"], "all_metrics": ["embedding"],
                "compare_generators": ["pixelate"]}


def copy_checkout(dest: Path) -> None:
    """The files git would clone (tracked, plus new files not ignored), as a fresh git repo."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shrink(dest)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(["git", *args], cwd=dest, check=True, capture_output=True)


def shrink(repo: Path) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params.update(SMALL_PARAMS)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for name, text in stagetable.dvc_files(params).items():
        (repo / name).write_text(text)
    config = yaml.safe_load((repo / "conf" / "config.yaml").read_text())
    config["recognizers"] = ["dlib"]
    # The genuine baseline on ../shared's 61 identity photos takes minutes: here it runs on
    # no identities set at all, the path a machine without ../shared takes (n/a rows).
    config["identities"]["path"] = str(repo / "no-identities-here")
    config["quality"]["generators"] = ["faceswap", "pixelate"]
    config["platform"]["uploads"]["n"] = 6
    config["platform"]["workload"]["views"] = 40
    config["platform"]["scale"]["users"] = [1000]
    config["attack"]["kanonymity"].update(faces=2, k_max=3)
    (repo / "conf" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    pool = yaml.safe_load((repo / "conf" / "pool" / "dcgan.yaml").read_text())
    pool["n"] = 24
    (repo / "conf" / "pool" / "dcgan.yaml").write_text(yaml.safe_dump(pool, sort_keys=False))


def dvc(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """`dvc ARGS` in `repo`."""
    env = dict(os.environ, BENCH_SHARED=str(SHARED), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=env, capture_output=True, text=True)


def output_bytes(repo: Path) -> dict[str, bytes]:
    """Every table and metrics file dvc repro wrote (csv, md, tex, json but provenance)."""
    results = repo / "results"
    files = [p for p in (results / "tables").rglob("*") if p.is_file() and p.suffix in {".csv", ".md", ".tex"}]
    files += [p for p in results.rglob("metrics.json")]
    files += [p for p in (results / "attack").rglob("*") if p.is_file() and p.suffix in {".csv", ".md"}]
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(files)}


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("dvc") / "checkout"
    repo.mkdir()
    copy_checkout(repo)
    first = dvc(repo, "repro")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return repo


def test_second_repro_runs_nothing_and_status_is_clean(repo):
    again = dvc(repo, "repro")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Running stage" not in again.stdout, again.stdout
    status = dvc(repo, "status", "dvc.yaml")
    assert status.returncode == 0 and "Data and pipelines are up to date" in status.stdout, status.stdout
    # The whole project: only the performance suite (perf/dvc.yaml, never run by default) is pending.
    whole = dvc(repo, "status")
    pending = [line.rstrip(":") for line in whole.stdout.splitlines() if line and not line[0].isspace()]
    assert whole.returncode == 0 and pending == ["perf/dvc.yaml:perf"], whole.stdout


def test_every_written_file_is_declared(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    declared = [repo / p for paths in stagetable.stage_outputs(params).values() for p in paths]
    caches = repo / layout.cache_dir("results", "x").parent
    undeclared = []
    for path in (repo / "results").rglob("*"):
        if not path.is_file() or path.name == ".gitkeep" or caches in path.parents:
            continue
        if not any(path == d or d in path.parents for d in declared):
            undeclared.append(str(path.relative_to(repo)))
    assert not undeclared, f"written but declared by no stage: {undeclared[:20]}"


def test_the_attack_stage_attacks_the_default_cell(repo):
    """attack.subjects=dataset on the compare cell: Dlib ranks the fakes against the originals and
    the parrot's own fakes; linkability says why it has no number."""
    import pandas as pd

    params = yaml.safe_load((repo / "params.yaml").read_text())
    out = layout.AttackOutputs(repo / "results", params["pool"], params["generator"], params["compare_metric"],
                               params["compare_query"], params["dataset"])
    parrot = pd.read_csv(out.table("parrot", ".csv")).set_index("recognizer").loc["dlib"]
    assert parrot.status == "ok" and parrot.identities >= 5 and 0 <= parrot.rank1_parrot <= 1
    link = pd.read_csv(out.table("linkability", ".csv"))
    assert link.status.str.contains("no identity labels").all()
    kanon = pd.read_csv(out.table("kanonymity", ".csv"))
    assert (kanon.status == "ok").any() and kanon.k.max() == 3


def test_metrics_are_shown_by_dvc(repo):
    """`dvc metrics show` prints the headline file alone (a table a person scans), not the
    per-cell metrics the gate reads."""
    shown = dvc(repo, "metrics", "show")
    assert shown.returncode == 0, shown.stderr
    assert "results/headline.json" in shown.stdout and "results/metrics.json" not in shown.stdout
    assert len(max(shown.stdout.splitlines(), key=len)) < 4000


def test_same_seed_same_bytes(repo):
    """Everything removed but DVC's own cache, then every stage run again (no run cache): the
    same bytes."""
    before = output_bytes(repo)
    assert any(name.endswith("table1.csv") for name in before) and any(n.endswith("metrics.json") for n in before)
    shutil.rmtree(repo / "results")
    (repo / "results").mkdir()
    again = dvc(repo, "repro", "--force", "--no-run-cache")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    after = output_bytes(repo)
    assert sorted(after) == sorted(before)
    changed = [name for name in before if before[name] != after[name]]
    assert not changed, f"a second run with the same seed changed {changed}"
