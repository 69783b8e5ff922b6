"""`python -m bench run ...`: the whole chain for one cell, stage by stage, each through
its own entry function and files (the same as `dvc repro` runs them):

    faces -> pool -> manifold -> query -> anonymize -> evaluate -> leaks -> tables -> quality

A stage whose outputs exist is run again anyway: each resumes from its caches, so a
second call costs little and never reuses a stale table. `pipeline.cells` lists several
cells to run in turn (conf/experiment/*.yaml: the cells behind each table and figure).

`run_through_evaluate(cfg)` runs the chain up to evaluate only (no leak check, no tables):
the anonymized photos and their embeddings that the attack stage reads.
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from bench.config import cell_configs
from bench.layout import Cell, DatasetLayout, pool_outputs, quality_files, verification_dir
from bench.locks import output_lock
from bench.registry import GENERATORS
from bench.stages import anonymize, evaluate, faces, leaks, manifold, pool, quality, query, tables

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Cell:
    """Runs every cell of `pipeline.cells` in turn (null: the one cell of the metric, query and
    generator choices; conf/experiment/*.yaml list the cells of a table or figure), each
    through run_cell; returns the last cell."""
    cell = None
    for one in cell_configs(cfg):
        cell = run_cell(one)
    return cell


def run_cell(cfg: DictConfig) -> Cell:
    """Runs one cell end to end; logs where every output went and returns the cell.

    Stages whose outputs other cells share (faces, pool, manifold, query, tables, quality)
    run under bench.locks.output_lock, so cells of a parallel sweep take turns there."""
    cell = Cell.from_config(cfg)
    faces_out = _faces_to_evaluate(cfg, cell, rebuild_pool=True)
    leaks.run(cfg)
    with output_lock(cfg.results_dir, verification_dir(cfg.results_dir, cell.dataset, cell.pool)):
        table_dir = tables.run(cfg)
    with output_lock(cfg.results_dir, quality_files(cfg.results_dir, cell.dataset, cell.pool, cell.metric, cell.query)["csv"]):
        quality_dir = quality.run(cfg)
    log.info("outputs of %s / %s / %s / %s-%s:", cell.dataset, cell.pool, cell.generator, cell.metric, cell.query)
    for label, path in [
        ("faces and failures", faces_out.root), ("targets", cell.targets), ("anonymized photos", cell.photos),
        ("pairs", cell.pairs), ("verification outcomes", cell.outcomes),
        ("leak check", cell.metrics), ("leak contact sheet", cell.leak_sheet),
        ("failures of this cell", cell.failures), ("Tables 1-3", table_dir), ("quality (Fig. 4)", quality_dir),
    ]:
        log.info("  %-24s %s", label, path)
    return cell


def run_through_evaluate(cfg: DictConfig) -> Cell:
    """faces -> pool -> manifold -> query -> anonymize -> evaluate for one cell, each stage
    through its own entry function and files; returns the cell.

    The pool and its manifold are built only where the manifold's files are missing: under
    `dvc repro` they are another stage's outputs (the caller's dependencies), never rewritten.
    Obfuscations (a generator that takes no target) skip pool, manifold and query."""
    cell = Cell.from_config(cfg)
    _faces_to_evaluate(cfg, cell, rebuild_pool=False)
    return cell


def _faces_to_evaluate(cfg: DictConfig, cell: Cell, rebuild_pool: bool) -> DatasetLayout:
    """faces -> pool -> manifold -> query -> anonymize -> evaluate for `cell`, shared stages
    under their locks; pool and manifold run always (rebuild_pool) or only where the
    manifold's files are missing. Returns the dataset's layout."""
    data, pool_out = DatasetLayout.from_config(cfg), pool_outputs(cfg)
    with output_lock(cfg.results_dir, data.root):
        faces.run(cfg)
    if GENERATORS.build(cfg.generator).uses_target:
        with output_lock(cfg.results_dir, pool_out.root):
            if rebuild_pool or not (pool_out.faces.is_file() and pool_out.arrays.is_file()):
                pool.run(cfg)
                manifold.run(cfg)
        with output_lock(cfg.results_dir, cell.targets):
            query.run(cfg)
    anonymize.run(cfg)
    evaluate.run(cfg)
    return data
