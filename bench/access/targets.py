"""The faker of the platform stage: bench.anonymizer's generator (conf/generator, `generator=`)
with `anonymize.fallback`, and, for a generator that takes a target, one synthetic target
per (face, viewer key) picked by the configured query strategy (conf/query) over the pool's
manifold (results/pools/<pool>/, written by `python -m bench manifold`) in the embedding
space of `platform.recognizer`. The age/gender restriction of the *_ag strategies is not
applied here (faces of the platform carry no age/gender estimate). Where no manifold exists,
or the space is not that recognizer's embedding, every fake is the fallback obfuscation, and
the returned note says why."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench.access.fakers import AnonymizerFaker, Faker
from bench.anonymizer import build_fallback
from bench.errors import BenchError
from bench.layout import pool_outputs
from bench.pools.base import build_pool
from bench.queries.base import rng_for
from bench.registry import GENERATORS, QUERIES, SPACES
from bench.spaces.features import Features

log = logging.getLogger(__name__)


def build_faker(cfg: DictConfig) -> tuple[Faker, str]:
    """(faker, note for the table). Raises BenchError when nothing at all can fake a face."""
    generator = GENERATORS.build(cfg.generator, name=cfg.choices.generator)
    fallback = build_fallback(cfg)
    try:
        generator.prepare()
    except BenchError as err:
        if fallback is None:
            raise BenchError(f"generator {generator.name} cannot run ({err}) and anonymize.fallback is unset") from err
        return AnonymizerFaker(fallback, None), f"{generator.name} unavailable ({err}): fakes are {fallback.name}"
    if not generator.uses_target:
        return AnonymizerFaker(generator, fallback), f"fakes: {generator.name}"
    target_for, why = pool_targets(cfg)
    if target_for is None:
        if fallback is None:
            raise BenchError(f"{generator.name} needs targets: {why}; and anonymize.fallback is unset")
        log.warning("platform: %s needs targets: %s; every fake is the fallback %s", generator.name, why, fallback.name)
        return AnonymizerFaker(fallback, None), f"{generator.name} without targets ({why}): fakes are {fallback.name}"
    return (AnonymizerFaker(generator, fallback, target_for),
            f"fakes: {generator.name}, targets {cfg.choices.query} (no age/gender band) from pool {cfg.pool.name}")


def pool_targets(cfg: DictConfig):
    """(target_for(face, key) -> target row or None, "") or (None, why not)."""
    out = pool_outputs(cfg)
    if not out.faces.is_file() or not out.arrays.is_file():
        return None, f"pool {cfg.pool.name} has no manifold at {out.arrays} (python -m bench manifold)"
    space = SPACES.build(cfg.metric, name=cfg.choices.metric)
    feats = Features.load(out.arrays)
    faces = pd.read_parquet(out.faces)
    wanted = str(cfg.platform.recognizer)
    if space.feature != "embedding" or feats.info.get("recognizer") != wanted:
        return None, (f"metric {cfg.choices.metric} over {feats.info.get('recognizer')} embeddings is not "
                      f"the platform recognizer {wanted}'s embedding space")
    query = QUERIES.build(cfg.query, name=cfg.choices.query)
    query.same_age_gender = False
    ok = feats.ok("embedding") & faces.aligned.to_numpy(bool)
    if not ok.any():
        return None, f"pool {cfg.pool.name} has no embedded face"
    matrix = feats.matrix("embedding")
    root = build_pool(cfg).path
    seed = int(cfg.platform.seed)

    def target_for(face, key):
        if face.embedding.size == 0 or face.embedding.shape[0] != matrix.shape[1]:
            return None  # replace_face then says "no target" and the fallback covers the face
        d = space.distances(face.embedding[None], matrix)[0]
        d[~ok] = np.nan
        sel = query.select(d, rng_for(seed, f"{face.face_id}|{key}"))
        t = faces.iloc[sel.index]
        return {"target_image": str(root / str(t.photo)), "target_box": [t.x1, t.y1, t.x2, t.y2],
                "target_landmarks": list(t.landmarks)}

    return target_for, ""
