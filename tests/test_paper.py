"""The `paper` stage (bench.stages.paper, bench.paperdata): conf/paper/'s values are the paper's
text's, each with its line; every claim gets ours computed the paper's way from a named run's
result files (fabricated here in tmp_path, in the real writers' formats), or "n/a: <reason>";
the headline file, the charts, the paper's L2 reading and its own errors."""
from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from bench import paperdata
from bench.layout import PAPER_CHARTS, headline_json, metrics_json, paper_files, quality_files, verification_dir
from bench.stages import paper, tables
from bench.stages.tables import verification_table

SEVEN = ["deepid", "openface", "deepface", "facenet", "facenet512", "dlib", "arcface"]
TEXT = "002_51291ee146431865.txt"


# ---- conf/paper/: the paper's side ------------------------------------------------------------

def test_the_paper_data_cites_a_line_for_every_value():
    data = paperdata.load_paper()
    assert "arXiv:2211.01361" in data.meta["citation"] and data.meta["text"].endswith(TEXT)
    assert data.seven == SEVEN and set(data.not_the_papers) == {"arcface_mbf", "mobilefacenet", "facenet512_opencv",
                                                               "insightface"}
    by_id = {c.id: c for c in data.claims}
    assert len(by_id) == len(data.claims)
    printed = [c for c in data.claims if c.value is not None and not c.derived]
    # Tables 1-3: 8 rows x 4 columns each (Table 3 beside two of our tables); Fig. 4: 6 x 5 x 4; 8 percentages + 2
    assert len([c for c in printed if c.file.startswith("table")]) == 32 * 4
    assert len([c for c in printed if c.file == "fig4.yaml"]) == 120
    assert {c.id for c in printed if c.file == "percentages.yaml"} >= {"p61", "p65", "p80", "p71", "p77", "p49", "p44"}
    for claim in data.claims:
        assert claim.line if claim.value is not None else claim.note.startswith("not in the paper")
    assert by_id["table1.OpenFace.source_vs_result/furthest"].value == 0.2
    assert by_id["table1.OpenFace.source_vs_result/furthest"].ours["recognizer"] == "openface"
    assert by_id["table2.Average.rmse/source_vs_result/furthest"].value == 0.23
    assert "contradicts" in by_id["table2.Average.rmse/source_vs_result/furthest"].note
    assert by_id["table2.mean_of_rows.rmse/source_vs_result/furthest"].value == pytest.approx(0.3829, abs=1e-4)
    assert by_id["table2.mean_of_rows.rmse/source_vs_result/furthest"].derived
    assert by_id["fig4.s1.PSNR.SimSwap"].value == 37.29 and by_id["fig4.s1.PSNR.SimSwap"].line == "145"
    assert by_id["fig4.mean.RMSE.SimSwap.photo_rmse"].derived
    assert by_id["table3.FaceNet.source_vs_result/random@table3_euclidean"].ours["table"] == "table3_euclidean"
    assert len(data.meta["errors"]) >= 6 and all(e["line"] for e in data.meta["errors"])


@pytest.mark.shared
def test_every_printed_value_is_on_its_line_of_the_text(shared):
    """Each value of Tables 1-3 and Fig. 4 is on the line it cites, under the row name it has."""
    lines = shared_text(shared)
    data = paperdata.load_paper()
    for claim in data.claims:
        if claim.value is None or claim.derived or claim.file not in ("table1.yaml", "table2.yaml", "table3.yaml",
                                                                      "fig4.yaml"):
            continue
        text = lines[int(claim.line) - 1]
        name = claim.paper_row if claim.file != "fig4.yaml" else claim.id.split(".")[2]
        assert text.split("\t")[0] == name, claim.id
        assert claim.value in [float(x) for x in re.findall(r"\d+\.?\d*", text.split("\t", 1)[1])], claim.id


@pytest.mark.shared
def test_every_percentage_and_its_quote_is_on_its_lines(shared):
    lines = shared_text(shared)
    for claim in paperdata.load_paper().claims:
        if claim.file == "percentages.yaml":
            cited = " ".join(lines[int(n) - 1] for n in claim.line.split(", "))
            assert f"{claim.value:g}%" in cited, claim.id


def shared_text(shared) -> list[str]:
    return shared("paper", TEXT).read_text(encoding="utf-8").split("\n")


def test_each_percentage_formula_reproduces_the_paper_from_its_own_tables():
    data = paperdata.load_paper()
    checked = [c for c in data.claims if c.ours["kind"] == "percentage"]
    assert len(checked) == 9  # 49% and 44% beside two of our tables
    for claim in checked:
        assert paperdata.formula_value(data, claim) == pytest.approx(claim.value), claim.id


def test_table3_is_not_deepfaces_euclidean_l2_on_table1s_pairs():
    """With deepface's thresholds: FaceNet, DeepFace and DeepID have an euclidean_l2 threshold
    stricter than the cosine one, yet the paper's Table 3 verifies more than its Table 1."""
    from bench.recognizers.thresholds import deepface_thresholds

    data = paperdata.load_paper()
    names = {"deepid": "DeepID", "openface": "OpenFace", "deepface": "DeepFace", "facenet": "Facenet",
             "facenet512": "Facenet512", "dlib": "Dlib", "arcface": "ArcFace"}
    lines = paperdata.l2_consistency(data, {k: deepface_thresholds(v) for k, v in names.items()})
    assert "not consistent with deepface's euclidean_l2" in lines[-1]
    assert all(n in lines[-1] for n in ("FaceNet", "DeepFace", "DeepID")) and "DLib" not in lines[-1]
    # a made-up threshold table under which L2 is looser everywhere rules nothing out
    loose = {k: {"cosine": 0.1, "euclidean_l2": 1.0} for k in names}
    assert paperdata.l2_consistency(data, loose)[-1].startswith("Table 3 is consistent")


def write_paper(folder, text):
    folder.mkdir(exist_ok=True)
    (folder / "x.yaml").write_text(text)
    return folder


@pytest.mark.parametrize("text,match", [
    ("claims: [{id: a, value: 3, ours: {kind: reduction}}]", "needs the line"),
    ("claims: [{id: a, value: null, ours: {kind: reduction}}]", "needs a `note`"),
    ("claims: [{id: a, value: '61%', line: 1, ours: {kind: reduction}}]", "not a number"),
    ("claims: [{id: a, value: 3, line: 1, ours: {kind: guess}}]", "ours.kind must be one of"),
    ("claims: [{id: a, value: 3, line: 1, ours: {kind: percentage, table: t, recognizer: r, column: c, form: by}}]",
     "ours.form must be one of"),
    ("claims: [{id: a, value: 3, line: 1, ours: {kind: reduction}}, {id: a, value: 3, line: 1, ours: {kind: reduction}}]",
     "appears twice"),
    ("paper: {recognizers: {DLib: dlib}}\nwhere: T\nours: {kind: verification, table: table1}\ncolumns: [a, b]\n"
     "rows: {DLib: {line: 1, values: [0.1]}}", "1 values for 2 columns"),
    ("paper: {recognizers: {DLib: dlib}}\nwhere: T\nours: {kind: verification, table: table1}\ncolumns: [a]\n"
     "rows: {Dlib2: {line: 1, values: [0.1]}}", "none of paper.yaml's recognizers"),
    ("claims: [{id: a, value: 3, line: 1, ours: {kind: verification, table: table1}}]", "needs recognizer, column"),
])
def test_malformed_paper_data_is_refused(tmp_path, text, match):
    with pytest.raises(paperdata.PaperDataError, match=match):
        paperdata.load_paper(write_paper(tmp_path / "p", text))


def test_no_paper_data_is_an_error(tmp_path):
    with pytest.raises(paperdata.PaperDataError, match="no paper data"):
        paperdata.load_paper(tmp_path)


# ---- our side: fabricated result files of one run ----------------------------------------------

def outcome_rows(recognizer, comparison, strategy, verified, space="embedding", metric="cosine"):
    return pd.DataFrame({"recognizer": recognizer, "metric": metric, "comparison": comparison, "strategy": strategy,
                         "space": space, "generator": "g", "seed": 0,
                         "verified": pd.array(verified, dtype="boolean"), "status": "ok"})


def fabricate(cfg, dataset="sample", pool="dcgan", generator="faceswap", baseline=True):
    """Tables 1-3 (the real writer), a quality table, a baseline table and metrics.json of one run.

    Source vs Result verified (every strategy, space and metric): dlib 1 of 4, openface 2 of 4,
    arcface_mbf (a stand-in) 4 of 4; Source vs Target none. The baseline's TAR: dlib 0.8,
    openface 0.5, arcface_mbf 0.6 (a stand-in: never in a paper row)."""
    rows = []
    verdicts = {"dlib": [True, False, False, False], "openface": [True, True, False, False], "arcface_mbf": [True] * 4}
    for space in ("embedding", "ssim", "rmse"):
        for metric in ("cosine", "euclidean_l2", "euclidean"):
            for strategy in ("furthest", "random_furthest", "random_furthest_ag"):
                for name, verified in verdicts.items():
                    rows += [outcome_rows(name, "source_vs_target", strategy, [False] * 4, space, metric),
                             outcome_rows(name, "source_vs_result", strategy, verified, space, metric)]
    outcomes = pd.concat(rows, ignore_index=True)
    out = verification_dir(cfg.results_dir, dataset, pool)
    for spec in tables.table_specs(cfg):
        tables.write_table(verification_table(outcomes, spec, ["deepid", "openface", "dlib", "arcface_mbf"]),
                           out / generator)
    (out / "tables.provenance.json").write_text(json.dumps({"config": {"query_recognizer": "dlib"}}))
    files = quality_files(cfg.results_dir, dataset, pool, "embedding", "random_furthest_ag")
    pd.DataFrame({
        "generator": ["faceswap", "blur", "pixelate"], "status": ["ok", "ok", "n/a: cell not run (x missing)"],
        "faces": [6, 6, 0], "swapped": [6, 6, 0], "redetection_rate": [1.0, 0.5, np.nan], "n": [6, 6, 0],
        "psnr": [22.5, 19.9, np.nan], "ssim": [0.83, 0.67, np.nan], "rmse": [0.074, 0.1, np.nan],
        "fid": [55.8, np.nan, np.nan], "embedding_distance": [0.5, 0.6, np.nan], "embedding_l2": [1.0, 1.1, np.nan],
        "embedding_l2_target": [0.9, np.nan, np.nan], "photos": [1, 1, 0], "photo_psnr": [33.1, 30.0, np.nan],
        "photo_ssim": [0.95, 0.9, np.nan], "photo_rmse": [0.02, 0.03, np.nan],
    }).to_csv(files["csv"], index=False)
    files["provenance"].write_text("{}")
    if baseline:
        pd.DataFrame({"recognizer": ["dlib", "dlib", "arcface_mbf", "openface", "deepid"],
                      "metric": ["cosine", "euclidean_l2", "cosine", "cosine", "cosine"],
                      "status": ["ok", "ok", "ok", "ok", "n/a: weights not found at /w"],
                      "tar": [0.8, 0.7, 0.6, 0.5, np.nan]}).to_csv(
            verification_dir(cfg.results_dir, dataset, pool).parents[2] / "baseline.csv", index=False)
    cell = {"left_real": 1, "leaks": {"leaking_faces": 2}}
    metrics_json(cfg.results_dir).write_text(json.dumps(
        {"cells": {dataset: {pool: {generator: {"embedding": {"furthest": cell, "random_furthest": cell}}}}}}))


@pytest.fixture
def sample_run(cfg_factory):
    cfg = cfg_factory()
    fabricate(cfg)
    return cfg


def read(cfg):
    files = paper_files(cfg.results_dir)
    return pd.read_csv(files["csv"], dtype=str, keep_default_na=False).set_index("claim_id"), files["md"].read_text()


def test_ours_is_computed_the_papers_way(sample_run):
    files = paper.run(sample_run)
    table, md = read(sample_run)
    assert list(table.reset_index().columns) == paper.COLUMNS
    # averages over the paper's seven only: dlib 0.25 and openface 0.5 (arcface_mbf's 1.0 left out)
    avg = table.loc["table1.Average.source_vs_result/random"]
    assert (avg.paper, avg.ours) == ("0.39", "0.3750")
    assert avg.detail == "mean of 2 of the paper's 7: openface, dlib; n/a: deepid, deepface, facenet, facenet512, arcface"
    assert table.loc["table1.mean_of_rows.source_vs_result/random"].paper == "0.39 (derived by us)"
    # the percentages: 1 - ours on the same column ("by"), ours itself for Table 3 ("to")
    p61 = table.loc["p61"]
    assert (p61.paper, p61.ours, p61.difference, p61.headline) == ("61", "62.5000", "+1.5000", "yes")
    assert "the formula on the paper's table gives 61" in p61.paper_note
    assert table.loc["p80"].ours == "50.0000"  # 1 - openface's 0.5
    assert table.loc["p49"].ours == "37.5000" and "euclidean_l2 (table3)" in table.loc["p49"].distance
    assert "euclidean (table3_euclidean)" in table.loc["p49@table3_euclidean"].distance
    assert table.loc["p71"].ours == "62.5000" and table.loc["p77"].ours == "62.5000"
    # the baseline-relative 61%, over the paper's seven with both numbers (dlib, openface)
    rel = table.loc["p61_baseline_relative"]
    assert float(rel.ours) == pytest.approx(100 * (1 - 0.375 / 0.65), abs=1e-4) and rel.recognizer == "openface, dlib"
    # stand-ins in rows of their own, marked, without a paper value
    mbf = table.loc["table1.arcface_mbf.source_vs_result/random"]
    assert mbf.ours == "1.0000" and mbf.paper == "n/a: not in the paper" and "NOT ArcFace" in mbf.recognizer
    assert "NOT ArcFace" in mbf.claim
    cell = table.loc["table1.DLib.source_vs_result/random"]
    assert (cell.paper, cell.ours, cell.detail, cell.line) == ("0.45", "0.2500", "n=4 pairs", "241")
    assert cell.reason.startswith("other data (ours: sample; paper: the \"party\" subset")
    assert table.loc["table1.DeepID.source_vs_target/furthest"].ours == "n/a: no pairs"
    assert table.loc["table1.FaceNet.source_vs_target/furthest"].ours.startswith("n/a: no facenet row in ")
    # Table 2: the paper's four columns; Fig. 4 on the whole photo and the face crop, RMSE x 255
    assert table.loc["table2.DLib.rmse/source_vs_result/furthest"].ours == "0.2500"
    assert table.loc["fig4.mean.PSNR.FaceSwap.photo_psnr"].ours == "33.1000"
    assert table.loc["fig4.mean.PSNR.FaceSwap.psnr"].ours == "22.5000"
    assert table.loc["fig4.mean.RMSE.FaceSwap.photo_rmse"].ours == "5.1000"
    assert table.loc["fig4.mean.Embed.FaceSwap.embedding_l2_target"].ours == "0.9000"
    assert table.loc["fig4.mean.PSNR.SimSwap.psnr"].ours.startswith("n/a: simswap is not in quality.generators")
    assert table.loc["fig4.s1.PSNR.FaceSwap"].ours.startswith("n/a: one of the paper's own samples")
    # the Markdown: headline claims first, then the tables; the L2 reading; the errors once
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections == ["## Headline claims: the paper's percentages", "## Table 1 (Sec. 4.2.1)", "## Table 2 (Supp. B)",
                        "## Table 3 (Supp. B)", "## Fig. 4 (Sec. 4.1.1)", "## The paper's errors of its own"]
    assert md.count("- line 382: Table 2's printed Source vs Result RMSE average is 0.23") == 1
    assert "not consistent with deepface's euclidean_l2" in md
    assert "not retrievable" not in md
    # the headline numbers and the charts
    numbers = json.loads(headline_json(sample_run.results_dir).read_text())
    assert numbers["percent"]["p61"] == {"paper": 61, "ours": 62.5}
    assert numbers["average"]["table1"]["source_vs_result/random"] == {"paper": 0.39, "ours": 0.375}
    assert numbers["faces"] == {"cells": 2, "left_real": 2, "leaking": 4}
    for name in PAPER_CHARTS:
        assert files[f"chart_{name}"].stat().st_size > 10_000
    provenance = json.loads(files["provenance"].read_text())
    assert {p["path"] for p in provenance["paper_data"]} >= {"conf/paper/percentages.yaml", "conf/paper/table1.yaml"}
    assert any(p["path"].endswith("baseline.csv") for p in provenance["inputs"])


@pytest.mark.slow
def test_rerun_is_byte_identical(sample_run):
    paper.run(sample_run)
    files = paper_files(sample_run.results_dir)
    first = {k: files[k].read_bytes() for k in ("csv", "md", "headline")}
    paper.run(sample_run)
    assert {k: files[k].read_bytes() for k in ("csv", "md", "headline")} == first


def test_paper_block_names_another_run(cfg_factory):
    cfg = cfg_factory("dataset=devset", "pool=devpool", "paper.generator=blur", "paper.reduction.column=furthest")
    fabricate(cfg, dataset="devset", pool="devpool", generator="blur")
    paper.run(cfg)
    table, md = read(cfg)
    row = table.loc["table1.DLib.source_vs_result/furthest"]
    assert (row.dataset, row.pool, row.generator, row.ours) == ("devset", "devpool", "blur", "0.2500")
    assert table.loc["p61_baseline_relative"].strategy == "furthest"
    assert table.loc["fig4.mean.PSNR.FaceSwap.psnr"].generator == "faceswap"  # Fig. 4 rows name their own generator
    assert "Ours: dataset devset, pool devpool, generator blur" in md


def test_before_any_cell_every_claim_has_the_papers_value(cfg_factory):
    cfg = cfg_factory()
    files = paper.run(cfg)  # nothing was run: ours n/a everywhere, the paper's value beside every claim
    table, md = read(cfg)
    assert table.ours.str.startswith("n/a").all()
    printed = table[~table.paper.str.startswith("n/a")]
    assert len(printed) == len(table) - 4 * (4 + 4 + 8)  # stand-in rows: 4 recognizers x 16 table cells
    assert "run `python -m bench tables`" in table.loc["table1.DLib.source_vs_result/random"].ours
    assert "run `python -m bench quality`" in table.loc["fig4.mean.PSNR.FaceSwap.psnr"].ours
    assert "run `python -m bench baseline`" in table.loc["p61_baseline_relative"].ours
    numbers = json.loads(files["headline"].read_text())
    assert numbers["percent"]["p77"] == {"paper": 77, "ours": None}
    assert numbers["faces"] == {"cells": 0, "left_real": None, "leaking": None}
    assert all(files[f"chart_{name}"].is_file() for name in PAPER_CHARTS)


def test_units_that_cannot_be_compared_are_refused():
    claim = paperdata.Claim(id="c", claim="", where="", section="", line="1", value=1.0, unit="dB",
                            ours={"kind": "verification"}, file="x.yaml")
    assert paper.convert(0.5, "dB", claim) == 0.5
    assert paper.convert(0.5, "fraction", paperdata.replace(claim, unit="percent")) == 50.0
    assert paper.convert(0.1, "[0,1]", paperdata.replace(claim, unit="[0,255]")) == pytest.approx(25.5)
    with pytest.raises(paperdata.PaperDataError, match="cannot be compared"):
        paper.convert(0.5, "fraction", claim)


def test_quality_cells_without_a_number_say_why(sample_run):
    results = paper.Results(paper.Run.from_config(sample_run), paperdata.load_paper())
    claim = paperdata.Claim(id="c", claim="", where="Fig. 4", section="", line="1", value=1.0, unit="FID",
                            ours={"kind": "quality", "generator": "blur", "column": "fid"}, file="x.yaml")
    assert paper.ours_quality(claim, results).text == "n/a: no fid for blur (n=6 faces; FID needs two faces a side)"
    pixelate = paperdata.replace(claim, ours={"kind": "quality", "generator": "pixelate", "column": "psnr"})
    assert paper.ours_quality(pixelate, results).text == "n/a: cell not run (x missing)"
    blur = paperdata.replace(claim, ours={"kind": "quality", "generator": "blur", "column": "photo_ssim"})
    assert paper.ours_quality(blur, results).value == pytest.approx(0.9)
    assert paper.ours_quality(blur, results).detail == "n=1 photos"


@pytest.mark.slow
def test_the_reports_paper_page_leads_with_the_headline_claims(sample_run, tmp_path):
    from bench.report.html import ReportFiles
    from bench.stages import report

    paper.run(sample_run)
    results = sample_run.results_dir
    page = report.paper(results, ReportFiles(results, tmp_path / "report", 800), sample_run.report)
    headline = page["headline"].tables[0]
    claims = [row[0].text for row in headline.rows]
    assert len(claims) == 10 and claims[0].startswith("seven recognizers: \"reduces the average accuracy by 61%\"")
    assert [f.name for f in page["charts"].figures] == [f"figures/paper_vs_ours_{n}.png" for n in PAPER_CHARTS]
    assert page["table"].tables[0].folded
