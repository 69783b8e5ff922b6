"""The recognizer registry and threshold logic: every conf/recognizer/ entry builds without
weights; deepface's recognizers read deepface's own threshold table; stand-ins read their
calibration; overrides win; the generic ONNX and insightface paths run on tiny ONNX models
exported here (same signature as an ArcFace ONNX: 1x3x112x112 float in, 512 out)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from bench.errors import BenchError, WeightsNotFound
from bench.recognizers import build_recognizer, selected_recognizers
from bench.recognizers.base import METRICS, Recognizer
from bench.recognizers.calibration import balanced_threshold, equal_error
from bench.recognizers.deepface_client import DeepfaceRecognizer, similarity
from bench.recognizers.thresholds import ThresholdsUnavailable, load_thresholds
from bench.registry import RECOGNIZERS

PAPER_SEVEN = {"deepid": "DeepID", "openface": "OpenFace", "deepface": "DeepFace", "facenet": "Facenet",
               "facenet512": "Facenet512", "dlib": "Dlib", "arcface": "ArcFace"}
STAND_INS = ("arcface_mbf", "mobilefacenet", "facenet512_opencv")


def export_tiny(path, dynamic_batch: bool = True):
    """A tiny conv net with an ArcFace ONNX's signature: (N, 3, 112, 112) float -> (N, 512)."""
    import warnings

    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=4), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(4),
                              torch.nn.Flatten(), torch.nn.Linear(128, 512)).eval()
    axes = {"data": {0: "n"}, "fc1": {0: "n"}} if dynamic_batch else None
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and enough here
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, torch.zeros(1, 3, 112, 112), str(path), input_names=["data"], output_names=["fc1"],
                          dynamo=False, dynamic_axes=axes)
    return path


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    return {"dynamic": export_tiny(folder / "tiny_arcface.onnx"),
            "fixed": export_tiny(folder / "tiny_fixed.onnx", dynamic_batch=False)}


def crops(n: int, size: int = 112, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_registry_has_the_seven_and_the_extras():
    names = set(RECOGNIZERS.names())
    assert set(PAPER_SEVEN) | {"insightface", "onnx", *STAND_INS} <= names


def test_default_recognizers_are_every_config_but_the_template(cfg_factory):
    cfg = cfg_factory()
    assert sorted(selected_recognizers(cfg)) == sorted(set(RECOGNIZERS.names()) - {"onnx"})


@pytest.mark.parametrize("name", sorted(PAPER_SEVEN))
def test_deepface_recognizers_use_deepfaces_own_table(cfg_factory, name):
    from deepface.config.threshold import thresholds

    recognizer = build_recognizer(name, cfg_factory())
    assert isinstance(recognizer, DeepfaceRecognizer) and recognizer.model_name == PAPER_SEVEN[name]
    for metric in METRICS:
        assert recognizer.threshold(metric) == pytest.approx(thresholds[PAPER_SEVEN[name]][metric])


def test_threshold_override_from_config(cfg_factory):
    cfg = cfg_factory("+recognizer_overrides.dlib.thresholds.cosine=0.05")
    recognizer = build_recognizer("dlib", cfg)
    assert recognizer.threshold("cosine") == 0.05
    assert recognizer.threshold("euclidean") == load_thresholds("deepface:Dlib", "dlib")["euclidean"]


def test_unknown_metric_and_missing_source_fail_loudly(cfg_factory):
    recognizer = build_recognizer("onnx", cfg_factory())  # the template has no threshold source
    with pytest.raises(KeyError, match="unknown distance metric"):
        recognizer.threshold("manhattan")
    with pytest.raises(ThresholdsUnavailable, match="no threshold_source"):
        recognizer.threshold("cosine")
    with pytest.raises(ThresholdsUnavailable, match="no thresholds for"):
        load_thresholds("deepface:NoSuchModel", "x")


@pytest.mark.parametrize("name", STAND_INS)
def test_stand_ins_use_their_calibration_never_deepfaces(cfg_factory, name):
    from deepface.config.threshold import thresholds

    recognizer = build_recognizer(name, cfg_factory())
    assert recognizer.threshold_source == f"calibration:{name}.json"
    fit = load_thresholds(recognizer.threshold_source, name)
    assert set(fit) == set(METRICS)
    for metric in METRICS:
        assert recognizer.threshold(metric) == fit[metric]
        assert recognizer.threshold(metric) != thresholds["ArcFace"][metric]


def test_calibration_file_read_and_missing(tmp_path):
    path = tmp_path / "fit.json"
    path.write_text(json.dumps({"thresholds": {"cosine": 0.4, "euclidean": 9.0, "euclidean_l2": 0.9}}))
    assert load_thresholds(f"calibration:{path}", "x")["euclidean"] == 9.0
    with pytest.raises(ThresholdsUnavailable, match="python -m bench calibrate"):
        load_thresholds(f"calibration:{tmp_path / 'absent.json'}", "x")


def test_balanced_threshold_takes_the_middle_of_the_gap():
    d = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9, 1.0])
    same = np.array([True, True, True, False, False, False, False])
    threshold, score = balanced_threshold(d, same)
    assert threshold == pytest.approx(0.5) and score == 1.0
    eer_threshold, eer = equal_error(d, same)
    assert 0.3 <= eer_threshold < 0.7 and eer == 0.0
    # one impostor below a genuine pair: balanced accuracy trades one for the other
    threshold, score = balanced_threshold(np.array([0.1, 0.5, 0.3, 0.9]), np.array([True, True, False, False]))
    assert score == pytest.approx(0.75)


def test_generic_onnx_recognizer_on_a_tiny_model(cfg_factory, tiny_onnx):
    import onnxruntime as ort

    cfg = cfg_factory(f"+recognizer_overrides.onnx.model_paths=['{tiny_onnx['dynamic']}']",
                      "+recognizer_overrides.onnx.thresholds={cosine: 0.5}", "+recognizer_overrides.onnx.batch_size=3")
    recognizer = build_recognizer("onnx", cfg)
    batch = crops(5)
    out = recognizer.embed(batch)
    assert out.shape == (5, 512) and out.dtype == np.float32
    session = ort.InferenceSession(str(tiny_onnx["dynamic"]), providers=["CPUExecutionProvider"])
    x = ((batch.astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(out, session.run(None, {"data": x})[0], rtol=1e-5, atol=1e-5)
    assert recognizer.threshold("cosine") == 0.5
    assert recognizer.weights()[0] == tiny_onnx["dynamic"]


def test_generic_onnx_fixed_batch_and_declared_size(cfg_factory, tiny_onnx):
    fixed = build_recognizer("onnx", cfg_factory(f"+recognizer_overrides.onnx.model_paths=['{tiny_onnx['fixed']}']"))
    assert fixed.embed(crops(3)).shape == (3, 512)
    wrong = build_recognizer("onnx", cfg_factory(f"+recognizer_overrides.onnx.model_paths=['{tiny_onnx['dynamic']}']",
                                                 "+recognizer_overrides.onnx.input_size=128"))
    with pytest.raises(BenchError, match="declares"):
        wrong.prepare()


def test_insightface_arcface_path_on_a_tiny_model(cfg_factory, tiny_onnx):
    from insightface.model_zoo import get_model

    cfg = cfg_factory(f"+recognizer_overrides.insightface.model_paths=['{tiny_onnx['dynamic']}']")
    recognizer = build_recognizer("insightface", cfg)
    batch = crops(4, seed=1)
    out = recognizer.embed(batch)
    reference = get_model(str(tiny_onnx["dynamic"]), providers=["CPUExecutionProvider"])
    expected = reference.get_feat([np.ascontiguousarray(c[:, :, ::-1]) for c in batch])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    from deepface.config.threshold import thresholds

    assert recognizer.threshold("cosine") == thresholds["Buffalo_L"]["cosine"]


def test_missing_weights_raise_without_touching_the_network(cfg_factory, tmp_path, monkeypatch):
    import gdown
    import requests

    def offline(*args, **kwargs):
        raise AssertionError("tried the network")

    monkeypatch.setattr(gdown, "download", offline)
    monkeypatch.setattr(requests, "head", offline)
    cfg = cfg_factory(f"paths.deepface_home={tmp_path}", f"paths.insightface_home={tmp_path}",
                      f"paths.shared={tmp_path / 'absent'}")
    for name in [*PAPER_SEVEN, "insightface", *STAND_INS]:
        recognizer = build_recognizer(name, cfg)
        with pytest.raises(WeightsNotFound, match="weights not found at ") as error:
            recognizer.prepare()
        assert all(str(tmp_path) in c for c in error.value.candidates)  # the message shows them by root
    assert not (tmp_path / ".deepface").exists()  # nothing written into the (fake) home


def test_dlib_through_deepfaces_client(cfg_factory, tmp_path):
    models = pytest.importorskip("face_recognition_models")
    weights = tmp_path / ".deepface" / "weights"
    weights.mkdir(parents=True)
    (weights / "dlib_face_recognition_resnet_model_v1.dat").symlink_to(models.face_recognition_model_location())
    recognizer = build_recognizer("dlib", cfg_factory(f"paths.deepface_home={tmp_path}"))
    assert isinstance(recognizer, Recognizer)
    out = recognizer.embed(crops(2, size=recognizer.input_size))
    assert out.shape == (2, 128) and np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])


def test_dlib_embeds_in_this_process_whatever_the_batches(cfg_factory, tmp_path, monkeypatch):
    """Dlib's embed() never forks (a fork taken while another thread holds a lock can hang
    the child), and each crop's embedding is bit for bit the same whatever the batching and
    order."""
    import os

    models = pytest.importorskip("face_recognition_models")
    weights = tmp_path / ".deepface" / "weights"
    weights.mkdir(parents=True)
    (weights / "dlib_face_recognition_resnet_model_v1.dat").symlink_to(models.face_recognition_model_location())
    home = f"paths.deepface_home={tmp_path}"
    whole = build_recognizer("dlib", cfg_factory(home))
    pairs = build_recognizer("dlib", cfg_factory(home, "+recognizer_overrides.dlib.batch_size=2"))
    faces = crops(7, size=whole.input_size, seed=3)
    expected = whole.embed(faces)
    pairs.prepare()

    def no_fork(*args, **kwargs):
        raise AssertionError("embed() forked a process")

    monkeypatch.setattr(os, "fork", no_fork)
    monkeypatch.setattr(os, "forkpty", no_fork)
    assert np.array_equal(pairs.embed(faces), expected)
    assert np.array_equal(pairs.embed(faces[::-1]), expected[::-1])


class _Pid(Recognizer):
    """Embeds a crop as (its first pixel, the pid that embedded it)."""

    name = "pid"

    def _load(self):
        pass

    def _embed(self, crops):
        import os

        return np.array([[float(c[0, 0, 0]), float(os.getpid())] for c in crops], np.float32)

    def default_thresholds(self):
        return {m: 0.5 for m in METRICS}


def test_embed_runs_every_batch_in_this_process_in_order():
    import os

    faces = np.zeros((9, 4, 4, 3), np.uint8)
    faces[:, 0, 0, 0] = np.arange(9)
    out = _Pid(input_size=4, batch_size=2).embed(faces)
    assert out[:, 0].tolist() == list(range(9))
    assert out[:, 1].tolist() == [float(os.getpid())] * 9


def test_similarity_is_exact_on_a_similar_copy():
    from bench.align import template

    src = template(112)
    angle, scale = 0.2, 1.3
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rotation.T + [4.0, -2.0]
    m = similarity(src, dst)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], dst, atol=1e-3)


def test_every_recognizer_config_is_instantiable_offline(cfg_factory):
    cfg = cfg_factory()
    for name in RECOGNIZERS.names():
        recognizer = build_recognizer(name, cfg)
        assert recognizer.name == name and recognizer.input_size > 0
        assert OmegaConf.is_config(cfg)


def test_calibration_fit_on_labelled_embeddings():
    import pandas as pd

    from bench.recognizers.calibration import fit_recognizer

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    ids = np.repeat(["p1", "p2", "p3"], 3)
    vectors = [c + 0.05 * rng.normal(size=16) for c in np.repeat(centres, 3, axis=0)]
    table = pd.DataFrame({"face_id": [f"f{i}" for i in range(9)], "status": ["ok"] * 8 + ["n/a: face not aligned"],
                          "embedding": [v.astype(np.float32) for v in vectors]})
    fit = fit_recognizer(table, ids)
    assert fit["pairs"] == {"genuine": 7, "impostor": 21}  # the n/a face is left out of every pair
    for metric in METRICS:
        assert fit["at_threshold"][metric]["balanced_accuracy"] == 1.0 and fit["eer"][metric]["rate"] == 0.0
