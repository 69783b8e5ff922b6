"""Progress bars (bench.progress): silent without a terminal, drawn on one or when forced
with BENCH_PROGRESS=1 (done/total, rate, time left), log lines printed above them, and
results byte-identical whether bars are drawn or not."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import textwrap
from pathlib import Path

import pytest

from bench import progress as progress_module
from bench.progress import chunks, forced, progress

# A loop slow enough for several redraws (tqdm redraws at most every 0.1 s), bar drawn at once.
LOOP = textwrap.dedent("""
    import logging, sys, time
    from bench.progress import logging_to_bars, progress
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    with logging_to_bars():
        for i in progress(range(20), "demo loop", delay=0):
            time.sleep(0.03)
            if i == 10:
                logging.getLogger("demo").info("halfway")
""")
# done/total [elapsed<left, rate]: what a bar must show once it has a rate
BAR = re.compile(r"demo loop: +\d+%\|.*\| *\d+/20 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+face/s\]")


def run_loop(env_value: str | None, terminal: bool = False, columns: int = 100) -> str:
    """stderr of LOOP in a fresh interpreter: a pipe, or a pseudo-terminal `columns` wide
    (0: one that reports no size, as `script` opens from a pipe)."""
    env = {k: v for k, v in os.environ.items() if k != progress_module.ENV}
    if env_value is not None:
        env[progress_module.ENV] = env_value
    cmd = [sys.executable, "-c", LOOP]
    if not terminal:
        done = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stderr
    main, child = pty.openpty()
    if columns:
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=child)
    os.close(child)
    out = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        out += data
    os.close(main)
    assert proc.wait(timeout=120) == 0, out
    return out.decode("utf-8", "replace")


def segments(text: str) -> list[str]:
    """What a terminal would show line by line: the text split at carriage returns and newlines."""
    return re.split(r"[\r\n]", text)


def test_silent_when_stderr_is_not_a_terminal():
    err = run_loop(None)
    assert "demo loop" not in err and "\r" not in err and "█" not in err
    assert "INFO demo: halfway" in segments(err)  # log lines are untouched


def test_forced_on_shows_done_total_rate_and_time_left():
    err = run_loop("1")
    assert BAR.search(err), err
    # the log line is printed above the bar, on a line of its own, not glued to a bar
    assert "INFO demo: halfway" in segments(err)


def test_drawn_on_a_terminal_and_forced_off_there():
    shown = run_loop(None, terminal=True)
    assert BAR.search(shown), shown
    assert "INFO demo: halfway" in segments(shown)
    assert BAR.search(run_loop(None, terminal=True, columns=0))  # a terminal of unknown size: 80x24
    silent = run_loop("0", terminal=True)
    assert "demo loop" not in silent and "INFO demo: halfway" in segments(silent)


def test_env_values(monkeypatch):
    for value, expected in [("1", True), ("on", True), ("0", False), ("false", False), ("", None), ("auto", None),
                            ("maybe", None)]:
        monkeypatch.setenv(progress_module.ENV, value)
        assert forced() is expected, value


def test_chunks_yield_every_item_once_in_order(monkeypatch):
    monkeypatch.setenv(progress_module.ENV, "0")
    assert list(chunks(list(range(10)), 4, "x")) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert list(chunks([], 4, "x")) == []
    assert list(progress(iter("abc"), "x")) == ["a", "b", "c"]


@pytest.mark.slow
def test_pool_and_manifold_outputs_are_byte_identical_with_bars_on_and_off(tmp_path, monkeypatch, capfd):
    """The DCGAN pool and its manifold (detection, embedding, Inception, pixels, age/gender:
    most of the loops with bars) written twice from scratch, bars drawn and not."""
    from bench.config import load_config
    from bench.pools.dcgan import package_weights
    from bench.stages import manifold, pool

    if package_weights() is None or not package_weights().is_file():
        pytest.skip("gan-face-generate is not installed (scripts/install.sh installs it --no-deps)")
    monkeypatch.setattr(progress_module, "DELAY_S", 0.0)  # draw even the short loops of a tiny pool
    outputs = {}
    for value in ("1", "0"):
        monkeypatch.setenv(progress_module.ENV, value)
        root = tmp_path / f"bars{value}" / "results"
        cfg = load_config([f"results_dir={root}", "pool=dcgan", "pool.n=6"])
        pool.run(cfg)
        manifold.run(cfg)
        err = capfd.readouterr().err
        if value == "1":
            assert "pool dcgan: detect faces" in err and "inception" in err and "age/gender" in err, err
        else:
            assert "detect faces" not in err
        outputs[value] = {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            # provenance records wall-clock seconds; the detection and feature caches are inputs
            if p.is_file() and "provenance" not in p.name and "cache" not in p.relative_to(root).parts
        }
        assert any(name.endswith("manifold.npz") for name in outputs[value]), sorted(outputs[value])
    assert outputs["1"].keys() == outputs["0"].keys()
    assert [k for k in outputs["1"] if outputs["1"][k] != outputs["0"][k]] == []


def test_bars_write_to_stderr_only(monkeypatch, capfd):
    monkeypatch.setenv(progress_module.ENV, "1")
    for _ in progress(range(3), "stderr only", delay=0):
        pass
    captured = capfd.readouterr()
    assert "stderr only" in captured.err and captured.out == ""


def test_the_cli_sends_log_lines_through_tqdm_while_bars_are_shown(monkeypatch):
    """bench.cli runs every command inside logging_to_bars: the console handler becomes
    tqdm's while a bar can be drawn, and comes back afterwards."""
    import logging

    from bench.progress import logging_to_bars

    handler = logging.StreamHandler(sys.stderr)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [handler])
    monkeypatch.setenv(progress_module.ENV, "1")
    with logging_to_bars():
        assert root.handlers != [handler] and type(root.handlers[0]).__module__.startswith("tqdm")
    assert root.handlers == [handler]
    monkeypatch.setenv(progress_module.ENV, "0")
    with logging_to_bars():
        assert root.handlers == [handler]


def test_every_module_with_bars_imports_them_from_bench_progress():
    """One place decides how bars look and when they show: no stage builds its own tqdm."""
    repo = Path(__file__).resolve().parent.parent
    direct = [str(p.relative_to(repo)) for p in (repo / "bench").rglob("*.py")
              if p.name != "progress.py" and re.search(r"^\s*(from tqdm|import tqdm)", p.read_text(), re.M)]
    assert direct == []
