"""One job per set of output files: `python -m bench COMMAND -m ...` refuses, before any job
runs, a sweep in which two jobs would write the same files.

Result paths name the dataset, pool, generator, query space and strategy (bench.layout), not
the detector, the seed or a threshold. So a sweep over `detector=mtcnn,scrfd` or `seed=0,1`
into one results_dir used to write every job to the same folder: the last job won and the
others' results were lost without a word (under a parallel launcher, whichever finished last).

The jobs are the ones Hydra's basic sweeper runs: its own expansion of the command line
(`BasicSweeper.split_arguments`: every combination of comma-separated values, `range()`,
`glob()`), each composed as the job will be (bench.config.load_config), and compared by
what its command writes (`bench.layout.command_outputs`). Another sweeper (`hydra/sweeper=…`)
picks its jobs as it runs: its sweeps are not checked, and a warning says so.
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict

from bench.config import CONF_DIR, load_config
from bench.errors import BenchError
from bench.layout import command_outputs

log = logging.getLogger(__name__)


def sweep_jobs(overrides: list[str]) -> list[list[str]] | None:
    """The override list of each job of the sweep on `overrides` (Hydra's command line, less
    flags), in the basic sweeper's order (= Hydra's job numbers); None when another sweeper runs it."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONF_DIR)))
    parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(overrides))
    if any(o.key_or_group in ("hydra/sweeper", "hydra.sweeper") or o.key_or_group.startswith("hydra.sweeper.")
           for o in parsed):
        return None
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def check_sweep(command: str, entry: str, overrides: list[str]) -> None:
    """Refuses the sweep of `command` (entry function `entry`) on `overrides` when two of its
    jobs would write the same files.

    Raises:
        BenchError: naming every group of such jobs (number and the swept values), before
            anything runs.
    """
    jobs = sweep_jobs(overrides)
    if jobs is None:
        log.warning("%s: another sweeper than Hydra's basic one: not checked that the jobs write "
                    "different files (bench.sweeps)", command)
        return
    if len(jobs) < 2:
        return
    swept = {key for key, n in _counts(jobs).items() if n > 1}
    groups: dict[str, list[int]] = defaultdict(list)
    for number, job in enumerate(jobs):
        outputs = command_outputs(load_config(job), command, entry)
        if outputs is not None:
            groups[json.dumps(outputs, sort_keys=True, default=str)].append(number)
    clashes = [numbers for numbers in groups.values() if len(numbers) > 1]
    if not clashes:
        return

    def shown(number: int) -> str:
        values = [o for o in jobs[number] if o.split("=", 1)[0] in swept]
        return f"#{number} ({' '.join(values)})"

    where = json.loads(next(k for k, v in groups.items() if v == clashes[0]))
    lines = "; ".join(", ".join(shown(n) for n in numbers) for numbers in clashes)
    raise BenchError(
        f"these jobs of the sweep would write the same files: {lines}. `{command}` names its outputs by "
        f"{', '.join(where)} only ({', '.join(f'{k}={v}' for k, v in where.items())}), so each job would "
        f"overwrite the other's results. Nothing ran. Give each job its own results_dir: one run or sweep per "
        f"value with results_dir=results/<value>, or interpolate a plain key, e.g. "
        f"\"results_dir='results/seed${{seed}}'\"")


def _counts(jobs: list[list[str]]) -> dict[str, int]:
    """Number of distinct values each override key takes over the jobs."""
    values: dict[str, set[str]] = defaultdict(set)
    for job in jobs:
        for override in job:
            key, _, value = override.partition("=")
            values[key].add(value)
    return {k: len(v) for k, v in values.items()}
