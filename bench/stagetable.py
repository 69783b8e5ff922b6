"""The stage table: every DVC stage of the benchmark, declared once.

Each `Stage` names its `python -m bench` command, the cells it runs (one process loops over
them: `pipeline.cells`), what it reads and what it writes. `dvc.yaml` and `perf/dvc.yaml` are
generated from this table (`python -m bench dvc`; tests/test_stagetable.py fails when a
committed file is stale), the sweep check names a command's files through `command_outputs`
(the `named_by` keys below), and tests/test_dvc_repro.py checks that a real `dvc repro` writes
nothing undeclared. Paths come from bench.layout's functions, never from a string here.

Two kinds of `params.yaml` keys:
- choices (`TEMPLATED`: results_dir, dataset, detector, pool, generator) stay `${key}` in
  dvc.yaml, so `dvc exp run -S dataset=devset pool=devpool` needs no new dvc.yaml;
- cell lists (table_metrics, table_queries, all_metrics, compare_generators, compare_metric,
  compare_query, compare_guards) decide how many cells, hence how many outputs, a stage declares: they are
  written out when dvc.yaml is generated (`make repro` regenerates it first).
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import yaml

from bench import layout
from bench.access.layout import PlatformLayout
from bench.errors import BenchError

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
# params.yaml keys that dvc.yaml keeps as `${key}` (one value each, the cells' common choices).
TEMPLATED = ("results_dir", "dataset", "detector", "pool", "generator")
# Commands whose one process loops over `pipeline.cells` (each a metric, query and generator).
CELL_COMMANDS = ("query", "anonymize", "evaluate", "leaks", "attack")

P = Mapping[str, object]  # params.yaml: choices (or their `${key}` placeholders) and cell lists


def _choices(p: P, *keys: str) -> list[str]:
    return [f"{key}=${{{key}}}" if str(p[key]).startswith("${") else f"{key}={p[key]}" for key in keys]


def _cells_override(cells: list[dict]) -> str:
    """`pipeline.cells=[{metric:a,query:b},...]` as one shell word (Hydra's override grammar)."""
    body = ",".join("{" + ",".join(f"{k}:{v}" for k, v in cell.items()) + "}" for cell in cells)
    return f"'pipeline.cells=[{body}]'"


def table_cells(p: P) -> list[dict]:
    """Tables 1-3's cells: table_metrics x table_queries, with the generator choice."""
    return [{"metric": m, "query": q} for m, q in itertools.product(p["table_metrics"], p["table_queries"])]


def compare_cells(p: P) -> list[dict]:
    """Fig. 4's cells: each of compare_generators on the compare cell's metric and query."""
    return [{"metric": p["compare_metric"], "query": p["compare_query"], "generator": g} for g in p["compare_generators"]]


def guard_cells(p: P) -> list[dict]:
    """The compare cell under each other guard of `compare_guards` (e.g. open: the paper's
    open loop beside the default closed loop, bench.guard)."""
    return [{"metric": p["compare_metric"], "query": p["compare_query"], "guard": g} for g in p.get("compare_guards") or []]


def leak_cells(p: P) -> list[dict]:
    """What the leak check runs: Tables 1-3's cells and the guard comparison's."""
    return _unique([*table_cells(p), *guard_cells(p)], p)


def figure_cells(p: P) -> list[dict]:
    """Fig. 3/7's cells: the compare cell's metric with each of conf/config.yaml's
    `figures.strategies` (the paper's four), with the generator choice."""
    strategies = p.get("figure_strategies")
    if strategies is None:
        strategies = yaml.safe_load((REPO / "conf" / "config.yaml").read_text())["figures"]["strategies"]
    return [{"metric": p["compare_metric"], "query": q} for q in strategies]


def _unique(cells: list[dict], p: P) -> list[dict]:
    """`cells` without repeats (a cell without a generator has the generator choice)."""
    out, seen = [], set()
    for cell in cells:
        key = (cell["metric"], cell["query"], cell.get("generator", p["generator"]), cell.get("guard", ""))
        if key not in seen:
            seen.add(key)
            out.append(cell)
    return out


def query_cells(p: P) -> list[dict]:
    """Every (metric, query) whose targets a stage reads: all_metrics x table_queries (Fig. 6),
    and the compare cell's."""
    cells = [{"metric": m, "query": q} for m, q in itertools.product(p["all_metrics"], p["table_queries"])]
    compare = [{"metric": p["compare_metric"], "query": p["compare_query"]}]
    return _unique(cells + compare + figure_cells(p), {**p, "generator": None})


def swap_cells(p: P) -> list[dict]:
    """What anonymize and evaluate run: Tables 1-3's cells, Fig. 4's and Fig. 3's, each once."""
    return _unique([*table_cells(p), *compare_cells(p), *figure_cells(p), *guard_cells(p)], p)


def _cell(p: P, cell: dict) -> layout.Cell:
    guard = str(cell.get("guard") or "")
    return layout.Cell(Path(str(p["results_dir"])), str(p["dataset"]), str(p["pool"]), str(cell["metric"]),
                       str(cell["query"]), str(cell.get("generator", p["generator"])),
                       "" if guard == layout.DEFAULT_GUARD else guard)


def _data(p: P) -> layout.DatasetLayout:
    return layout.DatasetLayout(Path(str(p["results_dir"])), str(p["dataset"]))


def _pool(p: P) -> layout.PoolOutputs:
    return layout.pool_dir(str(p["results_dir"]), str(p["pool"]))


def _dcgan(p: P) -> layout.PoolOutputs:
    return layout.pool_dir(str(p["results_dir"]), "dcgan")


def _quality(p: P) -> dict[str, Path]:
    return layout.quality_files(str(p["results_dir"]), str(p["dataset"]), str(p["pool"]),
                                str(p["compare_metric"]), str(p["compare_query"]))


def attack_cells(p: P) -> list[dict]:
    """The attacks' cells: the compare cell, and its twins under `compare_guards` (the attacks
    on guarded and unguarded fakes side by side)."""
    return [{"metric": p["compare_metric"], "query": p["compare_query"]}, *guard_cells(p)]


def _attack(p: P, cell: dict) -> layout.AttackOutputs:
    return layout.AttackOutputs(Path(str(p["results_dir"])), str(p["pool"]), str(p["generator"]),
                                str(cell["metric"]), str(cell["query"]), str(p["dataset"]), _cell(p, cell).guard)


def _r(p: P, *parts: str) -> Path:
    return Path(str(p["results_dir"]), *parts)


# Outputs that are not DVC-cached (small, rewritten each run, or read by `dvc metrics`).
def _uncached(path: Path) -> bool:
    return path.name.endswith("provenance.json") or path.name in ("metrics.json", "leaks.png")


@dataclass(frozen=True)
class Stage:
    """One DVC stage.

    Attributes:
        name: the stage's name in dvc.yaml.
        command: the `python -m bench` command it runs.
        choices: params.yaml keys passed as `key=value` overrides.
        outs: params -> every path it writes (files or folders, each declared once).
        deps: params -> what it reads besides the code (`bench/`, always a dependency).
        params: conf/config.yaml keys (and params.yaml keys) whose change reruns it.
        cells: params -> the cells its one process loops over (None: no cells).
        named_by: config keys that, with results_dir, name the files the command writes
            (bench.layout.command_outputs: a sweep whose two jobs agree on them is refused).
        extra: more arguments of the command (fixed overrides).
        metrics: params -> the outputs that are `dvc metrics` files.
        dvcfile: "dvc.yaml", or "perf/dvc.yaml" for the performance suite (run apart).
    """

    name: str
    command: str
    choices: tuple[str, ...]
    outs: Callable[[P], list[Path]]
    deps: Callable[[P], list[str]] = lambda p: []
    params: tuple[str, ...] = ()
    cells: Callable[[P], list[dict]] | None = None
    named_by: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    metrics: Callable[[P], list[Path]] = lambda p: []
    dvcfile: str = "dvc.yaml"
    persist: bool = False
    comment: str = ""

    def cmd(self, p: P) -> str:
        words = ["python -m bench", self.command, *self.extra, *_choices(p, *self.choices)]
        if self.cells is not None:
            words.append(_cells_override(self.cells(p)))
        return " ".join(words)


_CELL = ("dataset.name", "pool.name", "generator", "metric", "query", "guard")
_CONF_CELL = ["conf/metric", "conf/query", "conf/generator", "conf/detector", "conf/recognizer"]

STAGES: tuple[Stage, ...] = (
    Stage("faces", "faces", ("dataset", "detector", "results_dir"),
          outs=lambda p: [_data(p).faces, _data(p).photos, _data(p).failures, _data(p).crops, _data(p).provenance],
          deps=lambda p: [f"conf/dataset/{p['dataset']}.yaml", "conf/detector"],
          params=("dataset", "detector", "faces"), named_by=("dataset.name",),
          comment="Every face of the dataset's photos: detected, aligned, listed (failures too)."),
    Stage("pool", "pool", ("results_dir",), extra=("pool=dcgan",),
          outs=lambda p: [_dcgan(p).generated_images, _dcgan(p).generation],
          deps=lambda p: ["conf/pool/dcgan.yaml"], named_by=("pool.name",),
          comment="The embedded default pool (conf/pool/dcgan.yaml), generated, seconds; folder pools need none."),
    Stage("manifold", "manifold", ("dataset", "pool", "results_dir"),
          outs=lambda p: _pool(p).manifold_files(),
          deps=lambda p: [str(_dcgan(p).generated_images), f"conf/pool/{p['pool']}.yaml", "conf/detector"],
          params=("pool", "manifold", "query_recognizer", "age_gender"), named_by=("pool.name",),
          comment="The pool's faces and their features in every query space."),
    Stage("query", "query", ("dataset", "detector", "pool", "results_dir"), cells=query_cells,
          outs=lambda p: [f for c in query_cells(p) for f in layout.target_files(_cell(p, c).targets)],
          deps=lambda p: [str(_data(p).faces), str(_data(p).crops), str(_pool(p).faces), str(_pool(p).manifold),
                          str(_pool(p).arrays), "conf/metric", "conf/query"],
          params=("seed", "query_recognizer", "age_gender", "targets"),
          named_by=("dataset.name", "pool.name", "metric", "query"),
          comment="One target per source face, for every query space and strategy of the tables and figures."),
    Stage("anonymize", "anonymize", ("dataset", "detector", "pool", "generator", "results_dir"), cells=swap_cells,
          outs=lambda p: [f for c in swap_cells(p) for f in _cell(p, c).anonymize_files()],
          deps=lambda p: [str(_data(p).faces), str(_data(p).photos),
                          *sorted({str(_cell(p, c).targets) for c in swap_cells(p)}), "conf/generator", "conf/detector",
                          "conf/guard", "conf/recognizer", "conf/calibration"],
          params=("generator", "anonymize", "unchanged_max_diff", "faces", "leaks.detectors", "leaks.rotations",
                  "leaks.merge_iou", "leaks.turned_min_detectors", "leaks.scan_margin"), named_by=_CELL,
          comment="Every face of every photo swapped (or covered), per cell: Tables 1-3's and Fig. 4's."),
    Stage("evaluate", "evaluate", ("dataset", "detector", "pool", "generator", "results_dir"), cells=swap_cells,
          outs=lambda p: [f for c in swap_cells(p) for f in _cell(p, c).evaluate_files()],
          deps=lambda p: [p_ for c in swap_cells(p) for p_ in (str(_cell(p, c).pairs), str(_cell(p, c).faces))]
          + ["conf/recognizer", "conf/calibration"],
          params=("recognizers", "recognizer_overrides", "baseline.metrics"), named_by=_CELL,
          comment="Each cell's source, target and result faces embedded and verified by every recognizer."),
    Stage("leaks", "leaks", ("dataset", "detector", "pool", "generator", "results_dir"), cells=leak_cells,
          outs=lambda p: [f for c in leak_cells(p) for f in _cell(p, c).leaks_files()],
          deps=lambda p: [str(_data(p).photos)] + [p_ for c in leak_cells(p) for p_ in
                                                   (str(_cell(p, c).photos), str(_cell(p, c).pairs))]
          + [str(_data(p).faces), str(layout.shrink_files(str(p["results_dir"]))["csv"]),
             "conf/detector", "conf/recognizer", "conf/calibration"],
          params=("recognizers", "recognizer_overrides", "faces", "leaks", "unchanged_max_diff",
                  "anonymize.redetect_iou"), named_by=_CELL,
          comment="The leak check: every detector and recognizer on each cell's anonymized photos."),
    Stage("tables", "tables", ("dataset", "detector", "pool", "results_dir"),
          outs=lambda p: [layout.verification_dir(str(p["results_dir"]), str(p["dataset"]), str(p["pool"]))],
          deps=lambda p: [str(_data(p).cells(str(p["pool"])))],
          params=("tables", "recognizers"), named_by=("dataset.name", "pool.name"),
          comment="Tables 1-3 of every generator that has cells."),
    Stage("quality", "quality", ("dataset", "detector", "pool", "results_dir"),
          outs=lambda p: list(_quality(p).values()),
          deps=lambda p: [str(_data(p).cells(str(p["pool"]))), str(_pool(p).arrays)],
          params=("quality",), named_by=("dataset.name", "pool.name", "metric", "query"),
          comment="Fig. 4: PSNR, SSIM, RMSE, FID, embedding distance per generator on the compare cell."),
    Stage("figures", "figures", ("dataset", "detector", "pool", "results_dir"),
          outs=lambda p: [layout.figures_dir(str(p["results_dir"]), str(p["dataset"]), str(p["pool"]))],
          deps=lambda p: [str(_data(p).cells(str(p["pool"]))), str(_data(p).root / "targets"), str(_pool(p).arrays)],
          params=("figures",), named_by=("dataset.name", "pool.name"),
          comment="Figs. 3-7."),
    Stage("platform", "platform", ("dataset", "pool", "generator", "results_dir"),
          outs=lambda p: PlatformLayout(Path(str(p["results_dir"]))).declared(),
          deps=lambda p: ["conf/access", f"conf/dataset/{p['dataset']}.yaml", str(_pool(p).faces), str(_pool(p).arrays)],
          params=("dataset", "generator", "platform", "identities", "anonymize.fallback"),
          comment="The MFMC platform under each access model (§3.3): tables, Figs. 1-2, scale."),
    Stage("baseline", "baseline", ("detector", "results_dir"),
          outs=lambda p: layout.BaselineOutputs(Path(str(p["results_dir"]))).files(),
          deps=lambda p: ["conf/detector", "conf/recognizer", "conf/calibration"],
          params=("detector", "seed", "identities", "baseline", "faces", "recognizers", "recognizer_overrides"),
          comment="The genuine baseline on the identities set (../shared; n/a rows without it). The set is "
                  "not a dep (DVC fails on a missing dep): a change to it needs `dvc repro -f baseline`."),
    Stage("shrink", "shrink", ("detector", "results_dir"),
          outs=lambda p: list(layout.shrink_files(str(p["results_dir"])).values()),
          deps=lambda p: [str(layout.BaselineOutputs(Path(str(p["results_dir"]))).dataset.root),
                          "conf/recognizer", "conf/calibration"],
          params=("identities", "leaks.size_bands", "leaks.alpha", "leaks.metric", "recognizers",
                  "recognizer_overrides"),
          comment="The identities set shrunk to each face-size band: the sizes at which a recognizer cannot "
                  "tell people apart (the leaks stage's \"too small to tell\")."),
    Stage("metrics", "metrics", ("dataset", "detector", "pool", "results_dir"),
          outs=lambda p: [layout.metrics_json(str(p["results_dir"]))],
          deps=lambda p: [str(_data(p).photos), str(_data(p).cells(str(p["pool"]))),
                          str(layout.verification_dir(str(p["results_dir"]), str(p["dataset"]), str(p["pool"]))),
                          str(_quality(p)["csv"])],
          comment="Every table's numbers in one file: the gate's input (`python -m bench check`)."),
    Stage("paper", "paper", ("dataset", "pool", "generator", "results_dir"),
          outs=lambda p: [f for k, f in layout.paper_files(str(p["results_dir"])).items() if k != "headline"],
          metrics=lambda p: [layout.paper_files(str(p["results_dir"]))["headline"]],
          deps=lambda p: ["conf/paper", "conf/recognizer",
                          str(layout.verification_dir(str(p["results_dir"]), str(p["dataset"]), str(p["pool"]))),
                          str(_quality(p)["csv"]), str(_quality(p)["provenance"]),
                          str(layout.BaselineOutputs(Path(str(p["results_dir"]))).csv),
                          str(layout.metrics_json(str(p["results_dir"])))],
          params=("paper", "tables", "query_recognizer"),
          comment="Every quantitative claim of the paper beside ours; headline.json is what `dvc metrics show` prints."),
    Stage("attack", "attack", ("dataset", "detector", "pool", "generator", "results_dir"),
          extra=("attack.subjects=dataset",), cells=attack_cells,
          outs=lambda p: [f for c in attack_cells(p) for f in _attack(p, c).files()],
          deps=lambda p: [str(_data(p).faces), str(_data(p).crops),
                          *(str(_cell(p, c).root) for c in attack_cells(p)),
                          str(_pool(p).faces), str(_pool(p).arrays), str(_pool(p).provenance)],
          params=("seed", "attack", "recognizers", "recognizer_overrides"), named_by=_CELL,
          comment="The attacks on the compare cell: identification, linkability, parrot, Supp. D k-anonymity."),
    Stage("report", "report", ("dataset", "pool", "generator", "results_dir"),
          outs=lambda p: [layout.report_dir(str(p["results_dir"]))],
          deps=lambda p: [str(_data(p).faces), str(_data(p).crops), str(_data(p).failures), str(_data(p).provenance),
                          str(_data(p).root / "targets"), str(_data(p).cells(str(p["pool"]))),
                          str(_pool(p).faces), str(_pool(p).crops), str(_pool(p).failures), str(_pool(p).provenance),
                          str(_r(p, "tables")), str(_r(p, "figures")), str(_r(p, "platform")),
                          *(str(_attack(p, c).root) for c in attack_cells(p))],
          params=("report",),
          comment="The HTML report of the run, from result files only."),
    Stage("perf", "perf", ("dataset", "detector", "pool", "generator", "results_dir"),
          outs=lambda p: layout.perf_stage_outputs(str(p["results_dir"])),
          deps=lambda p: ["conf"] + [str(_cell(p, c).pairs) for c in table_cells(p) if c["metric"] == "embedding"],
          params=("perf",), dvcfile="perf/dvc.yaml", persist=True,
          comment="The performance suite: not part of the default `dvc repro`; run `dvc repro perf/dvc.yaml`."),
)

# The cell-free stages that need the compare cell's metric and query as choices.
_COMPARE_CHOICE_STAGES = ("quality", "figures", "paper", "attack")
# params.yaml keys that are plain `dvc.yaml` params of a stage (the rest are conf/config.yaml keys).
_PARAMS_YAML_KEYS = ("dataset", "detector", "pool", "generator")


# ---- what a command writes (the sweep check) -------------------------------------------------

# Commands that are no DVC stage, and what their output paths are named by.
_OTHER_COMMAND_KEYS: dict[str, tuple[str, ...]] = {
    "embed": ("dataset.name",),  # and one file per recognizer
    "view": ("access", "photo", "viewer"),
}
# What each command's output paths are named by, beside results_dir (config keys; a group's
# choice for metric, query, generator, access): two runs of a command that agree on these write
# the same files, whatever else differs (detector, seed, thresholds, recognizers). A command not
# listed is named by results_dir alone (metrics, paper, report, platform, baseline, recall, perf*).
COMMAND_PATH_KEYS: dict[str, tuple[str, ...]] = {
    **{one.command: one.named_by for one in STAGES if one.named_by}, **_OTHER_COMMAND_KEYS}
_CHOICE_KEYS = ("generator", "metric", "query", "guard", "access", "recognizer")
# (command, entry function) pairs that write no file.
READ_ONLY = {("config", "run"), ("check", "run"), ("weights", "status"), ("weights", "check")}


def command_outputs(cfg, command: str, entry: str = "run") -> set[str] | None:
    """What `python -m bench <command>` (entry function `entry`) run on `cfg` writes, as names
    that are equal for the same files: the absolute results_dir with COMMAND_PATH_KEYS'
    values, one name per file where a command writes one per recognizer (embed, calibrate),
    the attack's folder, the gate's baseline; `weights provision|fetch` write the shared
    weights manifest; `dvc` writes dvc.yaml. Two runs whose names meet write a common file.
    None: writes nothing. A cell command (CELL_COMMANDS, and `run`) is named here by the one
    cell of `cfg`; bench.sweeps names it by each cell of its `pipeline.cells`."""
    from omegaconf import OmegaConf

    from bench.config import CONF_DIR

    def value(key: str):
        found = (cfg.get("choices") or {}).get(key) if key in _CHOICE_KEYS else OmegaConf.select(cfg, key, default=None)
        return OmegaConf.to_container(found, resolve=True) if OmegaConf.is_config(found) else found

    def absolute(path) -> str:
        return str(Path(str(path)).expanduser().resolve())

    if (command, entry) in READ_ONLY:
        return None
    if command == "check":
        return {f"gate.baseline={absolute(cfg.gate.baseline)}"}
    if command == "weights":
        return {"weights manifest"}
    if command == "dvc":
        return {"dvc.yaml"}
    if command == "calibrate":  # <out_dir>/<file> of each recognizer calibrated
        out_dir = absolute(value("calibrate.out_dir") or CONF_DIR / "calibration")
        names = [value("recognizer")] if value("recognizer") else list(value("recognizers") or [])
        return {f"calibration={out_dir}/{name}" for name in names}
    if command == "attack":
        return {f"attack={absolute(layout.AttackOutputs.from_config(cfg).root)}"}
    root = absolute(cfg.results_dir)
    keys = COMMAND_PATH_KEYS.get(command, ()) if command != "run" else _CELL
    name = " ".join([f"results_dir={root}", *(f"{key}={value(key)}" for key in keys)])
    if command == "embed":
        return {f"{name} recognizer={r}" for r in value("recognizers") or []}
    if command in ("perf", "perf-profile") and value("perf.profile.results_dir"):
        return {name, f"perf.profile.results_dir={absolute(value('perf.profile.results_dir'))}"}  # stages run there
    return {name}


def stage(name: str) -> Stage:
    for one in STAGES:
        if one.name == name:
            return one
    raise BenchError(f"no stage {name!r} in the stage table (bench.stagetable)")


def load_params(path: Path | None = None) -> dict:
    return yaml.safe_load(((path or REPO / "params.yaml")).read_text())


def template_params(params: Mapping) -> dict:
    """params.yaml with the TEMPLATED choices as `${key}`, the cell lists as they are."""
    return {**params, **{key: f"${{{key}}}" for key in TEMPLATED}}


def _command(one: Stage, p: P) -> str:
    cmd = one.cmd(p)
    if one.name in _COMPARE_CHOICE_STAGES:
        cmd += f" metric={p['compare_metric']} query={p['compare_query']}"
    return cmd


def _path(path: Path | str) -> str:
    return Path(path).as_posix()


def stage_entry(one: Stage, p: P) -> dict:
    """One stage as dvc.yaml writes it."""
    entry: dict = {"cmd": _command(one, p)}
    if one.dvcfile != "dvc.yaml":
        entry = {"wdir": "..", **entry}
    entry["deps"] = ["bench", *(_path(d) for d in one.deps(p))]
    params = [k for k in one.params if k in _PARAMS_YAML_KEYS]
    config_keys = [k for k in one.params if k not in _PARAMS_YAML_KEYS]
    if params or config_keys:
        entry["params"] = [*params, *([{"conf/config.yaml": config_keys}] if config_keys else [])]
    outs = []
    for path in one.outs(p):
        options = {}
        if _uncached(path) or one.persist:
            options["cache"] = False
        if one.persist:
            options["persist"] = True
        outs.append({_path(path): options} if options else _path(path))
    if outs:
        entry["outs"] = outs
    metrics = [{_path(path): {"cache": False}} for path in one.metrics(p)]
    if metrics:
        entry["metrics"] = metrics
    return entry


HEADER = ("# GENERATED by `python -m bench dvc` from bench/stagetable.py (the stage table): edit that\n"
          "# table or params.yaml, then regenerate; tests/test_stagetable.py fails when this file is stale.\n")


# The stage table as docs/stages.md shows it: one cell of each list, named by placeholders.
_DOC_PARAMS = {"results_dir": "<results_dir>", "dataset": "<dataset>", "detector": "<detector>", "pool": "<pool>",
               "generator": "<generator>", "table_metrics": ["<metric>"], "table_queries": ["<query>"],
               "all_metrics": ["<metric>"], "compare_generators": [], "compare_metric": "<metric>",
               "compare_query": "<query>", "figure_strategies": []}


def stages_markdown() -> str:
    """docs/stages.md: every stage, its command and what it writes, from this table."""
    p = _DOC_PARAMS
    lines = ["# The stages and their outputs", "",
             "Generated by `python -m bench dvc` from the stage table (`bench/stagetable.py`), as",
             "`dvc.yaml` is; a test fails when this page is stale. A cell stage writes the files",
             "below once per cell (`<metric>-<query>`, `<generator>`) of `params.yaml`'s lists;",
             "everything lies under `results_dir` (default `results/`).", "",
             "| stage | runs | writes |", "|---|---|---|"]
    for one in STAGES:
        paths = sorted({_path(path) for path in [*one.outs(p), *one.metrics(p)]})
        runs = f"`python -m bench {one.command}`" + (" per cell" if one.cells else "")
        if one.dvcfile != "dvc.yaml":
            runs += f" ({one.dvcfile})"
        lines.append(f"| {one.name} | {runs}: {one.comment} | " + "<br>".join(f"`{q}`" for q in paths) + " |")
    return "\n".join(lines) + "\n"


def dvc_files(params: Mapping | None = None) -> dict[str, str]:
    """{"dvc.yaml": text, "perf/dvc.yaml": text} for `params` (default: params.yaml)."""
    p = template_params(params if params is not None else load_params())
    texts = {}
    for dvcfile in ("dvc.yaml", "perf/dvc.yaml"):
        stages = {}
        for one in STAGES:
            if one.dvcfile == dvcfile:
                stages[one.name] = stage_entry(one, p)
        doc: dict = {}
        if dvcfile != "dvc.yaml":
            doc["vars"] = ["../params.yaml"]
        doc["stages"] = stages
        if dvcfile == "dvc.yaml":
            doc["plots"] = plots(p)
        comments = "".join(f"#   {one.name}: {one.comment}\n" for one in STAGES if one.dvcfile == dvcfile)
        texts[dvcfile] = HEADER + comments + yaml.safe_dump(doc, sort_keys=False, width=1000)
    return texts


def stage_outputs(params: Mapping) -> dict[str, list[Path]]:
    """Every stage of dvc.yaml and the paths it declares (outs and metrics), for `params`
    (params.yaml's values)."""
    return {one.name: [*one.outs(params), *one.metrics(params)] for one in STAGES if one.dvcfile == "dvc.yaml"}


def generated_files() -> dict[str, str]:
    """Every file this table generates: dvc.yaml, perf/dvc.yaml, docs/stages.md."""
    return {**dvc_files(), "docs/stages.md": stages_markdown()}


def run(cfg) -> None:
    """`python -m bench dvc`: writes dvc.yaml and perf/dvc.yaml from the stage table and
    params.yaml, and docs/stages.md."""
    for name, text in generated_files().items():
        path = REPO / name
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            log.info("wrote %s", path.relative_to(REPO))
        else:
            log.info("%s is up to date", path.relative_to(REPO))


_T1 = "${results_dir}/tables/${dataset}/${pool}/verification/${generator}/table1.csv"


def plots(p: P) -> list[dict]:
    """`dvc plots show`/`diff`: files the stages write. Horizontal bars: one per recognizer
    (Table 1) or generator (Fig. 4's quality table). The baseline ROC's template
    (.dvc/plots/roc_by_recognizer.json) colours by recognizer and facets by metric."""
    quality = _path(_quality(p)["csv"])
    return [
        {"baseline_roc": {"title": "Genuine baseline: ROC per recognizer on the identities set (before anonymization)",
                          "template": "roc_by_recognizer", "x": "fpr",
                          "y": {_path(layout.BaselineOutputs(Path(str(p["results_dir"]))).roc_csv): "tpr"},
                          "x_label": "FAR (impostor pairs accepted)", "y_label": "TAR (genuine pairs accepted)"}},
        *({f"table1_source_vs_result_{col}": {
            "title": f"Table 1: Source vs Result pairs verified as the same person (cosine), {what}",
            "template": "bar_horizontal", "x": f"source_vs_result/{col}", "y": {_T1: "recognizer"},
            "x_label": "verified fraction (lower = better anonymization)", "y_label": "recognizer"}}
          for col, what in (("furthest", "furthest target"), ("random", "random target (Eq. 1)"),
                            ("random_ag", "random target of the same age and gender"))),
        *({f"quality_{key}": {"title": f"Fig. 4: {what}", "template": "bar_horizontal", "x": key,
                              "y": {quality: "generator"}}}
          for key, what in (("psnr", "PSNR of the result against the source face (dB, higher = closer)"),
                            ("ssim", "SSIM of the result against the source face (higher = closer)"),
                            ("rmse", "RMSE of the result against the source face (lower = closer)"),
                            ("fid", "FID between source and result faces (lower = closer; few faces: biased upwards)"))),
        {"access_threshold": {"title": "Rules access model: leak rate and over-fake rate per recognizer threshold",
                              "template": "linear", "x": "threshold",
                              "y": {"${results_dir}/tables/access_threshold.csv": ["leak_rate", "over_fake_rate"]}}},
    ]
