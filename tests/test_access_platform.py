"""Platform files, access-model configs, storage queries and the scale table (bench.access)."""
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench.access.base import AccessModel
from bench.access.fakers import MemoFaker, PaintFaker, PerfectMatcher
from bench.access.generate import FaceSample, generate_platform, generate_workload
from bench.access.layout import PlatformLayout
from bench.access.loader import PlatformFileError, load_platform
from bench.access.scale import scale_table
from bench.access.simulate import run_workload
from bench.access.storage import Storage
from bench.config import CONF_DIR
from bench.registry import ACCESS

EXAMPLE = CONF_DIR / "platform" / "example.yaml"

GOOD = """\
users:
  - {id: a, rule: friends}
  - {id: b, rule: everyone}
friends:
  - [a, b]
photos:
  - id: p1
    uploader: a
    faces:
      - {id: f1, box: [0, 0, 8, 8], owner: a}
      - {id: f2, box: [8, 0, 16, 8], owner: null}
tags:
  - {face: f1, user: a, consent: true}
"""


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_example_platform_loads():
    pf = load_platform(EXAMPLE)
    assert len(pf.platform.users) == 5 and len(pf.platform.faces) == 6
    assert pf.platform.faces["t1-5"].owner is None
    assert pf.platform.allows("t1-1", "erin")  # bob: friends_of_friends; erin is bob's friend
    assert not pf.platform.allows("t1-2", "alice")  # carol: nobody


@pytest.mark.parametrize("old, new, line, words", [
    ("  - [a, b]", "  - [a, zed]", 5, "unknown user 'zed'"),
    ("  - [a, b]", "  - [a, a]", 5, "their own friend"),
    ("  - {id: b, rule: everyone}", "  - {id: a, rule: everyone}", 3, "duplicate user id 'a'"),
    ("      - {id: f2, box: [8, 0, 16, 8], owner: null}", "      - {id: f1, box: [8, 0, 16, 8], owner: null}", 11,
     "duplicate face id 'f1'"),
    ("  - {face: f1, user: a, consent: true}", "  - {face: f9, user: a, consent: true}", 13, "tag on a missing face 'f9'"),
    ("    uploader: a", "    uploader: q", 7, "unknown uploader 'q'"),
    ("owner: null}", "owner: ghost}", 11, "unknown owner 'ghost'"),
    ("rule: friends}", "rule: sometimes}", 2, "unknown rule 'sometimes'"),
])
def test_bad_platform_files_are_refused_naming_the_line(tmp_path, old, new, line, words):
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(PlatformFileError) as err:
        load_platform(path)
    assert f"line {line}:" in str(err.value) and words in str(err.value)


def test_json_platform_file(tmp_path):
    import json

    import yaml

    path = write(tmp_path, json.dumps(yaml.safe_load(GOOD), indent=1), "p.json")
    assert set(load_platform(path).platform.faces) == {"f1", "f2"}


@pytest.mark.parametrize("name", ACCESS.names())
def test_every_access_config_builds(name, cfg_factory):
    from bench.access.session import build_access

    model = build_access(name, cfg_factory("platform.per_viewer_fakes=true"))
    assert isinstance(model, AccessModel) and model.name == name
    assert model.per_viewer_fakes is True


def test_what_is_stored_where_can_be_queried(tmp_path):
    pf = load_platform(write(tmp_path, GOOD))
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (8, 16, 3), dtype=np.uint8)
    for user in pf.platform.users.values():
        user.enrolment = rng.normal(size=(2, 4)).astype(np.float32)
    for name in ("proxy", "authorization", "rules"):
        from bench.access.session import build_access
        from bench.config import load_config

        model = build_access(name, load_config([f"results_dir={tmp_path}"]))
        store = tmp_path / name
        model.open(pf.platform, Storage(store), PaintFaker(), PerfectMatcher(), lambda p: image.copy())
        model.setup()
        model.upload("p1")
        model.view("p1", "b")
        model.storage.close()
        con = sqlite3.connect(store / "server.sqlite")
        kinds = dict(con.execute("SELECT kind, COUNT(*) FROM photos GROUP BY kind").fetchall())
        embeddings = con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        con.close()
        if name == "proxy":
            assert kinds == {"published": 1} and embeddings == 0
        elif name == "authorization":
            assert kinds == {"original": 1} and embeddings == 0
        else:
            assert kinds == {"original": 1} and embeddings == 4
            device = sqlite3.connect(store / "clients" / "a.sqlite")
            assert device.execute("SELECT COUNT(DISTINCT user_id) FROM embeddings").fetchone()[0] == 2
            device.close()


def test_scale_table_counts_without_building_the_largest_graph():
    opts = {"users": [200, 5000], "kind": "barabasi_albert", "k": 3, "p": 0.1, "networkx_max_users": 1000,
            "embeddings_per_user": 2, "dim": 128, "faces_per_photo": 3}
    table = scale_table(opts, 0)
    assert table.graph.tolist()[0].startswith("networkx") and "no graph" in table.graph.tolist()[1]
    assert (table.friends_mean.between(5.5, 6.1)).all()  # BA: mean degree ~ 2k
    assert table.server_embedding_bytes.tolist() == [200 * 2 * 128 * 4, 5000 * 2 * 128 * 4]
    assert (table.client_embedding_bytes_max > table.client_embedding_bytes_mean).all()


def test_layout_paths_match_dvc_yaml():
    import yaml

    layout = PlatformLayout(Path("${results_dir}"))
    stage = yaml.safe_load((CONF_DIR.parent / "dvc.yaml").read_text())["stages"]["platform"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]}
    for path in (layout.table_csv, layout.table_md, layout.threshold_csv, layout.threshold_png, layout.fig1,
                 layout.fig2, layout.scale_csv, layout.scale_png, layout.provenance, layout.root):
        assert str(path) in outs, path


class CountingFaker(PaintFaker):
    """PaintFaker recording each fake it computes: (face id, key, digest of the input pixels)."""

    def __init__(self):
        self.calls: list[tuple[str, str, str]] = []

    def fake(self, image, face, key):
        self.calls.append((face.face_id, key, hashlib.sha256(image.tobytes()).hexdigest()))
        return super().fake(image, face, key)


def small_platform(seed: int = 3):
    """12 people (9 with an account), 20 composed uploads; each face carries its person's
    enrolment as its embedding, so the rules model's devices recognise friends."""
    rng = np.random.default_rng(seed)
    people = [f"u{i}" for i in range(12)]
    enrol = {p: rng.normal(size=(1, 4)).astype(np.float32) for p in people}
    samples = {p: [FaceSample(p, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (0, 0, 8, 8), None, enrol[p][0])]
               for p in people}
    users = {p: enrol[p] for p in people[:9]}
    rules = {"nobody": 1.0, "friends": 1.0, "friends_of_friends": 1.0, "everyone": 1.0, "allow_list": 1.0,
             "allow_list_size": 2}
    platform = generate_platform(seed, users, samples, {"kind": "watts_strogatz", "k": 2, "p": 0.3}, rules,
                                 {"n": 20, "max_faces": 4, "p_self": 0.5, "p_friend": 0.5, "p_stranger": 0.2,
                                  "tile_height": 8})
    return platform, generate_workload(platform, seed, 120, 0.8, 0.7, 0.2)


def test_platform_stage_computes_each_fake_once_across_models_with_todays_swap_counts(cfg_factory, tmp_path):
    from bench.access.session import build_access, matcher_for
    from bench.stages.platform import simulate_models

    cfg = cfg_factory()
    platform, events = small_platform()
    recognizer, threshold = SimpleNamespace(name="stub"), 0.1
    read = lambda photo: photo.image.copy()  # noqa: E731
    # Each model on its own faker, no memo: the swap counts and fakes of a model alone.
    alone, computed_alone = {}, []
    for name in cfg.platform.access_models:
        faker = CountingFaker()
        model = build_access(str(name), cfg)
        model.open(platform, Storage(None), faker, matcher_for(model, recognizer, threshold), read)
        alone[model.name] = run_workload(model, platform, events).metrics()
        computed_alone += faker.calls
    # The stage's loop: every model through one memo.
    faker = CountingFaker()
    rows, _, _ = simulate_models(cfg, platform, events, faker, "", recognizer, threshold, "", read,
                                 PlatformLayout(tmp_path / "shared"))
    assert [r["access"] for r in rows] == list(cfg.platform.access_models)
    for r in rows:  # every count and rate as without the memo (swaps = fakes asked for)
        assert {k: r[k] for k in alone[r["access"]]} == alone[r["access"]], r["access"]
    assert sum(r["swaps_per_upload"] for r in rows) > 0 and sum(r["swaps_per_view"] for r in rows) > 0
    # Each distinct input faked once, none left out, and models shared some.
    assert len(faker.calls) == len(set(faker.calls))
    assert set(faker.calls) == set(computed_alone)
    assert len(faker.calls) < len(computed_alone)


def test_memo_faker_recomputes_for_other_pixels_keys_or_faces():
    inner = CountingFaker()
    memo = MemoFaker(inner)
    platform, _ = small_platform()
    photo = next(p for p in platform.photos.values() if len(p.faces) > 1)
    a, b = photo.faces[:2]
    image = photo.image.copy()
    first, status = memo.fake(image, a, "*")
    again, _ = memo.fake(image.copy(), a, "*")
    assert np.array_equal(first, again) and np.array_equal(first, PaintFaker().fake(image, a, "*")[0])
    assert again is not image and np.array_equal(image, photo.image)  # the input is never changed
    other = image.copy()
    other[-1, -1] ^= 1  # outside face a: a stale fake would give back image's pixel here
    assert np.array_equal(memo.fake(other, a, "*")[0], PaintFaker().fake(other, a, "*")[0])
    memo.fake(image, b, "*")
    memo.fake(image, a, "viewer")
    assert memo.stats() == {"computed": 4, "reused": 1} and len(inner.calls) == 4
