"""Benchmarks: each measures, prints its figures and writes them under
<results_dir>/benchmarks/ with their provenance. Shared here: how a report is written
(`write_report`) and the command line of a benchmark run on the usual config (`config_main`)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable


def write_report(report: dict, out: dict[str, Path], render: Callable[[dict], str]) -> dict[str, Path]:
    """Writes `report` to out["json"] and its Markdown (`render(report)`) to out["md"], prints
    the Markdown, returns `out`."""
    from bench import resultsio

    resultsio.write_json(report, out["json"])
    text = render(report)
    resultsio.write_text(text, out["md"])
    print(text)
    return out


def config_main(module: str, description: str, run: Callable, argv: list[str], help_text: str) -> int:
    """`python -m <module> [OVERRIDES...]`: `run(config, command)` on the config those Hydra
    overrides compose; 0, or 2 after logging a BenchError (e.g. missing data)."""
    import argparse

    from bench.errors import BenchError

    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("overrides", nargs="*", help=help_text)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from bench.config import load_config

    try:
        run(load_config(args.overrides), " ".join([f"python -m {module}", *args.overrides]))
    except BenchError as err:
        logging.getLogger(module).error("%s", err)
        return 2
    return 0
