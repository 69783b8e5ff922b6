"""One registry per component kind. A registry's entries are the configs in conf/<group>/:
adding a detector is one class file plus one YAML, and nothing else needs an edit."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from bench.config import group_options, load_group_config
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
        obj = instantiate(OmegaConf.to_container(node, resolve=True), _convert_="all")
        if not isinstance(obj, self.base):
            raise TypeError(f"{self.group} {name!r} builds {type(obj).__name__}, not a {self.base.__name__}")
        if name:
            obj.name = name
        return obj


DETECTORS = Registry("detector", "bench.detectors.base:Detector")
RECOGNIZERS = Registry("recognizer", "bench.recognizers.base:Recognizer")
GENERATORS = Registry("generator", "bench.generators.base:Generator")
SPACES = Registry("metric", "bench.spaces.base:Space")
QUERIES = Registry("query", "bench.queries.base:Query")
ACCESS = Registry("access", "bench.access.base:AccessModel")

REGISTRIES = {r.group: r for r in (DETECTORS, RECOGNIZERS, GENERATORS, SPACES, QUERIES, ACCESS)}
