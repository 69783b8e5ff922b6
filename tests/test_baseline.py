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
    first = {p: p.read_bytes() for p in (out.csv, out.markdown, out.failures, out.roc)}
    table = pd.read_csv(out.csv)
    assert table.recognizer.tolist() == ["dlib"] * 3
    assert out.provenance.is_file() and out.roc.is_file()
    out2 = baseline.run(cfg)
    assert {p: p.read_bytes() for p in (out2.csv, out2.markdown, out2.failures, out2.roc)} == first


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
