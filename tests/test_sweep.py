"""`python -m bench run -m ...`: a 2x2 sweep through Hydra's launchers (the basic one's jobs
in one process, sharing loaded models; joblib's worker processes, submitit's local executor) writes the same cells and tables as four runs one after
another, at the same fixed paths. Cells shrunk to seconds: generators that need no pool or
targets, Dlib as the only judge and detector, no audit, no FID (quality.generators=[])."""
from __future__ import annotations

import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import OmegaConf

from bench.cli import Task, main, take_flags
from bench.config import load_config

REPO = Path(__file__).resolve().parent.parent
SWEEP = {"generator": ["blur", "pixelate"], "query": ["furthest", "random_furthest"]}
SMALL = ["recognizers=[dlib]", "detector=dlib_hog", "anonymize.audit_detectors=[]", "anonymize.audit_rotations=[]",
         "anonymize.output_audit_rounds=0", "leaks.detectors=[dlib_hog]", "leaks.rotations=[]", "quality.generators=[]"]
LAUNCHERS = {
    "basic": [],  # Hydra's default: the jobs one after another in one process, sharing models
    "joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
    "submitit_local": ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"],
}


@pytest.fixture(scope="module")
def sequential(tmp_path_factory) -> Path:
    """Four plain runs, one after another (in this process, through the same command line)."""
    root = tmp_path_factory.mktemp("sequential")
    for generator, query in itertools.product(*SWEEP.values()):
        assert main(["run", f"generator={generator}", f"query={query}", f"results_dir={root}", *SMALL]) == 0
    return root


def sweep(root: Path, launcher: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "bench", "run", "-m", *(f"{k}={','.join(v)}" for k, v in SWEEP.items()),
               f"results_dir={root}", *SMALL, *launcher]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)


def result_files(root: Path) -> dict[str, Path]:
    """Every result file by its path under results_dir, less what may differ between two
    correct runs: Hydra's folder, lock files and provenance records (times, hosts)."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and ".hydra" not in p.relative_to(root).parts and p.suffix != ".lock"
            and not p.name.endswith("provenance.json")}


def content(path: Path):
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    return path.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_sweep_writes_what_four_runs_write(sequential, tmp_path, launcher):
    done = sweep(tmp_path, LAUNCHERS[launcher])
    assert done.returncode == 0, done.stderr[-4000:]
    expected, got = result_files(sequential), result_files(tmp_path)
    cells = [f"sample/cells/dcgan/{g}/embedding-{q}/{name}" for g, q in itertools.product(*SWEEP.values())
             for name in ("pairs.parquet", "outcomes.parquet")]
    tables = [f"tables/sample/dcgan/verification/{g}/table{n}.csv" for g in SWEEP["generator"] for n in (1, 2, 3)]
    assert set(cells + tables) <= set(expected)
    assert sorted(got) == sorted(expected)
    for name, path in expected.items():
        a, b = content(path), content(got[name])
        if isinstance(a, pd.DataFrame):
            pd.testing.assert_frame_equal(a, b, obj=name)
        else:
            assert a == b, name
    # fixed paths: a single run makes no folder of Hydra's; a sweep's record sits beside the
    # results, named by the command
    assert not (sequential / ".hydra").exists()
    assert (tmp_path / ".hydra" / "run" / "multirun.yaml").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".hydra", *(p.name for p in sequential.iterdir())])


def test_the_command_line_composes_what_load_config_composes(capsys, tmp_path):
    overrides = ["dataset=devset", "generator=blur", "seed=3", f"results_dir={tmp_path}"]
    assert main(["config", *overrides]) == 0
    printed = OmegaConf.create(capsys.readouterr().out)
    assert printed == OmegaConf.create(OmegaConf.to_yaml(load_config(overrides), resolve=True))
    assert printed.choices.generator == "blur" and "hydra" not in printed


def test_a_bad_override_is_one_line_and_exit_code_2(capsys, caplog):
    assert main(["run", "no_such_key=1"]) == 2
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "no_such_key" in errors[0].getMessage()
    assert "Traceback" not in capsys.readouterr().err


def test_hydra_flags_work(capsys):
    assert main(["run", "generator=pixelate", "--cfg", "job"]) == 0  # prints, runs nothing
    assert OmegaConf.create(capsys.readouterr().out).generator == load_config(["generator=pixelate"]).generator
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--help"])
    assert exit_.value.code == 0
    assert "hydra/launcher=joblib" in capsys.readouterr().out


def test_slurm_preset_extends_submitits_slurm_launcher(capsys):
    assert main(["run", "hydra/launcher=slurm", "hydra.launcher.partition=cpu", "--cfg", "hydra", "-p", "hydra.launcher"]) == 0
    launcher = OmegaConf.to_container(OmegaConf.create(capsys.readouterr().out))  # the node itself
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert launcher["partition"] == "cpu" and launcher["timeout_min"] == 240
    assert launcher["submitit_folder"].startswith("${hydra.sweep.dir}")


def test_task_travels_to_worker_processes():
    task = Task(command="run", module="bench.pipeline", entry="run", verbose=True)
    assert pickle.loads(pickle.dumps(task)) == task


def test_check_update_flag_selects_the_update_entry():
    assert take_flags("check", ["--update", "results_dir=x"]) == (["results_dir=x"], "update")
    assert take_flags("run", ["--update"]) == (["--update"], None)


def test_one_command_loads_each_model_once_and_a_sweep_shares_them_between_cells(tmp_path, monkeypatch):
    """`python -m bench run` chains stages in one process, and the basic launcher runs a
    sweep's jobs in one process: each model is loaded once there (bench.registry.reuse_components),
    then dropped when the command returns."""
    import bench.registry
    from bench.component import Component

    loaded = []
    prepare = Component.prepare

    def counting(self):
        if not getattr(self, "_prepared", False):
            loaded.append(type(self).__name__)
        prepare(self)

    monkeypatch.setattr(Component, "prepare", counting)
    assert main(["run", "generator=blur", f"results_dir={tmp_path / 'one'}", *SMALL]) == 0
    one = sorted(loaded)
    # faces, the leak check and the re-detection all run dlib_hog: one load
    assert one.count("DlibHogDetector") == 1 and one.count("DeepfaceRecognizer") == 1
    assert bench.registry._reused is None
    loaded.clear()
    assert main(["run", "-m", "generator=blur,pixelate", f"results_dir={tmp_path / 'two'}", *SMALL]) == 0
    assert sorted(loaded) == sorted(one + ["Pixelate"])  # the second cell's own generator, nothing else
    assert bench.registry._reused is None
    loaded.clear()
    build = bench.registry.DETECTORS.build
    assert build("dlib_hog") is not build("dlib_hog")  # called from Python: no sharing


# ---- one job per set of output files (bench.sweeps) -------------------------------------------

@pytest.mark.parametrize("launcher", [[], LAUNCHERS["joblib"]], ids=["basic", "joblib"])
def test_a_sweep_whose_jobs_would_write_the_same_files_is_refused_before_any_job_runs(tmp_path, caplog, launcher):
    """Output paths do not name the detector: the jobs would overwrite each other's inventory
    (under joblib, whichever ended last would win). Every clashing group is named; nothing runs."""
    results = tmp_path / "results"
    sweep = ["faces", "-m", "detector=dlib_hog,centerface,mtcnn", "dataset=sample,devset",
             f"results_dir={results}", *launcher]
    assert main(sweep) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert "2 group(s)" in errors[0] and "Nothing ran" in errors[0]
    assert ("#0 (detector=dlib_hog dataset=sample), #2 (detector=centerface dataset=sample), "
            "#4 (detector=mtcnn dataset=sample) all write") in errors[0]
    assert f"results_dir={results.resolve()} dataset.name=devset" in errors[0]
    assert not results.exists()


@pytest.mark.parametrize("mode", ["hydra.mode=MULTIRUN", "++hydra.mode=MULTIRUN", "hydra.mode='MULTIRUN'", "hydra.mode=2"])
def test_a_sweep_set_by_hydra_mode_is_checked_too(tmp_path, mode):
    results = tmp_path / "results"
    assert main(["faces", "detector=dlib_hog,centerface", mode, f"results_dir={results}"]) == 2
    assert not results.exists()


def test_a_sweep_on_another_primary_config_is_not_checked_but_runs(tmp_path, caplog):
    """-cd/-cn/-cp compose another primary config than conf/config.yaml, which the check
    cannot follow: a warning, and the sweep runs as Hydra runs it."""
    extra = tmp_path / "extra" / "experiment"
    extra.mkdir(parents=True)
    (extra / "mine.yaml").write_text("# @package _global_\nseed: 7\n")
    results = tmp_path / "results"
    assert main(["faces", "-m", "-cd", str(tmp_path / "extra"), "+experiment=mine", "detector=dlib_hog",
                 f"results_dir={results}/a,{results}/b"]) == 0
    assert any("not checked" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert (results / "a" / "sample" / "faces.parquet").is_file() and (results / "b" / "sample" / "faces.parquet").is_file()


def test_sweeps_whose_jobs_write_apart_run(tmp_path):
    apart = tmp_path / "apart"
    assert main(["faces", "-m", "detector=dlib_hog", f"results_dir={apart}/a,{apart}/b"]) == 0
    assert main(["faces", "-m", "seed=1,2", "detector=dlib_hog", f"results_dir={apart}/seed${{seed}}"]) == 0
    for name in ("a", "b", "seed1", "seed2"):
        assert (apart / name / "sample" / "faces.parquet").is_file(), name


@pytest.mark.parametrize("command, entry, overrides, refused", [
    ("faces", "run", ["detector=dlib_hog", "hydra.mode=MULTIRUN"], False),  # one job
    ("query", "run", ["query=glob(*)", "metric=embedding,ssim"], False),
    ("anonymize", "run", ["generator=blur,pixelate", "dataset=sample,devset", "pool=dcgan,devpool"], False),
    ("anonymize", "run", ["anonymize.audit_rotations=[],[90]"], True),
    ("evaluate", "run", ["recognizers=[dlib],[facenet]"], True),
    ("faces", "run", ["seed=range(0,2)", "hydra.sweeper.max_batch_size=1"], True),  # the basic sweeper, batched
    ("run", "run", ["+experiment=table1,table2"], False),  # different cells
    ("run", "run", ["+experiment=table1,paper"], True),  # a cell in common
    ("run", "run", ["+experiment=table1", "query=furthest,closest"], True),  # the experiment's cells win
    ("embed", "run", ["recognizers=[dlib],[facenet]"], False),  # one file per recognizer
    ("embed", "run", ["recognizers=[dlib],[dlib,facenet]"], True),
    ("paper", "run", ["dataset=sample,devset"], True),  # tables/paper_vs_ours: one file
    ("tables", "run", ["detector=dlib_hog,mtcnn"], True),
    ("attack", "run", ["dataset=sample,devset"], True),  # the identities set is attacked, not the dataset
    ("calibrate", "run", ["recognizer=arcface_mbf,mobilefacenet"], False),
    ("calibrate", "run", ["recognizer=arcface_mbf", "results_dir=a,b"], True),  # conf/calibration/
    ("check", "run", ["gate.tolerances=a.yaml,b.yaml"], False),  # reads only
    ("check", "update", ["gate.tolerances=a.yaml,b.yaml"], True),  # one baseline
    ("view", "run", ["access=rules", "photo=t1.jpg", "viewer=u1,u2"], False),
    ("weights", "status", ["paths.deepface_home=/a,/b"], False),
    ("perf-query", "run", ["perf.query_scaling.seed=1,2"], True),
    ("perf-profile", "run", ["results_dir=a,b", "perf.profile.results_dir=scratch"], True),  # stages run there
    ("perf-profile", "run", ["results_dir=a,b"], False),
])
def test_which_sweeps_are_refused(tmp_path, command, entry, overrides, refused):
    from bench.errors import BenchError
    from bench.sweeps import check_sweep

    args = [*overrides, f"results_dir={tmp_path}"] if not any(o.startswith("results_dir") for o in overrides) else overrides
    if refused:
        with pytest.raises(BenchError, match="would write the same files"):
            check_sweep(command, entry, args)
    else:
        check_sweep(command, entry, args)


def test_sweep_values_from_the_config_are_jobs_too(tmp_path, monkeypatch):
    """The basic sweeper also sweeps `hydra.sweeper.params` of the config (Hydra >= 1.2), before
    the command line's values: here from an experiment file in a copy of conf/."""
    import shutil

    import bench.sweeps
    from bench.config import CONF_DIR

    conf = tmp_path / "conf"
    shutil.copytree(CONF_DIR, conf)
    (conf / "experiment" / "swept.yaml").write_text(
        "# @package _global_\nhydra:\n  sweeper:\n    params:\n      detector: dlib_hog,centerface\n")
    monkeypatch.setattr(bench.sweeps, "CONF_DIR", conf)
    assert bench.sweeps.sweep_jobs(["+experiment=swept", "seed=1,2"]) == [
        ["detector=dlib_hog", "+experiment=swept", "seed=1"], ["detector=dlib_hog", "+experiment=swept", "seed=2"],
        ["detector=centerface", "+experiment=swept", "seed=1"], ["detector=centerface", "+experiment=swept", "seed=2"]]
    assert bench.sweeps.sweep_jobs(["hydra/sweeper=basic", "seed=1,2"]) == [["hydra/sweeper=basic", "seed=1"],
                                                                            ["hydra/sweeper=basic", "seed=2"]]


def test_what_names_a_commands_outputs(tmp_path, cfg_factory):
    from bench.stagetable import command_outputs

    base = cfg_factory()
    for command in ("faces", "anonymize", "run", "tables", "paper", "attack", "calibrate", "view", "embed"):
        assert command_outputs(cfg_factory("detector=mtcnn", "seed=5", "anonymize.audit_rotations=[]"), command) \
            == command_outputs(base, command), command
    for override in ("query=furthest", "generator=blur", "metric=ssim", "dataset=devset", "pool=devpool",
                     "results_dir=elsewhere"):
        assert command_outputs(cfg_factory(override), "anonymize") != command_outputs(base, "anonymize"), override
    assert command_outputs(cfg_factory("query=furthest"), "tables") == command_outputs(base, "tables")
    # relative and absolute spellings of one folder are the same outputs
    assert command_outputs(cfg_factory(f"results_dir={tmp_path / 'results'}"), "faces") == command_outputs(base, "faces")
    assert command_outputs(base, "check") is None and command_outputs(base, "config") is None
    assert command_outputs(base, "check", "update") == {f"gate.baseline={Path(base.gate.baseline).resolve()}"}
