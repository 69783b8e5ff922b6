"""Query scaling (bench/benchmarks/query_scaling.py) and the faster paths it measures: the
embedding space's cosine distances bit for bit deepface's, the strategies' fast path the
same picks as the general one, the pixel spaces' fast method equal to torchmetrics (RMSE
and PSNR exactly equal to integer arithmetic), and the approximate index against exact.
Tiny sizes; no timing is ever asserted."""
from __future__ import annotations

import json

import numpy as np
import pytest
from deepface.modules.verification import find_distance
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.benchmarks import query_scaling as qs
from bench.queries.base import rng_for
from bench.queries.strategies import Closest, Furthest, RandomFurthest, eq1_candidates
from bench.registry import QUERIES
from bench.spaces import embedding
from bench.spaces.pixels import PsnrSpace, RmseSpace, SsimSpace

STRATEGIES = {"closest": Closest(), "furthest": Furthest(), "random_furthest": RandomFurthest()}


# ---- the embedding space -------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(1, 9), st.integers(1, 2600), st.sampled_from([3, 128, 512]), st.integers(0, 2**31 - 1))
def test_cosine_distances_are_deepface_bit_for_bit(queries, pool, dim, seed):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((queries, dim)).astype(np.float32)
    p = rng.standard_normal((pool, dim)).astype(np.float32)
    p[rng.random(pool) < 0.01] = 0  # a zero row: deepface's epsilon keeps it finite
    expected = find_distance(p.astype(np.float64), q.astype(np.float64), "cosine")
    assert np.array_equal(embedding.cosine_distances(q, p), expected)


@pytest.mark.parametrize("metric", ["euclidean", "euclidean_l2"])
def test_euclidean_query_blocks_change_nothing(monkeypatch, metric):
    rng = np.random.default_rng(1)
    q, p = rng.standard_normal((7, 64)).astype(np.float32), rng.standard_normal((300, 64)).astype(np.float32)
    space = embedding.EmbeddingSpace("dlib", metric)
    whole = find_distance(p.astype(np.float64), q.astype(np.float64), metric)
    monkeypatch.setattr(embedding, "DIFFERENCE_BYTES", 2 * 300 * 64 * 8)  # two queries per block
    assert np.array_equal(space.distances(q, p), whole)


# ---- the strategies' fast path -------------------------------------------------------------

distance_rows = st.lists(st.integers(0, 6), min_size=1, max_size=40).map(lambda v: np.array(v, np.float64) / 4)


@settings(max_examples=150, deadline=None)
@given(distance_rows, st.sampled_from(sorted(STRATEGIES)), st.integers(0, 2**31 - 1))
def test_every_pool_face_eligible_picks_as_the_general_path(d, name, seed):
    """All faces eligible skips the index map; a NaN face appended forces it: same pick, same
    counts (ties are frequent: distances from 7 levels)."""
    query = STRATEGIES[name]
    fast = query.select(d, rng_for(seed, "face"))
    general = query.select(np.append(d, np.nan), rng_for(seed, "face"))
    assert (fast.index, fast.distance, fast.n_candidates, fast.n_eligible) == \
        (general.index, general.distance, general.n_candidates, general.n_eligible)
    # and the rules themselves, written out: first of the ties, Eq. 1's set
    if name == "closest":
        assert fast.index == int(np.flatnonzero(d == d.min())[0])
    elif name == "furthest":
        assert fast.index == int(np.flatnonzero(d == d.max())[0])
    else:
        spread = d.std()
        members = np.flatnonzero(d > d.max() - spread) if spread > 0 else np.flatnonzero(d == d.max())
        assert np.array_equal(eq1_candidates(d), members) and fast.index in members


# ---- the pixel spaces' fast method ---------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 30), st.integers(6, 20), st.booleans(), st.integers(1, 7),
       st.integers(0, 2**31 - 1))
def test_fast_rmse_and_psnr_are_the_exact_integer_values(n_queries, n_pool, size, gray, chunk, seed):
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 256, (n_pool, size, size, 3), dtype=np.uint8)
    queries = np.concatenate([pool[:1], rng.integers(0, 256, (n_queries - 1, size, size, 3), dtype=np.uint8)])
    rmse = RmseSpace(grayscale=gray, chunk=chunk, method="fast")
    levels, white = rmse.levels(pool)
    q_levels, _ = rmse.levels(queries)
    sse = ((q_levels[:, None, :].astype(np.int64) - levels[None].astype(np.int64)) ** 2).sum(-1)
    mse = sse / (levels.shape[1] * float(white) ** 2)
    assert np.array_equal(rmse.distances(queries, pool), np.sqrt(mse))
    psnr = PsnrSpace(grayscale=gray, chunk=chunk, method="fast")
    with np.errstate(divide="ignore"):
        assert np.array_equal(psnr.distances(queries, pool), 10 * np.log10(mse))
    assert psnr.distances(queries, pool)[0, 0] == -np.inf  # identical crops, as torchmetrics


@pytest.mark.parametrize("gray", [False, True])
@pytest.mark.parametrize("name", ["rmse", "psnr", "ssim"])
def test_fast_method_equals_torchmetrics(name, gray):
    pool = qs.synthetic_crops(40, 24, seed=3)
    queries = np.concatenate([pool[[5]], qs.synthetic_crops(2, 24, seed=4)])
    slow = qs.build_space(name, grayscale=gray)
    fast = qs.build_space(name, grayscale=gray, method="fast", chunk=16)
    a, b = slow.distances(queries, pool), fast.distances(queries, pool)
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    finite = np.isfinite(a)
    # torchmetrics works in float32: RMSE/PSNR differ from the exact values by ~1e-7
    # relative; SSIM's two float32 orders of the same formula by ~1e-6
    np.testing.assert_allclose(b[finite], a[finite], rtol=1e-5, atol=2e-5)
    for strategy in ("closest", "furthest"):
        for row in range(len(queries)):
            slow_pick = STRATEGIES[strategy].select(a[row], rng_for(0, "x")).index
            assert STRATEGIES[strategy].select(b[row], rng_for(0, "x")).index == slow_pick


def test_unknown_pixel_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        SsimSpace(method="quick")


# ---- the benchmark's pieces ----------------------------------------------------------------

def test_synthetic_embeddings_are_seeded_unit_vectors_and_nested():
    a = qs.synthetic_embeddings(300, 64, 1.0, seed=5)
    assert a.dtype == np.float32 and a.shape == (300, 64)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-6)
    assert np.array_equal(qs.synthetic_embeddings(120, 64, 1.0, seed=5), a[:120])
    assert not np.array_equal(qs.synthetic_embeddings(120, 64, 1.0, seed=6), a[:120])
    # decay concentrates the variance: the top principal direction carries more of it
    iso = qs.synthetic_embeddings(2000, 64, 0.0, seed=5)
    top = lambda x: np.linalg.eigvalsh(np.cov(x.T))[-1] / np.trace(np.cov(x.T))  # noqa: E731
    assert top(qs.synthetic_embeddings(2000, 64, 1.0, seed=5)) > 2 * top(iso)


def test_pool_covariance_gives_the_std_of_eq1():
    pool = qs.synthetic_embeddings(3000, 32, 1.0, seed=2)
    q = qs.synthetic_embeddings(3, 32, 1.0, seed=2, stream="sources")
    cov = qs.pool_covariance(pool, block=700)
    d = qs.build_space("embedding").distances(q, pool)
    for i in range(3):
        x = q[i].astype(np.float64)
        assert np.sqrt(x @ cov @ x) == pytest.approx(d[i].std(), rel=1e-5)


def test_agreement_counts():
    exact = qs.Picks(np.array([1, 2, 3]), np.array([0.1, 0.2, 0.3]), [np.array([1, 4]), np.array([2]), np.array([3, 5])])
    approx = qs.Picks(np.array([4, 2, 7]), np.array([0.4, 0.2, 0.7]), [np.array([4]), np.array([2]), np.array([5, 7])])
    got = qs.agreement(exact, approx)
    assert got["same_pick"] == pytest.approx(1 / 3)
    assert got["recall_at_1"] == pytest.approx(2 / 3)  # 4 and 2 lie in the exact sets, 7 does not
    assert got["candidate_recall"] == pytest.approx(3 / 5)
    assert got["candidate_precision"] == pytest.approx(3 / 4)
    assert got["set_agreement"] == pytest.approx(1 / 3)
    plain = qs.agreement(qs.Picks(np.array([1, 2]), np.array([0.1, 0.2])), qs.Picks(np.array([1, 3]), np.array([0.1, 0.3])))
    assert plain["recall_at_1"] == plain["same_pick"] == 0.5


def test_exact_pass_in_blocks_picks_as_one_call():
    space = qs.build_space("embedding")
    queries = {name: QUERIES.build(name) for name in STRATEGIES}
    src = qs.synthetic_embeddings(9, 64, 1.0, seed=0, stream="sources")
    pool = qs.synthetic_embeddings(1500, 64, 1.0, seed=0)
    ids = qs.face_ids(9)
    one, whole = qs.exact_pass(space, queries, src, pool, ids, 0, 1 << 30, 1)
    blocked, parts = qs.exact_pass(space, queries, src, pool, ids, 0, 200_000, 1)
    assert (one["mode"], blocked["mode"]) == ("single call", "blocked") and blocked["blocks"] > 1 < blocked["batches"]
    for name in STRATEGIES:
        assert np.array_equal(whole[name].index, parts[name].index)
    assert all(np.array_equal(a, b) for a, b in zip(whole["random_furthest"].candidates, parts["random_furthest"].candidates))


def test_approximate_index_recalls_the_exact_picks():
    pytest.importorskip("faiss")
    space = qs.build_space("embedding")
    queries = {name: QUERIES.build(name) for name in STRATEGIES}
    src = qs.synthetic_embeddings(20, 128, 1.0, seed=0, stream="sources")
    pool = qs.synthetic_embeddings(2000, 128, 1.0, seed=0)
    ids = qs.face_ids(20)
    _, exact = qs.exact_pass(space, queries, src, pool, ids, 0, 1 << 30, 1)
    index = qs.build_index(pool, "IVF16,SQ8", 2000, seed=0)
    cov = qs.pool_covariance(pool)
    index.nprobe = 16  # every list: only the 8-bit codes stand between index and exact
    picks, _ = qs.approximate_picks(index, space, queries, src, pool, ids, 0, cov, rerank=32, margin=0.01)
    for name in STRATEGIES:
        got = qs.agreement(exact[name], picks[name])
        assert got["recall_at_1"] >= 0.99 and got["same_pick"] >= 0.99, (name, got)
    eq1 = qs.agreement(exact["random_furthest"], picks["random_furthest"])
    assert eq1["candidate_recall"] >= 0.99 and eq1["candidate_precision"] == 1.0
    # Few lists: where the furthest face is still found (Eq. 1's max), the set may lose members
    # (unvisited lists) but never gain any (every member is re-scored exactly).
    index.nprobe = 2
    picks, _ = qs.approximate_picks(index, space, queries, src, pool, ids, 0, cov, rerank=32, margin=0.01)
    same_max = picks["furthest"].index == exact["furthest"].index
    assert same_max.any()
    for i in np.flatnonzero(same_max):
        assert np.isin(picks["random_furthest"].candidates[i], exact["random_furthest"].candidates[i]).all()
    assert 0 < qs.index_bytes(index) < pool.nbytes


def test_peak_rss_is_measured():
    phases = qs.Phases()
    with phases("allocate"):
        block = np.ones(32 << 20, np.uint8)
    assert phases.rows["allocate"]["peak_rss_bytes"] >= block.nbytes
    assert phases.peak() >= block.nbytes


def test_command_is_registered():
    from bench.cli import COMMANDS

    assert COMMANDS["perf-query"][0] == qs.__name__


def test_run_writes_the_report(cfg_factory, tmp_path):
    pytest.importorskip("faiss")
    p = "perf.query_scaling."
    cfg = cfg_factory(f"{p}sources=8", f"{p}dim=64", f"{p}exact.pool_sizes=[1000,2000]", f"{p}exact.repeats=1",
                      f"{p}approximate.pool_sizes=[2000]", f"{p}approximate.nlist=16", f"{p}approximate.nprobe=16",
                      f"{p}approximate.train_size=2000", f"{p}pixels.pool_size=40", f"{p}pixels.size=24",
                      f"{p}pixels.sources=4", f"{p}pixels.full_sources=2", f"{p}pixels.prefilter.size=12",
                      f"{p}pixels.prefilter.top_k=40", f"{p}threads=1")
    report = qs.run(cfg)
    from bench.layout import query_scaling_files

    files = query_scaling_files(cfg.results_dir)
    assert json.loads(files["json"].read_text())["exact"] == json.loads(json.dumps(report["exact"]))
    assert "## 2. Approximate" in files["md"].read_text()
    assert {(r["pool"], r["strategy"], r["threads"]) for r in report["exact"]} == \
        {(n, s, t) for n in (1000, 2000) for s in STRATEGIES for t in ("default", "1")}
    assert all(r["same_picks_as_first"] for r in report["exact"])
    assert all(r["recall_at_1"] >= 0.99 for r in report["approximate"])
    fast = [r for r in report["pixels"] if r["method"].startswith("fast")]
    assert len(fast) == 3 and all(r["closest_recall_at_1"] == 1.0 and r["same_infinities"] for r in fast)
    # top_k = the whole pool: the prefilter re-scores everything, so it picks as the full pass
    prefilter = [r for r in report["pixels"] if r["method"].startswith("prefilter")]
    assert prefilter and prefilter[0]["closest_recall_at_1"] == 1.0 == prefilter[0]["furthest_recall_at_1"]
    prov = report["provenance"]
    assert prov["seed"] == cfg.seed and prov["machine"]["cpu_count"] >= 1
    assert prov["libraries"]["faiss-cpu"] != "not installed" and prov["data"]["pool_sizes"] == [1000, 2000]
    assert report["memory"]["within_limit"] and report["memory"]["peak_rss_bytes"] > 0
