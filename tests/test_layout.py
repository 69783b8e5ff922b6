"""One layout: what dvc.yaml declares (as DVC resolves it) is what the stage table computes
through bench.layout, stage by stage."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import layout, stagetable
from bench.config import load_config

REPO = Path(__file__).resolve().parent.parent


def dvc_declared(repo: Path) -> dict[str, set[Path]]:
    """Every dvc.yaml stage's outs, metrics and plots as DVC itself resolves them."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc:
        return {stage.addressing: {Path(out.fs_path).resolve().relative_to(repo.resolve()) for out in stage.outs}
                for stage in dvc.index.stages if stage.addressing.split("@")[0] in _stage_names(repo)}


def _stage_names(repo: Path) -> set[str]:
    return set(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])


def test_dvc_yaml_declares_what_the_layout_computes():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    declared = dvc_declared(REPO)
    computed = {stage: set(paths) for stage, paths in stagetable.stage_outputs(params).items()}
    assert sorted(declared) == sorted(computed), "stages differ between dvc.yaml and bench.stagetable.stage_outputs"
    for stage in declared:
        assert declared[stage] == computed[stage], (
            f"{stage}: only in dvc.yaml {sorted(map(str, declared[stage] - computed[stage]))}, "
            f"only in the stage table {sorted(map(str, computed[stage] - declared[stage]))}")


def test_perf_pipeline_declares_what_the_layout_computes():
    """perf/dvc.yaml (outside the default `dvc repro`) writes only under benchmarks/, which no
    stage of dvc.yaml declares."""
    from dvc.repo import Repo

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    with Repo(str(REPO)) as dvc:
        stages = {s.addressing: s for s in dvc.index.stages}
    perf = stages["perf/dvc.yaml:perf"]
    declared = {Path(out.fs_path).resolve().relative_to(REPO.resolve()) for out in perf.outs}
    assert declared == set(layout.perf_stage_outputs(params["results_dir"]))
    assert all(not out.use_cache and out.persist for out in perf.outs)
    assert "perf" not in _stage_names(REPO)
    bench_dir = layout.benchmarks_dir(params["results_dir"])
    for stage, paths in stagetable.stage_outputs(params).items():
        assert not any(path == bench_dir or bench_dir in path.parents or path in bench_dir.parents
                       for path in paths), stage


def test_no_path_is_declared_by_two_stages():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    owner: dict[Path, str] = {}
    for stage, paths in stagetable.stage_outputs(params).items():
        for path in paths:
            for other, who in owner.items():
                assert not (path == other or path in other.parents or other in path.parents), (
                    f"{path} ({stage}) overlaps {other} ({who})")
            owner[path] = stage


def test_generated_pool_config_writes_where_the_layout_says(tmp_path):
    cfg = load_config([f"results_dir={tmp_path}", "pool=dcgan"])
    assert Path(cfg.pool.path) == layout.pool_dir(tmp_path, "dcgan").generated_images


@pytest.mark.parametrize("dataset", ["sample", "devset"])
def test_cell_paths_follow_the_config(tmp_path, dataset):
    cfg = load_config([f"results_dir={tmp_path}", f"dataset={dataset}", "generator=blur", "metric=ssim", "query=furthest"])
    cell = layout.Cell.from_config(cfg)
    assert cell.root == tmp_path / dataset / "cells" / "dcgan" / "blur" / "ssim-furthest"
    assert cell.targets == layout.DatasetLayout.from_config(cfg).targets("dcgan", "ssim", "furthest")
    # every file of a cell lies inside its folder: two cells never share a file
    for path in cell.anonymize_files() + cell.evaluate_files() + cell.leaks_files():
        assert cell.root in path.parents


# The commands that chain stages through their entry functions and files, as `dvc repro`
# does: they may import stages. bench.stages.attack runs the cell's chain for its derived
# identities cells through bench.pipeline (its cells are not DVC stages of their own).
CHAINS = {"bench/pipeline.py", "bench/cli.py", "bench/stages/attack.py"}


def _imports_of(path: Path) -> set[str]:
    import ast

    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


def test_no_stage_or_library_module_imports_a_stage():
    """STYLE.md: stages talk only through files; code two stages share lives in a library
    module (bench.inventory, bench.embedding_runner, bench.identities, ...). Function-level
    imports count too. The benchmarks time stages and may run them."""
    root = Path(__file__).parents[1]
    offenders = {}
    for path in sorted((root / "bench").rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel in CHAINS or rel.startswith("bench/benchmarks/"):
            continue
        own = "bench." + rel[len("bench/"):-len(".py")].replace("/", ".")
        stages = {n for n in _imports_of(path) if n.startswith("bench.stages.") or n == "bench.stages"
                  or n == "bench.pipeline"}
        stages -= {own}
        if stages:
            offenders[rel] = sorted(stages)
    assert not offenders, f"stages imported outside the chaining commands: {offenders}"
