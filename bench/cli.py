"""`python -m bench [-v] COMMAND [VERB] [Hydra's command line]`: each command is a Hydra app on
conf/config.yaml whose task function is one stage's entry function, so everything Hydra's
command line takes works: key=value overrides, -m/--multirun sweeps with any launcher
(`hydra/launcher=joblib`, `submitit_local`, `slurm`), --cfg job, --info, --help.

Results go to results_dir as the stages write them, whichever launcher runs the jobs; a single
run makes no folder of Hydra's, a sweep records itself in <results_dir>/.hydra/<command>/
(conf/hydra/bench.yaml)."""
from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass

from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.errors import BenchError

log = logging.getLogger("bench")

# command -> (module with a `run(cfg)` entry function, one-line help)
COMMANDS = {
    "faces": ("bench.stages.faces", "detect, align and list every face of a dataset (faces.parquet, failures.csv, crops/)"),
    "recall": ("bench.benchmarks.detection_recall", "detection recall and time per photo of every detector on dlib's hand-made boxes"),
    "perf": ("bench.benchmarks.suite", "the performance suite: perf-profile, perf-naive, perf-query and perf-projection in one run, headline figures beside their targets (benchmarks/perf.{json,md})"),
    "perf-query": ("bench.benchmarks.query_scaling", "query time and memory from 10k to 1M pool faces: exact, faiss index (recall vs exact), pixel spaces' fast methods (results/benchmarks/query_scaling.{json,md})"),
    "perf-naive": ("bench.benchmarks.naive_vs_harness", "a naive DeepFace.verify loop vs the evaluate stage on Table 1's Source-vs-Result pairs: time, ratio, verdict agreement (benchmarks/naive_vs_harness.{json,md})"),
    "perf-projection": ("bench.benchmarks.projection", "the paper's run (Tables 1-3: 193 photos, 1,282 faces, a 10k pool) projected on this machine from measured per-unit costs (benchmarks/projection.{json,md})"),
    "perf-profile": ("bench.benchmarks.profile", "wall time per stage process split into start+imports, model load, decode, model calls, file I/O; faces/s, peak RSS (benchmarks/profile.{json,md})"),
    "config": (None, "print the composed configuration"),
    "weights": ("bench.weights", "weights status | provision | fetch | check: every recognizer's and detector's weights, offline provisioning"),
    "embed": ("bench.stages.embed", "embed every aligned face once per recognizer (embeddings/<recognizer>.parquet)"),
    "calibrate": ("bench.recognizers.calibration", "fit stand-in recognizers' thresholds on the identities set (conf/calibration/)"),
    "baseline": ("bench.stages.baseline", "genuine baseline: every recognizer on identity-labelled photos (tables/baseline.csv, ROC)"),
    "shrink": ("bench.stages.shrink", "the identities set shrunk to each face-size band: can each recognizer still tell people apart (tables/shrink.{csv,md})"),
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
    "metrics": ("bench.stages.metrics", "every table's numbers in one file for the gate and `dvc metrics` (results/metrics.json)"),
    "check": ("bench.gate", "the regression gate: results/metrics.json against conf/gate/ (non-zero exit on a violation; --update rewrites the baseline)"),
    "attack": ("bench.stages.attack", "attack one cell's anonymization on the identities set: gallery identification, linkability, parrot attacker, distances, Supp. D k-anonymity (results/attack/)"),
    "paper": ("bench.stages.paper", "every quantitative claim of the paper beside our value (results/tables/paper_vs_ours.{csv,md})"),
    "report": ("bench.stages.report", "the HTML report of a run, from result files only (results/report/index.html)"),
    "dvc": ("bench.stagetable", "write dvc.yaml and perf/dvc.yaml from the stage table (bench/stagetable.py) and params.yaml"),
    "run": ("bench.pipeline", "the whole chain for one cell (or the cells of pipeline.cells, e.g. +experiment=table1): faces, pool, manifold, query, anonymize, evaluate, leaks, tables, quality"),
}


# Flags a command takes besides Hydra's: flag -> the module's entry function it selects.
COMMAND_FLAGS = {
    "check": {"--update": "update"},
}
VERBOSE_FLAGS = ("-v", "--verbose")
HELP_FLAGS = ("-h", "--help")
INFO_FLAGS = ("-i", "--info")
# Errors that end a command with one log line and exit code 2 rather than a traceback.
EXPECTED_ERRORS = (BenchError, HydraException, OmegaConfBaseException)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="mfmc-bench: the My Face My Choice benchmark. Each command is a Hydra app: "
                    "it takes Hydra's command line, e.g. `python -m bench faces dataset=devset "
                    "detector=scrfd`, `python -m bench run -m generator=blur,pixelate "
                    "hydra/launcher=joblib`; `python -m bench COMMAND --help` lists its options.",
        epilog="commands:\n" + "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("command", metavar="COMMAND", choices=list(COMMANDS), help="one of the commands below")
    # Our options end at the command; everything after it is the command's (Hydra's).
    at = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    args = parser.parse_args(argv[:at + 1])
    rest = argv[at + 1:]
    verbose = args.verbose or any(flag in rest for flag in VERBOSE_FLAGS)
    rest = [arg for arg in rest if arg not in VERBOSE_FLAGS]
    if not any(arg in INFO_FLAGS or arg.startswith("--info=") for arg in rest):
        setup_logging(verbose)  # (--info prints through a log handler of Hydra's own)

    from bench.config import register_resolvers  # after argparse, so --help stays fast

    command = args.command
    module_name, help_text = COMMANDS[command]
    try:
        module = importlib.import_module(module_name) if module_name else None
        rest, flag_entry = take_flags(command, rest)
        if any(arg in HELP_FLAGS for arg in rest):  # Hydra prints the rest of the help
            print_command_help(command, help_text, module)
            entry = "run"
        else:
            entry, rest = split_verb(command, module, rest)
        task = Task(command=command, module=module_name, entry=flag_entry or entry, verbose=verbose)
        register_resolvers()
        hydra_app(task, rest)
    except (*EXPECTED_ERRORS, SingleJobError) as err:
        report(command, getattr(err, "error", err))
        return 2
    finally:
        from bench.registry import reuse_components

        reuse_components(False)  # a caller in this process (a test, a script) builds its own again
    return 0


def report(command: str, err: BaseException) -> None:
    if isinstance(err, BenchError):
        log.error("%s: %s", command, err)
    else:
        cause = f" ({err.__cause__})" if err.__cause__ else ""
        log.error("%s: bad configuration: %s%s", command, err, cause)


class SingleJobError(BaseException):
    """A single run's expected error on its way to main past Hydra's per-job report (run_job
    catches Exception only; an Exception would add Hydra's "Error executing job with
    overrides" line): main logs it as one line. A sweep's job raises the error itself, so the
    other jobs still run and Hydra says which job failed."""

    def __init__(self, error: BaseException):
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True)
class Task:
    """One command as Hydra's task function. A plain picklable object (module and entry by
    name), because a launcher may call it in another process: joblib's workers, a submitit job.

    Attributes:
        command: the command's name (COMMANDS).
        module: the module whose `entry` function runs; None prints the config (`config`).
        entry: the entry function's name: `run`, a verb's function, or a flag's.
        verbose: debug logging, in whichever process the job runs.
    """

    command: str
    module: str | None
    entry: str
    verbose: bool = False

    def __call__(self, cfg: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        from bench.config import job_config, register_resolvers
        from bench.progress import logging_to_bars

        setup_logging(self.verbose)  # a launcher's worker process starts with no logging set up
        register_resolvers()
        from bench.registry import reuse_components

        reuse_components()  # each model loads once in this process (main turns it off again)
        try:
            cfg = job_config(cfg, HydraConfig.get().runtime.choices)
            if self.module is None:
                print(OmegaConf.to_yaml(cfg, resolve=True))
            else:
                # The entry's return value is dropped: a launcher would have to pickle it back.
                # Log lines print above the progress bars instead of through them (bench.progress).
                with logging_to_bars():
                    entry = getattr(importlib.import_module(self.module), self.entry)
                    for one in self.cells(cfg):
                        entry(one)
        except EXPECTED_ERRORS as err:
            if HydraConfig.get().mode == RunMode.RUN:
                raise SingleJobError(err) from err
            raise

    def cells(self, cfg: DictConfig) -> list[DictConfig]:
        """The configs this command's one process runs: a cell command (CELL_COMMANDS) runs
        every cell of `pipeline.cells` in turn (models load once; the caches skip unchanged
        work); any other command runs `cfg` itself."""
        from bench.config import cell_configs
        from bench.stagetable import CELL_COMMANDS

        return cell_configs(cfg) if self.command in CELL_COMMANDS else [cfg]


def hydra_app(task: Task, hydra_argv: list[str]) -> None:
    """Runs `task` as a Hydra app (config_path=conf, config_name=config) on `hydra_argv`.

    This is the body of `@hydra.main`'s wrapper (Hydra 1.3: parse Hydra's flags, then
    `_run_hydra`), which reads sys.argv itself; here it gets the command's arguments, its
    program name and hydra.job.name. Errors propagate to the caller (HYDRA_FULL_ERROR)
    instead of Hydra's report and exit code 1, so that a BenchError or a bad override ends in
    one log line and exit code 2."""
    from hydra._internal.utils import _run_hydra, get_args_parser

    from bench.config import CONF_DIR

    parser = get_args_parser()
    parser.prog = f"python -m bench {task.command}"
    args = parser.parse_args(hydra_argv)
    # hydra.job.name names the run and sweep folders and a cluster's jobs (conf/hydra/bench.yaml).
    args.overrides = [f"hydra.job.name={task.command}", *args.overrides]
    from bench.sweeps import check_sweep, is_sweep

    prints_only = args.cfg or args.info or args.help or args.hydra_help or args.shell_completion
    if is_sweep(args.multirun, args.overrides) and not prints_only:
        if args.config_path or args.config_name or args.config_dir:
            log.warning("%s: a sweep on another primary config (-cp/-cn/-cd): not checked that its jobs "
                        "write different files (bench.sweeps)", task.command)
        else:
            check_sweep(task.command, task.entry, args.overrides)  # no two jobs write the same file
    with _environ(HYDRA_FULL_ERROR="1"):
        _run_hydra(args=args, args_parser=parser, task_function=task,
                   config_path=str(CONF_DIR), config_name="config")


def print_command_help(command: str, help_text: str, module) -> None:
    """The command's own line (and verbs, flags) before Hydra's help on its options."""
    print(f"python -m bench {command}: {help_text}")
    verbs = getattr(module, "VERBS", None)
    if verbs:
        print(f"verbs (the first word after the command): {', '.join(verbs)}")
    for flag, entry in COMMAND_FLAGS.get(command, {}).items():
        print(f"{flag}: runs {module.__name__}.{entry}")
    print("-v/--verbose: debug logging\n")


@contextlib.contextmanager
def _environ(**values: str):
    old = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def take_flags(command: str, args: list[str]) -> tuple[list[str], str | None]:
    """(args without the command's own flags, the entry function the last one selects)."""
    entry = None
    for flag, flag_entry in COMMAND_FLAGS.get(command, {}).items():
        if flag in args:
            entry = flag_entry
            args = [arg for arg in args if arg != flag]
    return args, entry


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
    # Hydra's debug lines are its config search path, defaults tree and plugins on every
    # command (`--info` prints them on demand; `hydra.verbose=hydra` brings them back).
    logging.getLogger("hydra").setLevel(logging.INFO)
    # face_recognition_models still imports pkg_resources; the warning says nothing to users.
    warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
    # insightface's face_align calls a scikit-image API deprecated in 0.26.
    warnings.filterwarnings("ignore", message="`estimate` is deprecated", category=FutureWarning)


if __name__ == "__main__":
    sys.exit(main())
