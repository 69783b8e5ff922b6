"""Stage `pool`: writes a generated pool's images (the DCGAN pool); folder pools need nothing.

Reads:  the generator's weights (conf/pool/dcgan.yaml: gan-face-generate's weights.tar).
Writes: <pool.path>/dcgan_NNNNN.png            (default <results_dir>/pools/dcgan/images/)
        <results_dir>/pools/<pool.name>/pool.provenance.json
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from bench import resultsio
from bench.layout import pool_outputs
from bench.pools.base import Pool, build_pool
from bench.provenance import record

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Pool:
    pool = build_pool(cfg)
    if not pool.generated:
        count = len(pool.images(cfg.faces.image_extensions))
        log.info("pool %s is a folder of %d existing images (%s): nothing to generate", pool.name, count, pool.path)
        return pool
    details = pool.generate()
    resultsio.write_json(record(cfg, "pool", pool={"name": pool.name, **details}), pool_outputs(cfg).generation)
    return pool
