"""A balanced pool (pool.balanced=true, bench.pools.balanced): an equal number of faces per
estimated gender x age band, seeded, under its own name; the manifold stage keeps only the
subset. Estimates are stubbed: no model runs here."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.detectors.base import Detection
from bench.pools.balanced import UnbalanceablePool, age_bands, balanced_name, balanced_subset
from bench.spaces.features import KINDS, Features

EDGES = (0, 30, 40)

# (gender, age, how many): 2 genders x 3 bands; the smallest stratum (female 40+) holds 2.
COUNTS = [("female", 22, 5), ("female", 35, 3), ("female", 50, 2),
          ("male", 25, 7), ("male", 33, 4), ("male", 61, 3)]


def estimates(extra=()):
    rows = []
    for gender, age, n in COUNTS:
        for k in range(n):
            rows.append({"face_id": f"{gender}{age}_{k}", "age": float(age), "gender": gender, "agegender_status": "ok"})
    rows += list(extra)
    return pd.DataFrame(rows).sample(frac=1, random_state=1).reset_index(drop=True)  # order must not matter


def strata_of(table, keep):
    kept = table[keep]
    bands = pd.cut(kept.age, [0, 30, 40, np.inf], right=False)
    return kept.groupby([kept.gender, bands], observed=False).size()


def test_age_bands_and_names():
    assert [label for *_, label in age_bands(EDGES)] == ["0-29", "30-39", "40+"]
    with pytest.raises(ValueError, match="increasing"):
        age_bands([30, 20])
    assert balanced_name("dcgan") == "dcgan-balanced"
    assert balanced_name("gp10k", 60) == "gp10k-balanced60"
    assert balanced_name("dcgan-balanced") == "dcgan-balanced"


def test_largest_subset_has_the_smallest_stratum_in_every_stratum():
    table = estimates()
    subset = balanced_subset(table, EDGES, seed=0)
    assert subset.per_stratum == 2 and subset.keep.sum() == 12
    assert (strata_of(table, subset.keep) == 2).all()
    info = subset.provenance()
    assert info["faces"] == 12 and info["per_stratum"] == 2
    assert [(s["gender"], s["age_band"], s["available"], s["kept"]) for s in info["strata"]] == [
        ("female", "0-29", 5, 2), ("female", "30-39", 3, 2), ("female", "40+", 2, 2),
        ("male", "0-29", 7, 2), ("male", "30-39", 4, 2), ("male", "40+", 3, 2)]
    json.dumps(info)  # provenance must be JSON-ready


def test_the_draw_is_seeded_and_independent_of_row_order():
    table = estimates()
    a = balanced_subset(table, EDGES, seed=3)
    b = balanced_subset(table.iloc[::-1].reset_index(drop=True), EDGES, seed=3)
    assert set(table.face_id[a.keep]) == set(table.iloc[::-1].reset_index(drop=True).face_id[b.keep])
    draws = {frozenset(table.face_id[balanced_subset(table, EDGES, seed=s).keep]) for s in range(6)}
    assert len(draws) > 1  # the seed matters where a stratum holds more than it gives


def test_a_set_size_keeps_a_subset_of_the_largest_and_is_checked():
    table = estimates()
    small = balanced_subset(table, EDGES, n=6, seed=0)
    large = balanced_subset(table, EDGES, seed=0)
    assert small.keep.sum() == 6 and (strata_of(table, small.keep) == 1).all()
    assert not (small.keep & ~large.keep).any()  # nested: same seed, smaller n
    assert balanced_subset(table, EDGES, n=8, seed=0).keep.sum() == 6  # rounded down to a multiple of 6 strata
    with pytest.raises(UnbalanceablePool, match="needs 3 faces in each of 6 strata.*holds 2"):
        balanced_subset(table, EDGES, n=18)
    with pytest.raises(UnbalanceablePool, match="fewer than the 6 strata"):
        balanced_subset(table, EDGES, n=5)


def test_faces_without_an_estimate_are_left_out_and_counted():
    extra = [{"face_id": "x1", "age": np.nan, "gender": "", "agegender_status": "n/a: weights not found at /w"},
             {"face_id": "x2", "age": np.nan, "gender": "", "agegender_status": "n/a: weights not found at /w"},
             {"face_id": "x3", "age": 30.0, "gender": "", "agegender_status": "ok"}]
    table = estimates(extra)
    subset = balanced_subset(table, EDGES)
    assert not subset.keep[table.face_id.isin(["x1", "x2", "x3"])].any()
    assert subset.excluded == {"n/a: weights not found at /w": 2, "no age/gender estimate": 1}


def test_an_empty_stratum_is_a_named_error():
    table = estimates()
    table = table[~((table.gender == "female") & (table.age >= 40))]
    with pytest.raises(UnbalanceablePool, match="female 40\\+.*coarser pool.balanced_age_edges"):
        balanced_subset(table, EDGES)


def test_config_names_the_balanced_pool_apart(cfg_factory):
    from bench.layout import pool_outputs
    from bench.pools.base import build_pool

    assert cfg_factory().pool.name == "dcgan" and not build_pool(cfg_factory()).balanced
    cfg = cfg_factory("pool.balanced=true")
    pool = build_pool(cfg)
    assert cfg.pool.name == "dcgan-balanced" and pool.name == "dcgan-balanced" and pool.balanced
    assert pool_outputs(cfg).root.name == "dcgan-balanced"
    assert pool.path.name == "images" and pool.path.parent.name == "dcgan"  # the same images as the full pool
    cfg = cfg_factory("pool=folder", "pool.path=/x", "pool.name=gp", "pool.balanced=true", "pool.balanced_n=60")
    assert cfg.pool.name == "gp-balanced60" and build_pool(cfg).balanced_n == 60


def test_pool_select_keeps_everything_unless_balanced(tmp_path):
    from bench.pools.folder import FolderPool

    faces = pd.DataFrame({"face_id": ["a-000"], "photo": ["a.png"]})
    images = [{"photo": "a.png", "status": "ok"}]
    never = lambda f: pytest.fail("a pool that is not balanced needs no estimates")  # noqa: E731
    assert FolderPool("p", str(tmp_path)).select(faces, images, never) == (faces, images, None)


# ---- the manifold stage on a small synthetic pool with stubbed detector and estimates --------

AGE_GENDER = {}  # photo -> (age, gender code 0/1)


def synthetic_pool(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for gender, age, n in COUNTS:
        for k in range(n):
            photo = f"{gender}{age}_{k}.png"
            Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(folder / photo)
            AGE_GENDER[photo] = (float(age), 0 if gender == "female" else 1)


class FakeDetector:
    """One face filling the middle of the image, landmarks where the ArcFace template puts them."""

    name = "dlib_hog"

    def prepare(self):
        pass

    def weights(self):
        return []

    def detect(self, bgr):
        h, w = bgr.shape[:2]
        s = min(h, w) / 112.0
        marks = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], np.float32) * s
        return [Detection(box=np.array([0.1 * w, 0.1 * h, 0.9 * w, 0.9 * h], np.float32), score=1.0, landmarks=marks)]


def fake_features(faces, table_dir, photo_root, kinds, cfg):
    """Every kind "ok"; age and gender from AGE_GENDER; records which faces were asked for."""
    faces = faces.reset_index(drop=True)
    n = len(faces)
    fake_features.calls.append((tuple(kinds), n))
    feats = Features(face_id=faces.face_id.astype(str).to_numpy())
    for kind in kinds:
        feats.status[kind] = np.full(n, "ok").astype(str)
    if "embedding" in kinds:
        feats.arrays["embedding"] = np.ones((n, 4), np.float32)
    if "inception" in kinds:
        feats.arrays["inception"] = np.ones((n, 8), np.float32)
    if "pixels" in kinds:
        feats.arrays["pixels"] = np.zeros((n, 4, 4, 3), np.uint8)
    if "agegender" in kinds:
        values = [AGE_GENDER[p] for p in faces.photo]
        feats.arrays.update(age=np.array([v[0] for v in values], np.float32),
                            gender=np.array([v[1] for v in values], np.int8),
                            age_confidence=np.full(n, 90, np.float32), gender_confidence=np.full(n, 90, np.float32))
    return feats


fake_features.calls = []


@pytest.fixture
def balanced_run(cfg_factory, tmp_path, monkeypatch):
    from bench.stages import manifold

    synthetic_pool(tmp_path / "pool")
    monkeypatch.setattr(manifold, "build_detector", lambda name, cfg: FakeDetector())
    monkeypatch.setattr(manifold, "compute_features", fake_features)
    fake_features.calls.clear()

    def run(*overrides):
        cfg = cfg_factory("pool=folder", f"pool.path={tmp_path / 'pool'}", "pool.name=toy", *overrides)
        return manifold.run(cfg)

    return run


def test_manifold_keeps_only_the_balanced_subset_under_its_own_name(balanced_run):
    full = balanced_run()
    out = balanced_run("pool.balanced=true")
    assert full.root.name == "toy" and out.root.name == "toy-balanced"
    assert len(pd.read_parquet(full.manifold)) == 24
    manifold = pd.read_parquet(out.manifold)
    faces = pd.read_parquet(out.faces)
    assert len(manifold) == len(faces) == 12 and list(manifold.face_id) == list(faces.face_id)
    bands = pd.cut(manifold.age, [0, 30, 40, np.inf], right=False)
    assert (manifold.groupby([manifold.gender, bands], observed=False).size() == 2).all()
    assert len(Features.load(out.arrays)) == 12
    assert sorted(p.name for p in out.crops.iterdir()) == sorted(f"{f}.png" for f in faces.face_id)
    images = pd.read_csv(out.images)
    assert len(images) == 24 and (images.status == "ok").sum() == 12
    assert (images.status == "not in the balanced subset").sum() == 12
    # the estimates are asked for once for every face, the other features for the subset only
    assert fake_features.calls[-2:] == [(("agegender",), 24), (KINDS, 12)]
    balance = json.loads(out.provenance.read_text())["pool"]["balance"]
    assert balance["per_stratum"] == 2 and balance["faces"] == 12
    assert {(s["gender"], s["age_band"]): s["available"] for s in balance["strata"]} == {
        ("female", "0-29"): 5, ("female", "30-39"): 3, ("female", "40+"): 2,
        ("male", "0-29"): 7, ("male", "30-39"): 4, ("male", "40+"): 3}
    assert json.loads(full.provenance.read_text())["pool"]["balance"] is None


def test_manifold_balanced_rerun_is_byte_identical(balanced_run):
    out = balanced_run("pool.balanced=true", "pool.balanced_n=6")
    assert out.root.name == "toy-balanced6" and len(pd.read_parquet(out.manifold)) == 6
    before = {p: p.read_bytes() for p in (out.faces, out.manifold, out.arrays, out.images)}
    balanced_run("pool.balanced=true", "pool.balanced_n=6")
    assert {p: p.read_bytes() for p in before} == before


def test_manifold_refuses_a_pool_that_cannot_be_balanced(balanced_run):
    with pytest.raises(UnbalanceablePool, match="pool.balanced_n=60 needs 10"):
        balanced_run("pool.balanced=true", "pool.balanced_n=60")


def test_fig5_draws_both_kinds_of_pool_where_both_manifolds_exist(balanced_run, cfg_factory, tmp_path):
    from bench.pools.balanced import pool_kinds

    full = cfg_factory("pool=folder", f"pool.path={tmp_path / 'pool'}", "pool.name=toy")
    balanced = cfg_factory("pool=folder", f"pool.path={tmp_path / 'pool'}", "pool.name=toy", "pool.balanced=true")
    assert [c.pool.name for c in pool_kinds(full)] == ["toy"]  # no balanced manifold yet
    balanced_run()
    balanced_run("pool.balanced=true")
    assert [(c.pool.name, c.pool.balanced) for c in pool_kinds(full)] == [("toy", False), ("toy-balanced", True)]
    assert [(c.pool.name, c.pool.balanced) for c in pool_kinds(balanced)] == [("toy-balanced", True), ("toy", False)]
