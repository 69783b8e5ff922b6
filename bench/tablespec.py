"""What Tables 1-3 are made of (conf/config.yaml `tables:`): which distance, which query
spaces, which strategy columns, in the paper's column order. Shared by the tables stage (which
writes them) and the metrics and paper stages (which read them back), so no stage imports another."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from omegaconf import DictConfig, OmegaConf

ORDERS = ("spaces_first", "comparisons_first")


@dataclass(frozen=True)
class TableSpec:
    """One of the paper's tables: which metric, which query spaces, which columns.

    Columns: the paper's own labels (`paper_strategies`) first, then ours beyond the paper;
    within each, `order` spaces_first (Tables 1, 3: space, comparison, label) or
    comparisons_first (Table 2: Source vs Target SSIM, RMSE, then Source vs Result SSIM, RMSE).
    """

    name: str
    metric: str
    spaces: tuple[str, ...] = ("embedding",)
    # column label -> the strategy name in pairs.parquet
    strategies: Mapping[str, str] = field(default_factory=lambda: {"furthest": "furthest", "random": "random_furthest"})
    comparisons: tuple[str, ...] = ("source_vs_target", "source_vs_result")
    title: str = ""
    note: str = ""  # the header's sentence: which of our strategies is the paper's column, and why
    order: str = "spaces_first"
    paper_strategies: tuple[str, ...] | None = None  # None: every label is the paper's

    @classmethod
    def from_config(cls, name: str, node: Mapping, strategies: Mapping[str, str],
                    paper_strategies=None) -> "TableSpec":
        node = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
        order = str(node.get("order", "spaces_first"))
        if order not in ORDERS:
            raise ValueError(f"tables.specs.{name}.order={order!r}: one of {', '.join(ORDERS)}")
        own = node.get("strategies")
        chosen = dict(own) if own else dict(strategies)
        if own:  # a table that names its paper columns keeps the others after them
            chosen.update({k: v for k, v in strategies.items() if k not in chosen})
            paper = tuple(own)
        else:
            paper = tuple(paper_strategies) if paper_strategies is not None else None
        return cls(name=name, metric=node["metric"], spaces=tuple(node.get("spaces", ("embedding",))),
                   strategies=chosen, comparisons=tuple(node.get("comparisons", cls.comparisons)),
                   title=node.get("title", ""), note=" ".join(str(node.get("note", "")).split()), order=order,
                   paper_strategies=paper)

    def in_paper(self, label: str) -> bool:
        return self.paper_strategies is None or label in self.paper_strategies

    def columns(self) -> list[tuple[str, str, str]]:
        """(space, comparison, column label) in display order: the paper's columns, then ours."""
        labels = sorted(self.strategies, key=lambda label: not self.in_paper(label))  # stable
        out = []
        for group in (True, False):
            chosen = [label for label in labels if self.in_paper(label) == group]
            if self.order == "comparisons_first":
                out += [(s, c, label) for label in chosen for c in self.comparisons for s in self.spaces]
            else:
                out += [(s, c, label) for s in self.spaces for c in self.comparisons for label in chosen]
        return out


def table_specs(cfg: DictConfig) -> list[TableSpec]:
    strategies = OmegaConf.to_container(cfg.tables.strategies, resolve=True)
    paper = cfg.tables.get("paper_strategies")
    paper = list(paper) if paper is not None else None
    return [TableSpec.from_config(name, node, strategies, paper) for name, node in cfg.tables.specs.items()]
