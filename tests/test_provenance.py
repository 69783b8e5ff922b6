"""bench.provenance.code_sha256: the code part of the detection and embedding cache keys."""
from __future__ import annotations

import os
import sys
import textwrap

import pandas as pd
import pytest

from bench.provenance import code_sha256


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A package `codepkg` on sys.path: `a` imports `b` at module level (absolute) and `c`
    relatively, `d` only inside a function; `e` is imported by nobody."""
    root = tmp_path / "codepkg"
    root.mkdir()
    files = {
        "__init__.py": "",
        "a.py": """
            from codepkg.b import helper
            from . import c
            try:
                import codepkg.f as optional
            except ImportError:
                optional = None

            def run():
                from codepkg import d  # plumbing, not followed
                return helper(d)
        """,
        "b.py": "def helper(x):\n    return x\n",
        "c.py": "X = 1\n",
        "d.py": "Y = 1\n",
        "e.py": "Z = 1\n",
        "f.py": "W = 1\n",
    }
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [m for m in sys.modules if m.startswith("codepkg")]:
        del sys.modules[name]


def edit(path, text):
    """Rewrites a file so that its size and mtime change (file hashes are kept per size and mtime)."""
    path.write_text(text)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


@pytest.mark.parametrize("changed, counts", [("a.py", True), ("b.py", True), ("c.py", True), ("f.py", True),
                                              ("__init__.py", True), ("d.py", False), ("e.py", False)])
def test_the_code_hash_follows_the_module_and_what_it_imports(package, changed, counts):
    before = code_sha256("codepkg.a")
    assert code_sha256("codepkg.a") == before
    edit(package / changed, (package / changed).read_text() + "\n# edited: a longer file\n")
    assert (code_sha256("codepkg.a") != before) == counts


def test_the_code_hash_of_several_modules_is_their_union(package):
    assert code_sha256("codepkg.a", "codepkg.b") == code_sha256("codepkg.a")  # b is in a's closure
    assert code_sha256("codepkg.a", "codepkg.e") != code_sha256("codepkg.a")
    assert code_sha256("codepkg.a", "no_such_module_anywhere") == code_sha256("codepkg.a")


def test_a_new_import_is_followed_after_the_edit(package):
    before = code_sha256("codepkg.b")
    edit(package / "b.py", "from codepkg import e\n\ndef helper(x):\n    return x\n")
    after = code_sha256("codepkg.b")
    assert after != before
    edit(package / "e.py", "Z = 2  # now part of b's code\n")
    assert code_sha256("codepkg.b") != after


def test_the_cache_keys_and_resume_key_change_with_the_code(cfg_factory, tmp_path, monkeypatch):
    """A fixed bug in a detector or recognizer must not be answered from the cache it filled
    (the caches live outside DVC's outputs, so `dvc repro` after the fix would reuse them)."""
    import bench.provenance
    from bench.embedding_runner import cache_folder
    from bench.facetable import detector_key
    from bench.recognizers import build_recognizer
    from bench.registry import DETECTORS, component_config
    from bench.stages.anonymize import photo_key
    from test_recognizers import export_tiny

    tiny = export_tiny(tmp_path / "tiny_arcface.onnx")
    cfg = cfg_factory(f"results_dir={tmp_path / 'results'}", f"paths.deepface_home={tmp_path / 'home'}",
                      f"+recognizer_overrides.onnx.model_paths=['{tiny}']")
    node = component_config("detector", "yunet", cfg)
    detector = DETECTORS.build(node, name="yunet")
    recognizer = build_recognizer("onnx", cfg)
    group = pd.DataFrame({"face_id": ["p.jpg#000"], "x1": [1.0], "crop": ["crops/p.png"]})
    targets = pd.DataFrame({"source_face": ["p.jpg#000"], "target": ["t.png"]})
    keys = detector_key(node, detector), cache_folder(recognizer, cfg), photo_key(cfg, "p.jpg", group, targets)
    assert (detector_key(node, detector), cache_folder(recognizer, cfg), photo_key(cfg, "p.jpg", group, targets)) == keys
    hashed = bench.provenance._source_sha256
    monkeypatch.setattr(bench.provenance, "_source_sha256",
                        lambda path: hashed(path) + ("edited" if path.endswith("base.py") else ""))
    assert detector_key(node, detector) != keys[0]  # bench/detectors/base.py
    assert cache_folder(recognizer, cfg) != keys[1]  # bench/recognizers/base.py
    monkeypatch.setattr(bench.provenance, "_source_sha256",
                        lambda path: hashed(path) + ("edited" if path.endswith("images.py") else ""))
    # the photo decoding: the faces stage's, the platform's and the turned caches are keyed
    # by the photo file's sha256, so a fixed decoder must detect again
    assert detector_key(node, detector) != keys[0]
    monkeypatch.setattr(bench.provenance, "_source_sha256",
                        lambda path: hashed(path) + ("edited" if path.endswith("base.py") else ""))
    # an anonymized photo's resume record (bench/generators/base.py, bench/detectors/base.py)
    assert photo_key(cfg, "p.jpg", group, targets) != keys[2]
