"""A stage killed with SIGKILL mid-way and run again writes what an uninterrupted run writes
(anonymize resumes from its per-photo records, evaluate from the embedding cache)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.config import load_config
from bench.layout import Cell, cache_dir

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Four photos made from insightface's t1.jpg (six faces): whole, mirrored, two crops."""
    cfg = load_config(["dataset=sample"])
    t1 = Image.open(Path(cfg.dataset.path) / "t1.jpg").convert("RGB")
    folder = tmp_path_factory.mktemp("photos")
    w, h = t1.size
    t1.save(folder / "a_whole.jpg", quality=95)
    t1.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "b_mirrored.jpg", quality=95)
    t1.crop((0, 0, w * 2 // 3, h)).save(folder / "c_left.png")
    t1.crop((w // 3, 0, w, h)).save(folder / "d_right.png")
    return folder


def overrides(photos: Path, results: Path) -> list[str]:
    return [f"results_dir={results}", "dataset=folder", f"dataset.path={photos}", "dataset.name=four",
            "generator=pixelate", "metric=embedding", "query=furthest", "recognizers=[dlib]"]


def bench(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def run_ok(*args: str) -> None:
    proc = bench(*args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-3000:]


def kill_when(proc: subprocess.Popen, started, timeout_s: float = 300) -> None:
    """SIGKILLs `proc` as soon as `started()` is true; fails if it finished first."""
    deadline = time.monotonic() + timeout_s
    while not started():
        assert proc.poll() is None, "the stage finished before it could be killed mid-way"
        assert time.monotonic() < deadline, "the stage never started writing"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


@pytest.fixture(scope="module")
def runs(photos, tmp_path_factory):
    """(uninterrupted cell, killed-and-rerun cell)."""
    clean, killed = tmp_path_factory.mktemp("clean"), tmp_path_factory.mktemp("killed")
    for results in (clean, killed):
        run_ok("faces", *overrides(photos, results))
    run_ok("anonymize", *overrides(photos, clean))
    run_ok("evaluate", *overrides(photos, clean))

    cell = Cell(killed, "four", "dcgan", "embedding", "furthest", "pixelate")
    proc = bench("anonymize", *overrides(photos, killed))
    kill_when(proc, lambda: len(files_in(cell.records)) >= 1)
    assert not cell.pairs.exists(), "killed after the cell was written: nothing was interrupted"
    run_ok("anonymize", *overrides(photos, killed))

    embeddings = cache_dir(killed, "embeddings")
    proc = bench("evaluate", *overrides(photos, killed))
    kill_when(proc, lambda: len(files_in(embeddings)) >= 1)
    assert not cell.outcomes.exists()
    run_ok("evaluate", *overrides(photos, killed))
    return Cell(clean, "four", "dcgan", "embedding", "furthest", "pixelate"), cell


def test_anonymize_resumes_to_the_same_outputs(runs):
    clean, killed = runs
    for name in ("pairs.parquet", "faces.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(clean.root / name), pd.read_parquet(killed.root / name))
    assert (clean.photo_table.read_bytes() == killed.photo_table.read_bytes())
    assert clean.failures.read_bytes() == killed.failures.read_bytes()
    a, b = files_in(clean.photos), files_in(killed.photos)
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 4
    for x, y in zip(a, b):
        assert np.array_equal(np.asarray(Image.open(x)), np.asarray(Image.open(y))), x.name


def test_evaluate_resumes_to_the_same_outputs(runs):
    clean, killed = runs
    left, right = pd.read_parquet(clean.outcomes), pd.read_parquet(killed.outcomes)
    assert len(left) and (left.status == "ok").any()
    pd.testing.assert_frame_equal(left, right)
