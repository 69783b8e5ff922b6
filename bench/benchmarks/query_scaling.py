"""Benchmark (issue 11, query scaling and memory): what picking a target costs as the pool
grows, on synthetic seeded data (no model, no photo), in three parts.

1. **Exact** at every size of `exact.pool_sizes` (10k, 100k, 1M): the project's own query
   path, as the query stage runs it: the embedding space's distances of all source faces to
   the pool in one call (bench.spaces.embedding: deepface's cosine, float64), then each
   strategy's `select` per source face (bench.queries: closest, furthest, Eq. 1's
   random-furthest). A pool whose temporaries exceed `memory_mib` (1M: a 4 GiB float64 copy)
   is queried in source batches and pool blocks instead, the same functions on slices (a
   distance may then differ from one call's in the last bit before deepface's rounding to 6
   decimals: BLAS's summation order depends on the matrix shapes).
2. **Approximate** at `approximate.pool_sizes` (1M): a faiss inverted-file index with 8-bit
   scalar quantisation (`IVF1024,SQ8`, inner product: on unit vectors, 1 − cosine distance),
   its candidates re-scored by the project's space and picked by the project's strategies:
     closest           the index's `rerank` nearest to q, re-scored, the closest kept;
     furthest          the same for −q: the largest inner product with −q is the smallest
                       with q, i.e. the largest cosine distance;
     random_furthest   Eq. 1's set {d > max − std}: max from the furthest search; std over
                       the whole pool in closed form, sqrt(qᵀ C q) with C the pool's
                       covariance (var(1 − q·p) = qᵀ C q; computed once, like the index);
                       the set by a range search for −q: faces whose 8-bit coded inner product
                       clears max − std by more than `range_margin` (the codes' error is
                       ~1e-3) are members, those within the margin either way are re-scored
                       exactly and cut at max − std; one member drawn with the face's
                       generator, exactly as the exact query draws
                       (bench.queries.strategies.draw).
   Recall, against the exact pass on the same sources:
     recall_at_1       closest/furthest: share of source faces whose approximate pick is the
                       exact pick; random_furthest: share whose approximate pick is in the
                       exact candidate set (a valid Eq. 1 target);
     same_pick         share whose pick is the exact pick (for Eq. 1: the same draw, which
                       needs the same set);
     candidate_recall  Eq. 1: |approximate set ∩ exact set| / |exact set|, over all faces;
     candidate_precision, set_agreement  Eq. 1: ... / |approximate set|; share of faces
                       whose two sets are equal.
   Memory: the peak resident set size of each phase (Linux: VmHWM, reset between phases) and
   the index's own bytes; the whole run is checked against `approximate.max_rss_gib`.
3. **Pixels**: the RMSE, PSNR and SSIM spaces over a `pixels.pool_size` pool of synthetic
   crops at the size the spaces use (manifold.pixel_size): the full torchmetrics pass
   (`full_sources` faces: SSIM takes seconds per face) against the spaces' `method: fast`
   (exact integer sums for RMSE/PSNR, factorised SSIM; bench/spaces/pixels.py), and for SSIM
   a bounded prefilter: a fast SSIM pass on crops downsampled to `prefilter.size`, then the
   full-size SSIM on its `top_k` candidates (closest and furthest only: Eq. 1 needs the max
   and the std of the whole pool, which a prefilter does not bound). Agreement with the full
   pass is measured on the full pass's sources.

Times are wall-clock seconds per source face on this machine (provenance: cpu count, model,
library versions); they move with the machine's load, the recalls do not.

Writes <results_dir>/benchmarks/query_scaling.{json,md} (bench.layout.query_scaling_files).
Run:
    python -m bench perf-query [perf.query_scaling.exact.pool_sizes=[10000]]
"""
from __future__ import annotations

import contextlib
import logging
import os
import platform
import resource
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.errors import BenchError
from bench.layout import query_scaling_files
from bench.provenance import library_versions, record
from bench.queries.base import Query, rng_for
from bench.queries.strategies import draw, eq1_candidates
from bench.registry import QUERIES, SPACES
from bench.spaces.base import Space

log = logging.getLogger(__name__)

GIB = 1 << 30
EMBEDDING_BLOCK = 65536  # synthetic rows drawn per generator (a pool is a prefix of a larger one)
STREAMS = {"pool": 1, "sources": 2, "rotation": 3, "train": 4, "crops": 5, "crop_sources": 6}
EQ1 = "random_furthest"


# ---- memory --------------------------------------------------------------------------------

def _status_bytes(key: str) -> int | None:
    """A `VmHWM`/`VmRSS` line of /proc/self/status in bytes (None off Linux)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


def peak_rss() -> int:
    """Peak resident set size since the last reset_peak() (Linux), else since the start."""
    peak = _status_bytes("VmHWM")
    if peak is None:  # ru_maxrss: kilobytes on Linux, bytes on macOS
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if platform.system() == "Darwin" else 1024)
    return peak


def reset_peak() -> bool:
    """Restarts the peak RSS count at the current RSS (Linux's clear_refs 5); False where
    the kernel does not allow it (the peaks are then since the start, an upper bound)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class Phases:
    """Seconds, peak RSS and the load average at the end of each named phase of the run (other
    jobs on the machine slow every time figure; the load says how busy it was)."""

    rows: dict[str, dict] = field(default_factory=dict)
    resettable: bool = True

    @contextlib.contextmanager
    def __call__(self, name: str):
        self.resettable &= reset_peak()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.rows[name] = {"seconds": round(time.perf_counter() - start, 3), "peak_rss_bytes": peak_rss(),
                               "load_average": _load()}

    def load(self, name: str) -> float | None:
        """The 1-minute load average when phase `name` ended."""
        load = self.rows[name]["load_average"]
        return load[0] if load else None

    def peak(self, prefix: str = "") -> int:
        return max((r["peak_rss_bytes"] for n, r in self.rows.items() if n.startswith(prefix)), default=0)


# ---- synthetic data ------------------------------------------------------------------------

def _rng(seed: int, stream: str, block: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), STREAMS[stream], int(block)])


def rotation(dim: int, seed: int) -> np.ndarray:
    """A random orthonormal (dim, dim) float32 basis (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(_rng(seed, "rotation").standard_normal((dim, dim)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


def synthetic_embeddings(n: int, dim: int, decay: float, seed: int, stream: str = "pool") -> np.ndarray:
    """(n, dim) float32 unit vectors: Gaussian with variance (i + 1)^-decay along a random
    orthonormal basis, L2-normalised like ArcFace's embeddings. Drawn in blocks of
    EMBEDDING_BLOCK rows, each from its own generator, so no float64 copy of a 1M pool is made
    and a smaller pool of the same stream is a prefix of a larger one."""
    basis = rotation(dim, seed)
    scale = (np.arange(1, dim + 1, dtype=np.float64) ** (-float(decay) / 2)).astype(np.float32)
    out = np.empty((n, dim), np.float32)
    for block, start in enumerate(range(0, n, EMBEDDING_BLOCK)):
        rows = min(EMBEDDING_BLOCK, n - start)
        # (numpy's Generator fills sequentially: fewer rows are a prefix of more rows)
        x = _rng(seed, stream, block).standard_normal((rows, dim), dtype=np.float32)
        x *= scale
        x = x @ basis
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start:start + rows] = x
    return out


def synthetic_crops(n: int, size: int, seed: int, stream: str = "crops") -> np.ndarray:
    """(n, size, size, 3) uint8 smooth random images (SSIM is meaningless on white noise): an
    8x8 RGB grid of uniform levels upsampled bicubically, plus Gaussian noise (sd 4 levels)."""
    out = np.empty((n, size, size, 3), np.uint8)
    for block, start in enumerate(range(0, n, 1024)):
        rows = min(1024, n - start)
        rng = _rng(seed, stream, block)
        grids = rng.uniform(0, 255, (rows, 8, 8, 3)).astype(np.float32)
        noise = rng.normal(0, 4, (rows, size, size, 3)).astype(np.float32)
        for i in range(rows):
            image = cv2.resize(grids[i], (size, size), interpolation=cv2.INTER_CUBIC) + noise[i]
            out[start + i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return out


def face_ids(n: int, prefix: str = "synthetic") -> list[str]:
    """Source face ids: each face's Eq. 1 draw depends on the seed and its id (rng_for)."""
    return [f"{prefix}-{i:05d}" for i in range(n)]


# ---- exact ---------------------------------------------------------------------------------

@dataclass
class Picks:
    """One strategy's picks for every source face: pool index and distance; for Eq. 1 also
    each face's candidate set (ascending pool indices)."""

    index: np.ndarray
    distance: np.ndarray
    candidates: list[np.ndarray] | None = None


def select_all(query: Query, distances: np.ndarray, ids: list[str], seed: int) -> tuple[Picks, float]:
    """The strategy's pick for each row of `distances` (the query stage's call), and the
    seconds the picks took; Eq. 1's candidate sets are recorded outside the timing."""
    start = time.perf_counter()
    sels = [query.select(row, rng_for(seed, face)) for row, face in zip(distances, ids)]
    seconds = time.perf_counter() - start
    cands = [eq1_candidates(row) for row in distances] if query.random else None
    return Picks(np.array([s.index for s in sels]), np.array([s.distance for s in sels]), cands), seconds


def exact_pass(space: Space, queries: dict[str, Query], sources: np.ndarray, pool: np.ndarray, ids: list[str],
               seed: int, memory_bytes: int, repeats: int) -> tuple[dict, dict[str, Picks]]:
    """Every strategy's exact picks over the pool, timed.

    One call of space.distances for all sources when its temporaries fit `memory_bytes` (a
    float64 copy of the pool and the (Q, N) distances): timed `repeats` times (median), as
    the query stage runs it. Otherwise source batches x pool blocks, once.

    Returns:
        ({"mode", "distances_s", "select_s": {strategy: s}, "batches", "blocks"}, picks).
    """
    n, dim = pool.shape
    q = len(sources)
    single = n * dim * 8 + q * n * 8 <= memory_bytes
    if single:
        times = []
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            distances = space.distances(sources, pool)
            times.append(time.perf_counter() - start)
        picks, select_s = {}, {}
        for name, query in queries.items():
            picks[name], select_s[name] = select_all(query, distances, ids, seed)
        return {"mode": "single call", "distances_s": float(np.median(times)), "select_s": select_s,
                "batches": 1, "blocks": 1}, picks
    batch = max(1, min(q, memory_bytes // 2 // (n * 8)))
    block = max(1, memory_bytes // 2 // ((dim + batch) * 8))
    distances_s = 0.0
    select_s = {name: 0.0 for name in queries}
    parts: dict[str, list[Picks]] = {name: [] for name in queries}
    for first in range(0, q, batch):
        src = sources[first:first + batch]
        start = time.perf_counter()
        distances = np.empty((len(src), n), np.float64)
        for lo in range(0, n, block):
            distances[:, lo:lo + block] = space.distances(src, pool[lo:lo + block])
        distances_s += time.perf_counter() - start
        for name, query in queries.items():
            part, seconds = select_all(query, distances, ids[first:first + batch], seed)
            parts[name].append(part)
            select_s[name] += seconds
        del distances
    picks = {name: Picks(np.concatenate([p.index for p in ps]), np.concatenate([p.distance for p in ps]),
                         [c for p in ps for c in p.candidates] if ps[0].candidates is not None else None)
             for name, ps in parts.items()}
    return {"mode": "blocked", "distances_s": distances_s, "select_s": select_s,
            "batches": -(-q // batch), "blocks": -(-n // block)}, picks


# ---- approximate ---------------------------------------------------------------------------

def pool_covariance(pool: np.ndarray, block: int = EMBEDDING_BLOCK) -> np.ndarray:
    """(D, D) float64 population covariance of the pool's rows (blocks: no float64 copy)."""
    n, dim = pool.shape
    total = np.zeros(dim, np.float64)
    gram = np.zeros((dim, dim), np.float64)
    for lo in range(0, n, block):
        x = pool[lo:lo + block].astype(np.float64)
        total += x.sum(axis=0)
        gram += x.T @ x
    mean = total / n
    return gram / n - np.outer(mean, mean)


def index_spec(settings: DictConfig) -> str:
    """faiss index_factory's string for perf.query_scaling.approximate."""
    return f"IVF{int(settings.nlist)},{settings.codes}"


def build_index(pool: np.ndarray, spec: str, train_size: int, seed: int, threads: int | None = None):
    """A trained faiss index (inner product) holding the pool; rows are added in blocks."""
    import faiss

    faiss.omp_set_num_threads(threads or os.cpu_count() or 1)
    n, dim = pool.shape
    index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    train = np.sort(_rng(seed, "train").choice(n, size=min(n, int(train_size)), replace=False))
    index.train(np.ascontiguousarray(pool[train]))
    for lo in range(0, n, EMBEDDING_BLOCK):
        index.add(np.ascontiguousarray(pool[lo:lo + EMBEDDING_BLOCK]))
    return index


def index_bytes(index) -> int:
    """What the index holds: codes and ids of every list, the coarse centroids and the
    quantiser's trained ranges (faiss IVF); otherwise the serialised size."""
    import faiss

    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return int(faiss.serialize_index(index).nbytes)
    lists = ivf.invlists
    entries = sum(lists.list_size(i) for i in range(ivf.nlist))
    trained = faiss.vector_to_array(ivf.sq.trained).nbytes if hasattr(ivf, "sq") else 0
    return int(entries * (lists.code_size + 8) + ivf.nlist * ivf.d * 4 + trained)


def _rescored(space: Space, source: np.ndarray, pool: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ascending unique pool ids, their exact distances to `source` by the project's space)."""
    ids = np.unique(ids[ids >= 0])
    return ids, space.distances(source[None], pool[ids])[0]


def approximate_picks(index, space: Space, queries: dict[str, Query], sources: np.ndarray, pool: np.ndarray,
                      ids: list[str], seed: int, covariance: np.ndarray, rerank: int, margin: float
                      ) -> tuple[dict[str, Picks], dict[str, float]]:
    """Each strategy's picks through the index, and the seconds each strategy took.

    closest / furthest: the index's `rerank` best for q / −q, re-scored, picked by the
    strategy itself (ascending pool ids, so ties break as in the exact pass). Eq. 1: see the
    module docstring; its time includes the furthest search it needs for the max.
    """
    neg = np.ascontiguousarray(-sources)
    seconds: dict[str, float] = {}
    picks: dict[str, Picks] = {}
    hits: dict[str, np.ndarray] = {}
    for name, vectors in (("closest", sources), ("furthest", neg)):
        start = time.perf_counter()
        _, found = index.search(np.ascontiguousarray(vectors), rerank)
        hits[name] = found
        seconds[name] = time.perf_counter() - start
    for name, query in queries.items():
        if name not in hits:
            continue
        start = time.perf_counter()
        index_, distance = [], []
        for i, face in enumerate(ids):
            cand, d = _rescored(space, sources[i], pool, hits[name][i])
            sel = query.select(d, rng_for(seed, face))
            index_.append(cand[sel.index])
            distance.append(sel.distance)
        seconds[name] += time.perf_counter() - start
        picks[name] = Picks(np.array(index_), np.array(distance))
    if EQ1 in queries:
        start = time.perf_counter()
        furthest = [_rescored(space, sources[i], pool, hits["furthest"][i]) for i in range(len(ids))]
        index_, distance, sets = [], [], []
        for i, face in enumerate(ids):
            q = sources[i].astype(np.float64)
            spread = float(np.sqrt(max(q @ covariance @ q, 0.0)))
            far_ids, far_d = furthest[i]
            top = float(far_d.max())
            if spread > 0:
                # 1 − q·p > top − spread  <=>  (−q)·p > radius. Faces whose coded inner product
                # clears the radius by more than `margin` are members; those within `margin` of
                # it either way are re-scored exactly (Eq. 1's set holds thousands of a 1M pool).
                radius = top - spread - 1
                _, coded, found = index.range_search(neg[i:i + 1], radius - margin)
                sure = found[coded > radius + margin]
                band, d = _rescored(space, sources[i], pool, np.concatenate([found[coded <= radius + margin], far_ids]))
                members = np.union1d(sure, band[d > top - spread])
            else:
                members = far_ids[far_d == top]
            pick = draw(members, rng_for(seed, face))
            index_.append(pick)
            distance.append(float(space.distances(sources[i:i + 1], pool[[pick]])[0, 0]))
            sets.append(members)
        seconds[EQ1] = time.perf_counter() - start + seconds["furthest"]
        picks[EQ1] = Picks(np.array(index_), np.array(distance), sets)
    return picks, seconds


def agreement(exact: Picks, approx: Picks) -> dict:
    """Recall of approximate picks against exact ones (see the module docstring)."""
    out = {"same_pick": float(np.mean(exact.index == approx.index)),
           "same_distance": float(np.mean(np.isclose(exact.distance, approx.distance, rtol=0, atol=1e-12)))}
    if exact.candidates is None or approx.candidates is None:
        out["recall_at_1"] = out["same_pick"]
        return out
    inter = [np.intersect1d(e, a).size for e, a in zip(exact.candidates, approx.candidates)]
    out.update(
        recall_at_1=float(np.mean([np.isin(p, e) for p, e in zip(approx.index, exact.candidates)])),
        candidate_recall=float(sum(inter) / max(1, sum(len(e) for e in exact.candidates))),
        candidate_precision=float(sum(inter) / max(1, sum(len(a) for a in approx.candidates))),
        set_agreement=float(np.mean([np.array_equal(e, a) for e, a in zip(exact.candidates, approx.candidates)])),
        exact_candidates_median=float(np.median([len(e) for e in exact.candidates])),
    )
    return out


# ---- pixels --------------------------------------------------------------------------------

def build_space(name: str, **overrides) -> Space:
    """The conf/metric/<name>.yaml space with some constructor arguments replaced."""
    node = OmegaConf.to_container(SPACES.config(name), resolve=True)
    node.update(overrides)
    return SPACES.build(OmegaConf.create(node), name=name)


def downsample(images: np.ndarray, size: int) -> np.ndarray:
    """Crops resized to size x size (area interpolation, as the manifold stage resizes)."""
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])


def prefilter_picks(space: Space, cheap: Space, queries: dict[str, Query], sources: np.ndarray,
                    pool: np.ndarray, small_sources: np.ndarray, small_pool: np.ndarray, ids: list[str],
                    seed: int, top_k: int) -> tuple[dict[str, Picks], float]:
    """closest / furthest by a cheap pass over the downsampled pool, then `space` on its
    top_k candidates (smallest / largest cheap distance); seconds per source face."""
    start = time.perf_counter()
    rough = cheap.distances(small_sources, small_pool)
    picks = {}
    for name in ("closest", "furthest"):
        if name not in queries:
            continue
        order = np.argsort(rough if name == "closest" else -rough, axis=1, kind="stable")[:, :top_k]
        index_, distance = [], []
        for i, face in enumerate(ids):
            cand = np.sort(order[i])
            d = space.distances(sources[i:i + 1], pool[cand])[0]
            sel = queries[name].select(d, rng_for(seed, face))
            index_.append(cand[sel.index])
            distance.append(sel.distance)
        picks[name] = Picks(np.array(index_), np.array(distance))
    return picks, (time.perf_counter() - start) / len(ids)


def pixel_rows(settings: DictConfig, queries: dict[str, Query], seed: int, phases: Phases) -> list[dict]:
    """Part 3: one row per pixel space and method (see the module docstring)."""
    n, size = int(settings.pool_size), int(settings.size)
    n_fast, n_full = int(settings.sources), int(settings.full_sources)
    with phases("pixels: data"):
        pool = synthetic_crops(n, size, seed)
        sources = synthetic_crops(max(n_fast, n_full), size, seed, "crop_sources")
    ids = face_ids(len(sources), "crop")
    rows = []
    for name in settings.metrics:
        name = str(name)
        full, fast = build_space(name), build_space(name, method="fast")
        with phases(f"pixels: {name} full pass"):
            start = time.perf_counter()
            full_d = full.distances(sources[:n_full], pool)
            full_s = (time.perf_counter() - start) / max(1, n_full)
        with phases(f"pixels: {name} fast"):
            start = time.perf_counter()
            fast_d = fast.distances(sources[:n_fast], pool)
            fast_s = (time.perf_counter() - start) / max(1, n_fast)
        exact = {q: select_all(query, full_d, ids[:n_full], seed)[0] for q, query in queries.items()}
        base = {"metric": name, "pool": n, "size": size, "space": full.describe()}
        rows.append({**base, "method": "torchmetrics (full pass)", "sources": n_full, "ms_per_face": 1e3 * full_s,
                     "peak_rss_bytes": phases.rows[f"pixels: {name} full pass"]["peak_rss_bytes"],
                     "load_1min": phases.load(f"pixels: {name} full pass")})
        m = min(n_full, n_fast)
        both = np.isfinite(full_d[:m]) & np.isfinite(fast_d[:m])
        fast_picks = {q: select_all(query, fast_d[:m], ids[:m], seed)[0] for q, query in queries.items()}
        rows.append({**base, "method": "fast (exact)", "sources": n_fast, "ms_per_face": 1e3 * fast_s,
                     "speedup": full_s / fast_s if fast_s else float("nan"),
                     "max_abs_diff": float(np.abs(full_d[:m][both] - fast_d[:m][both]).max()) if both.any() else 0.0,
                     "same_infinities": bool(np.array_equal(np.isfinite(full_d[:m]), np.isfinite(fast_d[:m]))),
                     "peak_rss_bytes": phases.rows[f"pixels: {name} fast"]["peak_rss_bytes"],
                     "load_1min": phases.load(f"pixels: {name} fast"),
                     **{f"{q}_{k}": v for q in queries for k, v in agreement(_head(exact[q], m), fast_picks[q]).items()
                        if k in ("recall_at_1", "set_agreement")}})
        pre = settings.get("prefilter")
        if pre and str(pre.metric) == name:
            small = int(pre.size)
            cheap = build_space(name, method="fast", sigma=float(getattr(full, "sigma", 1.5)) * small / size)
            small_pool = downsample(pool, small)  # once per pool, like its features
            with phases(f"pixels: {name} prefilter"):
                picks, pre_s = prefilter_picks(fast, cheap, queries, sources[:n_fast], pool,
                                               downsample(sources[:n_fast], small), small_pool, ids[:n_fast], seed,
                                               int(pre.top_k))
            fast_all = {q: select_all(queries[q], fast_d, ids[:n_fast], seed)[0] for q in picks}
            rows.append({**base, "method": f"prefilter {small}px, top {int(pre.top_k)} (bounded)", "sources": n_fast,
                         "ms_per_face": 1e3 * pre_s, "speedup": full_s / pre_s if pre_s else float("nan"),
                         "peak_rss_bytes": phases.rows[f"pixels: {name} prefilter"]["peak_rss_bytes"],
                         "load_1min": phases.load(f"pixels: {name} prefilter"),
                         **{f"{q}_recall_at_1": agreement(_head(exact[q], m), _head(p, m))["recall_at_1"]
                            for q, p in picks.items()},
                         **{f"{q}_recall_at_1_vs_fast": agreement(fast_all[q], p)["recall_at_1"] for q, p in picks.items()},
                         f"{EQ1}_recall_at_1": "n/a: Eq. 1 needs the whole pool's max and std"})
    return rows


def _head(picks: Picks, m: int) -> Picks:
    return Picks(picks.index[:m], picks.distance[:m], picks.candidates[:m] if picks.candidates is not None else None)


# ---- the command ---------------------------------------------------------------------------

def machine() -> dict:
    """The machine the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {"cpu_count": os.cpu_count(), "usable_cpus": affinity, "cpu_model": model or platform.processor(),
            "platform": platform.platform()}


def _load() -> list[float] | None:
    """1, 5 and 15 minute load averages: timings on shared cores are read beside them."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def versions() -> dict:
    out = library_versions()
    for name in ("faiss-cpu", "scipy"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    with contextlib.suppress(Exception):
        import threadpoolctl

        out["blas"] = [f"{p.get('internal_api')} {p.get('version')} ({p.get('num_threads')} threads)"
                       for p in threadpoolctl.threadpool_info() if p.get("user_api") == "blas"]
    return out


@contextlib.contextmanager
def thread_limit(threads: int | None):
    """Every thread pool (BLAS, OpenMP, torch) limited to `threads` inside the block; None:
    the libraries' own defaults (every core)."""
    if not threads:
        yield
        return
    import threadpoolctl
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        with threadpoolctl.threadpool_limits(limits=int(threads)):
            yield
    finally:
        torch.set_num_threads(before)


def run(cfg: DictConfig) -> dict:
    """Runs the three parts; writes and returns the report (query_scaling.json's content)."""
    with thread_limit(cfg.perf.query_scaling.get("threads")):
        return _run(cfg)


def _run(cfg: DictConfig) -> dict:
    s = cfg.perf.query_scaling
    seed, dim, decay = int(s.seed), int(s.dim), float(s.spectrum_decay)
    n_sources = int(s.sources)
    space = build_space(str(s.metric))
    queries = {str(name): QUERIES.build(str(name)) for name in s.strategies}
    for name, query in queries.items():
        query.name = name
        if query.same_age_gender or query.per_person:
            raise BenchError(f"perf.query_scaling.strategies: {name} needs age/gender or identities; synthetic "
                             "faces have neither (closest, furthest, random_furthest)")
    thread_settings = list(s.exact.get("threads") or [None])
    approx_sizes = {int(n) for n in s.approximate.pool_sizes}
    sizes = sorted({int(n) for n in s.exact.pool_sizes} | approx_sizes)
    phases = Phases()
    load_start = _load()
    ids = face_ids(n_sources)
    with phases("sources"):
        sources = synthetic_embeddings(n_sources, dim, decay, seed, "sources")
    exact_rows, approx_rows = [], []
    for n in sizes:
        with phases(f"{n}: pool"):
            pool = synthetic_embeddings(n, dim, decay, seed)
        exact = None
        for threads in thread_settings:
            label = "default" if threads is None else str(threads)
            phase = f"{n}: exact, {label} threads"
            with phases(phase), thread_limit(threads):
                info, picks = exact_pass(space, queries, sources, pool, ids, seed, int(s.exact.memory_mib) << 20,
                                         int(s.exact.repeats))
            if exact is None:  # the first setting's picks are the reference of part 2
                exact = picks
            for name in queries:
                dist_ms, sel_ms = 1e3 * info["distances_s"] / n_sources, 1e3 * info["select_s"][name] / n_sources
                exact_rows.append({"pool": n, "strategy": name, "threads": label, "sources": n_sources,
                                   "mode": info["mode"], "distances_ms_per_face": dist_ms, "select_ms_per_face": sel_ms,
                                   "ms_per_face": dist_ms + sel_ms,
                                   "same_picks_as_first": bool(np.array_equal(picks[name].index, exact[name].index)),
                                   "peak_rss_bytes": phases.rows[phase]["peak_rss_bytes"], "load_1min": phases.load(phase)})
            log.info("exact, %d pool faces, %s threads: %s", n, label, ", ".join(
                f"{r['strategy']} {r['ms_per_face']:.2f} ms/face" for r in exact_rows[-len(queries):]))
        if n in approx_sizes:
            approx_rows.extend(approximate_rows(s, space, queries, sources, pool, ids, seed, exact, phases, n))
        del pool, exact
    pixels = pixel_rows(s.pixels, queries, seed, phases) if s.pixels.get("pool_size") else []

    limit = float(s.approximate.max_rss_gib) * GIB
    peak = phases.peak()
    big = max(sizes)
    big_peak = max(r["peak_rss_bytes"] for n, r in phases.rows.items() if n.startswith(f"{big}:"))
    report = {
        "exact": exact_rows, "approximate": approx_rows, "pixels": pixels,
        "memory": {"peak_rss_bytes": peak, "largest_pool": big, "largest_pool_peak_rss_bytes": big_peak,
                   "limit_bytes": int(limit), "within_limit": bool(big_peak <= limit),
                   "phases_reset": phases.resettable, "phases": phases.rows},
        "provenance": record(
            cfg, "perf-query",
            data={"embeddings": f"{dim}-d float32, Gaussian with variance (i+1)^-{decay:g} on a random orthonormal "
                                "basis, L2-normalised", "sources": n_sources, "pool_sizes": sizes,
                  "crops": "8x8 uniform RGB grid, bicubic upsampled, + N(0, 4) noise, uint8"},
            machine={**machine(), "load_average_start": load_start, "load_average_end": _load()},
            settings=OmegaConf.to_container(s, resolve=True)),
    }
    report["provenance"]["libraries"] = versions()  # record()'s, with faiss, scipy and the BLAS
    files = query_scaling_files(cfg.results_dir)
    markdown = to_markdown(report)
    resultsio.write_json(report, files["json"])
    resultsio.write_text(markdown, files["md"])
    print(markdown)
    if not report["memory"]["within_limit"]:
        log.warning("the %d-face run peaked at %.2f GiB, above perf.query_scaling.approximate.max_rss_gib=%g",
                    big, big_peak / GIB, float(s.approximate.max_rss_gib))
    return report


def approximate_rows(s: DictConfig, space: Space, queries: dict[str, Query], sources: np.ndarray, pool: np.ndarray,
                     ids: list[str], seed: int, exact: dict[str, Picks], phases: Phases, n: int) -> list[dict]:
    """Part 2 at one pool size: build, query, compare with `exact`."""
    a = s.approximate
    with phases(f"{n}: Eq. 1 covariance"):  # before the index: the two never share the memory
        covariance = pool_covariance(pool) if EQ1 in queries else None
    with phases(f"{n}: index build"):
        start = time.perf_counter()
        index = build_index(pool, index_spec(a), int(a.train_size), seed, s.get("threads"))
        build_s = time.perf_counter() - start
    index.nprobe = int(a.nprobe)
    with phases(f"{n}: approximate queries"):
        picks, seconds = approximate_picks(index, space, queries, sources, pool, ids, seed, covariance,
                                           int(a.rerank), float(a.range_margin))
    size = index_bytes(index)
    del index
    rows = []
    for name, p in picks.items():
        rows.append({"pool": n, "strategy": name, "index": index_spec(a), "nprobe": int(a.nprobe), "rerank": int(a.rerank),
                     "sources": len(ids), "ms_per_face": 1e3 * seconds[name] / len(ids),
                     "build_s": build_s, "covariance_s": phases.rows[f"{n}: Eq. 1 covariance"]["seconds"],
                     "index_bytes": size, "pool_bytes": int(pool.nbytes),
                     "build_peak_rss_bytes": phases.rows[f"{n}: index build"]["peak_rss_bytes"],
                     "query_peak_rss_bytes": phases.rows[f"{n}: approximate queries"]["peak_rss_bytes"],
                     "load_1min": phases.load(f"{n}: approximate queries"),
                     **agreement(exact[name], p)})
        log.info("approximate, %d pool faces, %s: recall@1 %.3f, %.2f ms/face", n, name, rows[-1]["recall_at_1"],
                 rows[-1]["ms_per_face"])
    return rows


def _mib(value) -> str:
    return f"{value / (1 << 20):,.0f}" if isinstance(value, (int, float)) and value == value else "n/a"


def _table(rows: list[dict], columns: dict[str, str], digits: int = 3) -> str:
    """A Markdown table; floats with `digits` decimals, strings (pre-formatted) as they are."""
    if not rows:
        return "(none)\n"
    cell = lambda v: f"{v:,.{digits}f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)  # noqa: E731
    frame = pd.DataFrame([{label: cell(r.get(key, "")) for key, label in columns.items()} for r in rows])
    return frame.to_markdown(index=False, disable_numparse=True, stralign="right") + "\n"


def to_markdown(report: dict) -> str:
    """query_scaling.md: the three tables and what their columns mean."""
    prov = report["provenance"]
    mach, mem = prov["machine"], report["memory"]
    exact = [{**r, "peak_mib": _mib(r["peak_rss_bytes"])} for r in report["exact"]]
    approx = [{**r, "index_mib": _mib(r["index_bytes"]), "peak_mib": _mib(max(r["build_peak_rss_bytes"],
                                                                                r["query_peak_rss_bytes"]))}
              for r in report["approximate"]]
    pixels = [{**r, "peak_mib": _mib(r["peak_rss_bytes"]), "ms_per_face": f"{r['ms_per_face']:.1f}",
               **({"max_abs_diff": f"{r['max_abs_diff']:.1e}"} if "max_abs_diff" in r else {}),
               **({"speedup": f"{r['speedup']:.1f}"} if "speedup" in r else {})} for r in report["pixels"]]
    pixel_columns = {"metric": "space", "method": "method", "pool": "pool", "sources": "sources",
                     "ms_per_face": "ms / face", "speedup": "× faster", "max_abs_diff": "max |Δd|"}
    for key in sorted({k for r in report["pixels"] for k in r if "recall_at_1" in k}):
        pixel_columns[key] = key.replace("_recall_at_1_vs_fast", " R@1 vs fast").replace("_recall_at_1", " R@1")
    pixel_columns["peak_mib"] = "peak RSS MiB"
    pixel_columns["load_1min"] = "load"
    return (
        "# Query scaling (issue 11)\n\n"
        f"Synthetic, seed {prov['seed']}: {prov['data']['embeddings']}; {prov['data']['sources']} source faces. "
        f"Machine: {mach['cpu_count']} CPUs ({mach['cpu_model']}); numpy {prov['libraries'].get('numpy')}, "
        f"faiss-cpu {prov['libraries'].get('faiss-cpu')}, torch {prov['libraries'].get('torch')}. "
        "Times are wall clock per source face and move with the machine's load (load: the 1-minute load "
        f"average as each phase ended; {mach['usable_cpus']} usable CPUs); recalls do not.\n\n"
        "## 1. Exact: the project's query path (bench.spaces, bench.queries)\n\n"
        "distances: the embedding space's cosine distances of all sources to the pool (one call, or source "
        "batches x pool blocks where a float64 copy of the pool does not fit the memory budget), per face; "
        "select: the strategy's pick per face. threads: BLAS/OpenMP/torch threads (default: the libraries' own, "
        "every core); "
        + ("the picks are the same under every setting" if all(r["same_picks_as_first"] for r in report["exact"])
           else "the picks DIFFER between settings (same_picks_as_first in the json)")
        + ".\n\n"
        + _table(exact, {"pool": "pool", "strategy": "strategy", "threads": "threads", "mode": "mode",
                         "distances_ms_per_face": "distances ms",
                         "select_ms_per_face": "select ms", "ms_per_face": "total ms / face", "peak_mib": "peak RSS MiB",
                         "load_1min": "load"})
        + "\n## 2. Approximate: faiss index, re-scored by the project's space\n\n"
        "recall@1: closest/furthest: the exact pick; random_furthest (Eq. 1): a member of the exact candidate "
        "set. same pick: the exact pick itself (Eq. 1: the same seeded draw). cand. recall / precision: Eq. 1's "
        "candidate sets, over all faces; sets equal: share of faces whose sets are equal. Build: train + add; "
        "Eq. 1's covariance apart.\n\n"
        + _table(approx, {"pool": "pool", "strategy": "strategy", "index": "index", "nprobe": "nprobe",
                          "rerank": "rerank", "ms_per_face": "ms / face", "recall_at_1": "recall@1",
                          "same_pick": "same pick", "candidate_recall": "cand. recall",
                          "candidate_precision": "cand. precision", "set_agreement": "sets equal",
                          "build_s": "build s", "covariance_s": "cov. s", "index_mib": "index MiB",
                          "peak_mib": "peak RSS MiB", "load_1min": "load"})
        + f"\nPeak RSS of the {mem['largest_pool']:,}-face run: {_mib(mem['largest_pool_peak_rss_bytes'])} MiB "
        f"(limit {_mib(mem['limit_bytes'])} MiB: {'within' if mem['within_limit'] else 'EXCEEDED'}); "
        f"whole run {_mib(mem['peak_rss_bytes'])} MiB"
        f"{'' if mem['phases_reset'] else ' (peaks since the start: this kernel does not reset them)'}.\n\n"
        "## 3. Pixel spaces: full torchmetrics pass, fast method, SSIM prefilter\n\n"
        "max |Δd|: largest difference from the full pass's distances; R@1: share of the full pass's sources "
        "whose pick equals the full pass's (Eq. 1: lies in its candidate set); R@1 vs fast: the same against "
        "the fast method's picks on all its sources. The prefilter's downsampled pool is made once per pool "
        "(like its features) and not timed.\n\n"
        + _table(pixels, pixel_columns, digits=4)
    )
