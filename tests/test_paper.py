"""The `paper` stage (bench.stages.paper): conf/paper/'s values are cited or null with a reason;
every claim gets our number from a named run's result files (fabricated here in tmp_path, in
the real writers' formats), the difference and why they differ, or "n/a: <reason>"."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from bench.layout import paper_files, quality_files, verification_dir
from bench.stages import paper, tables
from bench.stages.tables import verification_table

PAPER_RECOGNIZERS = ["deepid", "openface", "deepface", "facenet", "facenet512", "dlib", "arcface"]


# ---- conf/paper/: the paper's side ------------------------------------------------------------

def test_the_paper_data_cites_every_value_and_explains_every_null():
    meta, claims = paper.load_paper()
    assert "arXiv:2211.01361" in meta["citation"] and meta["setup"]["source"].startswith("https://arxiv.org/abs/2211.01361")
    by_id = {c.id: c for c in claims}
    assert len(by_id) == len(claims) == 1 + 32 + 64 + 32 + 16
    reduction = by_id["abstract.accuracy_reduction"]
    assert reduction.value == 61 and reduction.unit == "percent" and reduction.page == "1"
    assert "arxiv.org/abs/2211.01361" in reduction.source and reduction.ours == {"kind": "reduction"}
    for claim in claims:
        if claim.value is None:
            assert claim.missing.startswith("paper value not retrievable offline")
        else:
            assert claim.source and claim.page
    assert [c.where for c in claims][:2] == ["Abstract", "Table 1"]  # paper.order
    rows = {c.ours["recognizer"] for c in claims if c.ours["kind"] == "verification"}
    assert rows == set(PAPER_RECOGNIZERS) | {"average"}
    assert {c.ours["generator"] for c in claims if c.ours["kind"] == "quality"} == {"simswap", "fsgan", "ftgan", "faceswap"}


def write_paper(folder, text):
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("text,match", [
    ("claims: [{id: a, value: 3, page: 1, ours: {kind: reduction}}]", "needs its source"),
    ("claims: [{id: a, value: 3, source: 'u', ours: {kind: reduction}}]", "needs its source .* and page"),
    ("claims: [{id: a, value: null, ours: {kind: reduction}}]", "needs `missing:`"),
    ("claims: [{id: a, value: '61%', source: u, page: 1, ours: {kind: reduction}}]", "not a number"),
    ("claims: [{id: a, value: null, missing: m, ours: {kind: guess}}]", "ours.kind must be one of"),
    ("claims: [{id: a, value: null, missing: m, ours: {kind: reduction}}, {id: a, value: null, missing: m, ours: {kind: reduction}}]",
     "appears twice"),
    ("where: T\nmissing: m\nours: {kind: verification, table: table1}\ncolumns: [a, b]\nvalues: {dlib: [null]}", "1 values for 2 columns"),
    ("claims: [{id: a, value: null, missing: m, ours: {kind: verification, table: table1}}]", "needs recognizer, column"),
])
def test_malformed_paper_data_is_refused(tmp_path, text, match):
    with pytest.raises(paper.PaperDataError, match=match):
        paper.load_paper(write_paper(tmp_path / "p", text))


def test_no_paper_data_is_an_error(tmp_path):
    with pytest.raises(paper.PaperDataError, match="no paper data"):
        paper.load_paper(tmp_path)


# ---- our side: fabricated result files of one run ----------------------------------------------

def outcome_rows(recognizer, comparison, strategy, verified, space="embedding", metric="cosine"):
    return pd.DataFrame({"recognizer": recognizer, "metric": metric, "comparison": comparison, "strategy": strategy,
                         "space": space, "generator": "g", "seed": 0,
                         "verified": pd.array(verified, dtype="boolean"), "status": "ok"})


def fabricate(cfg, dataset="sample", pool="dcgan", generator="faceswap", baseline=True):
    """Tables 1-3 (the real writer), a quality table and a baseline table for one run.

    Source vs Result (random) verified: dlib 1 of 4, arcface_mbf 2 of 4; the baseline's TAR:
    dlib 0.8, arcface_mbf 0.6, facenet 0.9 (no Table 1 number: left out of the reduction)."""
    rows = []
    for space in ("embedding", "ssim", "rmse"):
        for metric in ("cosine", "euclidean_l2"):
            for strategy in ("furthest", "random_furthest", "random_furthest_ag"):
                rows += [outcome_rows("dlib", "source_vs_target", strategy, [False] * 4, space, metric),
                         outcome_rows("dlib", "source_vs_result", strategy, [True, False, False, False], space, metric),
                         outcome_rows("arcface_mbf", "source_vs_target", strategy, [False] * 4, space, metric),
                         outcome_rows("arcface_mbf", "source_vs_result", strategy, [True, True, False, False], space, metric)]
    outcomes = pd.concat(rows, ignore_index=True)
    out = verification_dir(cfg.results_dir, dataset, pool)
    for spec in tables.table_specs(cfg):
        tables.write_table(verification_table(outcomes, spec, ["deepid", "dlib", "arcface_mbf"]), out / generator)
    (out / "tables.provenance.json").write_text(json.dumps({"config": {"query_recognizer": "dlib"}}))
    files = quality_files(cfg.results_dir, dataset, pool, "embedding", "random_furthest_ag")
    pd.DataFrame({
        "generator": ["faceswap", "blur", "pixelate"], "status": ["ok", "ok", "n/a: cell not run (x missing)"],
        "faces": [6, 6, 0], "swapped": [6, 6, 0], "redetection_rate": [1.0, 0.5, np.nan], "n": [6, 6, 0],
        "psnr": [22.5, 19.9, np.nan], "ssim": [0.83, 0.67, np.nan], "rmse": [0.074, 0.1, np.nan],
        "fid": [55.8, np.nan, np.nan],
    }).to_csv(files["csv"], index=False)
    files["provenance"].write_text("{}")
    if baseline:
        pd.DataFrame({"recognizer": ["dlib", "dlib", "arcface_mbf", "facenet", "deepid"],
                      "metric": ["cosine", "euclidean_l2", "cosine", "cosine", "cosine"],
                      "status": ["ok", "ok", "ok", "ok", "n/a: weights not found at /w"],
                      "tar": [0.8, 0.7, 0.6, 0.9, np.nan]}).to_csv(
            verification_dir(cfg.results_dir, dataset, pool).parents[2] / "baseline.csv", index=False)


@pytest.fixture
def sample_run(cfg_factory):
    cfg = cfg_factory()
    fabricate(cfg)
    return cfg


def read(cfg):
    files = paper_files(cfg.results_dir)
    return pd.read_csv(files["csv"], dtype=str, keep_default_na=False).set_index("claim_id"), files["md"].read_text()


def test_embedded_default_run_beside_the_paper(sample_run):
    files = paper.run(sample_run)
    table, md = read(sample_run)
    assert list(table.reset_index().columns) == paper.COLUMNS and len(table) == 145
    # the abstract's 61%: before = mean TAR (0.8 + 0.6) / 2, after = mean verified (0.25 + 0.5) / 2
    row = table.loc["abstract.accuracy_reduction"]
    expected = 100 * (1 - 0.375 / 0.7)
    assert float(row.ours) == pytest.approx(expected, abs=1e-4)
    assert float(row.difference) == pytest.approx(expected - 61, abs=1e-4)
    assert row.recognizer == "dlib, arcface_mbf" and row.distance == "cosine" and row.pool == "dcgan"
    assert row.strategy == "random_furthest (column random)" and row.generator == "faceswap"
    assert "absolute drop 32.5 points" in row.detail
    assert row.reason.startswith("other data (ours: identities (before), sample (after); paper: the Facial Descriptor")
    assert "other pool (ours: dcgan;" in row.reason and "other generator (ours: faceswap;" in row.reason
    assert "other recognizer weights (ours: 2 recognizers with both numbers: dlib, arcface_mbf; paper: seven" in row.reason
    assert "baseline.provenance.json" in row.provenance and "tables.provenance.json" in row.provenance
    # a Table 1 cell: our rate beside a paper value that could not be retrieved
    cell = table.loc["table1.dlib.source_vs_result/random"]
    assert cell.ours == "0.2500" and cell.detail == "n=4 pairs" and cell.space == "embedding (dlib)"
    assert cell.paper.startswith("n/a: paper value not retrievable offline") and cell.difference == "n/a"
    assert cell.reason == cell.paper and cell.distance == "cosine" and cell.dataset == "sample"
    assert table.loc["table3.dlib.source_vs_result/furthest"].distance == "euclidean_l2"
    t2 = table.loc["table2.dlib.rmse/source_vs_result/furthest"]
    assert t2.ours == "0.2500" and t2.space == "rmse"
    assert table.loc["table1.average.source_vs_result/random"].ours == "0.3750"
    assert table.loc["table1.average.source_vs_result/random"].detail == "mean of 2: dlib, arcface_mbf"
    # recognizers without weights, and rows our run has no recognizer for
    assert table.loc["table1.deepid.source_vs_target/furthest"].ours == "n/a: no pairs"
    assert table.loc["table1.facenet.source_vs_target/furthest"].ours.startswith("n/a: no facenet row in ")
    # Fig. 4
    assert table.loc["fig4.FaceSwap.psnr"].ours == "22.5000" and table.loc["fig4.FaceSwap.psnr"].unit == "dB"
    assert table.loc["fig4.SimSwap.fid"].ours.startswith("n/a: simswap is not in quality.generators")
    assert table.loc["fig4.FaceSwap.fid"].ours == "55.8000"
    # the Markdown: sections in the paper's order, n/a reasons as footnotes, full reasons in the CSV
    assert [l for l in md.splitlines() if l.startswith("## ")] == [
        "## Abstract (page 1)", "## Table 1", "## Table 2", "## Table 3", "## Fig. 4"]
    assert "| n/a¹ " in md and "\n¹ paper value not retrievable offline" in md
    assert md.count("paper value not retrievable offline: only the abstract") == 4  # once per section with nulls
    provenance = json.loads(files["provenance"].read_text())
    assert provenance["counts"] == {"claims": 145, "paper_values": 1, "ours_values": provenance["counts"]["ours_values"],
                                    "both": 1}
    assert {p["path"] for p in provenance["paper_data"]} >= {"conf/paper/abstract.yaml", "conf/paper/table1.yaml"}
    assert any(p["path"].endswith("baseline.csv") for p in provenance["inputs"])


def test_rerun_is_byte_identical(sample_run):
    paper.run(sample_run)
    files = paper_files(sample_run.results_dir)
    first = {k: files[k].read_bytes() for k in ("csv", "md")}
    paper.run(sample_run)
    assert {k: files[k].read_bytes() for k in ("csv", "md")} == first


def test_devset_devpool_run_is_named_by_the_config(cfg_factory):
    cfg = cfg_factory("dataset=devset", "pool=devpool")
    fabricate(cfg, dataset="devset", pool="devpool")
    paper.run(cfg)
    table, md = read(cfg)
    row = table.loc["table1.dlib.source_vs_result/furthest"]
    assert (row.dataset, row.pool, row.generator, row.ours) == ("devset", "devpool", "faceswap", "0.2500")
    assert "tables/devset/devpool/verification/tables.provenance.json" in row.provenance
    assert "Ours: dataset devset, pool devpool, generator faceswap" in md


def test_paper_block_names_another_run(cfg_factory):
    cfg = cfg_factory("paper.generator=blur", "paper.reduction.column=furthest")
    fabricate(cfg, generator="blur")
    paper.run(cfg)
    table, _ = read(cfg)
    assert table.loc["table1.dlib.source_vs_result/random"].generator == "blur"
    assert table.loc["abstract.accuracy_reduction"].strategy == "furthest"
    assert table.loc["fig4.FaceSwap.psnr"].generator == "faceswap"  # Fig. 4 rows name their own generator


def test_missing_results_give_na_rows_that_say_what_to_run(cfg_factory):
    cfg = cfg_factory()
    paper.run(cfg)  # nothing was run: every row of ours is n/a, none crashes
    table, md = read(cfg)
    assert table.ours.str.startswith("n/a").all()
    assert "run `python -m bench tables`" in table.loc["table1.dlib.source_vs_result/random"].ours
    assert "run `python -m bench quality`" in table.loc["fig4.FaceSwap.psnr"].ours
    assert "run `python -m bench baseline`" in table.loc["abstract.accuracy_reduction"].ours
    assert table.loc["abstract.accuracy_reduction"].reason == table.loc["abstract.accuracy_reduction"].ours
    assert "run `python -m bench baseline`" not in md.split("## Table 1")[1]  # footnotes are per section


def test_baseline_without_common_recognizers_is_na(cfg_factory):
    cfg = cfg_factory()
    fabricate(cfg)
    baseline = verification_dir(cfg.results_dir, "sample", "dcgan").parents[2] / "baseline.csv"
    pd.DataFrame({"recognizer": ["facenet"], "metric": ["cosine"], "status": ["ok"], "tar": [0.9]}).to_csv(baseline, index=False)
    paper.run(cfg)
    table, _ = read(cfg)
    assert table.loc["abstract.accuracy_reduction"].ours == (
        "n/a: no recognizer has both a baseline TAR (facenet) and a Source vs Result rate (dlib, arcface_mbf)")


def test_a_filled_paper_value_is_compared_in_its_unit(cfg_factory, tmp_path, monkeypatch):
    cfg = cfg_factory()
    fabricate(cfg)
    folder = write_paper(tmp_path / "p", """\
paper: {setup: {data: D, pool: P, generator: G, recognizers: R}}
where: Table 1
page: 6
source: "test fixture, not the paper (Table 1, page 6)"
missing: m
unit: percent
ours: {kind: verification, table: table1}
columns: [source_vs_result/random]
values: {dlib: [20.0], arcface_mbf: [null]}
""")
    monkeypatch.setattr(paper, "PAPER_DIR", folder)
    paper.run(cfg)
    table, md = read(cfg)
    row = table.loc["x.dlib.source_vs_result/random"]
    assert (row.paper, row.ours, row.difference, row.unit, row.page) == ("20", "25.0000", "+5.0000", "percent", "6")
    assert row.reason == ("other data (ours: sample; paper: D); other pool (ours: dcgan; paper: P); "
                          "other generator (ours: faceswap; paper: G); "
                          "other recognizer weights (ours: dlib as provisioned here; paper: R)")
    assert table.loc["x.arcface_mbf.source_vs_result/random"].reason == "n/a: m"
    assert "## Table 1 (page 6)" in md and "Paper values from: test fixture" in md


def test_units_that_cannot_be_compared_are_refused():
    claim = paper.Claim(id="c", claim="", where="", page="", value=1.0, unit="dB", source="s", missing="",
                        ours={"kind": "verification"}, file="x.yaml")
    assert paper.convert(0.5, "dB", claim) == 0.5
    assert paper.convert(0.5, "fraction", paper.Claim(**{**claim.__dict__, "unit": "percent"})) == 50.0
    assert paper.convert(0.1, "[0,1]", paper.Claim(**{**claim.__dict__, "unit": "[0,255]"})) == pytest.approx(25.5)
    with pytest.raises(paper.PaperDataError, match="cannot be compared"):
        paper.convert(0.5, "fraction", claim)


def test_quality_cells_without_a_number_say_why(sample_run):
    results = paper.Results(paper.Run.from_config(sample_run))
    claim = paper.Claim(id="c", claim="", where="Fig. 4", page="", value=None, unit="FID", source="", missing="m",
                        ours={"kind": "quality", "generator": "blur", "measure": "fid"}, file="x.yaml")
    assert paper.ours_quality(claim, results).text == "n/a: no fid for blur (n=6 faces; FID needs two faces a side)"
    pixelate = paper.Claim(**{**claim.__dict__, "ours": {"kind": "quality", "generator": "pixelate", "measure": "psnr"}})
    assert paper.ours_quality(pixelate, results).text == "n/a: cell not run (x missing)"
    blur = paper.Claim(**{**claim.__dict__, "ours": {"kind": "quality", "generator": "blur", "measure": "ssim"}})
    assert paper.ours_quality(blur, results).value == pytest.approx(0.67)
