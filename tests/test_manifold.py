"""The pool, manifold and query stages end to end on a tiny DCGAN pool (8 faces) and the
embedded sample photo, in tmp_path: outputs, failure rows, byte-identical reruns."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.facetable import FACE_COLUMNS
from bench.pools.dcgan import package_weights
from bench.spaces.features import KINDS, Features

N = 8


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if package_weights() is None or not package_weights().is_file():
        pytest.skip("gan-face-generate is not installed (scripts/install.sh installs it --no-deps)")
    from bench.config import load_config
    from bench.stages import faces, manifold, pool

    root = tmp_path_factory.mktemp("manifold")

    def make(*overrides, pool_overrides=("pool=dcgan", f"pool.n={N}")):
        return load_config([f"results_dir={root / 'results'}", *pool_overrides, *overrides])

    cfg = make()
    pool.run(cfg)
    out = manifold.run(cfg)
    faces.run(cfg)  # the sample dataset: insightface's t1.jpg, six faces
    return make, out


def test_manifold_writes_the_pool_faces_and_features(env):
    _, out = env
    faces = pd.read_parquet(out.faces)
    failures = pd.read_csv(out.failures)
    assert list(faces.columns) == FACE_COLUMNS
    assert len(faces) + len(failures[failures.face_id.isna()]) == N  # every image: a face or a failure row
    assert faces.aligned.all() and len(faces) >= N - 2
    images = pd.read_csv(out.images)
    assert len(images) == N and (images.status == "ok").sum() == len(faces)
    assert images.sha256.str.len().eq(64).all() and (images.width == 64).all()
    assert all(len(l) == 10 for l in faces.landmarks)
    points = np.stack(faces.landmarks.to_numpy())
    assert points.min() >= 0 and points.max() <= 64  # scaled back from the upscaled image
    manifold = pd.read_parquet(out.manifold)
    assert list(manifold.face_id) == list(faces.face_id)
    for kind in KINDS:
        assert f"{kind}_status" in manifold
    assert (manifold.inception_status == "ok").all() and (manifold.pixels_status == "ok").all()
    assert (manifold.agegender_status == "ok").all()
    assert manifold.gender.isin(["female", "male"]).all() and manifold.age.between(0, 100).all()
    # embeddings need the query recognizer: either real vectors or an "n/a: ..." reason
    assert manifold.embedding_status.map(lambda s: s == "ok" or s.startswith("n/a")).all()
    feats = Features.load(out.arrays)
    assert feats.arrays["inception"].shape == (len(faces), 2048)
    assert feats.arrays["pixels"].shape == (len(faces), 64, 64, 3)


def test_manifold_rerun_is_byte_identical(env):
    make, out = env
    from bench.stages import manifold

    before = {p: p.read_bytes() for p in (out.faces, out.manifold, out.arrays, out.failures, out.images)}
    manifold.run(make())  # features now come from the per-face cache
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("metric,query", [("ssim", "random_furthest"), ("fid", "furthest_ag")])
def test_query_picks_a_target_per_source_face(env, metric, query):
    make, out = env
    from bench.stages import query as query_stage

    cfg = make(f"metric={metric}", f"query={query}")
    path = query_stage.run(cfg)
    targets = pd.read_parquet(path)
    failures = pd.read_csv(query_stage.sidecar(path, ".failures.csv"))
    faces = pd.read_parquet(out.root.parent.parent / "sample" / "faces.parquet")
    assert len(targets) + len(failures) == len(faces)  # nothing dropped silently
    assert set(targets.target) <= set(pd.read_parquet(out.faces).face_id)
    assert (targets.space == metric).all() and (targets.strategy == query).all()
    assert all(len(l) == 10 for l in targets.target_landmarks) and all(len(b) == 4 for b in targets.target_box)
    assert targets.target_image.map(lambda p: __import__("pathlib").Path(p).is_file()).all()
    if query.endswith("_ag"):
        assert (targets.source_gender == targets.target_gender).all()
        assert ((targets.source_age - targets.target_age).abs() <= targets.age_band).all()
    first = path.read_bytes()
    query_stage.run(cfg)
    assert path.read_bytes() == first


def test_query_without_manifold_says_what_to_run(env, tmp_path):
    make, _ = env
    from bench.errors import BenchError
    from bench.stages import query as query_stage

    with pytest.raises(BenchError, match="python -m bench manifold"):
        query_stage.run(make(pool_overrides=("pool=folder", f"pool.path={tmp_path}", "pool.name=empty")))


def test_figures_draw_from_the_result_files(env):
    make, out = env
    from bench.figures.fig5 import plot_pool_distributions, pool_distribution
    from bench.figures.fig6 import plot_furthest_per_space

    cfg = make()
    dist = pool_distribution(cfg)
    assert len(dist.ages) == len(pd.read_parquet(out.faces))
    assert len(dist.distances) > 0 or dist.reason  # numbers, or the reason there are none
    fig5 = plot_pool_distributions([dist], out.root / "fig5.png", "sample")
    # Fig. 6 with spaces whose queries ran above, and one that did not ("n/a: not run")
    fig6 = plot_furthest_per_space(out.root.parent.parent / "sample", "dcgan", "t1.jpg", out.root / "fig6.png",
                                   spaces=("ssim", "psnr"), strategy="random_furthest")
    assert fig5.stat().st_size > 10_000 and fig6.stat().st_size > 10_000


def test_manifold_computes_only_the_features_asked_for(env, tmp_path):
    """manifold.features leaves a pool's costly features out (a run that never queries FID);
    a query in a space whose feature is missing fails naming the key, the others run."""
    make, _ = env
    from bench.errors import BenchError
    from bench.layout import pool_outputs
    from bench.stages import faces, manifold, pool
    from bench.stages import query as query_stage

    def cfg(*more):
        return make(f"results_dir={tmp_path}", "manifold.features=[pixels,agegender]", *more)

    pool.run(cfg())
    out = manifold.run(cfg())
    faces.run(cfg())
    feats = Features.load(out.arrays)
    assert set(feats.status) == {"pixels", "agegender"} and "inception" not in feats.arrays
    table = pd.read_parquet(out.manifold)
    assert "inception_status" not in table and (table.pixels_status == "ok").all()
    assert len(pd.read_parquet(query_stage.run(cfg("metric=ssim", "query=random_furthest_ag")))) > 0
    with pytest.raises(BenchError, match="manifold.features"):
        query_stage.run(cfg("metric=fid", "query=furthest"))
    with pytest.raises(BenchError, match="unknown kind"):
        manifold.run(cfg("manifold.features=[inceptoin]"))
    assert pool_outputs(cfg()).root == out.root
