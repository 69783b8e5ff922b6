"""One job per file: `python -m bench COMMAND -m ...` refuses, before any job runs, a sweep in
which two jobs would write a common file.

Result paths name the dataset, pool, generator, query space and strategy (bench.layout), not
the detector, the seed or a threshold. So a sweep over `detector=mtcnn,scrfd` or `seed=0,1`
into one results_dir used to write every job to the same folder: the last job won and the
others' results were lost without a word (under a parallel launcher, whichever ended last).

The jobs are the ones Hydra's basic sweeper runs: the primary config composed as Hydra
composes it for a multirun (its `hydra.sweeper.params` first, then the command line), expanded
by `BasicSweeper.split_arguments` (comma lists, `range()`, `glob()`, `choice()`), in Hydra's job
order; each job composed as it will run (bench.config.load_config) and named by what its
command writes (`bench.stagetable.command_outputs`; `run` and the cell commands by each cell
of their `pipeline.cells`).
Another sweeper (`hydra/sweeper=…`) picks its jobs as it runs: not checked, with a warning.
"""
from __future__ import annotations

import logging
from collections import defaultdict

from bench.config import CONF_DIR, cell_configs, load_config
from bench.errors import BenchError
from bench.stagetable import CELL_COMMANDS, READ_ONLY, command_outputs

log = logging.getLogger(__name__)
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def is_sweep(multirun_flag: bool, overrides: list[str]) -> bool:
    """`-m/--multirun`, or the mode set by an override (`hydra.mode=MULTIRUN`, `++hydra.mode=2`,
    quoted). A config file that sets `hydra.mode` is not seen (README: sweeps)."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key.strip().lstrip("+~") == "hydra.mode" and value.strip().strip("'\"") in ("MULTIRUN", "2"):
            return True
    return multirun_flag


def sweep_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The override list of each job of the sweep on `overrides` (Hydra's command line, less
    flags) as Hydra's basic sweeper runs it, in its order (= Hydra's job numbers); None when
    another sweeper runs it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    primary = loader.load_configuration("config", list(overrides), RunMode.MULTIRUN)
    sweeper = primary.hydra.sweeper
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()]
    parsed = OverridesParser.create(config_loader=loader).parse_overrides([*params, *overrides])
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def job_outputs(job: list[str], command: str, entry: str) -> set[str] | None:
    """What one job writes (bench.stagetable.command_outputs); `run` and the cell commands
    (CELL_COMMANDS): what each of its cells writes."""
    cfg = load_config(job)
    if command != "run" and command not in CELL_COMMANDS:
        return command_outputs(cfg, command, entry)
    return set().union(*(command_outputs(cell, command) for cell in cell_configs(cfg)))


def check_sweep(command: str, entry: str, overrides: list[str]) -> None:
    """Refuses the sweep of `command` (entry function `entry`) on `overrides` when two of its
    jobs would write a common file.

    Raises:
        BenchError: naming each file two or more jobs would write, with those jobs' numbers
            and swept values, before anything runs.
    """
    if (command, entry) in READ_ONLY:
        return
    jobs = sweep_jobs(overrides)
    if jobs is None:
        log.warning("%s: the sweep is run by another sweeper than Hydra's basic one: not checked that "
                    "its jobs write different files (bench.sweeps)", command)
        return
    if len(jobs) < 2:
        return
    writers: dict[str, list[int]] = defaultdict(list)
    for number, job in enumerate(jobs):
        for name in sorted(job_outputs(job, command, entry) or ()):
            writers[name].append(number)
    clashes: dict[tuple[int, ...], list[str]] = defaultdict(list)  # jobs -> the files they share
    for name, numbers in writers.items():
        if len(numbers) > 1:
            clashes[tuple(numbers)].append(name)
    if not clashes:
        return
    swept = _swept_keys(jobs)

    def shown(number: int) -> str:
        values = ([o for o in jobs[number] if o.split("=", 1)[0] in swept]
                  or [o for o in jobs[number] if not o.startswith("hydra.")])
        return f"#{number} ({' '.join(values)})"

    lines = [f"{', '.join(shown(n) for n in numbers)} all write {names[0]}"
             + (f" and {len(names) - 1} more" if len(names) > 1 else "")
             for numbers, names in sorted(clashes.items())]
    in_results = all("results_dir=" in name for names in clashes.values() for name in names)
    advice = ("Give each job its own results_dir: one run or sweep per value with results_dir=results/<value>, "
              "or interpolate a plain key, e.g. 'results_dir=results/seed${seed}' (in single quotes)"
              if in_results else "These files are not under results_dir: run one value at a time")
    raise BenchError(f"{len(clashes)} group(s) of this sweep's jobs would write the same files, each job "
                     f"overwriting the other's: {'; '.join(lines)}. Nothing ran. {advice}")


def _swept_keys(jobs: list[list[str]]) -> set[str]:
    """Override keys that take more than one value over the jobs."""
    values: dict[str, set[str]] = defaultdict(set)
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            values[key].add(value)
    return {key for key, seen in values.items() if len(seen) > 1}
