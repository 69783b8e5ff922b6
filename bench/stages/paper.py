"""Stage `paper`: every number the paper prints beside ours from one named run, computed the
paper's way; a chart per table; the headline numbers for `dvc metrics`.

The paper's values live in conf/paper/*.yaml only (bench.paperdata reads them), each with its
table or figure, section and line of the paper's text. Ours, per claim (`ours.kind`):

    verification  Tables 1-3: our table's cell (tables/<dataset>/<pool>/verification/
                  <generator>/<table>.csv) of the same recognizer and column; the `average` row
                  is the mean over the paper's seven recognizers only (conf/paper/paper.yaml
                  `recognizers`), never our table's average (which may hold stand-ins); each
                  recognizer of ours that is none of the seven has rows of its own, marked so
    percentage    the paper's percentages the paper's way: 100 x (1 - ours) ("reduces BY") or
                  100 x ours ("reduces TO") on the same column, the paper assuming 1.0 before
    reduction     the 61% relative to our genuine baseline instead: 100 x (1 - after / before)
                  over the recognizers with both (tables/baseline.csv; conf/config.yaml
                  paper.reduction), a second, clearly named row
    quality       Fig. 4: our quality table (tables/<dataset>/<pool>/quality_<metric>-<query>.csv)
                  row of the paper's generator, the named column (whole photo or face crop)

Which run is ours: conf/config.yaml `paper` (dataset, pool, generator, metric, query; null = the
command's own choice). Only result files are read; nothing is recomputed but the means and
1 - x above. Before any cell has run every claim still shows the paper's value, ours "n/a: why".

Reads:  conf/paper/*.yaml; the files above and their provenance; <results_dir>/metrics.json
        (faces left real, leaking faces: the metrics stage's cells section).
Writes (bench.layout.paper_files):
        <results_dir>/tables/paper_vs_ours.csv   one row per claim (COLUMNS; headline = "yes" for
            the percentage claims, which the report leads with)
        <results_dir>/tables/paper_vs_ours.md    headline claims first, then per table/figure,
            the paper's L2 reading, the paper's own errors once, n/a reasons as footnotes
        <results_dir>/tables/paper_vs_ours.provenance.json
        <results_dir>/headline.json              percentages ours vs paper, Tables 1-3 averages
            (the paper's seven), faces left real and leaking faces: the DVC metrics file
        <results_dir>/figures/paper_vs_ours_<table>.png   Tables 1-3: paper vs ours per recognizer
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.config import CONF_DIR
from bench.errors import BenchError
from bench.figures.paper_charts import Bar, plot_paper_vs_ours
from bench.footnotes import markdown_with_footnotes
from bench.layout import (PAPER_CHARTS, BaselineOutputs, metrics_json, paper_files, quality_files,
                          verification_provenance, verification_table)
from bench.paperdata import (AVERAGE, FORMS, PAPER_DIR, Claim, Paper, PaperDataError, formula_value,  # noqa: F401
                             l2_consistency, load_paper)
from bench.provenance import record

log = logging.getLogger(__name__)

COLUMNS = ["claim_id", "claim", "where", "section", "line", "unit", "paper", "paper_note", "ours", "difference",
           "detail", "dataset", "pool", "generator", "space", "strategy", "recognizer", "distance", "provenance",
           "reason", "headline"]
RUN_KEYS = ("dataset", "pool", "generator", "space", "strategy", "recognizer", "distance")
# our quality table's columns (bench.stages.quality) and their units
QUALITY_UNITS = {"psnr": "dB", "ssim": "index", "rmse": "[0,1]", "fid": "FID", "photo_psnr": "dB",
                 "photo_ssim": "index", "photo_rmse": "[0,1]", "embedding_l2": "l2", "embedding_l2_target": "l2",
                 "embedding_distance": "cosine"}
# (our unit, the claim's unit) -> factor
CONVERSIONS = {("fraction", "percent"): 100.0, ("percent", "fraction"): 0.01, ("[0,1]", "[0,255]"): 255.0}
HEADLINE_DIGITS = 4
HEADLINE_FILE = "percentages"  # conf/paper/<this>.yaml: the headline claims, shown first
HEADLINE = "Headline claims: the paper's percentages"


# ---- our side: result files of one run -------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """The run whose result files stand beside the paper (conf/config.yaml `paper`)."""

    results_dir: Path
    dataset: str
    pool: str
    generator: str
    metric: str
    query: str
    query_recognizer: str
    strategies: dict  # table column label -> strategy name (tables.strategies)
    specs: dict  # table name -> {"metric": ..., "spaces": [...]} (tables.specs)
    reduction: dict  # table, column, metric
    identities: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Run":
        opts = cfg.paper
        pick = lambda key, default: str(opts.get(key) if opts.get(key) is not None else default)  # noqa: E731
        tables = OmegaConf.to_container(cfg.tables, resolve=True)
        return cls(
            results_dir=Path(cfg.results_dir), dataset=pick("dataset", cfg.dataset.name), pool=pick("pool", cfg.pool.name),
            generator=pick("generator", cfg.choices.generator), metric=pick("metric", cfg.choices.metric),
            query=pick("query", cfg.choices.query), query_recognizer=str(cfg.query_recognizer),
            strategies=dict(tables["strategies"]), specs=dict(tables["specs"]),
            reduction=OmegaConf.to_container(opts.reduction, resolve=True), identities=str(cfg.identities.name))

    def describe(self) -> str:
        return f"dataset {self.dataset}, pool {self.pool}, generator {self.generator}"


@dataclass(frozen=True)
class Ours:
    """Our number for one claim, in `unit` (ours, before conversion), or why there is none."""

    value: float | None
    unit: str
    text: str = ""  # "n/a: <reason>" when value is None
    detail: str = ""
    run: dict = field(default_factory=dict)  # RUN_KEYS
    provenance: tuple[str, ...] = ()
    # what differs from the paper's setup: aspect -> (ours, the paper's or None for paper.yaml's setup)
    differs: dict = field(default_factory=dict)


class Results:
    """Our result files, each read once (a missing file is remembered as missing)."""

    def __init__(self, run: Run, paper: Paper):
        self.run, self.paper = run, paper
        self._tables: dict[Path, pd.DataFrame | None] = {}
        self._configs: dict[Path, dict] = {}
        self.read: set[Path] = set()

    def table(self, path: Path) -> pd.DataFrame | None:
        if path not in self._tables:
            self._tables[path] = pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None
            if path.is_file():
                self.read.add(path)
        return self._tables[path]

    def config_of(self, provenance: Path) -> dict:
        """The config a result file's provenance recorded ({} when absent)."""
        if provenance not in self._configs:
            try:
                self._configs[provenance] = json.loads(provenance.read_text(encoding="utf-8")).get("config") or {}
            except (OSError, ValueError, AttributeError):
                self._configs[provenance] = {}
        return self._configs[provenance]

    def verification_csv(self, table: str) -> Path:
        run = self.run
        return verification_table(run.results_dir, run.dataset, run.pool, run.generator, table, ".csv")

    def verification_provenance(self) -> Path:
        return verification_provenance(self.run.results_dir, self.run.dataset, self.run.pool)

    def verification_cell(self, table: str, recognizer: str, column: str) -> tuple[float | None, str, str]:
        """(rate, "n/a: ..." or "", detail) of one cell of our table; `average` = the mean over
        the paper's seven recognizers that have a number (detail names them and the n/a ones)."""
        path = self.verification_csv(table)
        frame = self.table(path)
        if frame is None:
            return None, f"n/a: {path} not found (run `python -m bench tables` for {self.run.describe()})", ""
        key = column_key(frame.columns, column)
        if key is None:
            return None, f"n/a: no column {column} in {path}", ""
        if recognizer == AVERAGE:
            return self.seven_mean(frame, key)
        row = frame[frame.recognizer == recognizer]
        if row.empty:
            return None, f"n/a: no {recognizer} row in {path} (not in `recognizers`)", ""
        text, n = row[key].iloc[0], row.get(f"{key} n", pd.Series([""])).iloc[0]
        value = as_number(text)
        if value is None:
            return None, text if text.startswith("n/a") else f"n/a: {text or 'empty cell'}", ""
        return value, "", f"n={n} pairs"

    def seven_mean(self, frame: pd.DataFrame, key: str) -> tuple[float | None, str, str]:
        """The paper's average computed the paper's way: the unweighted mean of the paper's seven
        recognizers' cells (stand-ins and other recognizers of ours never enter it)."""
        rates = {r: as_number(v) for r, v in zip(frame.recognizer, frame[key])}
        have = [r for r in self.paper.seven if rates.get(r) is not None]
        lacking = [r for r in self.paper.seven if rates.get(r) is None]
        if not have:
            return None, (f"n/a: none of the paper's seven recognizers ({', '.join(self.paper.seven)}) has a number "
                          "here (their weights are absent or their cells did not run)"), ""
        detail = f"mean of {len(have)} of the paper's 7: {', '.join(have)}"
        if lacking:
            detail += f"; n/a: {', '.join(lacking)}"
        return sum(rates[r] for r in have) / len(have), "", detail

    def space_label(self, space: str) -> str:
        if space != "embedding":
            return space
        recorded = self.config_of(self.verification_provenance()).get("query_recognizer")
        return f"embedding ({recorded or self.run.query_recognizer})"


def strategy_label(run: Run, label: str) -> str:
    """The query strategy behind a table column label: "random_furthest (column random)"."""
    name = str(run.strategies.get(label, label))
    return name if name == label else f"{name} (column {label})"


def column_key(columns, column: str) -> str | None:
    """Our CSV's key for a claim column: exact, or without the space prefix that single-space
    tables omit (table1.csv has source_vs_result/random; a claim may say embedding/...)."""
    if column in columns:
        return column
    parts = column.split("/")
    if len(parts) == 3 and "/".join(parts[1:]) in columns:
        return "/".join(parts[1:])
    return None


def as_number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _differs(run: Run, data: str, **aspects) -> dict:
    """aspect -> (ours, paper or None): data and pool always, plus `aspects`."""
    return {"data": (data, None), "pool": (run.pool, None), **aspects}


def _with(ours: Ours, **changes) -> Ours:
    return Ours(**{**ours.__dict__, **changes})


def _verification_run(results: Results, table: str, recognizer: str, column: str) -> dict:
    run = results.run
    spec = run.specs.get(table) or {}
    parts = column.split("/")
    space = parts[0] if len(parts) == 3 else (list(spec.get("spaces") or ["embedding"])[0])
    shown = recognizer
    if recognizer == AVERAGE:
        shown = "average of the paper's seven"
    elif recognizer in results.paper.not_the_papers:
        shown = f"{recognizer} [{results.paper.not_the_papers[recognizer]}]"
    return {"dataset": run.dataset, "pool": run.pool, "generator": run.generator,
            "space": results.space_label(space), "strategy": strategy_label(run, parts[-1]),
            "recognizer": shown, "distance": f"{spec.get('metric', '')} ({table})"}


def ours_verification(claim: Claim, results: Results) -> Ours:
    run, sel = results.run, claim.ours
    table, recognizer, column = str(sel["table"]), str(sel["recognizer"]), str(sel["column"])
    value, why, detail = results.verification_cell(table, recognizer, column)
    weights = f"{recognizer} as provisioned here" if recognizer != AVERAGE else f"the {detail}"
    return Ours(value=value, unit="fraction", text=why, detail=detail,
                run=_verification_run(results, table, recognizer, column),
                provenance=(str(results.verification_provenance()),),
                differs=_differs(run, run.dataset, generator=(run.generator, None), weights=(weights, None),
                                 query=(f"{results.space_label('embedding')}, {run.metric} metric", None)))


def ours_percentage(claim: Claim, results: Results) -> Ours:
    """The paper's formula on ours: 100 x (1 - ours) or 100 x ours on the same column."""
    base = ours_verification(claim, results)
    if base.value is None:
        return _with(base, unit="percent")
    form = str(claim.ours["form"])
    shown = "1 - ours" if form == "one_minus" else "ours itself"
    return _with(base, value=FORMS[form](base.value), unit="percent",
                 detail=f"{shown}: ours {base.value:.4f} ({base.detail})")


def ours_quality(claim: Claim, results: Results) -> Ours:
    run, sel = results.run, claim.ours
    generator, column = str(sel["generator"]), str(sel.get("column") or "")
    files = quality_files(run.results_dir, run.dataset, run.pool, run.metric, run.query)
    base = Ours(value=None, unit=QUALITY_UNITS.get(column, ""),
                run={"dataset": run.dataset, "pool": run.pool, "generator": generator, "space": run.metric,
                     "strategy": run.query, "recognizer": "", "distance": f"{column} ({sel.get('measured_on', '')})"},
                provenance=(str(files["provenance"]),),
                differs=_differs(run, run.dataset, generator=(f"conf/generator/{generator}.yaml",
                                                              str(sel.get("paper_generator", generator)))))
    if not column:
        return _with(base, run={**base.run, "distance": ""},
                     text=f"n/a: one of the paper's own samples ({sel.get('sample')}); ours stands beside the "
                          "mean of the six (claims fig4.mean.*)")
    frame = results.table(files["csv"])
    if frame is None:
        return _with(base, text=f"n/a: {files['csv']} not found (run `python -m bench quality` for {run.describe()})")
    row = frame[frame.generator == generator]
    if row.empty:
        return _with(base, text=f"n/a: {generator} is not in quality.generators (the quality table has "
                                f"{', '.join(frame.generator) or 'no generator'})")
    status = row.status.iloc[0]
    if status != "ok":
        return _with(base, text=status if status.startswith("n/a") else f"n/a: {status}")
    if column not in row:
        return _with(base, text=f"n/a: no {column} column in {files['csv']} (rerun `python -m bench quality`)")
    value = as_number(row[column].iloc[0])
    if value is None:
        why = "; FID needs two faces a side" if column == "fid" else ""
        return _with(base, text=f"n/a: no {column} for {generator} (n={row.n.iloc[0]} faces{why})")
    count = f"n={row.photos.iloc[0]} photos" if column.startswith("photo_") and "photos" in row else f"n={row.n.iloc[0]} faces"
    return _with(base, value=value, detail=count)


def ours_reduction(claim: Claim, results: Results) -> Ours:
    """100 x (1 - mean after / mean before) over the recognizers of the paper's seven with both."""
    run = results.run
    table, column, metric = str(run.reduction["table"]), str(run.reduction["column"]), str(run.reduction["metric"])
    baseline = BaselineOutputs(run.results_dir).csv
    base = Ours(value=None, unit="percent",
                run={"dataset": f"{run.dataset} (after); {run.identities} (before)", "pool": run.pool,
                     "generator": run.generator, "space": results.space_label("embedding"),
                     "strategy": strategy_label(run, column), "recognizer": "", "distance": metric},
                provenance=(str(BaselineOutputs(run.results_dir).provenance), str(results.verification_provenance())),
                differs=_differs(run, f"{run.identities} (before), {run.dataset} (after)", generator=(run.generator, None)))
    before = results.table(baseline)
    if before is None:
        return _with(base, text=f"n/a: no genuine baseline: {baseline} not found (run `python -m bench baseline`; "
                                "it needs the identities set, ../shared/data/identities)")
    tar = {r.recognizer: as_number(r.tar) for r in before[before.metric == metric].itertuples()}
    tar = {k: v for k, v in tar.items() if v is not None and k in results.paper.seven}
    after_path = results.verification_csv(table)
    after_frame = results.table(after_path)
    if after_frame is None:
        return _with(base, text=f"n/a: {after_path} not found (run `python -m bench tables` for {run.describe()})")
    key = column_key(after_frame.columns, f"source_vs_result/{column}")
    if key is None:
        return _with(base, text=f"n/a: no column source_vs_result/{column} in {after_path}")
    after = {r: as_number(v) for r, v in zip(after_frame.recognizer, after_frame[key]) if r in results.paper.seven}
    both = [r for r in after if after[r] is not None and r in tar]
    if not both:
        return _with(base, text=f"n/a: none of the paper's seven has both a baseline TAR ({', '.join(tar) or 'none'}) "
                                f"and a Source vs Result rate ({', '.join(r for r in after if after[r] is not None) or 'none'})")
    mean_before = sum(tar[r] for r in both) / len(both)
    mean_after = sum(after[r] for r in both) / len(both)
    run_info = {**base.run, "recognizer": ", ".join(both)}
    if mean_before <= 0:
        return _with(base, run=run_info, text="n/a: the baseline verifies no genuine pair (mean TAR 0)")
    detail = (f"TAR before {mean_before:.4f}, verified after {mean_after:.4f} (means over {len(both)} of the paper's "
              f"seven); absolute drop {100 * (mean_before - mean_after):.1f} points")
    return _with(base, value=100.0 * (1.0 - mean_after / mean_before), detail=detail, run=run_info,
                 differs={**base.differs, "weights": (f"{len(both)} recognizers with both numbers: {', '.join(both)}", None)})


READERS = {"verification": ours_verification, "quality": ours_quality, "reduction": ours_reduction,
           "percentage": ours_percentage}
SETUP_KEYS = {"data": "data", "pool": "pool", "generator": "generator", "weights": "recognizers", "query": "query"}
ASPECT_LABELS = {"data": "other data", "pool": "other pool", "generator": "other generator",
                 "weights": "other recognizer weights", "query": "other query space"}


def convert(value: float, ours_unit: str, claim: Claim) -> float:
    """Our value in the claim's unit (fraction -> percent x100, [0,1] -> [0,255] x255).

    Raises:
        PaperDataError: no conversion is known between the two units.
    """
    if not claim.unit or claim.unit == ours_unit:
        return value
    factor = CONVERSIONS.get((ours_unit, claim.unit))
    if factor is None:
        raise PaperDataError(f"claim {claim.id}: the paper's unit {claim.unit!r} cannot be compared with ours ({ours_unit!r})")
    return value * factor


# ---- the table ---------------------------------------------------------------------------------

def compare(paper: Paper, results: Results) -> pd.DataFrame:
    """One row per claim (COLUMNS): the paper's value, ours, the difference and why they differ."""
    setup = paper.meta.get("setup") or {}
    rows = []
    for claim in paper.claims:
        ours = READERS[claim.ours["kind"]](claim, results)
        value = None if ours.value is None else round(convert(ours.value, ours.unit, claim), 4)
        note = claim.note
        if claim.ours["kind"] == "percentage":
            check = formula_value(paper, claim)
            note = "; ".join(p for p in (claim.formula, f"the formula on the paper's table gives {check:g}"
                                         if check is not None else "") if p)
        elif claim.formula:
            note = "; ".join(p for p in (claim.formula, note) if p)
        paper_text = f"{claim.value:g}" if claim.value is not None else "n/a: not in the paper"
        if claim.derived and claim.value is not None:
            paper_text += " (derived by us)"
        row = {"claim_id": claim.id, "claim": claim.claim, "where": claim.where, "section": claim.section,
               "line": claim.line, "unit": claim.unit or ours.unit, "paper": paper_text, "paper_note": note,
               "ours": f"{value:.4f}" if value is not None else ours.text,
               "difference": f"{value - claim.value:+.4f}" if value is not None and claim.value is not None else "n/a",
               "detail": ours.detail, **{k: ours.run.get(k, "") for k in RUN_KEYS},
               "provenance": "; ".join(ours.provenance),
               "headline": "yes" if claim.file == f"{HEADLINE_FILE}.yaml" else "",
               "section_key": HEADLINE if claim.file == f"{HEADLINE_FILE}.yaml" else claim.where}
        if claim.value is None:
            row["reason"] = f"n/a: {claim.note}"
        elif value is None:
            row["reason"] = ours.text
        else:
            row["reason"] = "; ".join(
                f"{ASPECT_LABELS[aspect]} (ours: {mine}; paper: {' '.join(str(theirs or setup.get(SETUP_KEYS[aspect], 'not stated')).split())})"
                for aspect, (mine, theirs) in ours.differs.items())
        rows.append(row)
    return pd.DataFrame(rows, columns=[*COLUMNS, "section_key"])


def to_markdown(table: pd.DataFrame, paper: Paper, run: Run, l2_lines: list[str]) -> str:
    """Headline claims first, then one Markdown table per table/figure of the paper, the paper's
    L2 reading under Table 3, the paper's own errors once; n/a reasons as footnotes."""
    meta = paper.meta
    have_ours = int((~table.ours.str.startswith("n/a")).sum())
    printed = int((~table.paper.str.startswith("n/a") & ~table.paper.str.contains("derived")).sum())
    lines = [
        "# The paper's numbers beside ours", "",
        f"Paper: {' '.join(str(meta.get('citation', '')).split())} Values from its text "
        f"(`{meta.get('text', '')}` under the shared folder), cited by section and line.", "",
        f"Ours: {run.describe()}; Fig. 4 from quality_{run.metric}-{run.query}. {len(table)} rows: {printed} printed "
        f"values of the paper, the rest derived by us from them (marked) or rows of ours the paper has none for; "
        f"{have_ours} with ours. Ours computed the paper's way: its averages over its seven recognizers only "
        "(stand-ins in rows of their own), its percentages as 1 - ours on the same column. "
        "Difference = ours - paper, in the claim's unit.",
    ]
    for where, group in table.groupby("section_key", sort=False):
        shown = pd.DataFrame({
            "Claim": group.claim, "Line": group.line, "Paper": group.paper, "Note": group.paper_note,
            "Ours": [f"{o} ({d})" if d and not o.startswith("n/a") else o for o, d in zip(group.ours, group.detail)],
            "Δ": group.difference,
            "Run": [" · ".join(p for p in (f"{r.dataset} / {r.pool} / {r.generator}", r.space, r.strategy, r.recognizer,
                                           r.distance) if p) for r in group.itertuples()],
        })
        sections = sorted({s for s in group.section if s})
        lines += ["", f"## {where}" + (f" ({', '.join(sections)})" if sections else ""), "",
                  markdown_with_footnotes(shown, index=False, tablefmt="pipe", disable_numparse=True)]
        if where == "Table 3" and l2_lines:
            lines += ["", "Which L2 the paper's Table 3 is consistent with (from the paper's numbers and deepface's "
                          "thresholds, on unit-length embeddings euclidean_l2 = sqrt(2 x cosine distance)):", ""]
            lines += [f"- {line}" for line in l2_lines]
        provenance = sorted({p for ps in group.provenance for p in ps.split("; ") if p})
        lines += ["", "Ours from: " + "; ".join(provenance), "",
                  "Why ours and the paper's differ (first row with both numbers): "
                  + next((r for r in group.reason if r and not r.startswith("n/a")), "no row has both numbers")]
    errors = meta.get("errors") or []
    if errors:
        lines += ["", "## The paper's errors of its own", ""]
        lines += [f"- line {e.get('line')}: {' '.join(str(e.get('text', '')).split())}" for e in errors]
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    """A conf/ path relative to the repository (the same on every machine), others as they are."""
    try:
        return path.resolve().relative_to(CONF_DIR.parent).as_posix()
    except ValueError:
        return str(path)


# ---- charts and headline numbers --------------------------------------------------------------

def chart_panels(table: pd.DataFrame, paper: Paper, name: str) -> tuple[dict[str, list[Bar]], list[str]]:
    """{column: bars} of one table for plot_paper_vs_ours, and the names of ours' series (one per
    our table beside it: the id suffix "@<table>")."""
    rows = table[table.claim_id.str.startswith(f"{name}.")]
    series: list[str] = []
    cells: dict[tuple[str, str], dict] = {}
    for r in rows.itertuples():
        head, _, ours_table = r.claim_id.partition("@")
        _, row, column = head.split(".", 2)
        if row == "mean_of_rows":
            continue
        label = ours_table or name
        if label not in series:
            series.append(label)
        entry = cells.setdefault((row, column), {"paper": as_number(r.paper.split(" ")[0]), "ours": {}})
        n = r.detail.split("pairs")[0].strip() if r.detail.startswith("n=") else (
            f"{r.detail.split(':')[0].replace('mean of ', '')}" if r.detail else "")
        entry["ours"][label] = (as_number(r.ours), n)
    panels: dict[str, list[Bar]] = {}
    for (row, column), entry in cells.items():
        panels.setdefault(column, []).append(Bar(
            row=row, paper=entry["paper"], ours=[entry["ours"].get(s, (None, "n/a")) for s in series],
            marked=row in paper.not_the_papers))
    return panels, series


def headline(table: pd.DataFrame, paper: Paper, results_dir: Path, run: Run) -> dict:
    """The headline numbers: each percentage claim (paper, ours), each Table 1-3 average of the
    paper's seven (paper, ours), faces left real and leaking faces of the run's cells (from
    metrics.json; null when absent). Numbers or null only, so `dvc metrics` reads a table."""
    out: dict = {"percent": {}, "average": {}, "faces": {}}
    by_id = table.set_index("claim_id")
    for claim in paper.claims:
        if claim.ours["kind"] in ("percentage", "reduction"):
            r = by_id.loc[claim.id]
            out["percent"][claim.id] = {"paper": claim.value, "ours": _rounded(as_number(r.ours))}
        elif (claim.ours["kind"] == "verification" and claim.ours["recognizer"] == AVERAGE and not claim.derived):
            r = by_id.loc[claim.id]
            table_name = str(claim.ours["table"])
            out["average"].setdefault(table_name, {})[str(claim.ours["column"])] = {
                "paper": claim.value, "ours": _rounded(as_number(r.ours))}
    out["faces"] = faces_left(results_dir, run)
    return out


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, HEADLINE_DIGITS)


def faces_left(results_dir: Path, run: Run) -> dict:
    """Faces left real and leaking faces summed over the run's cells (metrics.json's cells
    section for the run's dataset and pool), and how many cells; null when not measured."""
    path = metrics_json(results_dir)
    cells = {}
    if path.is_file():
        try:
            cells = (json.loads(path.read_text(encoding="utf-8")).get("cells") or {}).get(run.dataset, {}).get(run.pool, {})
        except ValueError:
            cells = {}
    found = [c for gen in cells.values() for space in gen.values() for c in space.values() if isinstance(c, dict)]
    left = [c.get("left_real") for c in found if isinstance(c.get("left_real"), int)]
    leaking = [(c.get("leaks") or {}).get("leaking_faces") for c in found]
    leaking = [v for v in leaking if isinstance(v, int)]
    return {"cells": len(found), "left_real": sum(left) if left else None,
            "leaking": sum(leaking) if leaking else None}


# ---- the stage ---------------------------------------------------------------------------------------

def _thresholds(paper: Paper) -> dict[str, dict[str, float]]:
    """deepface's thresholds of the paper's seven (our configs' threshold_source), for the L2 reading."""
    from bench.recognizers.thresholds import ThresholdsUnavailable, load_thresholds
    from bench.registry import RECOGNIZERS

    out = {}
    for name in paper.seven:
        try:
            out[name] = load_thresholds(RECOGNIZERS.config(name).get("threshold_source"), name)
        except (ThresholdsUnavailable, BenchError, KeyError, ValueError) as err:
            log.warning("no thresholds for %s: %s", name, err)
    return out


def run(cfg: DictConfig) -> dict[str, Path]:
    """Writes paper_vs_ours.{csv,md}, its provenance, headline.json and a chart per table;
    returns bench.layout.paper_files."""
    paper = load_paper(PAPER_DIR)
    results = Results(Run.from_config(cfg), paper)
    table = compare(paper, results)
    l2_lines = l2_consistency(paper, _thresholds(paper))
    files = paper_files(cfg.results_dir)
    resultsio.write_csv(table[COLUMNS], files["csv"])
    resultsio.write_text(to_markdown(table, paper, results.run, l2_lines), files["md"])
    numbers = headline(table, paper, Path(cfg.results_dir), results.run)
    resultsio.write_json(numbers, files["headline"])
    titles = {c.ours.get("table"): c.where for c in paper.claims if c.ours["kind"] == "verification"}
    for name in PAPER_CHARTS:
        panels, series = chart_panels(table, paper, name)
        series = [f"{s} ({(results.run.specs.get(s) or {}).get('metric', '?')})" for s in series]
        plot_paper_vs_ours(f"{titles.get(name, name)}: the paper vs ours per recognizer ({results.run.describe()})",
                           panels, series, files[f"chart_{name}"],
                           subtitle="ours labelled with n (pairs; for the average, recognizers of the paper's 7)")
    if metrics_json(cfg.results_dir).is_file():
        results.read.add(metrics_json(cfg.results_dir))
    resultsio.write_json(record(
        cfg, "paper",
        paper_data=[{"path": _shown(p), "sha256": resultsio.sha256_file(p)} for p in sorted(PAPER_DIR.glob("*.yaml"))],
        inputs=[{"path": str(p), "sha256": resultsio.sha256_file(p)} for p in sorted(results.read)],
        run={k: str(v) for k, v in results.run.__dict__.items() if k in ("dataset", "pool", "generator", "metric", "query")},
        counts={"claims": len(table), "paper_values": int((~table.paper.str.startswith("n/a")).sum()),
                "ours_values": int((~table.ours.str.startswith("n/a")).sum()),
                "both": int((table.difference != "n/a").sum())},
    ), files["provenance"])
    for r in table[table.section_key == HEADLINE].itertuples():
        log.info("%-24s paper %-6s ours %s", r.claim_id, r.paper, r.ours if r.ours.startswith("n/a") else
                 f"{r.ours} ({r.detail})")
    log.info("paper vs ours: %d rows (%d with ours) -> %s", len(table),
             int((~table.ours.str.startswith("n/a")).sum()), files["md"])
    return files
