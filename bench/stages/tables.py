"""Stage `tables`: the paper's Tables 1-3 from per-pair verification outcomes.

Each cell is the fraction of pairs that a recognizer verifies as the same person at its
default threshold (lower = better anonymization), with the number of pairs behind it; a row
per recognizer plus their unweighted average; columns Source vs Target and Source vs Result,
each for the "furthest" and the "random" target strategy (conf/config.yaml `tables`), the
paper's columns first and ours beyond the paper after them, labelled "not in the paper".
Table 1 uses cosine distance, Table 3 L2 twice (table3: deepface's euclidean_l2 on unit-length
embeddings; table3_euclidean: raw euclidean), with targets queried in embedding space; Table 2
has the paper's four columns (the furthest target in SSIM and in RMSE space, Source vs Target
then Source vs Result). Each table's header says which of our strategies is the paper's column. A cell without a number says "n/a: <reason>" (in the Markdown rendering "n/a¹", each
distinct reason once under the table: bench.footnotes).

`verification_table(outcomes, spec, recognizers)` is the pure writer: it takes the long
outcome table of bench.stages.evaluate.evaluate_pairs and returns a VerificationTable that
renders CSV, Markdown and LaTeX.

Reads (run): every <results_dir>/<dataset>/cells/<pool>/**/outcomes.parquet (evaluate stage).
Writes: <results_dir>/tables/<dataset>/<pool>/verification/<generator>/<tables.specs key>.{csv,md,tex},
        <results_dir>/tables/<dataset>/<pool>/verification/outcomes.parquet   (all per-pair outcomes)
        <results_dir>/tables/<dataset>/<pool>/verification/tables.provenance.json
"""
from __future__ import annotations

import dataclasses
import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.errors import BenchError
from bench.footnotes import markdown_with_footnotes
from bench.guard import recorded_guard
from bench.layout import DEFAULT_GUARD, GUARD_TABLE_PREFIX, Cell, DatasetLayout, cell_of_folder, verification_dir, verification_provenance
from bench.provenance import record
from bench.recognizers import selected_recognizers
from bench.tablespec import TableSpec, table_specs  # noqa: F401 (table_specs: public API of the stage)

log = logging.getLogger(__name__)

COMPARISON_LABELS = {"source_vs_target": "Source vs Target", "source_vs_result": "Source vs Result"}
SPACE_LABELS = {"embedding": "Embedding", "fid": "FID", "rmse": "RMSE", "ssim": "SSIM", "psnr": "PSNR"}
METRIC_LABELS = {"cosine": "cosine", "euclidean_l2": "L2 of unit-length embeddings (euclidean_l2)",
                 "euclidean": "raw Euclidean"}
NOT_IN_PAPER = "not in the paper"
AVERAGE = "average"
OK = "ok"


@dataclass(frozen=True)
class VerificationTable:
    """A table's cells in long form (one row per recognizer x column) and its renderings.

    cells columns: recognizer, space, comparison, column, rate (float or None), n (pairs;
    recognizers averaged for the average row), text ("n/a: ..." when rate is None).
    """

    spec: TableSpec
    cells: pd.DataFrame
    excluded: pd.DataFrame  # status, pairs: outcome rows without a number, by reason

    @property
    def recognizers(self) -> list[str]:
        return list(dict.fromkeys(self.cells.recognizer))

    def _key(self, space: str, comparison: str, label: str) -> str:
        return "/".join(([space] if len(self.spec.spaces) > 1 else []) + [comparison, label])

    def _cell(self, recognizer, space, comparison, label):
        return self._index[(recognizer, space, comparison, label)]

    @functools.cached_property
    def _index(self) -> dict:
        """(recognizer, space, comparison, column) -> the first such row of `cells` (one pass;
        a boolean mask per cell made a table of 11 recognizers take seconds)."""
        index = {}
        for row in self.cells.itertuples(index=False):
            index.setdefault((row.recognizer, row.space, row.comparison, row.column), row)
        return index

    def wide(self, fmt, count_fmt=None) -> pd.DataFrame:
        """Rows = recognizers + average; one column per table column (+ its count if count_fmt)."""
        rows = []
        for recognizer in self.recognizers:
            row = {}
            for space, comparison, label in self.spec.columns():
                cell = self._cell(recognizer, space, comparison, label)
                key = self._key(space, comparison, label)
                if count_fmt is None:
                    row[key] = cell.text if cell.rate is None else fmt(cell.rate, cell.n, recognizer == AVERAGE)
                else:
                    row[key] = cell.text if cell.rate is None else fmt(cell.rate)
                    row[f"{key} n"] = count_fmt(cell.n)
            rows.append(row)
        return pd.DataFrame(rows, index=pd.Index(self.recognizers, name="recognizer"))

    def to_csv(self) -> str:
        """Two columns per cell: the fraction verified (or "n/a: ...") and its pairs count
        ("<column> n"; for the average row, the number of recognizers averaged)."""
        table = self.wide(lambda rate: f"{rate:.4f}", count_fmt=lambda n: str(int(n)))
        return table.reset_index().to_csv(index=False, lineterminator="\n")

    def label(self, label: str) -> str:
        """A strategy column's label as shown: the paper's as it is, ours beyond it marked."""
        return label if self.spec.in_paper(label) else f"{label} ({NOT_IN_PAPER})"

    def display_labels(self) -> list[str]:
        multi_space = len(self.spec.spaces) > 1
        return [
            (f"{SPACE_LABELS.get(s, s)} · " if multi_space else "") + f"{COMPARISON_LABELS.get(c, c)}: {self.label(label)}"
            for s, c, label in self.spec.columns()
        ]

    def to_markdown(self) -> str:
        table = self.wide(display_cell)
        table.columns = self.display_labels()
        table.index.name = "Recognizer"
        lines = [f"**{self.spec.title}**", ""] if self.spec.title else []
        if self.spec.note:
            lines += [self.spec.note, ""]
        # "n/a: <reason>" cells become "n/a¹" with each reason once under the table (the CSV keeps them).
        lines.append(markdown_with_footnotes(table.reset_index(), index=False, tablefmt="pipe", disable_numparse=True))
        lines += ["", self.note()]
        return "\n".join(lines) + "\n"

    def to_latex(self) -> str:
        table = self.wide(display_cell)
        multi_space = len(self.spec.spaces) > 1
        table.columns = pd.MultiIndex.from_tuples([
            ((SPACE_LABELS.get(s, s),) if multi_space else ()) + (COMPARISON_LABELS.get(c, c), self.label(label))
            for s, c, label in self.spec.columns()
        ])
        table.index.name = None
        styler = (table.style.format(escape="latex").format_index(escape="latex", axis=0)
                  .format_index(escape="latex", axis=1))
        body = styler.to_latex(hrules=True, multicol_align="c", column_format="l" + "c" * table.shape[1])
        header = [f"% {self.spec.title}"] if self.spec.title else []
        header += [f"% {self.spec.note}"] if self.spec.note else []
        header += [f"% {line}" for line in self.note().splitlines()]
        return "\n".join(header) + "\n" + body

    def note(self) -> str:
        metric = METRIC_LABELS.get(self.spec.metric, self.spec.metric)
        text = (f"Fraction of pairs verified as the same person ({metric} distance <= the recognizer's "
                "default threshold; lower = better anonymization), pairs in parentheses; "
                "the average is the unweighted mean over the recognizers with a number "
                "(how many in parentheses).")
        if len(self.excluded):
            reasons = "; ".join(f"{r.pairs} {r.status}" for r in self.excluded.itertuples())
            text += f" Pair outcomes without a number: {reasons}."
        return text


def display_cell(rate: float, n: int, is_average: bool) -> str:
    return f"{rate:.3f} ({int(n)} rec.)" if is_average else f"{rate:.3f} (n={int(n)})"


def verification_table(outcomes: pd.DataFrame, spec: TableSpec, recognizers: Iterable[str] | None = None) -> VerificationTable:
    """The table `spec` from evaluate_pairs' long outcomes (pure: no files).

    Args:
        outcomes: columns recognizer, metric, comparison, strategy, space, verified, status.
        spec: the table's metric, spaces and columns.
        recognizers: row order (default: order of first appearance in `outcomes`); a listed
            recognizer without any outcome gets "n/a: no pairs" cells.
    """
    outcomes = outcomes[outcomes.metric == spec.metric]
    names = list(recognizers) if recognizers is not None else list(dict.fromkeys(outcomes.recognizer))
    wanted = outcomes[outcomes.space.isin(spec.spaces) & outcomes.comparison.isin(spec.comparisons)
                      & outcomes.strategy.isin(list(spec.strategies.values())) & outcomes.recognizer.isin(names)]
    groups = {key: group for key, group in wanted.groupby(["recognizer", "space", "comparison", "strategy"], sort=False)}
    rows = []
    for recognizer in names:
        for space, comparison, label in spec.columns():
            group = groups.get((recognizer, space, comparison, spec.strategies[label]))
            rows.append({"recognizer": recognizer, "space": space, "comparison": comparison, "column": label,
                         **cell_value(group)})
    cells = pd.DataFrame(rows, columns=["recognizer", "space", "comparison", "column", "rate", "n", "text"])
    cells = pd.concat([cells, average_row(cells, spec)], ignore_index=True)
    cells["rate"] = cells["rate"].astype(object).where(cells["rate"].notna(), None)
    excluded = (wanted[wanted.status != OK].groupby("status").size().rename("pairs").reset_index()
                .sort_values(["pairs", "status"], ascending=[False, True], kind="stable").reset_index(drop=True))
    return VerificationTable(spec, cells, excluded)


def cell_value(group: pd.DataFrame | None) -> dict:
    """rate, n and text of one recognizer's cell."""
    if group is None or group.empty:
        return {"rate": None, "n": 0, "text": "n/a: no pairs"}
    ok = group[group.status == OK]
    if ok.empty:
        reasons = group.status.value_counts()
        top = sorted(reasons[reasons == reasons.max()].index)[0]  # most common, ties alphabetical
        return {"rate": None, "n": 0, "text": top if top.startswith("n/a") else f"n/a: {top}"}
    return {"rate": float(ok.verified.astype(bool).mean()), "n": len(ok), "text": ""}


def average_row(cells: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    rows = []
    for space, comparison, label in spec.columns():
        col = cells[(cells.space == space) & (cells.comparison == comparison) & (cells.column == label)]
        rates = col.rate.dropna()
        rows.append({"recognizer": AVERAGE, "space": space, "comparison": comparison, "column": label,
                     "rate": float(rates.mean()) if len(rates) else None, "n": len(rates),
                     "text": "" if len(rates) else "n/a: no recognizer has a number"})
    return pd.DataFrame(rows, columns=cells.columns)


def write_table(table: VerificationTable, folder: Path) -> list[Path]:
    name = table.spec.name
    return [
        resultsio.write_text(table.to_csv(), folder / f"{name}.csv"),
        resultsio.write_text(table.to_markdown(), folder / f"{name}.md"),
        resultsio.write_text(table.to_latex(), folder / f"{name}.tex"),
    ]


# ---- guarded vs unguarded (bench.guard; issue 24) ----------------------------------------

GUARD_ROLE, JUDGE_ROLE = "guard", "not a guard (transfer)"


@dataclass(frozen=True)
class GuardTable:
    """One cell under the default guard beside its twins under other guards (e.g. open):
    per recognizer, Source vs Result verified rate in each, and whether it guarded.

    rows columns: recognizer, role, then per loop `<loop>` (rate or "n/a: ...") and `<loop> n`;
    plus one average row per role. `loops`: the default guard's name first."""

    cell: Cell
    metric: str
    guards: tuple[str, ...]
    loops: tuple[str, ...]
    rows: pd.DataFrame
    counts: dict

    @property
    def stem(self) -> str:
        return f"{GUARD_TABLE_PREFIX}{self.cell.metric}-{self.cell.query}"

    def to_markdown(self) -> str:
        shown = self.rows.copy()
        for loop in self.loops:
            shown[loop] = [v if isinstance(v, str) else f"{v:.3f} (n={int(n)})" for v, n in zip(shown[loop], shown[f"{loop} n"])]
        shown = shown[["recognizer", "role", *self.loops]]
        lines = [f"# Guarded vs unguarded: {self.cell.generator}, {self.cell.metric} space, {self.cell.query}", "",
                 f"Share of pairs verified as the same person, Source vs Result, {self.metric} distance "
                 "(lower = better anonymization). "
                 f"Guards (they saw every fake before it was published): {', '.join(self.guards) or 'none'}; "
                 "the recognizers that did not guard judge the loop unseen (transfer).", "",
                 markdown_with_footnotes(shown, index=False), ""]
        for loop, counts in self.counts.items():
            lines.append(f"- {loop}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        return "\n".join(lines) + "\n"


def guard_table(outcomes: pd.DataFrame, cell: Cell, twins: list[Cell], recognizers: Iterable[str]) -> GuardTable:
    """The GuardTable of `cell` (default guard) and its `twins` from the tables' outcomes
    (their `guard` column) and the cells' anonymize provenance (guards, counts)."""
    guard = recorded_guard(cell)
    guards, metric = tuple(guard.get("recognizers") or ()), str(guard.get("metric") or "cosine")
    loops = {DEFAULT_GUARD: cell, **{t.guard: t for t in twins}}
    mine = outcomes[(outcomes.metric == metric) & (outcomes.comparison == "source_vs_result")]
    rows = []
    for name in recognizers:
        row = {"recognizer": name, "role": GUARD_ROLE if name in guards else JUDGE_ROLE}
        for loop, c in loops.items():
            group = mine[(mine.cell == c.root.relative_to(c.results_dir).as_posix()) & (mine.recognizer == name)]
            value = cell_value(group)
            row[loop] = value["rate"] if value["rate"] is not None else value["text"]
            row[f"{loop} n"] = value["n"]
        rows.append(row)
    table = pd.DataFrame(rows)
    for role in (GUARD_ROLE, JUDGE_ROLE):
        row = {"recognizer": f"{AVERAGE} ({role})", "role": role}
        for loop in loops:
            rates = [v for v, r in zip(table[loop], table.role) if r == role and not isinstance(v, str)]
            row[loop] = float(sum(rates) / len(rates)) if rates else "n/a: no recognizer has a number"
            row[f"{loop} n"] = len(rates)
        rows.append(row)
    counts = {}
    for loop, c in loops.items():
        rec = json.loads(c.provenance.read_text(encoding="utf-8")) if c.provenance.is_file() else {}
        counts[loop] = {k: v for k, v in (rec.get("counts") or {}).items()
                        if k in ("faces", "swapped", "fallback", "guard_retried", "guard_fallback",
                                 "guard_still_verified", "guard_unchecked", "guard_identified",
                                 "guard_still_identified")}
    return GuardTable(cell, metric, guards, tuple(loops), pd.DataFrame(rows), counts)


def write_guard_table(table: GuardTable, folder: Path) -> list[Path]:
    """<folder>/guard_<metric>-<query>.{csv,md}."""
    return [resultsio.write_text(table.rows.to_csv(index=False), folder / f"{table.stem}.csv"),
            resultsio.write_text(table.to_markdown(), folder / f"{table.stem}.md")]


# ---- the stage: reading the anonymize stage's cells (issue 4 wires this up) --------------

def output_dir(cfg: DictConfig) -> Path:
    """<results_dir>/tables/<dataset>/<pool>/verification/: one folder per generator inside."""
    return verification_dir(cfg.results_dir, str(cfg.dataset.name), str(cfg.pool.name))


def find_outcomes(cfg: DictConfig) -> list[Path]:
    """Every evaluated cell's outcomes.parquet of the dataset and pool, sorted."""
    root = DatasetLayout.from_config(cfg).cells(str(cfg.pool.name))
    for pairs in sorted(root.glob("**/pairs.parquet")):
        if not (pairs.parent / "outcomes.parquet").is_file():
            log.warning("%s has no outcomes.parquet: run `python -m bench evaluate` for it; left out", pairs.parent)
    return sorted(root.glob("**/outcomes.parquet"))


def run(cfg: DictConfig) -> Path:
    """Writes Tables 1-3 per generator from every evaluated cell; returns the folder."""
    results, dataset = Path(cfg.results_dir), str(cfg.dataset.name)
    outcome_files = find_outcomes(cfg)
    if not outcome_files:
        raise BenchError(f"no outcomes.parquet under {results / dataset / 'cells' / str(cfg.pool.name)}: run "
                         "`python -m bench anonymize` and `python -m bench evaluate` for this dataset first")
    names = selected_recognizers(cfg)
    pool = str(cfg.pool.name)
    cells = [cell_of_folder(results, dataset, pool, path.parent) for path in outcome_files]
    frames = [pd.read_parquet(path).assign(cell=path.parent.relative_to(results).as_posix(),
                                           guard=cell.guard if cell else "")
              for path, cell in zip(outcome_files, cells)]
    outcomes = pd.concat(frames, ignore_index=True)
    out = output_dir(cfg)
    resultsio.write_parquet(outcomes, out / "outcomes.parquet")
    written = []
    # Tables 1-3: the cells of the default guard; the others only in the guard comparison
    for generator, group in outcomes[outcomes.guard == ""].groupby("generator", sort=True):
        for spec in table_specs(cfg):
            written += write_table(verification_table(group, spec, names), out / str(generator or "all"))
    for cell in cells:
        if cell is not None and not cell.guard:
            twins = [c for c in cells if c is not None and c.guard and dataclasses.replace(c, guard="") == cell]
            if twins:
                written += write_guard_table(guard_table(outcomes, cell, twins, names), out / cell.generator)
    resultsio.write_json(record(
        cfg, "tables",
        inputs=[{"path": str(p), "sha256": resultsio.sha256_file(p)} for p in outcome_files],
        outputs=[str(p) for p in written],
    ), verification_provenance(cfg.results_dir, str(cfg.dataset.name), str(cfg.pool.name)))
    log.info("%d tables from %d cells -> %s", len(written) // 3, len(outcome_files), out)
    return out
