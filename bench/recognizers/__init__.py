"""Face recognizers: aligned crop in, embedding out, with per-metric verification thresholds.

`build_recognizer(name, cfg)` is the one way stages get a recognizer: it composes
conf/recognizer/<name>.yaml against the run's config (so `paths.*` overrides apply) plus
any `recognizer_overrides.<name>.*` from the command line, e.g.
`python -m bench embed +recognizer_overrides.dlib.thresholds.cosine=0.06`.
"""
from __future__ import annotations

import functools
import json

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from bench.config import CONF_DIR


# The key a component's node is resolved under, inside the run's config (component_config).
COMPONENT_KEY = "_component"


def selected_recognizers(cfg: DictConfig) -> list[str]:
    """The recognizers a run uses: config `recognizers`, else every conf/recognizer/*.yaml."""
    from bench.registry import RECOGNIZERS

    names = cfg.get("recognizers")
    return [str(n) for n in names] if names else RECOGNIZERS.names()


def recognizer_config(name: str, cfg: DictConfig) -> dict:
    """conf/recognizer/<name>.yaml resolved against `cfg`, with cfg.recognizer_overrides[name]."""
    overrides = (cfg.get("recognizer_overrides") or {}).get(name)
    return component_config("recognizer", name, cfg, overrides)


def component_config(group: str, name: str, cfg: DictConfig, overrides=None) -> dict:
    """conf/<group>/<name>.yaml with its interpolations (${paths.*}, ...) resolved against
    `cfg` rather than a fresh composition, so that the run's overrides apply to it."""
    from bench.registry import REGISTRIES

    registry = REGISTRIES[group]
    if name not in registry.names():
        registry.config(name)  # raises UnknownComponent listing the known names
    node = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    if "defaults" in node:  # composed from other configs (an ensemble's members): Hydra's job
        node = OmegaConf.create(composed_node(group, name))
    if overrides:
        node = OmegaConf.merge(node, overrides)
    # Resolved in place, under the run's config, which gets the node for this call only: a copy
    # of the run's config would be a deep one (omegaconf has no shallow copy), ~0.07 s a call.
    with read_write(cfg), open_dict(cfg):
        if COMPONENT_KEY in cfg:
            raise RuntimeError(f"the run's config already holds {COMPONENT_KEY!r}")
        cfg[COMPONENT_KEY] = node
        try:
            return OmegaConf.to_container(cfg[COMPONENT_KEY], resolve=True)
        finally:
            del cfg[COMPONENT_KEY]


@functools.lru_cache(maxsize=32)
def _composed(group: str, name: str) -> str:
    from bench.config import load_config

    return json.dumps(OmegaConf.to_container(load_config([f"{group}={name}"])[group], resolve=False))


def composed_node(group: str, name: str) -> dict:
    """conf/<group>/<name>.yaml composed by Hydra with its defaults list, interpolations left
    unresolved: a fresh dict each call; Hydra composes it once per process (~0.5 s a time)."""
    return json.loads(_composed(group, name))


def build_recognizer(name: str, cfg: DictConfig):
    """The Recognizer `name`, configured for this run; loads no weights (see prepare())."""
    from bench.registry import RECOGNIZERS

    return RECOGNIZERS.build(OmegaConf.create(recognizer_config(name, cfg)), name=name)
