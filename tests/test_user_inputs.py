"""Inputs from real users' reports (issue 7): photo names that slug alike, symbolic links in
a dataset folder, and one synthetic identity per person in a group photo."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cli import main
from bench.config import load_config
from bench.facetable import slug
from bench.queries.base import NoCandidate, rng_for
from bench.queries.strategies import Furthest, RandomFurthest
from bench.registry import QUERIES
from bench.spaces.features import all_distances
from bench.spaces.features import Features
from bench.spaces.base import Space
from bench.stages import query as query_stage

ALIKE = ["张三.jpg", "李四.jpg", "party photo.jpg", "party_photo.jpg", "x/a.jpg", "x_a.jpg"]


@pytest.fixture(scope="module")
def face_photo():
    """A small photo with faces (insightface's t1.jpg at a third of its size)."""
    return Image.open(load_config().dataset.path + "/t1.jpg").convert("RGB").resize((427, 296))


def test_slug_is_unique_and_stable_for_names_that_differ_only_in_dropped_characters():
    slugs = [slug(name) for name in ALIKE]
    assert len(set(slugs)) == len(ALIKE)
    assert slugs == [slug(name) for name in ALIKE]  # stable
    assert slug("t1.jpg") == "t1.jpg" and slug("x_a.jpg") == "x_a.jpg"  # safe names are kept
    assert all(set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-~") for s in slugs)
    assert len(slug("a" * 400 + ".jpg")) < 140


def test_faces_stage_processes_photos_whose_names_slug_alike(tmp_path, face_photo):
    folder = tmp_path / "photos"
    for name in ALIKE:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        face_photo.save(folder / name)
    results = tmp_path / "results"
    args = ["faces", "dataset=folder", f"dataset.path={folder}", "dataset.name=alike", "detector=dlib_hog",
            f"results_dir={results}"]
    assert main(args) == 0
    faces = pd.read_parquet(results / "alike" / "faces.parquet")
    assert faces.face_id.is_unique and sorted(faces.photo.unique()) == sorted(ALIKE)
    per_photo = faces.groupby("photo").size()
    assert per_photo.nunique() == 1 and per_photo.iloc[0] >= 4  # every copy found the same faces
    crops = sorted(p.name for p in (results / "alike" / "crops").glob("*.png"))
    assert crops == sorted(f"{f}.png" for f in faces.face_id[faces.aligned])
    first = faces.face_id.tolist()
    assert main(args) == 0
    assert pd.read_parquet(results / "alike" / "faces.parquet").face_id.tolist() == first


def test_symlinked_folder_is_followed_and_a_broken_link_is_listed(tmp_path, face_photo):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    face_photo.save(outside / "linked.jpg")
    folder = tmp_path / "photos"
    folder.mkdir()
    face_photo.save(folder / "own.jpg")
    os.symlink(outside, folder / "sub")
    os.symlink(tmp_path / "gone.jpg", folder / "broken.jpg")
    os.symlink(folder, folder / "loop")  # a link back to the dataset itself
    results = tmp_path / "results"
    assert main(["faces", "dataset=folder", f"dataset.path={folder}", "dataset.name=links", "detector=dlib_hog",
                 f"results_dir={results}"]) == 0
    photos = pd.read_csv(results / "links" / "photos.csv", keep_default_na=False).set_index("photo")
    assert photos.loc["own.jpg", "status"] == "ok" and photos.loc["sub/linked.jpg", "status"] == "ok"
    failures = pd.read_csv(results / "links" / "failures.csv", keep_default_na=False)
    broken = failures[failures.photo == "broken.jpg"]
    assert len(broken) == 1 and "broken symbolic link" in broken.reason.iloc[0]
    assert "loop" in set(failures.photo) and "loop" in set(photos.index)


def test_exclude_keeps_taken_targets_out_and_says_when_none_is_left():
    d = np.array([0.1, 0.9, 0.8, 0.2])
    assert Furthest().select(d, rng_for(0, "f"), exclude=np.array([0, 1, 0, 0], bool)).index == 2
    for seed in range(20):
        sel = RandomFurthest().select(d, rng_for(seed, "f"), exclude=np.array([0, 1, 0, 0], bool))
        assert sel.index != 1
    with pytest.raises(NoCandidate, match="already another face's target"):
        Furthest().select(d, rng_for(0, "f"), exclude=np.ones(4, bool))


class _Euclid(Space):
    feature = "embedding"

    def _distances(self, a, b):
        return np.linalg.norm(a[:, None] - b[None], axis=2)


def _toy(n_faces_per_photo=(3, 2), pool=6, seed=0):
    rng = np.random.default_rng(seed)
    photos = [f"p{k}.jpg" for k, n in enumerate(n_faces_per_photo) for _ in range(n)]
    index = [i for n in n_faces_per_photo for i in range(n)]
    faces = pd.DataFrame({"photo": photos, "face_id": [f"{p}-{i:03d}" for p, i in zip(photos, index)]})
    sources = Features(np.array(faces.face_id), {"embedding": rng.normal(size=(len(faces), 4))},
                       {"embedding": np.array(["ok"] * len(faces))})
    pool_ids = np.array([f"pool{j}" for j in range(pool)])
    pool_faces = pd.DataFrame({"face_id": pool_ids, "photo": [f"{j}.png" for j in range(pool)],
                               "landmarks": [[0.0] * 10] * pool, "x1": 0.0, "y1": 0.0, "x2": 1.0, "y2": 1.0})
    # one pool face far from everyone: every source's furthest
    emb = rng.normal(size=(pool, 4))
    emb[0] += 50
    pool_feats = Features(pool_ids, {"embedding": emb}, {"embedding": np.array(["ok"] * pool)})
    return faces, sources, pool_faces, pool_feats


@pytest.mark.parametrize("strategy", ["furthest", "random_furthest"])
def test_targets_are_distinct_within_a_photo(cfg_factory, strategy, tmp_path):
    faces, sources, pool_faces, pool_feats = _toy()
    space = _Euclid()
    query = QUERIES.build(strategy)
    distances = all_distances(space, sources, pool_feats, np.ones(len(pool_faces), bool))
    cfg = cfg_factory(f"query={strategy}")
    rows, failures = query_stage.pick_targets(cfg, space, query, faces, sources, distances, pool_faces,
                                              pool_feats, tmp_path)
    table = pd.DataFrame(rows)
    assert not failures and len(table) == len(faces)
    assert not table.duplicated(["photo", "target"]).any() and not table.shared_in_photo.any()
    conc = query_stage.concentration(rows)
    assert conc["faces_sharing_in_photo"] == 0 and conc["distinct_targets"] >= 3
    # without the assignment every face of a photo takes the one far pool face: twins
    if strategy == "furthest":
        off = cfg_factory(f"query={strategy}", "targets.distinct_per_photo=false")
        rows, _ = query_stage.pick_targets(off, space, query, faces, sources, distances, pool_faces, pool_feats, tmp_path)
        assert query_stage.concentration(rows)["faces_sharing_in_photo"] == len(faces)


def test_a_photo_with_more_faces_than_the_pool_shares_targets_and_says_so(cfg_factory, tmp_path):
    faces, sources, pool_faces, pool_feats = _toy(n_faces_per_photo=(4,), pool=3)
    space = _Euclid()
    distances = all_distances(space, sources, pool_feats, np.ones(3, bool))
    rows, failures = query_stage.pick_targets(cfg_factory(), space, QUERIES.build("furthest"), faces, sources,
                                              distances, pool_faces, pool_feats, tmp_path)
    table = pd.DataFrame(rows)
    assert len(table) == 4 and not failures
    assert table.shared_in_photo.tolist() == [False, False, False, True]


def test_a_results_dir_under_the_home_folder_is_expanded(tmp_path, monkeypatch):
    """`results_dir='~/runs/x'` (quoted: Hydra's grammar) made a folder literally named `~` in the working directory
    (dataset.path already expanded `~`); the sweep folder Hydra writes under it too."""
    import subprocess
    import sys
    from pathlib import Path

    from omegaconf import OmegaConf

    from bench.config import load_config, register_resolvers

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_config(["results_dir='~/runs/x'"]).results_dir == str(tmp_path / "home" / "runs" / "x")
    register_resolvers()
    sweep = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "hydra" / "bench.yaml"))["sweep"]["dir"]
    resolved = OmegaConf.create({"results_dir": "~/runs/x", "hydra": {"job": {"name": "faces"}}, "d": sweep}).d
    assert resolved == str(tmp_path / "home" / "runs" / "x" / ".hydra" / "faces")
    out = subprocess.run([sys.executable, "-m", "bench", "config", "results_dir='~/y'"], capture_output=True,
                         text=True, cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path / "home")}, check=True)
    assert f"results_dir: {tmp_path / 'home' / 'y'}" in out.stdout
