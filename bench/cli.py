"""`python -m bench <command> [key=value ...]`: each command composes conf/ with the Hydra
overrides that follow it and calls one stage's entry function."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.errors import BenchError

log = logging.getLogger("bench")

# command -> (module with a `run(cfg)` entry function, one-line help)
COMMANDS = {
    "faces": ("bench.stages.faces", "detect, align and list every face of a dataset (faces.parquet, failures.csv, crops/)"),
    "recall": ("bench.benchmarks.detection_recall", "detection recall and time per photo of every detector on dlib's hand-made boxes"),
    "config": (None, "print the composed configuration"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="mfmc-bench: the My Face My Choice benchmark. Each command takes Hydra "
                    "overrides, e.g. `python -m bench faces dataset=devset detector=scrfd`.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("overrides", nargs="*", help="Hydra overrides, key=value")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    from bench.config import load_config  # after argparse, so --help stays fast

    try:
        cfg = load_config(args.overrides)
        module_name, _ = COMMANDS[args.command]
        if module_name is None:
            print(OmegaConf.to_yaml(cfg, resolve=True))
            return 0
        importlib.import_module(module_name).run(cfg)
    except BenchError as err:
        log.error("%s: %s", args.command, err)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        log.error("%s: bad configuration: %s%s", args.command, err, cause)
        return 2
    return 0


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # face_recognition_models still imports pkg_resources; the warning says nothing to users.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    # insightface's face_align calls a scikit-image API deprecated in 0.26.
    warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)


if __name__ == "__main__":
    sys.exit(main())
