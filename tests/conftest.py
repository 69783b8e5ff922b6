"""Shared fixtures. Data is located relative to this file, never the working directory."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("BENCH_SHARED", REPO.parent / "shared")).resolve()

warnings.filterwarnings("ignore", message="pkg_resources is deprecated")


def shared_path(*parts: str) -> Path:
    """A path inside ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (../shared is absent; set BENCH_SHARED to its location)")
    return path


@pytest.fixture
def shared():
    return shared_path


@pytest.fixture
def cfg_factory(tmp_path):
    """Composes the real conf/ with overrides, writing under tmp_path."""
    from bench.config import load_config

    def make(*overrides: str):
        return load_config([f"results_dir={tmp_path / 'results'}", f"paths.shared={SHARED}", *overrides])

    return make


@pytest.fixture(scope="session")
def _session_caches(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("caches")


@pytest.fixture
def warm_caches(_session_caches, tmp_path):
    """The test's results/cache/ starts with what earlier tests of the session computed and
    gives back what this one computes. The caches are content-addressed and keyed by settings,
    weights and code (docs/reproducibility.md), so a test sees the answers it would compute;
    only for tests that do not patch a detector, recognizer or feature model."""
    import shutil

    target = tmp_path / "results" / "cache"
    shutil.copytree(_session_caches, target, dirs_exist_ok=True)
    yield target
    if target.is_dir():
        shutil.copytree(target, _session_caches, dirs_exist_ok=True, ignore=shutil.ignore_patterns("locks", "*.lock"))
