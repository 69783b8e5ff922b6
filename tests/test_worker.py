"""The long-lived worker (bench/worker.py, BENCH_WORKER=auto): a command run through it prints,
writes and exits as the same command run in its own process; a killed call leaves nothing
running; edited code never runs in a worker started before the edit."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from bench import worker

REPO = Path(__file__).resolve().parent.parent


def bench(args, tmp_path, use_worker: bool, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path), BENCH_WORKER_IDLE="20",
               BENCH_WORKER="auto" if use_worker else "")
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600, **kwargs)


@pytest.fixture(scope="module")
def sockets(tmp_path_factory):
    """A runtime folder of this module's own: its workers never serve other tests."""
    folder = tmp_path_factory.mktemp("run")
    yield folder
    for sock in folder.glob("bench-worker-*.sock"):
        sock.unlink(missing_ok=True)  # the worker sees no more calls and exits when idle


def test_same_output_and_exit_codes_as_its_own_process(sockets):
    for args, code in ((["config", "seed=7"], 0), (["nosuch"], 2), (["tables", "results_dir=/nonexistent/x"], 2)):
        alone, served = bench(args, sockets, False), bench(args, sockets, True)
        assert (alone.returncode, served.returncode) == (code, code), served.stderr
        assert served.stdout == alone.stdout
        assert served.stderr.splitlines()[-1:] == alone.stderr.splitlines()[-1:]
    assert list(sockets.glob("bench-worker-*.sock")), "no worker was started"


def test_a_stage_writes_the_same_files(sockets, tmp_path):
    common = ["dataset=sample", "detector=scrfd"]
    for name, use in (("alone", False), ("served", True)):
        done = bench(["faces", *common, f"results_dir={tmp_path / name}"], sockets, use)
        assert done.returncode == 0, done.stderr[-2000:]
    alone, served = (pd.read_parquet(tmp_path / n / "sample" / "faces.parquet") for n in ("alone", "served"))
    pd.testing.assert_frame_equal(alone, served)
    crops = sorted(p.name for p in (tmp_path / "alone" / "sample" / "crops").iterdir())
    assert crops and crops == sorted(p.name for p in (tmp_path / "served" / "sample" / "crops").iterdir())
    for name in crops:
        assert (tmp_path / "alone" / "sample" / "crops" / name).read_bytes() == \
            (tmp_path / "served" / "sample" / "crops" / name).read_bytes()


def test_a_killed_call_leaves_no_command_running(sockets, tmp_path):
    """SIGKILL the caller: the command's process (which holds the caller's stdout) goes too,
    so the pipe reaches end-of-file at once instead of when the command would have ended."""
    bench(["config"], sockets, True)  # the worker is up
    env = dict(os.environ, XDG_RUNTIME_DIR=str(sockets), BENCH_WORKER_IDLE="20", BENCH_WORKER="auto")
    # The detection benchmark over every detector runs for minutes.
    call = subprocess.Popen([sys.executable, "-m", "bench", "recall", f"results_dir={tmp_path}"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(3)
    assert call.poll() is None, "the command ended before the test could kill it"
    call.send_signal(signal.SIGKILL)
    call.wait()
    started = time.monotonic()
    call.stdout.read()  # returns once no process holds the write end
    assert time.monotonic() - started < 20


def test_edited_code_gets_a_new_worker(tmp_path, monkeypatch):
    package = tmp_path / "bench"
    package.mkdir()
    (package / "a.py").write_text("x = 1\n")
    monkeypatch.setattr(worker, "PACKAGE", package)
    before = worker.fingerprint()
    assert worker.fingerprint() == before
    (package / "a.py").write_text("x = 22\n")
    assert worker.fingerprint() != before
    changed = worker.fingerprint()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert worker.fingerprint() != changed  # read by libraries at import: another worker


def test_off_unless_asked(monkeypatch):
    monkeypatch.delenv(worker.ENV, raising=False)
    assert worker.forward(["config"]) is None
    monkeypatch.setenv(worker.ENV, "auto")
    assert worker.forward(["worker"]) is None
