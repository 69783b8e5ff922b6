"""Turn-taking on shared outputs when cells run at once (Hydra sweeps on the joblib or
submitit launchers, several `python -m bench run` side by side).

A cell's own files live in its folder (bench.layout.Cell), so cells never write each other's
files; what they share is upstream (the dataset's faces, a pool's manifold, a query's
targets) and the tables that aggregate every cell. `output_lock(path)` is a file lock
(filelock: works across processes and, through the shared file system, across SLURM nodes)
held while a stage writes `path`: the second cell waits, then resumes from the first one's
caches instead of computing the same thing again, and an aggregating stage always reads
every cell finished before it took the lock. Lock files live in <results_dir>/cache/locks/
(never a DVC output).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Iterator

from filelock import FileLock, Timeout

from bench.layout import cache_dir

log = logging.getLogger(__name__)


@contextlib.contextmanager
def output_lock(results_dir: Path | str, path: Path | str, timeout_s: float = -1) -> Iterator[None]:
    """Holds the lock of one output path (a file or folder) for the block.

    Args:
        results_dir: the run's results folder (the lock lives in its cache/locks/).
        path: the output the block writes.
        timeout_s: seconds to wait; -1 waits for ever.

    Raises:
        filelock.Timeout: when timeout_s passes first.
    """
    key = hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16]
    folder = cache_dir(results_dir, "locks")
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"{key}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("waiting for another run writing %s", path)
        lock.acquire(timeout=timeout_s)
    try:
        yield
    finally:
        lock.release()
