"""The threshold-free view: how far the fakes moved from their sources, against how far two
real photos of one person (genuine) and of two people (impostor) lie apart.

A verification table reads one threshold; these distributions show the whole picture: the
Source-vs-Result distances (the result face found again by the detector, as Tables 1-3 judge
it) and the source-vs-fake distances (the fake embedded where the source face was, as the
attacks do). Two numbers sum each up: `separation_auc(results, impostor)`, the probability that a result lies
closer to its source than a random impostor pair does (0.5: the fake is as far from its
source as a stranger is; 1: every fake is closer than every stranger), and
`separation_auc(genuine, results)`, the probability that a genuine pair is closer than a
result is to its source (1: no fake is as close as another photo of the same person).
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from bench import resultsio

KINDS = ("genuine", "impostor", "source_vs_result", "source_vs_fake")


def separation_auc(closer, farther) -> float:
    """P(x < y) + P(x = y) / 2 for x drawn from `closer` and y from `farther` (the
    Mann-Whitney statistic; the ROC AUC of telling them apart); nan when either is empty."""
    x = np.sort(np.asarray(closer, dtype=np.float64))
    y = np.sort(np.asarray(farther, dtype=np.float64))
    if not len(x) or not len(y):
        return float("nan")
    below = np.searchsorted(x, y, side="left")  # per y: xs strictly smaller
    equal = np.searchsorted(x, y, side="right") - below
    return float((below.sum() + 0.5 * equal.sum()) / (len(x) * len(y)))


def summary(distances) -> dict:
    """n, mean, median and the 5th/95th percentiles (nan when empty)."""
    d = np.asarray(distances, dtype=np.float64)
    if not len(d):
        return {"n": 0, "mean": float("nan"), "median": float("nan"), "p05": float("nan"), "p95": float("nan")}
    return {"n": len(d), "mean": float(d.mean()), "median": float(np.median(d)),
            "p05": float(np.percentile(d, 5)), "p95": float(np.percentile(d, 95))}


def plot_distributions(path: Path, title: str, distributions: dict, threshold: float | None = None,
                       empty: str | None = None) -> Path:
    """One figure: a histogram (density) of each of `distributions` ({kind: distances}, kinds
    of KINDS) on shared bins, the threshold as a vertical line; a figure saying `empty` when
    there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"genuine": "tab:green", "impostor": "tab:red", "source_vs_result": "tab:blue",
               "source_vs_fake": "tab:orange"}
    labels = {"genuine": "genuine (two real photos, one person)", "impostor": "impostor (two people)",
              "source_vs_result": "source vs result (the fake found again)",
              "source_vs_fake": "source vs fake (at the source's landmarks)"}
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    values = {k: np.asarray(v, dtype=np.float64) for k, v in distributions.items() if len(v)}
    if values and empty is None:
        every = np.concatenate(list(values.values()))
        bins = np.linspace(float(every.min()), float(every.max()) + 1e-9, 41)
        for kind in KINDS:
            if kind in values:
                ax.hist(values[kind], bins=bins, density=True, alpha=0.45, color=colours[kind],
                        label=f"{labels[kind]}, n={len(values[kind])}")
        if threshold is not None and np.isfinite(threshold):
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.legend(fontsize=7, loc="upper right")
        ax.set(xlabel="distance (larger = less alike)", ylabel="density")
    else:
        ax.text(0.5, 0.5, textwrap.fill(empty or "no distances", 60), ha="center", va="center",
                fontsize=8, transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    resultsio.write_figure(fig, path, dpi=100)
    plt.close(fig)
    return Path(path)
