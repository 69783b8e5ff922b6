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
