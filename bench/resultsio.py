"""The one module that writes results: every write is atomic (temp file + rename), so an
interrupted run never leaves a half-written table behind and a rerun can resume."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

FAILURE_COLUMNS = ["photo", "face_id", "stage", "reason"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yields a temporary path next to `path`; renames it over `path` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix or path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are for everyone to read
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yields an empty temporary folder next to `path`; if the block succeeds, it takes the
    place of `path` (the old folder, with any file the new one lacks, is removed). A reader
    sees the old folder or the new one whole (or, for the instant between two renames, none),
    never a half-written one; on an error the old folder stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    old = None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; results are for everyone to read
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old."))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_parquet(df: pd.DataFrame, path) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def write_csv(df: pd.DataFrame, path) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, lineterminator="\n")
    return Path(path)


def write_text(text: str, path) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj, path) -> Path:
    return write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n", path)


def write_npz(path, **arrays: np.ndarray) -> Path:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return Path(path)


def png_bytes(rgb: np.ndarray) -> bytes:
    """The PNG file write_png writes for `rgb` ((H, W, 3) uint8), in memory: its sha256 is the
    written file's (PIL's encoder is deterministic), so a photo's caches can be keyed before it is written."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(rgb: np.ndarray, path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        Path(tmp).write_bytes(png_bytes(rgb))
    return Path(path)


def write_failures(rows: list[dict], path) -> Path:
    """The failures table: one row per photo or face that a stage could not process."""
    df = pd.DataFrame(rows, columns=FAILURE_COLUMNS).fillna("")
    df = df.sort_values(["photo", "face_id", "stage"], kind="stable").reset_index(drop=True)
    return write_csv(df, path)


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file, hashed once per process while its size and mtime stay the same
    (weights files are hashed for every cache key and provenance entry that names them)."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=128)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:  # size, mtime: a changed file is hashed again
    return sha256_file(path)


def forget_file_hashes() -> None:
    """Empties file_sha256's memory, so that the next call hashes each file again (a benchmark
    that times a cold start: bench.benchmarks.naive_vs_harness)."""
    _file_sha256.cache_clear()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_figure(fig, path, dpi: int = 110) -> Path:
    """Saves a matplotlib figure atomically, without the writer's name or a creation date in
    the file, so that a rerun writes the same bytes. The format follows the suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    metadata = {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else {}
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata)
    return path


def flatten(tree: dict, prefix: str = "", depth: int | None = None) -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}, as `dvc metrics show` names a nested key; with `depth`,
    only that many levels are joined (the values below stay dicts)."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and (depth is None or depth > 1):
            out.update(flatten(value, name, None if depth is None else depth - 1))
        else:
            out[name] = value
    return out
