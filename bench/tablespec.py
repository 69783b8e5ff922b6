"""What Tables 1-3 are made of (conf/config.yaml `tables:`): which distance, which query
spaces, which strategy columns. Shared by the tables stage (which writes them) and the metrics
and paper stages (which read them back), so no stage imports another."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables: which metric, which query spaces, which columns."""

    name: str
    metric: str
    spaces: tuple[str, ...] = ("embedding",)
    # column label -> the strategy name in pairs.parquet
    strategies: Mapping[str, str] = field(default_factory=lambda: {"furthest": "furthest", "random": "random_furthest"})
    comparisons: tuple[str, ...] = ("source_vs_target", "source_vs_result")
    title: str = ""

    @classmethod
    def from_config(cls, name: str, node: Mapping, strategies: Mapping[str, str]) -> "TableSpec":
        node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
        return cls(name=name, metric=node["metric"], spaces=tuple(node.get("spaces", ("embedding",))),
                   strategies=dict(node.get("strategies") or strategies),
                   comparisons=tuple(node.get("comparisons", cls.comparisons)), title=node.get("title", ""))

    def columns(self) -> list[tuple[str, str, str]]:
        """(space, comparison, column label) in display order."""
        return [(s, c, label) for s in self.spaces for c in self.comparisons for label in self.strategies]


def table_specs(cfg: DictConfig) -> list[TableSpec]:
    strategies = OmegaConf.to_container(cfg.tables.strategies, resolve=True)
    return [TableSpec.from_config(name, node, strategies) for name, node in cfg.tables.specs.items()]
