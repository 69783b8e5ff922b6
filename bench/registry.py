"""One registry per component kind. A registry's entries are the configs in conf/<group>/:
adding a detector is one class file plus one YAML, and nothing else needs an edit."""
from __future__ import annotations

import functools
import importlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from bench.config import CONF_DIR, group_options, load_config, load_group_config
from bench.errors import UnknownComponent


@dataclass(frozen=True)
class Registry:
    """Components of one kind: `group` is the conf/ folder, `base` the class they must extend."""

    group: str
    base_path: str  # "module:Class", imported lazily so that listing never loads a model

    @property
    def base(self) -> type:
        module, cls = self.base_path.split(":")
        return getattr(importlib.import_module(module), cls)

    def names(self) -> list[str]:
        return group_options(self.group)

    def config(self, name: str) -> DictConfig:
        if name not in self.names():
            raise UnknownComponent(
                f"unknown {self.group} {name!r}; known: {', '.join(self.names()) or '(none)'}"
            )
        return load_group_config(self.group, name)

    def build(self, name_or_cfg: str | DictConfig, name: str | None = None) -> Any:
        """Instantiates a component from its name or an already composed config node.

        Loads no weights: components load them in prepare().
        """
        if isinstance(name_or_cfg, str):
            name, node = name_or_cfg, self.config(name_or_cfg)
        else:
            node = name_or_cfg
        settings = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
        key = None
        if _reused is not None and self.group in REUSABLE:
            key = (self.group, name, json.dumps(settings, sort_keys=True, default=str))
            if key in _reused:
                _reused.move_to_end(key)
                return _reused[key]
        obj = instantiate(settings, _convert_="all")
        if not isinstance(obj, self.base):
            raise TypeError(f"{self.group} {name!r} builds {type(obj).__name__}, not a {self.base.__name__}")
        if name:
            obj.name = name
        if key is not None:
            _reused[key] = obj
            while len(_reused) > MAX_REUSED:
                _reused.popitem(last=False)
        return obj


# Model-backed kinds whose instances a sweep may share (their state is the loaded model;
# nothing of one cell's results stays in them). Access models hold a platform: never shared.
REUSABLE = ("detector", "recognizer", "generator")
MAX_REUSED = 32  # built components kept, least recently used dropped first
_reused: OrderedDict | None = None


def reuse_components(on: bool = True) -> None:
    """While on, `Registry.build` hands out the same instance for the same kind, name and
    resolved settings (REUSABLE kinds), so its prepare() loads the model once per process.

    bench.cli turns it on for each command it runs and off when the command returns: the
    stages of `python -m bench run`, and the jobs of a Hydra sweep (which the basic launcher
    runs one after another in one process; a launcher's worker process keeps it on for all
    the jobs it runs), then load each model once instead of once per stage and cell (issue
    11). Results are the same either way (tests/test_sweep.py). Off by default: a stage
    called from Python builds its own components, as before."""
    global _reused
    if not on:
        _reused = None
    elif _reused is None:
        _reused = OrderedDict()


DETECTORS = Registry("detector", "bench.detectors.base:Detector")
RECOGNIZERS = Registry("recognizer", "bench.recognizers.base:Recognizer")
GENERATORS = Registry("generator", "bench.generators.base:Generator")
SPACES = Registry("metric", "bench.spaces.base:Space")
QUERIES = Registry("query", "bench.queries.base:Query")
ACCESS = Registry("access", "bench.access.base:AccessModel")

REGISTRIES = {r.group: r for r in (DETECTORS, RECOGNIZERS, GENERATORS, SPACES, QUERIES, ACCESS)}


# The key a component's node is resolved under, inside the run's config (component_config).
COMPONENT_KEY = "_component"


def component_config(group: str, name: str, cfg: DictConfig, overrides=None) -> dict:
    """conf/<group>/<name>.yaml with its interpolations (${paths.*}, ...) resolved against
    `cfg` rather than a fresh composition, so that the run's overrides apply to it."""
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
    return json.dumps(OmegaConf.to_container(load_config([f"{group}={name}"])[group], resolve=False))


def composed_node(group: str, name: str) -> dict:
    """conf/<group>/<name>.yaml composed by Hydra with its defaults list, interpolations left
    unresolved: a fresh dict each call; Hydra composes it once per process (~0.5 s a time)."""
    return json.loads(_composed(group, name))
