"""Platform files, access-model configs, storage queries and the scale table (bench.access)."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from bench.access.base import AccessModel
from bench.access.fakers import PaintFaker, PerfectMatcher
from bench.access.layout import PlatformLayout
from bench.access.loader import PlatformFileError, load_platform
from bench.access.scale import scale_table
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
