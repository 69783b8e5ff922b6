"""Stage `figures`: the paper's figures from files earlier stages wrote (matplotlib).

Reads:  the dataset's faces.parquet and crops, the pool's faces.parquet, manifold and crops,
        the targets of every space (query stage), the cells of `figures.strategies` and
        `quality.generators` (anonymize stage).
Writes: <results_dir>/figures/<dataset>/<pool>/
          fig3_strategies.png   Fig. 3/7: source, target and result per query strategy
          fig4_contact_sheet.png  Fig. 4's grid: source, target and each generator's result
          fig5_pool.png         Fig. 5: the pool's embedding distances to the sources, ages
                                (and its full/balanced twin's, where that pool's manifold exists)
          fig6_spaces.png       Fig. 6: the furthest target in each space, for one photo
A figure whose inputs are missing is skipped with a warning naming the command to run.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from bench.layout import Cell, DatasetLayout, figures_dir, pool_outputs
from bench.figures.examples import contact_sheet, strategy_sheet
from bench.figures.fig5 import plot_pool_distributions, pool_distribution
from bench.figures.fig6 import plot_furthest_per_space
from bench.pools.balanced import pool_kinds

log = logging.getLogger(__name__)


def output_dir(cfg: DictConfig) -> Path:
    return figures_dir(cfg.results_dir, str(cfg.dataset.name), str(cfg.pool.name))


def run(cfg: DictConfig) -> Path:
    """Draws every figure it has inputs for; returns the folder."""
    base = Cell.from_config(cfg)
    out = output_dir(cfg)
    faces = pd.read_parquet(DatasetLayout(base.results_dir, base.dataset).faces)
    pool = pool_outputs(cfg)
    pool_faces = pd.read_parquet(pool.faces).set_index("face_id") if pool.faces.is_file() else pd.DataFrame(columns=["crop"])
    strategies = [str(s) for s in cfg.figures.strategies]
    generators = [str(g) for g in cfg.quality.generators]
    drawn = [
        strategy_sheet(base, strategies, faces, pool.root, pool_faces, out / "fig3_strategies.png"),
        contact_sheet(base, generators, faces, pool.root, pool_faces, out / "fig4_contact_sheet.png"),
    ]
    if pool.manifold.is_file():
        # one row per kind of pool whose manifold exists: this one and its full/balanced twin
        kinds = [pool_distribution(kind) for kind in pool_kinds(cfg)]
        drawn.append(plot_pool_distributions(kinds, out / "fig5_pool.png", base.dataset))
    else:
        log.warning("Fig. 5 skipped: %s missing (python -m bench manifold)", pool.manifold)
    photo = fig6_photo(cfg, faces)
    if photo:
        drawn.append(plot_furthest_per_space(base.dataset_dir, base.pool, photo, out / "fig6_spaces.png"))
    for path in drawn:
        log.info("wrote %s", path)
    return out


def fig6_photo(cfg: DictConfig, faces: pd.DataFrame) -> str:
    """`figures.fig6_photo`, else the photo with the most aligned faces."""
    if cfg.figures.get("fig6_photo"):
        return str(cfg.figures.fig6_photo)
    aligned = faces[faces.aligned]
    return str(aligned.photo.value_counts().sort_index().idxmax()) if len(aligned) else ""
