"""The stage table (bench.stagetable) is the one declaration of the pipeline: the committed
dvc.yaml files are what it generates, each cell stage runs its cells in one process, and the
sweep check names a command's files from the same table."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import stagetable
from bench.cli import Task
from bench.config import load_config

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", ["dvc.yaml", "perf/dvc.yaml", "docs/stages.md"])
def test_committed_files_are_what_the_stage_table_generates(name):
    expected = stagetable.generated_files()[name]
    assert (REPO / name).read_text() == expected, f"{name} is stale: run `python -m bench dvc` and commit it"


def test_the_stages_page_lists_every_declared_output():
    page = (REPO / "docs" / "stages.md").read_text()
    for one in stagetable.STAGES:
        assert f"| {one.name} |" in page
        for path in one.outs(stagetable._DOC_PARAMS):
            assert f"`{path.as_posix()}`" in page


def test_one_stage_per_command_family_and_no_matrix():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert all("matrix" not in s and "foreach" not in s for s in stages.values())
    assert len(stages) == len({s.name for s in stagetable.STAGES if s.dvcfile == "dvc.yaml"}) <= 20


def test_every_stage_depends_on_the_code_it_runs():
    for name in ("dvc.yaml", "perf/dvc.yaml"):
        for stage, entry in yaml.safe_load((REPO / name).read_text())["stages"].items():
            assert "bench" in entry["deps"], f"{name}:{stage} does not depend on bench/"


def test_a_cell_stage_lists_each_cell_once_in_its_command_and_outputs():
    params = {**stagetable.load_params(), "table_metrics": ["embedding", "ssim"], "table_queries": ["furthest"],
              "all_metrics": ["embedding", "ssim", "rmse"], "compare_generators": ["blur", "faceswap"],
              "compare_metric": "embedding", "compare_query": "furthest", "generator": "faceswap",
              "compare_guards": []}
    anonymize = stagetable.stage("anonymize")
    cells = anonymize.cells(params)
    # the compare cell embedding-furthest of faceswap is a table cell too: run once
    figure = [("embedding", c["query"], None) for c in stagetable.figure_cells(params) if c["query"] != "furthest"]
    assert [(c["metric"], c["query"], c.get("generator")) for c in cells] == [
        ("embedding", "furthest", None), ("ssim", "furthest", None), ("embedding", "furthest", "blur"), *figure]
    assert "{metric:embedding,query:furthest,generator:blur}" in anonymize.cmd(params)
    query = stagetable.stage("query")
    assert len(query.cells(params)) == 3 + len(figure)
    outs = stagetable.stage_outputs(params)
    assert len(outs["query"]) == 3 * len(query.cells(params)) and len(set(outs["anonymize"])) == len(outs["anonymize"])


def test_cell_commands_loop_over_pipeline_cells(tmp_path):
    cfg = load_config([f"results_dir={tmp_path}", "pipeline.cells=[{metric:ssim,query:furthest},{metric:rmse}]"])
    task = Task(command="anonymize", module="bench.stages.anonymize", entry="run")
    runs = task.cells(cfg)
    assert [(c.choices.metric, c.choices.query) for c in runs] == [("ssim", "furthest"), ("rmse", cfg.choices.query)]
    assert Task(command="tables", module="bench.stages.tables", entry="run").cells(cfg) == [cfg]


def test_command_path_keys_come_from_the_stage_table():
    for one in stagetable.STAGES:
        if one.named_by:
            assert stagetable.COMMAND_PATH_KEYS[one.command] == one.named_by
    assert set(stagetable.CELL_COMMANDS) <= set(stagetable.COMMAND_PATH_KEYS)


def test_the_compare_cell_runs_under_each_other_guard_in_its_own_folder():
    """compare_guards adds the compare cell's open-loop twin to anonymize, evaluate and the leak
    check, in a folder of its own (<metric>-<query>-open), never in the default's."""
    params = {**stagetable.load_params(), "compare_metric": "embedding", "compare_query": "furthest",
              "compare_guards": ["open"]}
    twin = {"metric": "embedding", "query": "furthest", "guard": "open"}
    for name in ("anonymize", "evaluate", "leaks"):
        stage = stagetable.stage(name)
        assert twin in stage.cells(params), name
        assert "guard:open" in stage.cmd(params)
        outs = [str(p) for p in stage.outs(params)]
        assert any("/embedding-furthest-open/" in o for o in outs), name
    default = stagetable._cell(params, {"metric": "embedding", "query": "furthest", "guard": "closed"})
    assert default.root.name == "embedding-furthest"


def test_every_declared_param_is_a_key_dvc_can_read():
    """A stage's params are keys of conf/config.yaml (or params.yaml): a config group such as
    conf/guard/ is a file dependency, and DVC refuses a missing key at `dvc repro`."""
    from omegaconf import OmegaConf

    config = OmegaConf.load(stagetable.REPO / "conf" / "config.yaml")
    params = stagetable.load_params()
    for stage in stagetable.STAGES:
        for key in stage.params:
            found = key in params or OmegaConf.select(config, key, default="__missing__") != "__missing__"
            assert found, f"{stage.name}: param {key!r} is in neither conf/config.yaml nor params.yaml"
