"""The whole chain for one cell (`python -m bench run`) on the embedded default, shrunk:
a 16-face DCGAN pool and Dlib as the only judge."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.cli import main

SMALL = ["recognizers=[dlib]", "pool.n=16", "quality.generators=[faceswap,pixelate]"]
pytestmark = pytest.mark.slow  # the whole chain, twice: `make test-full`


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    assert main(["run", f"results_dir={root}", *SMALL]) == 0
    assert main(["run", f"results_dir={root}", "generator=pixelate", *SMALL]) == 0
    assert main(["figures", f"results_dir={root}", *SMALL]) == 0
    return root


def cell(results: Path, generator: str) -> Path:
    return results / "sample" / "cells" / "dcgan" / generator / "embedding-random_furthest_ag"


@pytest.mark.parametrize("generator", ["faceswap", "pixelate"])
def test_every_face_is_accounted_for(results, generator):
    faces = pd.read_parquet(results / "sample" / "faces.parquet")
    pairs = pd.read_parquet(cell(results, generator) / "pairs.parquet")
    assert sorted(pairs.source_face) == sorted(faces.face_id)
    failures = pd.read_csv(cell(results, generator) / "failures.csv").fillna("")
    for row in pairs.itertuples():
        reported = (failures.face_id == row.source_face).any()
        assert row.status == "swapped" or reported
        assert row.redetected or reported


def test_faceswap_targets_and_results_are_judged_by_dlib(results):
    outcomes = pd.read_parquet(cell(results, "faceswap") / "outcomes.parquet")
    dlib = outcomes[(outcomes.recognizer == "dlib") & (outcomes.metric == "cosine")]
    target = dlib[dlib.comparison == "source_vs_target"]
    assert len(target) == 6 and (target.status == "ok").all()
    # random_furthest_ag picks targets beyond max - std: none is Dlib's same person
    assert not target.verified.astype(bool).any()
    table = pd.read_csv(results / "tables" / "sample" / "dcgan" / "verification" / "faceswap" / "table1.csv")
    assert table.columns[0] == "recognizer" and list(table.recognizer) == ["dlib", "average"]


def test_quality_table_has_a_row_per_generator(results):
    quality = pd.read_csv(results / "tables" / "sample" / "dcgan" / "quality_embedding-random_furthest_ag.csv")
    assert list(quality.generator) == ["faceswap", "pixelate"]
    assert (quality.status == "ok").all()
    # measured: the faces each generator swapped; with a 16-face pool the closed loop (the
    # default guard) runs out of distinct targets for some faces and covers them instead
    pairs = pd.read_parquet(cell(results, "faceswap") / "pairs.parquet")
    n = quality.set_index("generator").n
    assert n["faceswap"] == (pairs.status == "swapped").sum() > 0 and n["pixelate"] == 6
    # an identity swap keeps more of the face's structure than a mosaic
    assert quality.set_index("generator").ssim["faceswap"] > quality.set_index("generator").ssim["pixelate"]


def test_figures_are_written(results):
    folder = results / "figures" / "sample" / "dcgan"
    for name in ("fig3_strategies.png", "fig4_contact_sheet.png", "fig5_pool.png", "fig6_spaces.png"):
        assert (folder / name).stat().st_size > 10_000
