"""`python -m bench run ...`: the whole chain for one cell, stage by stage, each through
its own entry function and files (the same as `dvc repro` runs them):

    faces -> pool -> manifold -> query -> anonymize -> evaluate -> leaks -> tables -> quality

A stage whose outputs exist is run again anyway: each resumes from its caches, so a
second call costs little and never reuses a stale table.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from bench.cells import Cell
from bench.registry import GENERATORS
from bench.stages import anonymize, evaluate, faces, leaks, manifold, pool, quality, query, tables

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Cell:
    """Runs one cell end to end; logs where every output went and returns the cell."""
    cell = Cell.from_config(cfg)
    faces_out = faces.run(cfg)
    if GENERATORS.build(cfg.generator).uses_target:
        pool.run(cfg)
        manifold.run(cfg)
        query.run(cfg)
    anonymize.run(cfg)
    evaluate.run(cfg)
    leaks.run(cfg)
    table_dir = tables.run(cfg)
    quality_dir = quality.run(cfg)
    log.info("outputs of %s / %s / %s / %s-%s:", cell.dataset, cell.pool, cell.generator, cell.metric, cell.query)
    for label, path in [
        ("faces and failures", faces_out.root), ("targets", cell.targets), ("anonymized photos", cell.photos),
        ("pairs", cell.pairs), ("verification outcomes", evaluate.outcomes_path(cell)),
        ("leak check", cell.metrics), ("leak contact sheet", cell.leak_sheet),
        ("failures of this cell", cell.failures), ("Tables 1-3", table_dir), ("quality (Fig. 4)", quality_dir),
    ]:
        log.info("  %-24s %s", label, path)
    return cell
