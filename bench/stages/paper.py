"""Stage `paper`: every quantitative claim of the paper beside our number from one named run.

The paper's values live in conf/paper/*.yaml only (never in code), each with the table or
figure and page it is read from and its source (URL + table/figure + page); a value that could
not be retrieved is null with `missing:` saying why (conf/paper/paper.yaml records what was
retrieved). Two layouts: a `claims:` list (one claim each), or a grid (`columns:` and
`values: {row: [value per column]}`, with `where`, `page`, `source`, `missing`, `unit` and
`ours` for the whole grid). `ours.kind` says which of our result files stands beside it:

    verification  Tables 1-3: tables/<dataset>/<pool>/verification/<generator>/<table>.csv,
                  row = recognizer, column = [<space>/]<comparison>/<strategy label>
    quality       Fig. 4: tables/<dataset>/<pool>/quality_<metric>-<query>.csv, row = our
                  generator (ours.generators maps the paper's), column = psnr/ssim/rmse/fid
    reduction     the abstract's average accuracy reduction: 100 x (1 - after / before) over
                  the recognizers with both numbers; before = TAR on genuine pairs at the
                  default threshold (tables/baseline.csv, the baseline stage on the identities
                  set), after = Table 1's Source vs Result rate (conf/config.yaml paper.reduction)

Which run is ours: conf/config.yaml `paper` (dataset, pool, generator, metric, query; null =
the command's own choice). Only result files are read; nothing is recomputed.

Reads:  conf/paper/*.yaml; the files above and their provenance (tables.provenance.json,
        quality_<metric>-<query>.provenance.json, baseline.provenance.json).
Writes: <results_dir>/tables/paper_vs_ours.csv   one row per claim: claim, where, page,
            source, unit, paper, ours, difference (ours - paper, in the claim's unit), detail,
            dataset, pool, generator, space, strategy, recognizer, distance, provenance, reason
        <results_dir>/tables/paper_vs_ours.md    the same per table/figure, n/a reasons as footnotes
        <results_dir>/tables/paper_vs_ours.provenance.json
A cell without a number reads "n/a: <reason>"; `reason` says why ours and the paper's differ
(other data, pool, generator, weights) or why one of them is missing.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.config import CONF_DIR
from bench.errors import BenchError
from bench.footnotes import markdown_with_footnotes
from bench.layout import BaselineOutputs, paper_files, quality_files, verification_provenance, verification_table
from bench.provenance import record

log = logging.getLogger(__name__)

PAPER_DIR = CONF_DIR / "paper"
COLUMNS = ["claim_id", "claim", "where", "page", "source", "unit", "paper", "ours", "difference", "detail",
           "dataset", "pool", "generator", "space", "strategy", "recognizer", "distance", "provenance", "reason"]
RUN_KEYS = ("dataset", "pool", "generator", "space", "strategy", "recognizer", "distance")
QUALITY_UNITS = {"psnr": "dB", "ssim": "index", "rmse": "[0,1]", "fid": "FID"}  # bench.imagequality, quality stage
# (our unit, the claim's unit) -> factor
CONVERSIONS = {("fraction", "percent"): 100.0, ("percent", "fraction"): 0.01, ("[0,1]", "[0,255]"): 255.0}
AVERAGE = "average"


class PaperDataError(BenchError, ValueError):
    """conf/paper/ is malformed: a value without its source, an unknown kind, a ragged grid."""


@dataclass(frozen=True)
class Claim:
    """One number the paper states (or would state: value None) and where ours comes from.

    value is in `unit` (e.g. percent, fraction, dB); page and source are "" when unknown;
    `ours` holds kind plus its selectors (table, recognizer, column / generator, measure).
    """

    id: str
    claim: str
    where: str
    page: str
    value: float | None
    unit: str
    source: str
    missing: str
    ours: dict
    file: str


@dataclass(frozen=True)
class Ours:
    """Our number for one claim, in `unit` (ours, before conversion), or why there is none."""

    value: float | None
    unit: str
    text: str = ""  # "n/a: <reason>" when value is None
    detail: str = ""
    run: dict = field(default_factory=dict)  # RUN_KEYS
    provenance: tuple[str, ...] = ()
    # what differs from the paper's setup: aspect (data, pool, generator, weights) -> (ours,
    # the paper's or None for conf/paper/paper.yaml's setup)
    differs: dict = field(default_factory=dict)


# ---- the paper's side: conf/paper/*.yaml ------------------------------------------------------

def load_paper(folder: Path = PAPER_DIR) -> tuple[dict, list[Claim]]:
    """(the `paper:` block — citation, what was retrieved, setup, order — and every claim,
    file by file in `paper.order`, then by name).

    Args:
        folder: the data files (default conf/paper/).

    Raises:
        PaperDataError: a value without source or page, a null without `missing`, a grid
            row whose length differs from `columns`, a duplicate claim id, an unknown kind.
    """
    meta: dict = {}
    claims: list[Claim] = []
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise PaperDataError(f"no paper data in {folder}: conf/paper/*.yaml holds the paper's values")
    loaded = {path: yaml.safe_load(path.read_text(encoding="utf-8")) or {} for path in files}
    for data in loaded.values():
        meta.update(data.get("paper") or {})
    # the paper's own order (paper.order: file stems), then any other file by name
    order = {stem: i for i, stem in enumerate(meta.get("order") or [])}
    for path in sorted(files, key=lambda p: (order.get(p.stem, len(order)), p.name)):
        data = loaded[path]
        for entry in data.get("claims") or []:
            claims.append(_claim(path, entry))
        if "values" in data:
            claims += _grid(path, data)
    seen: set[str] = set()
    for c in claims:
        if c.id in seen:
            raise PaperDataError(f"claim id {c.id!r} appears twice in {folder}")
        seen.add(c.id)
    return meta, claims


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _claim(path: Path, entry: dict) -> Claim:
    where = f"{path.name}: {entry.get('id', '?')}"
    value = entry.get("value")
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise PaperDataError(f"{where}: value {value!r} is not a number")
        if not _text(entry.get("source")) or entry.get("page") is None:
            raise PaperDataError(f"{where}: a paper value needs its source (URL + table/figure + page) and page")
    elif not _text(entry.get("missing")):
        raise PaperDataError(f"{where}: a null value needs `missing:` saying why it could not be read")
    ours = dict(entry.get("ours") or {})
    if ours.get("kind") not in READERS:
        raise PaperDataError(f"{where}: ours.kind must be one of {', '.join(READERS)}, got {ours.get('kind')!r}")
    lacking = [key for key in SELECTORS[ours["kind"]] if key not in ours]
    if lacking:
        raise PaperDataError(f"{where}: ours of kind {ours['kind']} needs {', '.join(lacking)}")
    return Claim(id=str(entry["id"]), claim=_text(entry.get("claim")), where=_text(entry.get("where")),
                 page=_text(entry.get("page")), value=None if value is None else float(value),
                 unit=_text(entry.get("unit")), source=_text(entry.get("source")),
                 missing=_text(entry.get("missing")), ours=ours, file=path.name)


def _grid(path: Path, data: dict) -> list[Claim]:
    """A table or figure as rows x columns: one claim per cell."""
    columns = [str(c) for c in data.get("columns") or []]
    ours = dict(data.get("ours") or {})
    units = data.get("unit")
    claims = []
    for row, values in (data.get("values") or {}).items():
        values = list(values or [])
        if len(values) != len(columns):
            raise PaperDataError(f"{path.name}: row {row!r} has {len(values)} values for {len(columns)} columns")
        for column, value in zip(columns, values):
            cell = dict(ours)
            if ours.get("kind") == "quality":
                generators = ours.get("generators") or {}
                cell = {"kind": "quality", "generator": str(generators.get(row, row)), "measure": column,
                        "paper_generator": str(row)}
            else:
                cell.update(recognizer=str(row), column=column)
            claims.append(_claim(path, {
                "id": f"{path.stem}.{row}.{column}", "claim": f"{row}, {column.replace('/', ', ')}",
                "where": data.get("where"), "page": data.get("page"), "value": value,
                "unit": units.get(column, "") if isinstance(units, dict) else units,
                "source": data.get("source"), "missing": data.get("missing"), "ours": cell}))
    return claims


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


class Results:
    """Our result files, each read once (a missing file is remembered as missing)."""

    def __init__(self, run: Run):
        self.run = run
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

    # Tables 1-3 -------------------------------------------------------------------------------
    def verification_csv(self, table: str) -> Path:
        run = self.run
        return verification_table(run.results_dir, run.dataset, run.pool, run.generator, table, ".csv")

    def verification_provenance(self) -> Path:
        return verification_provenance(self.run.results_dir, self.run.dataset, self.run.pool)

    def verification_cell(self, table: str, recognizer: str, column: str) -> tuple[float | None, str, str]:
        """(rate, "n/a: ..." or "", count text) of one cell of our Table <table>."""
        path = self.verification_csv(table)
        frame = self.table(path)
        if frame is None:
            return None, (f"n/a: {path} not found (run `python -m bench tables` for {self.run.describe()})"), ""
        row = frame[frame.recognizer == recognizer]
        if row.empty:
            return None, f"n/a: no {recognizer} row in {path} (not in `recognizers`)", ""
        key = column_key(frame.columns, column)
        if key is None:
            return None, f"n/a: no column {column} in {path}", ""
        text, n = row[key].iloc[0], row.get(f"{key} n", pd.Series([""])).iloc[0]
        value = as_number(text)
        if value is None:
            return None, text if text.startswith("n/a") else f"n/a: {text or 'empty cell'}", ""
        if recognizer == AVERAGE:  # which recognizers our average is over (not the paper's seven)
            names = [r for r, v in zip(frame.recognizer, frame[key]) if r != AVERAGE and as_number(v) is not None]
            return value, "", f"mean of {len(names)}: {', '.join(names)}"
        return value, "", f"n={n} pairs"

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


def ours_verification(claim: Claim, results: Results) -> Ours:
    run, sel = results.run, claim.ours
    table, recognizer, column = str(sel["table"]), str(sel["recognizer"]), str(sel["column"])
    spec = run.specs.get(table) or {}
    parts = column.split("/")
    space = parts[0] if len(parts) == 3 else (list(spec.get("spaces") or ["embedding"])[0])
    label = parts[-1]
    value, why, detail = results.verification_cell(table, recognizer, column)
    weights = f"{recognizer} as provisioned here" if recognizer != AVERAGE else f"the {detail}"
    return Ours(value=value, unit="fraction", text=why, detail=detail,
                run={"dataset": run.dataset, "pool": run.pool, "generator": run.generator,
                     "space": results.space_label(space), "strategy": strategy_label(run, label),
                     "recognizer": recognizer, "distance": str(spec.get("metric", ""))},
                provenance=(str(results.verification_provenance()),),
                differs=_differs(run, run.dataset, generator=(run.generator, None), weights=(weights, None)))


def ours_quality(claim: Claim, results: Results) -> Ours:
    run, sel = results.run, claim.ours
    generator, measure = str(sel["generator"]), str(sel["measure"])
    files = quality_files(run.results_dir, run.dataset, run.pool, run.metric, run.query)
    base = Ours(value=None, unit=QUALITY_UNITS.get(measure, ""),
                run={"dataset": run.dataset, "pool": run.pool, "generator": generator, "space": run.metric,
                     "strategy": run.query, "recognizer": "", "distance": measure},
                provenance=(str(files["provenance"]),),
                differs=_differs(run, run.dataset, generator=(f"conf/generator/{generator}.yaml",
                                                              str(sel.get("paper_generator", generator)))))
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
    value = as_number(row[measure].iloc[0]) if measure in row else None
    if value is None:
        why = "; FID needs two faces a side" if measure == "fid" else ""
        return _with(base, text=f"n/a: no {measure} for {generator} (n={row.n.iloc[0]} faces{why})")
    return _with(base, value=value, detail=f"n={row.n.iloc[0]} faces")


def ours_reduction(claim: Claim, results: Results) -> Ours:
    """100 x (1 - mean after / mean before) over the recognizers with both numbers."""
    run = results.run
    table, column, metric = str(run.reduction["table"]), str(run.reduction["column"]), str(run.reduction["metric"])
    baseline = BaselineOutputs(run.results_dir).csv
    base = Ours(value=None, unit="percent",
                run={"dataset": f"{run.dataset} (after); {run.identities} (before)", "pool": run.pool,
                     "generator": run.generator, "space": results.space_label("embedding"),
                     "strategy": strategy_label(run, column), "recognizer": "",
                     "distance": metric},
                provenance=(str(BaselineOutputs(run.results_dir).provenance), str(results.verification_provenance())),
                differs=_differs(run, f"{run.identities} (before), {run.dataset} (after)", generator=(run.generator, None)))
    before = results.table(baseline)
    if before is None:
        return _with(base, text=f"n/a: no genuine baseline: {baseline} not found (run `python -m bench baseline`; "
                                "it needs the identities set, ../shared/data/identities)")
    tar = {r.recognizer: as_number(r.tar) for r in before[before.metric == metric].itertuples()}
    tar = {k: v for k, v in tar.items() if v is not None}
    after_path = results.verification_csv(table)
    after_frame = results.table(after_path)
    if after_frame is None:
        return _with(base, text=f"n/a: {after_path} not found (run `python -m bench tables` for {run.describe()})")
    key = column_key(after_frame.columns, f"source_vs_result/{column}")
    if key is None:
        return _with(base, text=f"n/a: no column source_vs_result/{column} in {after_path}")
    after = {r: as_number(v) for r, v in zip(after_frame.recognizer, after_frame[key]) if r != AVERAGE}
    both = [r for r in after if after[r] is not None and r in tar]
    if not both:
        return _with(base, text=f"n/a: no recognizer has both a baseline TAR ({', '.join(tar) or 'none'}) and a "
                                f"Source vs Result rate ({', '.join(r for r in after if after[r] is not None) or 'none'})")
    mean_before = sum(tar[r] for r in both) / len(both)
    mean_after = sum(after[r] for r in both) / len(both)
    run_info = {**base.run, "recognizer": ", ".join(both)}
    if mean_before <= 0:
        return _with(base, run=run_info, text="n/a: the baseline verifies no genuine pair (mean TAR 0)")
    detail = (f"TAR before {mean_before:.4f}, verified after {mean_after:.4f} (means over {len(both)} recognizers); "
              f"absolute drop {100 * (mean_before - mean_after):.1f} points")
    return _with(base, value=100.0 * (1.0 - mean_after / mean_before), detail=detail, run=run_info,
                 differs={**base.differs, "weights": (f"{len(both)} recognizers with both numbers: {', '.join(both)}", None)})


def _with(ours: Ours, **changes) -> Ours:
    return Ours(**{**ours.__dict__, **changes})


def _differs(run: Run, data: str, **aspects) -> dict:
    """aspect -> (ours, paper or None): data and pool always, plus `aspects`."""
    return {"data": (data, None), "pool": (run.pool, None), **aspects}


SETUP_KEYS = {"data": "data", "pool": "pool", "generator": "generator", "weights": "recognizers"}
ASPECT_LABELS = {"data": "other data", "pool": "other pool", "generator": "other generator",
                 "weights": "other recognizer weights"}


READERS = {"verification": ours_verification, "quality": ours_quality, "reduction": ours_reduction}
SELECTORS = {"verification": ("table", "recognizer", "column"), "quality": ("generator", "measure"), "reduction": ()}


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

def compare(claims: list[Claim], results: Results, setup: dict) -> pd.DataFrame:
    """One row per claim (COLUMNS): the paper's value, ours, the difference and why they differ."""
    rows = []
    for claim in claims:
        ours = READERS[claim.ours["kind"]](claim, results)
        value = None if ours.value is None else round(convert(ours.value, ours.unit, claim), 4)
        paper = claim.value
        row = {"claim_id": claim.id, "claim": claim.claim, "where": claim.where, "page": claim.page,
               "source": claim.source, "unit": claim.unit or ours.unit,
               "paper": f"{paper:g}" if paper is not None else f"n/a: {claim.missing}",
               "ours": f"{value:.4f}" if value is not None else ours.text,
               "difference": f"{value - paper:+.4f}" if value is not None and paper is not None else "n/a",
               "detail": ours.detail, **{k: ours.run.get(k, "") for k in RUN_KEYS},
               "provenance": "; ".join(ours.provenance)}
        if paper is None:
            row["reason"] = f"n/a: {claim.missing}"
        elif value is None:
            row["reason"] = ours.text
        else:  # both numbers: say what differs between the two runs
            row["reason"] = "; ".join(
                f"{ASPECT_LABELS[aspect]} (ours: {mine}; paper: {theirs or setup.get(SETUP_KEYS[aspect], 'not stated')})"
                for aspect, (mine, theirs) in ours.differs.items())
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(table: pd.DataFrame, meta: dict, run: Run) -> str:
    """One Markdown table per table/figure of the paper; n/a reasons as footnotes under each."""
    have_paper = int((~table.paper.str.startswith("n/a")).sum())
    have_ours = int((~table.ours.str.startswith("n/a")).sum())
    lines = [
        "# The paper's numbers beside ours", "",
        f"Paper: {' '.join(str(meta.get('citation', '')).split())}", "",
        f"Ours: {run.describe()}; Fig. 4 from quality_{run.metric}-{run.query}. {len(table)} claims: "
        f"{have_paper} with a paper value (conf/paper/), {have_ours} with ours. Difference = ours - paper, "
        "in the claim's unit. Run = dataset / pool / generator · space · strategy · recognizer · distance.",
    ]
    if meta.get("not_retrieved"):
        lines += ["", f"Not retrieved: {' '.join(str(meta['not_retrieved']).split())}"]
    for where, group in table.groupby("where", sort=False):
        shown = pd.DataFrame({
            "Claim": group.claim, "Paper": group.paper,
            "Ours": [f"{o} ({d})" if d and not o.startswith("n/a") else o for o, d in zip(group.ours, group.detail)],
            "Δ": group.difference,
            "Run": [" · ".join(p for p in (f"{r.dataset} / {r.pool} / {r.generator}", r.space, r.strategy, r.recognizer,
                                           r.distance) if p) for r in group.itertuples()],
            "Reason": group.reason,
        })
        sources = sorted({s for s in group.source if s})
        pages = sorted({p for p in group.page if p})
        lines += ["", f"## {where}" + (f" (page {', '.join(pages)})" if pages else ""), "",
                  markdown_with_footnotes(shown, index=False, tablefmt="pipe", disable_numparse=True)]
        if sources:
            lines += ["", "Paper values from: " + "; ".join(sources)]
        provenance = sorted({p for ps in group.provenance for p in ps.split("; ") if p})
        lines += ["", "Ours from: " + "; ".join(provenance)]
    return "\n".join(lines) + "\n"


def _shown(path: Path) -> str:
    """A conf/ path relative to the repository (the same on every machine), others as they are."""
    try:
        return path.resolve().relative_to(CONF_DIR.parent).as_posix()
    except ValueError:
        return str(path)


def run(cfg: DictConfig) -> dict[str, Path]:
    """Writes paper_vs_ours.{csv,md} and their provenance; returns the three paths."""
    meta, claims = load_paper(PAPER_DIR)
    results = Results(Run.from_config(cfg))
    table = compare(claims, results, meta.get("setup") or {})
    files = paper_files(cfg.results_dir)
    resultsio.write_csv(table, files["csv"])
    resultsio.write_text(to_markdown(table, meta, results.run), files["md"])
    resultsio.write_json(record(
        cfg, "paper",
        paper_data=[{"path": _shown(p), "sha256": resultsio.sha256_file(p)} for p in sorted(PAPER_DIR.glob("*.yaml"))],
        inputs=[{"path": str(p), "sha256": resultsio.sha256_file(p)} for p in sorted(results.read)],
        run={k: str(v) for k, v in results.run.__dict__.items() if k in ("dataset", "pool", "generator", "metric", "query")},
        counts={"claims": len(table), "paper_values": int((~table.paper.str.startswith("n/a")).sum()),
                "ours_values": int((~table.ours.str.startswith("n/a")).sum()),
                "both": int((table.difference != "n/a").sum())},
    ), files["provenance"])
    log.info("paper vs ours: %d claims (%d with a paper value, %d with ours) -> %s", len(table),
             int((~table.paper.str.startswith("n/a")).sum()), int((~table.ours.str.startswith("n/a")).sum()), files["md"])
    return files
