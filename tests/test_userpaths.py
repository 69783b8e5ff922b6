"""No folder of the machine in a reason a user reads: weights paths in "n/a: weights not found
at ..." (CSVs, metrics.json, the report's footnotes) are written relative to their root."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from bench.errors import WeightsNotFound
from bench.footnotes import markdown_with_footnotes, na_reason
from bench.identities import missing_identities
from bench.recognizers import build_recognizer
from bench.registry import DETECTORS, GENERATORS, RECOGNIZERS
from bench.userpaths import PROJECT_ROOT, shown_path, shown_paths_in

ABSOLUTE = re.compile(r"(?<![\w.~$/:<>-])/[^\s,;()'\"<>]+")


@pytest.fixture
def homes(tmp_path, monkeypatch):
    """HOME, insightface's home and ../shared in tmp_path, as the config's defaults read them."""
    home, shared = tmp_path / "home", tmp_path / "shared"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("BENCH_SHARED", str(shared))
    monkeypatch.delenv("DEEPFACE_HOME", raising=False)
    monkeypatch.delenv("INSIGHTFACE_HOME", raising=False)
    return home, shared


def assert_no_machine_path(text: str, tmp_path) -> None:
    assert str(tmp_path) not in text, text
    assert not ABSOLUTE.findall(text), text


def test_each_root_is_named(homes, tmp_path, monkeypatch):
    home, shared = homes
    assert shown_path(home / ".deepface" / "weights" / "x.h5") == "$DEEPFACE_HOME/.deepface/weights/x.h5"
    assert shown_path(home / ".insightface" / "models" / "buffalo_l" / "w.onnx") == "$INSIGHTFACE_HOME/models/buffalo_l/w.onnx"
    assert shown_path(shared / "weights" / "x.onnx") == "$BENCH_SHARED/weights/x.onnx"
    assert shown_path(PROJECT_ROOT / "results" / "metrics.json") == "results/metrics.json"
    assert shown_path(tmp_path / "venv" / "lib" / "site-packages" / "nsface" / "m.onnx") == "<site-packages>/nsface/m.onnx"
    assert shown_path(home / "models" / "a.onnx") == "~/models/a.onnx"
    # A home of bench's own inside deepface's (facenet512_opencv), and one set by DEEPFACE_HOME.
    nested = home / ".deepface" / "bench" / "f" / ".deepface" / "weights" / "f.pth"
    assert shown_path(nested) == "$DEEPFACE_HOME/.deepface/bench/f/.deepface/weights/f.pth"
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path / "df"))
    assert shown_path(tmp_path / "df" / "weights.pth") == "$DEEPFACE_HOME/weights.pth"
    # Outside every root: as given (a user's own configured path); relative ones are not absolute.
    assert shown_path("/no/such/root/x.onnx") == "/no/such/root/x.onnx"


def test_paths_in_free_text_and_nothing_else(homes):
    home, _ = homes
    text = f"weights not found at {home}/.deepface/weights/a.pth or {home}/b.onnx (ArcFace); see https://x.org/a/b, ../shared/c"
    assert shown_paths_in(text) == ("weights not found at $DEEPFACE_HOME/.deepface/weights/a.pth or ~/b.onnx "
                                    "(ArcFace); see https://x.org/a/b, ../shared/c")


def test_weights_not_found_keeps_the_candidates_and_shows_roots(homes):
    home, shared = homes
    error = WeightsNotFound("m", [home / ".deepface" / "weights" / "a.pth", shared / "weights" / "b.onnx"])
    assert str(error) == "weights not found at $DEEPFACE_HOME/.deepface/weights/a.pth or $BENCH_SHARED/weights/b.onnx"
    assert error.candidates == [str(home / ".deepface" / "weights" / "a.pth"), str(shared / "weights" / "b.onnx")]


def test_no_machine_path_in_any_missing_weights_reason(homes, tmp_path):
    """Every recognizer, and the detectors and generators whose weights live in a home or in
    ../shared, with the config's default paths and nothing there: the reason names no folder."""
    from bench.config import load_config

    cfg = load_config([f"results_dir={tmp_path / 'results'}"])
    components = [build_recognizer(name, cfg) for name in RECOGNIZERS.names() if name != "onnx"]
    components += [DETECTORS.build(name) for name in ("scrfd", "scrfd_500m", "scrfd_1280")]
    components += [GENERATORS.build(name) for name in ("inswapper", "simswap", "simswap512")]
    for component in components:
        with pytest.raises(WeightsNotFound) as error:
            component.prepare()
        reason = f"n/a: {error.value}"
        assert reason.startswith("n/a: weights not found at $"), reason
        assert_no_machine_path(reason, tmp_path)


def test_footnotes_and_report_titles_name_no_folder(homes, tmp_path):
    home, _ = homes
    old = f"n/a: weights not found at {home}/.deepface/weights/deepid_weights.pth"  # a result file written before
    table = markdown_with_footnotes(pd.DataFrame({"recognizer": ["deepid"], "rate": [old]}), index=False)
    assert "¹ weights not found at $DEEPFACE_HOME/.deepface/weights/deepid_weights.pth" in table
    assert_no_machine_path(table, tmp_path)
    assert na_reason(old) == "weights not found at $DEEPFACE_HOME/.deepface/weights/deepid_weights.pth"


def test_identities_reason_names_bench_shared(homes, tmp_path):
    _, shared = homes
    folder = shared / "data" / "identities"
    reason = missing_identities(folder, folder / "labels.csv")
    assert reason.startswith("n/a: identities set not found at $BENCH_SHARED/data/identities (")
    assert_no_machine_path(reason, tmp_path)
