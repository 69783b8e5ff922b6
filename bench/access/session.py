"""What the platform stage and the view command share: building a model from its config
against the run's config, the matcher it gets, the photo reader, and the run's workload."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.access.base import AccessModel
from bench.access.fakers import EmbeddingMatcher, PerfectMatcher
from bench.access.generate import Event, generate_workload
from bench.images import load_photo


def build_access(name: str, cfg: DictConfig) -> AccessModel:
    """conf/access/<name>.yaml resolved against this run's config (platform.* overrides apply)."""
    from bench.registry import ACCESS, component_config

    return ACCESS.build(OmegaConf.create(component_config("access", name, cfg)), name=name)


def matcher_for(model: AccessModel, recognizer, threshold: float | None):
    """The model's matcher: the recognizer at its threshold for a model that recognises on a
    device (None when there is no threshold); else a person who knows their friends."""
    if not model.uses_recognizer:
        return PerfectMatcher()
    if threshold is None:
        return None
    return EmbeddingMatcher(threshold, name=recognizer.name)


def photo_reader():
    """photo -> a fresh copy of its pixels (files decoded once)."""
    @lru_cache(maxsize=256)
    def read(path: str) -> np.ndarray:
        return load_photo(path).rgb

    def read_photo(photo):
        image = photo.image if photo.image is not None else read(str(photo.path))
        return image.copy()

    return read_photo


def workload(cfg: DictConfig, built) -> list[Event]:
    """The run's seeded events; a platform file's own tags replace the generated ones,
    right after each upload."""
    w = cfg.platform.workload
    events = generate_workload(built.platform, int(cfg.platform.seed), int(w.views), float(w.p_tag),
                               float(w.p_consent), float(w.p_untag))
    if not built.tags:
        return events
    by_photo: dict[str, list[Event]] = {}
    for tag in built.tags:
        pid = built.platform.faces[tag.face_id].photo_id
        by_photo.setdefault(pid, []).append(Event("tag", pid, tag.face_id, tag.user))
        if tag.consent:
            by_photo[pid].append(Event("consent", pid, tag.face_id, tag.user))
    out = []
    for e in events:
        if e.kind in ("tag", "consent"):
            continue
        out.append(e)
        if e.kind == "upload":
            out += by_photo.get(e.photo_id, [])
    return out
