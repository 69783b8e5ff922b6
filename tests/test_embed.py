"""The embed stage: one row per face in faces.parquet order, "ok" rows with float32
embeddings, "n/a: <reason>" rows (never numbers) for unaligned faces, unreadable photos and
recognizers without weights; a content-keyed cache; the file format load_embeddings reads."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from bench import resultsio
from bench.align import template
from bench.embeddings import load_embeddings
from bench.recognizers.onnx_model import OnnxRecognizer
from bench.stages import embed
from test_recognizers import export_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return export_tiny(tmp_path_factory.mktemp("tiny") / "tiny_arcface.onnx")


@pytest.fixture
def dataset(tmp_path):
    """Two photos (random pixels, faces placed by their landmarks) and a faces table."""
    root = tmp_path / "photos"
    root.mkdir()
    pixels = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    for name in ("a.png", "b.png"):  # one picture twice: a-000 and b-001 are the same crop
        Image.fromarray(pixels).save(root / name)
    (root / "broken.png").write_bytes(b"not a png")
    face = (template(112) + [60, 40]).reshape(-1).tolist()
    other = (template(112) * 0.8 + [180, 90]).reshape(-1).tolist()
    faces = pd.DataFrame({
        "photo": ["a.png", "a.png", "b.png", "b.png", "broken.png"],
        "face_id": ["a-000", "a-001", "b-000", "b-001", "broken-000"],
        "landmarks": [face, other, face, face, face],
        "aligned": [True, True, False, True, True],
    })
    return root, faces


def overrides(tmp_path, tiny, *extra):
    return (f"paths.deepface_home={tmp_path / 'home'}", f"+recognizer_overrides.onnx.model_paths=['{tiny}']",
            "+recognizer_overrides.onnx.thresholds={cosine: 0.5}", *extra)


def test_embed_faces_rows_and_reasons(cfg_factory, tmp_path, dataset, tiny):
    root, faces = dataset
    table = embed.embed_faces(faces, root, "onnx", cfg_factory(*overrides(tmp_path, tiny)))
    assert table.face_id.tolist() == faces.face_id.tolist()
    assert table.status.tolist()[:2] == ["ok", "ok"] and table.status[3] == "ok"
    assert table.status[2] == "n/a: face not aligned (see failures.csv)"
    assert table.status[4].startswith("n/a: photo unreadable")
    for status, vector in zip(table.status, table.embedding):
        assert (vector.shape == (512,) and vector.dtype == np.float32) if status == "ok" else len(vector) == 0
    np.testing.assert_allclose(table.embedding[0], table.embedding[3], rtol=1e-5)  # same crop, same embedding
    assert not np.allclose(table.embedding[0], table.embedding[1])


def test_missing_model_gives_na_rows_not_numbers(cfg_factory, tmp_path, dataset):
    root, faces = dataset
    table = embed.embed_faces(faces, root, "arcface", cfg_factory(f"paths.deepface_home={tmp_path / 'empty'}"))
    reasons = table.status[faces.aligned & (faces.photo != "broken.png")]
    assert all(r == "n/a: weights not found at $DEEPFACE_HOME/.deepface/weights/arcface_weights.pth" for r in reasons)
    assert all(len(v) == 0 for v in table.embedding)


def test_cache_embeds_each_crop_once(cfg_factory, tmp_path, dataset, tiny, monkeypatch):
    root, faces = dataset
    cfg = cfg_factory(*overrides(tmp_path, tiny))
    first = embed.embed_faces(faces, root, "onnx", cfg)
    entries = list((tmp_path / "results" / "cache" / "embeddings").glob("onnx-*/*.npz"))
    assert len(entries) == 2  # a-000 and b-001 share one crop

    def fail(self, crops):
        raise AssertionError("the model ran although every crop is cached")

    monkeypatch.setattr(OnnxRecognizer, "_embed", fail)
    second = embed.embed_faces(faces, root, "onnx", cfg)
    assert second.status.tolist() == first.status.tolist()
    for a, b in zip(first.embedding, second.embedding):
        np.testing.assert_array_equal(a, b)


def test_a_failing_batch_is_na_not_a_crash(cfg_factory, tmp_path, dataset, tiny, monkeypatch):
    root, faces = dataset

    def boom(self, crops):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(OnnxRecognizer, "_embed", boom)
    table = embed.embed_faces(faces, root, "onnx", cfg_factory(*overrides(tmp_path, tiny)))
    assert table.status[0] == "n/a: embedding failed: out of memory"


def test_run_writes_files_and_provenance(cfg_factory, tmp_path, dataset, tiny):
    root, faces = dataset
    cfg = cfg_factory("dataset=folder", f"dataset.path={root}", "dataset.name=tiny", "recognizers=[onnx,arcface]",
                      *overrides(tmp_path, tiny))
    (tmp_path / "results" / "tiny").mkdir(parents=True)
    faces.to_parquet(tmp_path / "results" / "tiny" / "faces.parquet")
    out = embed.run(cfg)
    schema = pq.read_schema(out / "onnx.parquet")
    assert schema.names == ["face_id", "status", "embedding"]
    embedding_type = schema.field("embedding").type
    assert pa.types.is_list(embedding_type) and embedding_type.value_type == pa.float32()
    face_ids, matrix, status = load_embeddings(out / "onnx.parquet")
    assert face_ids == ["a-000", "a-001", "b-001"] and matrix.shape == (3, 512) and matrix.dtype == np.float32
    assert status.index.tolist() == faces.face_id.tolist() and status["b-000"].startswith("n/a")
    ids, missing, status = load_embeddings(out / "arcface.parquet")
    assert ids == [] and missing.shape == (0, 0) and all(s.startswith("n/a") for s in status)
    provenance = json.loads((out / "provenance.json").read_text())
    onnx = provenance["recognizers"]["onnx"]
    assert onnx["weights"][0]["sha256"] == resultsio.file_sha256(str(tiny)) and onnx["dim"] == 512
    assert provenance["recognizers"]["arcface"]["status"].startswith("n/a: weights not found")


def test_run_needs_the_faces_stage(cfg_factory, tmp_path):
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="python -m bench faces"):
        embed.run(cfg_factory("dataset=folder", f"dataset.path={tmp_path}", "dataset.name=none"))


def test_embed_many_decodes_each_photo_once_and_matches_one_by_one(cfg_factory, tmp_path, dataset, tiny, monkeypatch):
    """Several recognizers at once (two geometries, one without weights): every table equals
    embed_with's on that recognizer alone, whatever the chunking; each photo is read once."""
    from bench import embedding_runner
    from bench.recognizers import build_recognizer

    root, faces = dataset
    faces = faces.copy()
    faces.at[1, "landmarks"] = [1.0, 2.0, 3.0]  # not five points: alignment fails
    cfg = cfg_factory(*overrides(tmp_path, tiny), "+recognizer_overrides.onnx.margin=0.2")
    names = ["onnx", "arcface", "insightface"]
    alone = {name: embedding_runner.embed_with(build_recognizer(name, cfg), faces, root, cfg) for name in names}
    assert alone["onnx"].status[1].startswith("n/a: alignment failed")
    reads = []
    real_load = embedding_runner.load_photo
    monkeypatch.setattr(embedding_runner, "load_photo", lambda path, **kw: reads.append(path) or real_load(path, **kw))
    for chunk in (4096, 1):
        reads.clear()
        together = embedding_runner.embed_many([build_recognizer(n, cfg) for n in names], faces, root, cfg,
                                               chunk_crops=chunk)
        assert sorted(map(str, reads)) == sorted(str(root / p) for p in ("a.png", "b.png", "broken.png"))
        for name in names:
            pd.testing.assert_frame_equal(together[name].drop(columns="embedding"), alone[name].drop(columns="embedding"))
            for got, want in zip(together[name].embedding, alone[name].embedding):
                assert np.array_equal(got, want)


def test_embed_many_with_rebuild_loads_one_fresh_model_at_a_time(cfg_factory, tmp_path, dataset, tiny):
    """rebuild: the given recognizers are never loaded, each name's copy is made once per
    chunk and freed before the next one is made; the tables are the same."""
    import gc
    import weakref

    from bench import embedding_runner
    from bench.recognizers import build_recognizer

    root, faces = dataset
    cfg = cfg_factory(*overrides(tmp_path, tiny), "+recognizer_overrides.onnx.margin=0.2",
                      f"+recognizer_overrides.arcface_mbf.model_paths=['{tiny}']")
    names = ["onnx", "arcface_mbf", "arcface"]  # arcface: no weights here, never rebuilt
    given = [build_recognizer(n, cfg) for n in names]
    alone = embedding_runner.embed_many([build_recognizer(n, cfg) for n in names], faces, root, cfg)
    made, alive_at_build = [], []

    def rebuild(name):
        gc.collect()
        alive_at_build.append(sum(ref() is not None for ref in made))
        recognizer = build_recognizer(name, cfg)
        made.append(weakref.ref(recognizer))
        return recognizer

    together = embedding_runner.embed_many(given, faces, root, cfg, rebuild=rebuild)
    assert len(made) == 2 and alive_at_build == [0, 0]
    assert not any(getattr(r, "_prepared", False) for r in given)
    for name in names:
        pd.testing.assert_frame_equal(together[name].drop(columns="embedding"), alone[name].drop(columns="embedding"))
        assert all(np.array_equal(a, b) for a, b in zip(together[name].embedding, alone[name].embedding))


def test_a_weights_hash_is_remembered_until_the_file_changes_or_it_is_forgotten(tmp_path):
    import hashlib
    import os

    path = tmp_path / "w.onnx"
    path.write_bytes(b"one")
    assert resultsio.file_sha256(path) == hashlib.sha256(b"one").hexdigest()
    path.write_bytes(b"two")  # same size: a new mtime tells it apart
    assert resultsio.file_sha256(path) == hashlib.sha256(b"two").hexdigest()
    stat = path.stat()
    path.write_bytes(b"6es")  # same size and, set back, the same mtime: remembered
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert resultsio.file_sha256(path) == hashlib.sha256(b"two").hexdigest()
    resultsio.forget_file_hashes()  # what a cold-start benchmark does
    assert resultsio.file_sha256(path) == hashlib.sha256(b"6es").hexdigest()
