"""The genuine baseline: pairs, one face per photo, n/a rows, table text and determinism
on fabricated embeddings; end to end on a tiny folder and on ../shared/data/identities."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from PIL import Image

from bench.errors import BenchError, DatasetNotFound
from bench.stages import baseline
from bench.stages.evaluate import Embeddings

OPTS = OmegaConf.create({"metrics": ["cosine", "euclidean_l2", "euclidean"], "folds": 10, "far": 0.01, "seed": 0})


class FakeRecognizer:
    name = "toy"

    def threshold(self, metric):
        return {"cosine": 0.1, "euclidean_l2": 0.45, "euclidean": 0.45}[metric]


def people(n_people=6, photos_each=4, noise=0.15, seed=0):
    """labels with chosen faces, and Embeddings: each person a direction plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, 16))
    rows, vectors = [], []
    for p in range(n_people):
        for k in range(photos_each):
            rows.append({"path": f"p{p}/{k}.jpg", "identity": f"p{p}", "face_id": f"p{p}_{k}.jpg-000"})
            vectors.append(centres[p] + noise * rng.normal(size=16))
    chosen = pd.DataFrame(rows)
    return chosen, Embeddings.of(chosen.face_id, np.array(vectors, np.float32))


def test_all_pairs():
    i, j, same = baseline.all_pairs(pd.Series(["a", "a", "b"]))
    assert list(zip(i, j, same)) == [(0, 1, True), (0, 2, False), (1, 2, False)]


def test_evaluate_recognizer_rows():
    chosen, emb = people()
    rows, curves, failures = baseline.evaluate_recognizer(FakeRecognizer(), emb, chosen, OPTS)
    assert [r["metric"] for r in rows] == ["cosine", "euclidean_l2", "euclidean"]
    row = rows[0]
    assert row["status"] == "ok" and row["threshold"] == 0.1
    assert (row["photos"], row["pairs"], row["genuine_pairs"], row["impostor_pairs"]) == (24, 276, 36, 240)
    assert row["roc_auc"] == 1.0 and row["cv10_accuracy"] == 1.0 and row["tar_at_far_0.01"] == 1.0
    assert 0 <= row["far"] <= 1 and set(curves) == {("toy", m) for m in OPTS.metrics}
    assert failures == []


def test_cosine_and_l2_rank_pairs_alike():
    chosen, emb = people(noise=0.8)
    rows, _, _ = baseline.evaluate_recognizer(FakeRecognizer(), emb, chosen, OPTS)
    by_metric = {r["metric"]: r for r in rows}
    assert by_metric["cosine"]["roc_auc"] == pytest.approx(by_metric["euclidean_l2"]["roc_auc"], abs=1e-3)


def test_unavailable_recognizer_gives_na_rows_not_numbers():
    chosen, _ = people()
    rows, curves, _ = baseline.evaluate_recognizer(
        FakeRecognizer(), Embeddings.missing("weights not found at /x/dlib.dat"), chosen, OPTS)
    assert [r["status"] for r in rows] == ["n/a: weights not found at /x/dlib.dat"] * 3
    assert all("accuracy" not in r for r in rows) and curves == {}
    table = pd.DataFrame(rows, columns=baseline.table_columns(OPTS))
    csv = table.to_csv(index=False, lineterminator="\n")
    assert csv.splitlines()[1] == "toy,cosine,n/a: weights not found at /x/dlib.dat,0.1" + "," * 14


def test_recognizer_without_weights_says_so_beside_faces_not_aligned():
    """The embed stage gives a face it could not align a reason of its own; the rows still say
    why the recognizer has no number (its weights), not "needs both genuine and impostor pairs"."""
    chosen, emb = people()
    weights = "n/a: weights not found at /x/dlib.dat"
    status = [weights] * len(emb.ids) + ["n/a: face not aligned (see failures.csv)"]
    emb = Embeddings.of([*emb.ids, "p0_9.jpg-001"], np.zeros((len(status), 16), np.float32), status)
    rows, curves, failures = baseline.evaluate_recognizer(FakeRecognizer(), emb, chosen, OPTS)
    assert [r["status"] for r in rows] == [weights] * 3 and curves == {} and failures == []
    assert all("photos" not in r for r in rows)


def test_without_a_default_threshold_only_threshold_free_columns_have_numbers():
    from bench.errors import BenchError

    class Uncalibrated(FakeRecognizer):
        threshold_source = "calibration:toy.json"

        def threshold(self, metric):
            raise BenchError("calibration file toy.json not found")

    chosen, emb = people()
    rows, curves, _ = baseline.evaluate_recognizer(Uncalibrated(), emb, chosen, OPTS)
    row = rows[0]
    assert row["status"] == "n/a: no cosine threshold: calibration file toy.json not found"
    assert "accuracy" not in row and row["roc_auc"] == 1.0 and row["cv10_accuracy"] == 1.0
    assert row["threshold_source"] == "calibration:toy.json" and np.isnan(row["threshold"])
    assert curves[("toy", "cosine")][2] is None  # no default-threshold point to mark


def test_faces_without_embedding_leave_the_pairs_and_are_reported():
    chosen, emb = people()
    status = list(emb.status)
    status[0] = "n/a: face too small"
    emb = Embeddings.of(emb.ids, emb.matrix, status)
    chosen.loc[1, "face_id"] = ""  # no face found in this photo: never a candidate
    rows, _, failures = baseline.evaluate_recognizer(FakeRecognizer(), emb, chosen, OPTS)
    assert rows[0]["photos"] == 22 and rows[0]["pairs"] == 231
    assert [f["photo"] for f in failures] == ["p0/0.jpg"] and "face too small" in failures[0]["reason"]


def test_one_face_per_photo_keeps_the_largest_aligned_face():
    labels = pd.DataFrame({"path": ["a.jpg", "b.jpg", "c.jpg"], "identity": ["x", "x", "y"]})
    faces = pd.DataFrame({
        "photo": ["a.jpg", "a.jpg", "a.jpg", "b.jpg"],
        "face_id": ["a-000", "a-001", "a-002", "b-000"],
        "face_index": [0, 1, 2, 0],
        "face_size": [50.0, 120.0, 300.0, 80.0],
        "aligned": [True, True, False, True],  # a-002 is larger but could not be aligned
    })
    chosen, failures = baseline.one_face_per_photo(labels, faces)
    assert chosen.face_id.tolist() == ["a-001", "b-000", ""]
    assert failures == [{"photo": "c.jpg", "face_id": "", "stage": "baseline",
                         "reason": "no aligned face found: excluded from every pair"}]


def test_read_labels_checks_columns(tmp_path):
    with pytest.raises(DatasetNotFound, match="labels.csv"):
        baseline.read_labels(tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("file,person\na.jpg,x\n")
    with pytest.raises(BenchError, match="path, identity"):
        baseline.read_labels(tmp_path / "labels.csv")
    (tmp_path / "labels.csv").write_text("identity,path,extra\nx,b.jpg,1\ny,a.jpg,2\n")
    labels = baseline.read_labels(tmp_path / "labels.csv")
    assert labels.to_dict("list") == {"path": ["a.jpg", "b.jpg"], "identity": ["y", "x"]}


def test_baseline_command_is_registered():
    from bench.cli import COMMANDS

    assert COMMANDS["baseline"][0] == "bench.stages.baseline"
    assert COMMANDS["tables"][0] == "bench.stages.tables"


# ---- end to end ----------------------------------------------------------------------------

def tiny_identities(root: Path, t1_jpg: str) -> Path:
    """Three people of insightface's t1.jpg, two photos each (the second mirrored and
    rescaled): a labelled folder that needs nothing from ../shared."""
    root.mkdir()
    image = Image.open(t1_jpg).convert("RGB")
    boxes = [(0, 0, 260, 350), (250, 0, 500, 330), (480, 0, 800, 340)]  # left, middle, right
    rows = []
    for k, box in enumerate(boxes):
        crop = image.crop(box).resize(((box[2] - box[0]) * 2, (box[3] - box[1]) * 2))
        (root / f"p{k}").mkdir()
        crop.save(root / f"p{k}" / "a.png")
        crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((crop.width * 9 // 10, crop.height * 9 // 10)).save(
            root / f"p{k}" / "b.png")
        rows += [f"p{k}/a.png,p{k}", f"p{k}/b.png,p{k}"]
    (root / "labels.csv").write_text("path,identity\n" + "\n".join(rows) + "\n")
    return root


def test_baseline_end_to_end_on_a_tiny_folder_is_deterministic(cfg_factory, tmp_path):
    from bench.config import load_config

    folder = tiny_identities(tmp_path / "ids", load_config().dataset.path + "/t1.jpg")
    cfg = cfg_factory(f"identities.path={folder}", "++recognizers=[dlib]", "baseline.folds=2")
    out = baseline.run(cfg)
    first = {p: p.read_bytes() for p in (out.csv, out.markdown, out.failures, out.roc, out.roc_csv)}
    table = pd.read_csv(out.csv)
    assert table.recognizer.tolist() == ["dlib"] * 3
    assert out.provenance.is_file() and out.roc.is_file()
    roc = pd.read_csv(out.roc_csv)
    assert tuple(roc.columns) == baseline.ROC_COLUMNS
    out2 = baseline.run(cfg)
    assert {p: p.read_bytes() for p in (out2.csv, out2.markdown, out2.failures, out2.roc, out2.roc_csv)} == first
    # every file the stage wrote is one that dvc.yaml declares (bench.layout.BaselineOutputs)
    declared = out.files()
    written = [p for p in (tmp_path / "results").rglob("*")
               if p.is_file() and "cache" not in p.relative_to(tmp_path / "results").parts[:1]
               and ".hydra" not in p.parts]
    assert written and all(any(p == d or d in p.parents for d in declared) for p in written), written


def test_missing_identities_set_gives_na_rows_and_succeeds(cfg_factory, tmp_path):
    """A machine without ../shared: the stage (and so `dvc repro`) still succeeds, and says why
    it has no number in every row; the ROC CSV keeps its header, the figure says why."""
    from bench.cli import main

    results = tmp_path / "results"
    absent = tmp_path / "no_such_folder"
    code = main(["baseline", f"identities.path={absent}", f"results_dir={results}", "recognizers=[dlib,deepid]"])
    assert code == 0
    out = baseline.BaselineOutputs(results)
    table = pd.read_csv(out.csv, keep_default_na=False)
    assert table.recognizer.tolist() == ["dlib"] * 3 + ["deepid"] * 3
    assert (table.status == f"n/a: identities set not found at {absent} "
                            "(set identities.path, or BENCH_SHARED for ../shared)").all()
    measured = [c for c in table.columns if c not in ("recognizer", "metric", "status", "threshold", "threshold_source")]
    assert (table[measured] == "").all().all(), "no number without data"
    assert out.roc_csv.read_text() == ",".join(baseline.ROC_COLUMNS) + "\n"
    assert out.failures.read_text().count("\n") == 1  # the header alone
    assert out.roc.is_file() and out.provenance.is_file() and out.markdown.is_file()
    assert out.dataset.root.is_dir()  # dvc.yaml declares it: present, and empty
    assert not any(out.dataset.root.iterdir())


def test_folder_without_labels_is_a_missing_identities_set(tmp_path):
    (tmp_path / "ids").mkdir()
    status = baseline.missing_identities(tmp_path / "ids", tmp_path / "ids" / "labels.csv")
    assert status.startswith(f"n/a: identities set not found at {tmp_path / 'ids'}") and "labels.csv" in status
    (tmp_path / "ids" / "labels.csv").write_text("path,identity\n")
    assert baseline.missing_identities(tmp_path / "ids", tmp_path / "ids" / "labels.csv") is None


def test_roc_table_reads_the_roc_step_function_on_a_fixed_grid():
    chosen, emb = people(noise=0.8)
    _, curves, _ = baseline.evaluate_recognizer(FakeRecognizer(), emb, chosen, OPTS)
    roc = baseline.roc_table(curves)
    assert tuple(roc.columns) == baseline.ROC_COLUMNS
    assert len(baseline.ROC_FPRS) <= 100 and len(roc) == len(curves) * len(baseline.ROC_FPRS)
    for (name, metric), (far, tar, _, _) in curves.items():
        rows = roc[(roc.recognizer == name) & (roc.metric == metric)]
        assert rows.fpr.tolist() == sorted(rows.fpr) and rows.fpr.iloc[0] == 0.0 and rows.fpr.iloc[-1] == 1.0
        assert rows.tpr.is_monotonic_increasing and rows.tpr.iloc[-1] == 1.0
        # at each grid FPR, the best TAR of any threshold whose FAR is at most it
        for fpr, tpr in zip(rows.fpr, rows.tpr):
            assert tpr == pytest.approx(tar[far <= fpr + 1e-12].max(), abs=1e-6)
    assert baseline.tpr_at(np.array([0.0, 0.5, 0.5, 1.0]), np.array([0.0, 0.2, 0.6, 1.0]),
                           np.array([0.0, 0.4, 0.5, 1.0])).tolist() == [0.0, 0.0, 0.6, 1.0]


def test_identities_folder_name_is_the_one_dvc_yaml_declares():
    from bench import layout
    from bench.config import load_config

    assert str(load_config().identities.name) == layout.IDENTITIES


@pytest.mark.shared
@pytest.mark.slow
def test_roc_csv_on_the_identities_set_is_byte_identical_across_runs(cfg_factory, shared):
    """Two runs of the stage on ../shared/data/identities (SCRFD, Dlib: seconds once the
    detections are cached) write the same ROC CSV, in long format with a bounded grid."""
    folder = shared("data", "identities")
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    cfg = cfg_factory(f"identities.path={folder}", "detector=scrfd", "recognizers=[dlib]")
    first = baseline.run(cfg).roc_csv.read_bytes()
    again = baseline.run(cfg).roc_csv.read_bytes()
    assert first == again
    roc = pd.read_csv(baseline.outputs(cfg).roc_csv)
    assert tuple(roc.columns) == baseline.ROC_COLUMNS
    assert roc.groupby(["recognizer", "metric"]).size().max() <= 100


@pytest.mark.shared
@pytest.mark.slow
def test_genuine_baseline_on_the_identities_set(cfg_factory, shared):
    """The baseline command on ../shared/data/identities, kept under a minute: SCRFD (a third
    of dlib HOG's time) and three recognizers: Dlib (weights from PyPI when provisioned),
    the ONNX stand-in arcface_mbf (../shared/weights) and DeepID, which has no weights here
    and must come out as n/a rows. `python -m bench baseline` runs the whole list."""
    from bench.errors import WeightsNotFound
    from bench.recognizers import build_recognizer

    folder = shared("data", "identities")
    shared("weights", "scrfd_2.5g_bnkps.onnx")
    cfg = cfg_factory(f"identities.path={folder}", "detector=scrfd", "recognizers=[dlib,arcface_mbf,deepid]")
    out = baseline.run(cfg)
    table = pd.read_csv(out.csv, keep_default_na=False)
    assert table.recognizer.tolist() == ["dlib"] * 3 + ["arcface_mbf"] * 3 + ["deepid"] * 3
    assert table.metric.tolist()[:3] == ["cosine", "euclidean_l2", "euclidean"]
    assert (table.status == "ok").any() or (table.status.str.startswith("n/a: ")).all()
    assert table.status[table.status != "ok"].str.startswith("n/a: ").all()
    embedded = table[table.roc_auc != ""]
    assert (embedded.pairs.astype(int) >= 1700).all() and (embedded.genuine_pairs.astype(int) >= 130).all()
    assert out.roc.is_file() and out.provenance.is_file()
    dlib = build_recognizer("dlib", cfg)
    try:
        dlib.prepare()
    except WeightsNotFound as err:
        pytest.skip(f"Dlib's weights are absent (python -m bench weights provision), so no accuracy to check: {err}")
    rows = table[table.recognizer == "dlib"].set_index("metric")
    assert (rows.status == "ok").all()
    # deepface's Dlib thresholds on dlib's own network: real photos of one person match, others don't.
    assert rows.accuracy.astype(float).min() >= 0.9, rows[["accuracy", "tar", "far"]].to_string()
