"""Paper vs ours per recognizer for one of Tables 1-3 (matplotlib, no pyplot state): one panel
per column of the paper's table, a group of bars per row (the paper's seven, their average,
then recognizers of ours that are none of the seven, marked as such), the paper's bar beside
each of ours (one series per our table that stands beside it, e.g. euclidean_l2 and raw
euclidean for Table 3), ours labelled with its n. A bar without a number reads "n/a"."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from bench import resultsio

PAPER_COLOR = "0.55"
OURS_COLORS = ("tab:blue", "tab:orange", "tab:green")


@dataclass
class Bar:
    """One row of one panel: the paper's value (None: not in the paper) and each series of ours
    as (value or None, label under the bar: n or "n/a")."""

    row: str
    paper: float | None
    ours: list[tuple[float | None, str]] = field(default_factory=list)
    marked: bool = False  # a row of ours that is none of the paper's seven


def plot_paper_vs_ours(title: str, panels: dict[str, list[Bar]], series: list[str], path: str | Path,
                       subtitle: str = "") -> Path:
    """Draws the chart to `path` (PNG); `panels` maps a column title to its bars, `series` names
    ours (one per entry of Bar.ours)."""
    n = max(1, len(panels))
    rows = max((len(b) for b in panels.values()), default=1)
    fig = Figure(figsize=(max(8.0, 0.55 * rows * (1 + len(series))), 2.9 * n), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    width = 0.8 / (1 + len(series))
    for ax, (column, bars) in zip(axes, panels.items()):
        x = np.arange(len(bars))
        paper = [b.paper if b.paper is not None else 0.0 for b in bars]
        ax.bar(x - 0.4 + width / 2, paper, width, color=PAPER_COLOR, label="paper")
        for i, b in enumerate(bars):
            if b.paper is None:
                ax.text(x[i] - 0.4 + width / 2, 0, "–", ha="center", va="bottom", fontsize=7)
        for k, name in enumerate(series):
            values = [b.ours[k][0] if k < len(b.ours) and b.ours[k][0] is not None else 0.0 for b in bars]
            offset = x - 0.4 + width * (k + 1.5)
            ax.bar(offset, values, width, color=OURS_COLORS[k % len(OURS_COLORS)], label=f"ours: {name}")
            for i, b in enumerate(bars):
                value, label = b.ours[k] if k < len(b.ours) else (None, "n/a")
                ax.text(offset[i], values[i], label if value is not None else "n/a", ha="center", va="bottom",
                        fontsize=6, rotation=90)
        ax.set_xticks(x, [f"{b.row}\n(not the paper's)" if b.marked else b.row for b in bars], fontsize=7)
        ax.set_ylim(0, 1.15)
        ax.set_ylabel("fraction verified", fontsize=8)
        ax.set_title(column, fontsize=9)
        ax.legend(frameon=False, fontsize=7, loc="upper left", ncols=1 + len(series))
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=10)
    path = Path(path)
    with resultsio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    return path
