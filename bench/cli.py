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
    "weights": ("bench.weights", "weights status | provision | check: every recognizer's and detector's weights, offline provisioning"),
    "embed": ("bench.stages.embed", "embed every aligned face once per recognizer (embeddings/<recognizer>.parquet)"),
    "calibrate": ("bench.recognizers.calibration", "fit stand-in recognizers' thresholds on the identities set (conf/calibration/)"),
    "baseline": ("bench.stages.baseline", "genuine baseline: every recognizer on identity-labelled photos (tables/baseline.csv, ROC)"),
    "tables": ("bench.stages.tables", "Tables 1-3: fraction of source/target and source/result pairs verified, per recognizer"),
    "pool": ("bench.stages.pool", "generate a generated pool's faces (pool=dcgan: gan-face-generate's DCGAN, seeded)"),
    "manifold": ("bench.stages.manifold", "a pool's faces, landmarks and features in every query space (results/pools/<pool>/)"),
    "query": ("bench.stages.query", "one target pool face per source face (targets/<pool>/<metric>-<query>.parquet)"),
    "anonymize": ("bench.stages.anonymize", "swap every face of every photo for one cell (cells/<pool>/<generator>/<metric>-<query>/)"),
    "evaluate": ("bench.stages.evaluate", "embed a cell's source, target and result faces and verify each pair (outcomes.parquet)"),
    "leaks": ("bench.stages.leaks", "every detector and recognizer on a cell's anonymized photos: faces still real (leaks.parquet, metrics.json)"),
    "quality": ("bench.stages.quality", "Fig. 4: PSNR, SSIM, RMSE, FID, embedding distance and utility per generator"),
    "figures": ("bench.stages.figures", "Figs. 3-7: examples per strategy, generator grids, pool distributions, query spaces"),
    "platform": ("bench.stages.platform", "the MFMC platform under each access model (§3.3): tables/access_models.{csv,md}, Figs. 1-2"),
    "view": ("bench.stages.view", "what one viewer sees of one photo: view photo=ID viewer=USER access=NAME"),
    "run": ("bench.pipeline", "the whole chain for one cell: faces, pool, manifold, query, anonymize, evaluate, leaks, tables, quality"),
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
        module_name, _ = COMMANDS[args.command]
        module = importlib.import_module(module_name) if module_name else None
        entry, overrides = split_verb(args.command, module, args.overrides)
        cfg = load_config(overrides)
        if module is None:
            print(OmegaConf.to_yaml(cfg, resolve=True))
            return 0
        getattr(module, entry)(cfg)
    except BenchError as err:
        log.error("%s: %s", args.command, err)
        return 2
    except (HydraException, OmegaConfBaseException) as err:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        log.error("%s: bad configuration: %s%s", args.command, err, cause)
        return 2
    return 0


def split_verb(command: str, module, overrides: list[str]) -> tuple[str, list[str]]:
    """(entry function, overrides). A module with VERBS = {verb: function name} takes its verb
    as the first word, e.g. `python -m bench weights status paths.deepface_home=/x`."""
    verbs = getattr(module, "VERBS", None)
    if not verbs:
        return "run", list(overrides)
    if not overrides or overrides[0] not in verbs:
        raise BenchError(f"`{command}` needs one of: {', '.join(verbs)} (e.g. `python -m bench {command} {next(iter(verbs))}`)")
    return verbs[overrides[0]], list(overrides[1:])


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
