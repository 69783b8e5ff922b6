"""Per-pair evaluation (bench.stages.evaluate) and the Table 1-3 writers (bench.stages.tables)
on fabricated embeddings and outcomes, checked against small expected tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.embeddings import write_embeddings
from bench.errors import BenchError
from bench.layout import Cell
from bench.stages import tables
from bench.stages.evaluate import (
    OUTCOME_COLUMNS, Embeddings, default_embedding_dirs, evaluate_pairs, load_cell_outcomes,
)
from bench.stages.tables import TableSpec, verification_table


class FakeRecognizer:
    """Anything with .name and .threshold(metric) will do for the evaluation."""

    def __init__(self, name, thresholds):
        self.name, self.thresholds = name, thresholds

    def threshold(self, metric):
        return self.thresholds[metric]


def unit(angle_deg):
    a = np.deg2rad(angle_deg)
    return [np.cos(a), np.sin(a)]


@pytest.fixture
def pairs():
    return pd.DataFrame({
        "source_face": ["s1", "s2", "s3"],
        "target": ["t1", "t2", "t3"],
        "result_face": ["r1", "", "r3"],  # s2's result was not found again
        "strategy": ["furthest"] * 3,
        "space": ["embedding"] * 3,
        "generator": ["blur"] * 3,
        "seed": [0] * 3,
    })


@pytest.fixture
def embeddings():
    # Cosine distance of angle a is 1 - cos(a): 0 deg -> 0, 60 deg -> 0.5, 90 deg -> 1.
    ids = ["s1", "s2", "s3", "t1", "t2", "t3", "r1", "r3"]
    vectors = [unit(0), unit(0), unit(0), unit(90), unit(90), unit(10), unit(5), unit(60)]
    status = ["ok"] * 7 + ["n/a: face too small"]
    return Embeddings.of(ids, np.array(vectors, np.float32), status)


def test_evaluate_pairs_outcomes_and_na_propagation(pairs, embeddings):
    rec = FakeRecognizer("toy", {"cosine": 0.1, "euclidean_l2": 0.4, "euclidean": 0.4})
    gone = FakeRecognizer("gone", {"cosine": 0.1, "euclidean_l2": 0.4, "euclidean": 0.4})
    out = evaluate_pairs(pairs, {"toy": embeddings, "gone": Embeddings.missing("weights not found at /w/x.dat")},
                         [rec, gone], metrics=["cosine"])
    assert list(out.columns) == OUTCOME_COLUMNS
    toy = out[out.recognizer == "toy"].set_index(["comparison", "source_face"])
    st = toy.loc["source_vs_target"]
    assert st.distance.round(6).tolist() == [1.0, 1.0, round(1 - np.cos(np.deg2rad(10)), 6)]
    assert st.verified.tolist() == [False, False, True]  # 1 - cos(10 deg) = 0.015 <= 0.1
    sr = toy.loc["source_vs_result"]
    assert sr.verified.iloc[0] == True  # noqa: E712 (5 deg apart: the same person)
    assert sr.status.tolist() == ["ok", "n/a: no result face", "n/a: result face: face too small"]
    assert sr.verified.isna().tolist() == [False, True, True]
    assert sr.other_face.tolist() == ["r1", "", "r3"]
    gone_rows = out[out.recognizer == "gone"]
    assert len(gone_rows) == 6 and (gone_rows.status == "n/a: weights not found at /w/x.dat").all()
    assert gone_rows.verified.isna().all()


def test_evaluate_pairs_looks_faces_up_per_column(pairs):
    # Result faces re-detected in the anonymized photos may reuse the source faces' ids.
    sources = Embeddings.of(["s1", "s2", "s3"], [unit(0)] * 3)
    targets = Embeddings.of(["t1", "t2", "t3"], [unit(90)] * 3)
    results = Embeddings.of(["s1", "s3"], [unit(90), unit(0)])
    p = pairs.assign(result_face=["s1", "s2", "s3"])
    rec = FakeRecognizer("toy", {"cosine": 0.1})
    out = evaluate_pairs(p, {"toy": {"source_face": sources, "target": targets, "result_face": results}},
                         [rec], metrics=["cosine"], comparisons=["source_vs_result"])
    assert out.status.tolist() == ["ok", "n/a: result face not embedded", "ok"]
    assert out.verified.tolist()[0] is False and out.verified.tolist()[2] is True


class Uncalibrated(FakeRecognizer):
    def threshold(self, metric):
        raise BenchError("calibration file conf/calibration/x.json not found")


def test_a_recognizer_without_threshold_gives_na_outcomes(pairs, embeddings):
    out = evaluate_pairs(pairs, {"x": embeddings}, [Uncalibrated("x", {})], metrics=["cosine"])
    assert (out.status == "n/a: no cosine threshold: calibration file conf/calibration/x.json not found").all()
    assert out.verified.isna().all()


def test_embeddings_file_round_trip(tmp_path):
    from bench.stages.evaluate import read_embeddings

    write_embeddings(pd.DataFrame({"face_id": ["a", "b", "c"], "status": ["ok", "n/a: too small", "ok"],
                                   "embedding": [[1.0, 0.0], [], [0.0, 2.0]]}), tmp_path / "r.parquet")
    emb = read_embeddings(tmp_path, "r")
    assert emb.ids == ("a", "b", "c") and emb.status == ("ok", "n/a: too small", "ok")
    assert emb.matrix.tolist() == [[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]]
    write_embeddings(pd.DataFrame({"face_id": ["a", "b"], "status": "n/a: weights not found at /w",
                                   "embedding": [[], []]}), tmp_path / "gone.parquet")
    assert read_embeddings(tmp_path, "gone").unavailable == "n/a: weights not found at /w"
    assert read_embeddings(tmp_path, "absent").unavailable.startswith("n/a: no embeddings at ")
    write_embeddings(pd.DataFrame({"face_id": ["a", "b"], "status": ["n/a: too small", "n/a: unreadable"],
                                   "embedding": [[], []]}), tmp_path / "none.parquet")
    none = read_embeddings(tmp_path, "none")
    assert none.unavailable is None and none.status == ("n/a: too small", "n/a: unreadable")
    assert none.matrix.shape == (2, 0)


def test_unknown_recognizer_embeddings_are_na(pairs):
    rec = FakeRecognizer("toy", {"cosine": 0.1})
    out = evaluate_pairs(pairs, {}, [rec], metrics=["cosine"])
    assert (out.status == "n/a: no embeddings for toy").all()


def outcome_rows(recognizer, comparison, strategy, verified, space="embedding", metric="cosine", status=None):
    status = status or ["ok"] * len(verified)
    return pd.DataFrame({
        "recognizer": recognizer, "metric": metric, "comparison": comparison, "strategy": strategy,
        "space": space, "generator": "g", "seed": 0,
        "verified": pd.array([None if s != "ok" else v for v, s in zip(verified, status)], dtype="boolean"),
        "status": status,
    })


@pytest.fixture
def outcomes():
    return pd.concat([
        outcome_rows("dlib", "source_vs_target", "furthest", [False, False, False, True]),
        outcome_rows("dlib", "source_vs_target", "random_furthest", [False, True, False, True]),
        outcome_rows("dlib", "source_vs_result", "furthest", [True, True, False, True]),
        outcome_rows("dlib", "source_vs_result", "random_furthest", [True, False], status=["ok", "n/a: no result face"]),
        outcome_rows("facenet", "source_vs_target", "furthest", [False, False]),
        outcome_rows("facenet", "source_vs_target", "random_furthest", [False, False]),
        outcome_rows("facenet", "source_vs_result", "furthest", [False, True]),
        outcome_rows("facenet", "source_vs_result", "random_furthest", [None, None],
                     status=["n/a: result face: no face", "n/a: result face: no face"]),
        outcome_rows("arcface", "source_vs_target", "furthest", [None], status=["n/a: weights not found at /w/a.onnx"]),
        # other metrics, spaces and strategies must not leak into Table 1
        outcome_rows("dlib", "source_vs_target", "furthest", [True] * 5, metric="euclidean_l2"),
        outcome_rows("dlib", "source_vs_target", "furthest", [True] * 5, space="ssim"),
        outcome_rows("dlib", "source_vs_target", "closest", [True] * 5),
    ], ignore_index=True)


TABLE1 = TableSpec(name="table1", metric="cosine", title="Table 1")

EXPECTED_CSV = """\
recognizer,source_vs_target/furthest,source_vs_target/furthest n,source_vs_target/random,source_vs_target/random n,source_vs_result/furthest,source_vs_result/furthest n,source_vs_result/random,source_vs_result/random n
dlib,0.2500,4,0.5000,4,0.7500,4,1.0000,1
facenet,0.0000,2,0.0000,2,0.5000,2,n/a: result face: no face,0
arcface,n/a: weights not found at /w/a.onnx,0,n/a: no pairs,0,n/a: no pairs,0,n/a: no pairs,0
average,0.1250,2,0.2500,2,0.6250,2,1.0000,1
"""

EXPECTED_MD = """\
**Table 1**

| Recognizer   | Source vs Target: furthest   | Source vs Target: random   | Source vs Result: furthest   | Source vs Result: random   |
|:-------------|:-----------------------------|:---------------------------|:-----------------------------|:---------------------------|
| dlib         | 0.250 (n=4)                  | 0.500 (n=4)                | 0.750 (n=4)                  | 1.000 (n=1)                |
| facenet      | 0.000 (n=2)                  | 0.000 (n=2)                | 0.500 (n=2)                  | n/a¹                       |
| arcface      | n/a²                         | n/a³                       | n/a³                         | n/a³                       |
| average      | 0.125 (2 rec.)               | 0.250 (2 rec.)             | 0.625 (2 rec.)               | 1.000 (1 rec.)             |

¹ result face: no face

² weights not found at /w/a.onnx

³ no pairs

Fraction of pairs verified as the same person (cosine distance <= the recognizer's default threshold; lower = better anonymization), pairs in parentheses; the average is the unweighted mean over the recognizers with a number (how many in parentheses). Pair outcomes without a number: 2 n/a: result face: no face; 1 n/a: no result face; 1 n/a: weights not found at /w/a.onnx.
"""


def test_table1_csv_layout(outcomes):
    table = verification_table(outcomes, TABLE1, ["dlib", "facenet", "arcface"])
    assert table.to_csv() == EXPECTED_CSV


def test_table1_markdown_layout(outcomes):
    table = verification_table(outcomes, TABLE1, ["dlib", "facenet", "arcface"])
    assert table.to_markdown() == EXPECTED_MD


def test_table1_latex_layout(outcomes):
    tex = verification_table(outcomes, TABLE1, ["dlib", "facenet", "arcface"]).to_latex()
    assert tex.startswith("% Table 1\n% Fraction of pairs verified")
    assert "\\begin{tabular}{lcccc}" in tex
    assert " & \\multicolumn{2}{c}{Source vs Target} & \\multicolumn{2}{c}{Source vs Result} \\\\" in tex
    assert " & furthest & random & furthest & random \\\\" in tex
    assert "dlib & 0.250 (n=4) & 0.500 (n=4) & 0.750 (n=4) & 1.000 (n=1) \\\\" in tex
    assert "facenet & 0.000 (n=2) & 0.000 (n=2) & 0.500 (n=2) & n/a: result face: no face \\\\" in tex


def test_table2_has_a_column_group_per_space(outcomes):
    spec = TableSpec(name="table2", metric="cosine", spaces=("ssim", "rmse"),
                     strategies={"furthest": "furthest"}, comparisons=("source_vs_target",))
    table = verification_table(outcomes, spec, ["dlib"])
    assert table.to_csv() == (
        "recognizer,ssim/source_vs_target/furthest,ssim/source_vs_target/furthest n,"
        "rmse/source_vs_target/furthest,rmse/source_vs_target/furthest n\n"
        "dlib,1.0000,5,n/a: no pairs,0\n"
        "average,1.0000,1,n/a: no recognizer has a number,0\n"
    )
    assert "| SSIM · Source vs Target: furthest" in table.to_markdown()
    assert " & SSIM & RMSE \\\\" in table.to_latex()


def test_table3_uses_euclidean_l2(outcomes):
    spec = TableSpec(name="table3", metric="euclidean_l2", strategies={"furthest": "furthest"},
                     comparisons=("source_vs_target",))
    assert verification_table(outcomes, spec, ["dlib"]).to_csv().splitlines()[1] == "dlib,1.0000,5"


def test_table_is_deterministic_and_independent_of_row_order(outcomes):
    first = verification_table(outcomes, TABLE1, ["dlib", "facenet", "arcface"])
    shuffled = outcomes.sample(frac=1, random_state=3).reset_index(drop=True)
    second = verification_table(shuffled, TABLE1, ["dlib", "facenet", "arcface"])
    assert first.to_csv() == second.to_csv()
    assert first.to_markdown() == second.to_markdown()
    assert first.to_latex() == second.to_latex()


def test_table_specs_come_from_the_config(cfg_factory):
    specs = {s.name: s for s in tables.table_specs(cfg_factory())}
    assert specs["table1"].metric == "cosine" and specs["table1"].spaces == ("embedding",)
    assert specs["table3"].metric == "euclidean_l2"
    assert specs["table2"].spaces == ("ssim", "rmse")
    assert list(specs["table1"].strategies) == ["furthest", "random", "random_ag"]


def test_config_tables_follow_the_papers_layouts(cfg_factory):
    """Table 2 = the paper's four columns (furthest in SSIM and RMSE space, Source vs Target then
    Source vs Result), ours after them; Tables 1 and 3 mark random_ag as not in the paper; Table 3
    twice (euclidean_l2 and raw euclidean); every header says which strategy is the paper's."""
    specs = {s.name: s for s in tables.table_specs(cfg_factory())}
    keys = ["/".join(([s] if len(specs["table2"].spaces) > 1 else []) + [c, label])
            for s, c, label in specs["table2"].columns()]
    assert keys[:4] == ["ssim/source_vs_target/furthest", "rmse/source_vs_target/furthest",
                        "ssim/source_vs_result/furthest", "rmse/source_vs_result/furthest"]
    assert len(keys) == 12 and not any(specs["table2"].in_paper(k.split("/")[-1]) for k in keys[4:])
    assert [label for _, _, label in specs["table1"].columns()][-2:] == ["random_ag", "random_ag"]
    assert specs["table1"].in_paper("random") and not specs["table1"].in_paper("random_ag")
    assert (specs["table3"].metric, specs["table3_euclidean"].metric) == ("euclidean_l2", "euclidean")
    assert "random_furthest" in specs["table1"].note and "euclidean_l2" in specs["table3"].note
    assert "random_furthest" in specs["table3_euclidean"].note


def test_columns_beyond_the_paper_are_labelled_so(outcomes):
    spec = TableSpec(name="t", metric="cosine", strategies={"furthest": "furthest", "random_ag": "random_furthest_ag"},
                     comparisons=("source_vs_target",), paper_strategies=("furthest",), note="Paper's column: furthest.")
    md = verification_table(outcomes, spec, ["dlib"]).to_markdown()
    assert "| Source vs Target: furthest " in md and "Source vs Target: random_ag (not in the paper)" in md
    assert "Paper's column: furthest." in md


def test_evaluated_pairs_feed_the_table(pairs, embeddings):
    rec = FakeRecognizer("toy", {"cosine": 0.1, "euclidean_l2": 0.4, "euclidean": 0.4})
    out = evaluate_pairs(pairs, {"toy": embeddings}, [rec])
    spec = TableSpec(name="t", metric="cosine", strategies={"furthest": "furthest"})
    csv = verification_table(out, spec, ["toy"]).to_csv()
    assert csv.splitlines()[1] == "toy,0.3333,3,1.0000,1"


def write_cell(root, rec, pool="dcgan", generator="blur"):
    """A fabricated evaluated cell: pairs.parquet, source, target and result embeddings in
    the embed stage's format (face_id, status, embedding) where the evaluate stage puts
    them, and the outcomes.parquet it derives from them."""
    dataset = root / "toyset"
    cell = dataset / "cells" / pool / generator / "embedding-furthest"
    cell.mkdir(parents=True)
    pd.DataFrame({
        "source_face": ["a-000", "b-000"], "target": ["t1", "t2"], "result_face": ["a-000", ""],
        "strategy": ["furthest", "random_furthest"], "space": "embedding", "pool": pool,
        "generator": generator, "seed": 0,
    }).to_parquet(cell / "pairs.parquet")
    dirs = default_embedding_dirs(Cell(root, "toyset", pool, "embedding", "furthest", generator))
    for folder, ids, vectors in (
        (dirs.source, ["a-000", "b-000"], [unit(0), unit(0)]),
        (dirs.target, ["t1", "t2"], [unit(90), unit(3)]),
        (dirs.result, ["a-000"], [unit(80)]),
    ):
        write_embeddings(pd.DataFrame({"face_id": ids, "status": "ok", "embedding": vectors}), folder / "toy.parquet")
    outcomes = load_cell_outcomes(pd.read_parquet(cell / "pairs.parquet"), dirs, [rec])
    outcomes.to_parquet(cell / "outcomes.parquet")
    return cell


def test_tables_stage_writes_tables_1_to_3_deterministically(cfg_factory, tmp_path, monkeypatch):
    rec = FakeRecognizer("toy", {"cosine": 0.1, "euclidean_l2": 0.4, "euclidean": 0.4})
    cfg = cfg_factory("dataset=folder", f"dataset.path={tmp_path}", "dataset.name=toyset", "++recognizers=[toy]",
                      "~tables.strategies.random_ag")  # the paper's two columns
    write_cell(tmp_path / "results", rec)
    out = tables.run(cfg)
    names = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert names == ["blur/table1.csv", "blur/table1.md", "blur/table1.tex", "blur/table2.csv", "blur/table2.md",
                     "blur/table2.tex", "blur/table3.csv", "blur/table3.md", "blur/table3.tex",
                     "blur/table3_euclidean.csv", "blur/table3_euclidean.md", "blur/table3_euclidean.tex",
                     "outcomes.parquet", "tables.provenance.json"]
    assert (out / "blur" / "table1.csv").read_text().splitlines()[1:] == [
        "toy,0.0000,1,1.0000,1,0.0000,1,n/a: no result face,0",
        "average,0.0000,1,1.0000,1,0.0000,1,n/a: no recognizer has a number,0",
    ]
    first = {p: p.read_bytes() for p in out.rglob("*") if p.suffix in (".csv", ".md", ".tex")}
    tables.run(cfg)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.suffix in (".csv", ".md", ".tex")} == first


def test_tables_stage_without_cells_says_what_to_run(cfg_factory, tmp_path):
    cfg = cfg_factory("dataset=folder", f"dataset.path={tmp_path}", "dataset.name=empty")
    with pytest.raises(BenchError, match="python -m bench evaluate"):
        tables.run(cfg)


# ---- n/a reasons as footnotes in the Markdown renderings (bench.footnotes) ------------------

def test_na_cells_become_numbered_footnote_marks():
    from bench.footnotes import na_footnotes

    frame = pd.DataFrame({"a": ["0.5", "n/a: no pairs", "n/a", 3.0], "b": ["n/a: weights not found at /w", "n/a: no pairs", "", None]})
    shown, notes = na_footnotes(frame)
    assert shown.a.tolist() == ["0.5", "n/a²", "n/a", 3.0]  # reading order: row by row, left to right
    assert shown.b.tolist()[:3] == ["n/a¹", "n/a²", ""] and pd.isna(shown.b.iloc[3])
    assert notes == ["¹ weights not found at /w", "² no pairs"]
    assert frame.a.tolist()[1] == "n/a: no pairs"  # the input is not modified


def test_footnote_marks_past_nine_are_multi_digit_superscripts():
    from bench.footnotes import na_footnotes, superscript

    shown, notes = na_footnotes(pd.DataFrame({"x": [f"n/a: reason {i}" for i in range(12)]}))
    assert shown.x.iloc[9] == "n/a¹⁰" and shown.x.iloc[11] == "n/a¹²"
    assert notes[11] == "¹² reason 11" and superscript(305) == "³⁰⁵"


def test_footnotes_leave_numeric_columns_formatted():
    from bench.footnotes import markdown_with_footnotes

    quality = pd.DataFrame({"generator": ["faceswap", "simswap"], "status": ["ok", "n/a: cell not run (x missing)"],
                            "psnr": [22.67111, float("nan")]})
    text = markdown_with_footnotes(quality, index=False, floatfmt=".4g")
    assert "| simswap     | n/a¹     | nan    |" in text and "| faceswap    | ok       |  22.67 |" in text
    assert text.endswith("\n\n¹ cell not run (x missing)")
    assert markdown_with_footnotes(quality.iloc[:1], index=False) == quality.iloc[:1].to_markdown(index=False)


def test_csv_keeps_the_full_reason_and_markdown_shortens_it(outcomes):
    table = verification_table(outcomes, TABLE1, ["dlib", "facenet", "arcface"])
    assert "n/a: weights not found at /w/a.onnx" in table.to_csv()
    md = table.to_markdown()
    assert md.count("weights not found at /w/a.onnx") == 2  # once as a footnote, once in the note
    assert "| n/a: " not in md
