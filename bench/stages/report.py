"""Stage `report`: one static HTML page to browse a run's results, built from result files only
(nothing is recomputed; a part whose files are absent reads "not run" with the command to run).

Reads, for the configured dataset and pool (bench.layout and bench.access.layout name them):
    tables/<dataset>/<pool>/verification/<generator>/<table>.csv, tables.provenance.json   Tables 1-3
    tables/baseline.csv, figures/baseline_roc.png           the genuine baseline
    tables/<dataset>/<pool>/quality_<metric>-<query>.csv    Fig. 4's quality tables (every one there)
    tables/paper_vs_ours.csv, figures/paper_vs_ours_<table>.png   the paper beside ours
    figures/<dataset>/<pool>/*.png                          the paper's figures
    each cell (<dataset>/cells/<pool>/<generator>/<metric>-<query>/): pairs.parquet, faces.parquet
        and crops/ (result faces), outcomes.parquet (the recognizers' verdicts), photos.csv,
        failures.csv, metrics.json and leaks.png (the leak check), *provenance.json;
        <dataset>/faces.parquet and crops/ (source faces), pools/<pool>/faces.parquet and crops/
        (target faces)
    attack/<dataset>/<pool>/<generator>/<metric>-<query>/ (bench.layout.AttackOutputs): its tables,
        distances_<recognizer>.png, kanonymity.png, failures.csv, provenance.json   the attacks
    tables/access_models.csv, access_scale.csv, figures/access_*.png, platform/views/<access>/
        <photo>__<viewer>.{png,json}                        the access models, per-viewer views
    <dataset>/failures.csv, pools/<pool>/failures.csv, tables/baseline.failures.csv   failures
    every *provenance.json above                            provenance
Writes: <results_dir>/report/ (bench.layout.report_dir): index.html and files/, the copies of the
    files it shows at their path under results_dir (images over `report.image_max_side` pixels
    downscaled; leak sheets and views as JPEG). The folder is replaced whole (atomically), holds
    no absolute link and can be moved or served as it is. Its size is bounded by the caps of
    conf/config.yaml `report` (gallery rows per cell, table rows, views per access model).
"""
from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.access.layout import PlatformLayout
from bench.footnotes import na_reason
from bench.layout import (GUARD_TABLE_PREFIX, PAPER_CHARTS, AttackOutputs, BaselineOutputs, Cell, DatasetLayout, figures_dir, find_cells, paper_files,
                          pool_dir, report_dir, tables_dir, verification_dir, verification_provenance)
from bench.report.html import HtmlTable, ReportFiles, TableCell, frame_table, read_csv, render, with_pair_counts

log = logging.getLogger(__name__)

INDEX = "index.html"
# Captions of the figures stage's files (bench/stages/figures.py); any other file shows its name.
FIGURE_CAPTIONS = {
    "fig3_strategies": "Fig. 3/7: source, target and result per query strategy",
    "fig4_contact_sheet": "Fig. 4: source, target and each generator's result",
    "fig5_pool": "Fig. 5: the pool's embedding distances to the sources, and its ages",
    "fig6_spaces": "Fig. 6: the furthest target in each query space",
    "baseline_roc": "The genuine baseline: ROC per recognizer on the identities set (before anonymization)",
    "access_fig1": "Fig. 1: one photo as an uploader, two friends, a friend of a friend and an outsider each see it, per access model",
    "access_fig2": "Fig. 2: the access rules with three users",
    "access_threshold": "The rules model: leak rate and over-fake rate per recognizer threshold",
    "access_scale": "Storage and work for 10³–10⁶ users",
}
UNSHOWN_CHOICES = ("paths",)  # config groups every run shares, left out of the provenance table
PAPER_COLUMNS = ["claim", "where", "line", "unit", "paper", "ours", "difference", "recognizer", "reason"]
HEADLINE_COLUMNS = ["claim", "where", "line", "paper", "paper_note", "ours", "detail", "difference", "distance"]
# The anonymize stage's photos.csv counts (bench.stages.anonymize.PHOTO_COLUMNS), summed per cell.
PHOTO_COUNTS = ("faces", "swapped", "fallback", "audit_found", "audit_covered", "left_real")
VERIFICATION_NOTE = ("Fraction of pairs a recognizer verifies as the same person (lower = better "
                     "anonymization); n = pairs, on the average row the recognizers averaged.")


@dataclass
class Figure:
    """An image on the page: its link, caption and the result file it is a copy of."""

    src: str
    caption: str
    name: str


@dataclass
class Section:
    """A part of the page that may not have run: its tables and figures, or `status`."""

    tables: list[HtmlTable] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    status: str = ""


@dataclass
class GalleryRow:
    """One pair of a cell's gallery: its crops (None: no crop) and one verdict per recognizer."""

    source_face: str
    target: str
    status: str
    images: list[Figure | None]
    verdicts: list[TableCell]


@dataclass
class CellView:
    """One cell: its gallery, accounting, leak check, failures and provenance links."""

    cell: Cell
    anchor: str
    recognizers: list[str]
    rows: list[GalleryRow]
    gallery_notes: list[str]
    accounting: HtmlTable | None
    leaks: Section
    failures: HtmlTable | None
    provenance: list[tuple[str, str]]


@dataclass
class View:
    """One viewer's view of one photo under one access model (`python -m bench view`)."""

    figure: Figure
    faces: HtmlTable | None


def run(cfg: DictConfig) -> Path:
    """Writes <results_dir>/report/index.html (and its files/); returns the index's path."""
    results, dataset, pool = Path(cfg.results_dir), str(cfg.dataset.name), str(cfg.pool.name)
    opts = cfg.report
    first = str(cfg.choices.generator)  # the run's own generator leads; the others follow by name
    cells = sorted(find_cells(results, dataset, pool), key=lambda c: c.generator != first)
    with resultsio.atomic_dir(report_dir(results)) as out:
        files = ReportFiles(results, out, int(opts.image_max_side))
        cell_views = [cell_view(c, files, opts) for c in cells]
        html = render(
            "index.html.j2", dataset=dataset, pool=pool,
            verification=verification(results, dataset, pool, files, first),
            baseline=baseline(results, files),
            quality=quality(results, dataset, pool, files),
            paper=paper(results, files, opts),
            figures=figures(results, dataset, pool, files),
            cells=cell_views,
            attacks=attacks(results, pool, files, opts),
            access=access(results, files, opts),
            failures=failures(results, dataset, pool, cells, files, opts),
            provenance=provenance(results, dataset, pool, cells, files, opts),
        )
        (out / INDEX).write_text(html, encoding="utf-8")
    index = report_dir(results) / INDEX
    log.info("report of %s x %s (%d cells) -> %s", dataset, pool, len(cells), index)
    return index


# ---- tables and figures ----------------------------------------------------------------------

def csv_table(path: Path, files: ReportFiles, title: str, pair_counts: bool = False, **kwargs) -> HtmlTable | None:
    """The CSV at `path` as an HtmlTable linked to its copy (kwargs: frame_table's); None when
    the file is absent. `pair_counts`: Tables 1-3's "<key> n" columns joined to "<key>"."""
    if not path.is_file():
        return None
    frame = read_csv(path)
    if pair_counts:
        frame = with_pair_counts(frame)
    table = frame_table(frame, title, **kwargs)
    table.source, table.source_name = files.file(path), relative(path, files)
    return table


def relative(path: Path, files: ReportFiles) -> str:
    try:
        return Path(path).resolve().relative_to(files.results_dir).as_posix()
    except ValueError:
        return str(path)


def figure(path: Path, files: ReportFiles, caption: str | None = None, photo: bool = False) -> Figure | None:
    src = files.image(path, photo=photo)
    if src is None:
        return None
    return Figure(src=src, caption=caption or FIGURE_CAPTIONS.get(path.stem, path.stem), name=relative(path, files))


def verification(results: Path, dataset: str, pool: str, files: ReportFiles, first: str) -> dict[str, Section]:
    """Tables 1-3 per generator (`first` first), titled as the tables stage's config named them."""
    folder = verification_dir(results, dataset, pool)
    provenance = verification_provenance(results, dataset, pool)
    specs = {}
    if provenance.is_file():
        specs = (json.loads(provenance.read_text(encoding="utf-8")).get("config", {}).get("tables", {})
                 .get("specs", {})) or {}
    out = {}
    for gen_dir in sorted((p for p in folder.glob("*") if p.is_dir()), key=lambda p: (p.name != first, p.name)):
        names = list(specs) or sorted(p.stem for p in gen_dir.glob("*.csv"))
        names = [n for n in names if not n.startswith(GUARD_TABLE_PREFIX)]
        tables = [csv_table(gen_dir / f"{name}.csv", files, specs.get(name, {}).get("title", name),
                            pair_counts=True, notes=[VERIFICATION_NOTE]) for name in names]
        tables += [csv_table(path, files, f"Guarded vs unguarded, {path.stem[len(GUARD_TABLE_PREFIX):]}: Source vs "
                             "Result verified per recognizer, guards apart from those that did not guard (transfer)",
                             notes=["The loop's counts per cell (retried, guard fallback, still verified): the "
                                    "linked Markdown beside it."])
                   for path in sorted(gen_dir.glob(f"{GUARD_TABLE_PREFIX}*.csv"))]
        out[gen_dir.name] = Section(tables=[t for t in tables if t is not None])
    return out


def baseline(results: Path, files: ReportFiles) -> Section:
    outputs = BaselineOutputs(results)
    table = csv_table(outputs.csv, files, "The genuine baseline: every recognizer on the identities set")
    fig = figure(outputs.roc, files)
    if table is None and fig is None:
        return Section(status="not run: `python -m bench baseline`")
    return Section(tables=[t for t in [table] if t], figures=[f for f in [fig] if f])


def quality(results: Path, dataset: str, pool: str, files: ReportFiles) -> Section:
    paths = sorted(tables_dir(results, dataset, pool).glob("quality_*.csv"))
    tables = [csv_table(p, files, f"Fig. 4: quality and utility per generator, targets {p.stem[len('quality_'):]}")
              for p in paths]
    if not tables:
        return Section(status="not run: `python -m bench quality`")
    return Section(tables=tables)


def paper(results: Path, files: ReportFiles, opts: DictConfig) -> dict[str, Section]:
    """The paper beside ours: the headline claims (the paper's percentages, ours computed its
    way) first, then the charts of Tables 1-3, then every claim (folded when longer than
    `report.max_rows`). Keys headline, charts, table."""
    outputs = paper_files(results)
    path = outputs["csv"]
    if not path.is_file():
        return {"headline": Section(status="not run: `python -m bench paper`"), "charts": Section(), "table": Section()}
    frame = read_csv(path)
    lead = frame[frame.headline == "yes"] if "headline" in frame else frame.iloc[:0]
    headline = frame_table(lead, "Headline claims: the paper's percentages beside ours, computed the paper's way",
                           columns=HEADLINE_COLUMNS,
                           notes=["Ours = 1 - our value on the same column (\"by\"), or the value itself for Table 3's "
                                  "\"to\"; averages over the paper's seven recognizers only. The headline numbers: "
                                  "headline.json."])
    headline.source, headline.source_name = files.file(path), relative(path, files)
    charts = [figure(outputs[f"chart_{name}"], files, f"{name}: the paper vs ours per recognizer (ours with its n)")
              for name in PAPER_CHARTS]
    table = csv_table(path, files, "Every number of the paper beside ours", columns=PAPER_COLUMNS,
                      notes=["Other columns (section, the run's dataset, pool, provenance): the linked CSV; the "
                             "paper's errors of its own and its L2 reading: the Markdown beside it."])
    table.folded = len(table.rows) > int(opts.max_rows)
    return {"headline": Section(tables=[headline]), "charts": Section(figures=[c for c in charts if c]),
            "table": Section(tables=[table])}


def figures(results: Path, dataset: str, pool: str, files: ReportFiles) -> Section:
    figs = [figure(p, files) for p in sorted(figures_dir(results, dataset, pool).glob("*.png"))]
    figs = [f for f in figs if f]
    return Section(figures=figs) if figs else Section(status="not run: `python -m bench figures`")


# ---- one cell: gallery, accounting, leak check -----------------------------------------------

def cell_anchor(cell: Cell) -> str:
    return f"cell-{cell.generator}-{cell.metric}-{cell.query}"


def crops_by_face(faces: Path) -> dict[str, Path]:
    """face_id -> its aligned crop's path, from a faces.parquet (crop relative to its folder)."""
    if not faces.is_file():
        return {}
    table = pd.read_parquet(faces, columns=["face_id", "crop"])
    return {str(f): faces.parent / str(c) for f, c in zip(table.face_id, table.crop) if isinstance(c, str) and c}


def cell_view(cell: Cell, files: ReportFiles, opts: DictConfig) -> CellView:
    rows, recognizers, notes = gallery(cell, files, opts)
    return CellView(
        cell=cell, anchor=cell_anchor(cell), recognizers=recognizers, rows=rows, gallery_notes=notes,
        accounting=accounting(cell), leaks=leak_check(cell, files),
        failures=csv_table(cell.failures, files, "Failures of this cell", max_rows=int(opts.max_rows)),
        provenance=[(relative(p, files), files.file(p)) for p in
                    (cell.provenance, cell.evaluate_provenance, cell.leaks_provenance) if p.is_file()],
    )


def gallery(cell: Cell, files: ReportFiles, opts: DictConfig) -> tuple[list[GalleryRow], list[str], list[str]]:
    """Source | target | result crops per pair with each recognizer's Source-vs-Result verdict
    (`report.verdict_metric`); pairs some recognizer verified as the source come first, then
    source-face order, at most `report.max_pairs_per_cell`."""
    if not cell.pairs.is_file():
        return [], [], ["no pairs.parquet: run `python -m bench anonymize` for this cell"]
    pairs = pd.read_parquet(cell.pairs)
    metric = str(opts.verdict_metric)
    verdicts, recognizers, notes = cell_verdicts(cell, metric)
    sources = crops_by_face(DatasetLayout(cell.results_dir, cell.dataset).faces)
    targets = crops_by_face(pool_dir(cell.results_dir, cell.pool).faces)
    results = crops_by_face(cell.faces)
    pairs = pairs.assign(_leak=[any(verdicts.get((str(s), r), (None,))[0] is True for r in recognizers)
                                for s in pairs.source_face])
    pairs = pairs.sort_values(["_leak", "source_face"], ascending=[False, True], kind="stable")
    cap = int(opts.max_pairs_per_cell)
    if len(pairs) > cap:
        notes.insert(0, f"{cap} of {len(pairs)} pairs shown: those a recognizer verified as the source first, "
                        f"then in face order (conf/config.yaml report.max_pairs_per_cell).")
    rows = []
    for pair in pairs.head(cap).itertuples():
        source, target, result = (text(getattr(pair, c, "")) for c in ("source_face", "target", "result_face"))
        images = [figure(sources[source], files, source) if source in sources else None,
                  figure(targets[target], files, target) if target in targets else None,
                  figure(results[result], files, result) if result in results else None]
        cells = [verdict_cell(*verdicts.get((source, r), (None, None, None, "n/a: no outcome"))) for r in recognizers]
        rows.append(GalleryRow(source_face=source, target=target, status=text(getattr(pair, "status", "")),
                               images=images, verdicts=cells))
    return rows, recognizers, notes


def text(value) -> str:
    """A parquet value as text: "" for a missing one (None, NaN)."""
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def cell_verdicts(cell: Cell, metric: str) -> tuple[dict, list[str], list[str]]:
    """{(source face, recognizer): (verified, distance, threshold, status)} of the cell's
    Source-vs-Result outcomes at `metric`; the recognizers with at least one verdict; a note per
    recognizer without any (its reason)."""
    if not cell.outcomes.is_file():
        return {}, [], ["no verdicts: run `python -m bench evaluate` for this cell"]
    outcomes = pd.read_parquet(cell.outcomes)
    outcomes = outcomes[(outcomes.comparison == "source_vs_result") & (outcomes.metric == metric)]
    verdicts = {(str(o.source_face), str(o.recognizer)): (None if pd.isna(o.verified) else bool(o.verified),
                                                           o.distance, o.threshold, str(o.status))
                for o in outcomes.itertuples()}
    recognizers, notes = [], []
    for name, group in outcomes.groupby("recognizer", sort=False):
        if group.verified.notna().any():
            recognizers.append(str(name))
        else:
            reasons = sorted({na_reason(s) or s for s in group.status.astype(str)})
            notes.append(f"{name}: n/a ({'; '.join(reasons)})")
    return verdicts, recognizers, notes


def verdict_cell(verified, distance, threshold, status) -> TableCell:
    if verified is None:
        return TableCell("n/a", title=na_reason(status) or status, kind="na")
    detail = f"distance {distance:.4f}, threshold {threshold:g}"
    if verified:
        return TableCell(f"same person ({distance:.3f})", title=f"verified as the source: {detail}", kind="bad")
    return TableCell(f"different ({distance:.3f})", title=f"not verified: {detail}", kind="good")


def accounting(cell: Cell) -> HtmlTable | None:
    """The cell's photos.csv summed: faces swapped, covered by the fallback or audit, left real."""
    if not cell.photo_table.is_file():
        return None
    photos = read_csv(cell.photo_table)
    counts = {c: str(pd.to_numeric(photos[c], errors="coerce").fillna(0).astype(int).sum())
              for c in PHOTO_COUNTS if c in photos}
    counts["photos"] = str(len(photos))
    counts["photos_left_real"] = str(int((pd.to_numeric(photos.get("left_real", pd.Series(dtype=str)),
                                                        errors="coerce").fillna(0) > 0).sum()))
    frame = pd.DataFrame([counts])
    table = frame_table(frame, "Faces and photos")
    if counts.get("left_real", "0") != "0":
        table.rows[0][list(frame.columns).index("left_real")] = TableCell(counts["left_real"], kind="bad",
                                                                          title="faces left real: NOT ANONYMIZED")
    return table


def leak_check(cell: Cell, files: ReportFiles) -> Section:
    """The leak check's counts (metrics.json "leaks") and contact sheet (leaks.png)."""
    if not cell.metrics.is_file():
        return Section(status="not run: `python -m bench leaks` for this cell")
    leaks = json.loads(cell.metrics.read_text(encoding="utf-8")).get("leaks")
    if not leaks:
        return Section(status="not run: `python -m bench leaks` for this cell")
    totals = {k: str(leaks[k]) for k in ("faces_found", "leaking_faces", "unchanged_faces", "too_small_to_embed",
                                         "leaking_faces_vs_chance", "verified_at_chance", "too_small_to_tell",
                                         "leaks_flagged_too_few_impostors") if k in leaks}
    totals["missing_output"] = str(len(leaks.get("missing_output", [])))
    totals["detectors"] = ", ".join(leaks.get("detectors", []))
    per = pd.DataFrame([{"recognizer": name, "status": str(r.get("status", "")), "threshold": str(r.get("threshold", "")),
                         "faces_compared": str(r.get("faces_compared", "")), "leaks": str(r.get("leaks", ""))}
                        for name, r in sorted(leaks.get("per_recognizer", {}).items())])
    tables = [frame_table(pd.DataFrame([totals]), "Faces found in the anonymized photos")]
    if len(per):
        tables.append(frame_table(per, "Faces each recognizer still verifies as the original (a leak)"))
    for table in tables:
        table.source, table.source_name = files.file(cell.metrics), relative(cell.metrics, files)
    chance = csv_table(cell.leaks_chance_csv, files, "Leaks against chance: owner-verified rate beside the rate "
                       "for two different people, per recognizer x face-size band x treatment (docs/outputs.md)")
    if chance is not None:
        tables.append(chance)
    sheet = figure(cell.leak_sheet, files, "Leak check: red box = a face still real, green = anonymized", photo=True)
    return Section(tables=tables, figures=[sheet] if sheet else [])


# ---- attacks, access models ------------------------------------------------------------------

def find_attacks(results: Path, pool: str) -> list[AttackOutputs]:
    """Every attack folder of the pool, whichever dataset it attacked
    (<results_dir>/attack/<dataset>/<pool>/<generator>/<metric>-<query>[-<guard>]/)."""
    found = []
    for folder in sorted(p for p in (results / "attack").glob(f"*/{pool}/*/*") if p.is_dir()):
        metric, _, rest = folder.name.partition("-")
        query, _, guard = rest.partition("-")
        outputs = AttackOutputs(results, pool, folder.parent.name, metric, query, folder.parents[2].name, guard)
        if metric and query and outputs.root == folder:
            found.append(outputs)
    return found


def attacks(results: Path, pool: str, files: ReportFiles, opts: DictConfig) -> dict[str, Section]:
    """Per attacked cell (the attack stage's folders): its tables (AttackOutputs.TABLES, titled
    as there), the distance histograms and the k-anonymity figure, its failures."""
    out = {}
    for attack in find_attacks(results, pool):
        tables = [csv_table(attack.table(name, ".csv"), files, title, max_rows=int(opts.max_rows))
                  for name, title in AttackOutputs.TABLES.items()]
        tables.append(csv_table(attack.failures, files, "Failures of the attack", max_rows=int(opts.max_rows)))
        paths = [*sorted(attack.root.glob(attack.distances_figure("*").name)), attack.kanonymity_figure]
        figs = [figure(p, files, FIGURE_CAPTIONS.get(p.stem) or attack_caption(p.stem)) for p in paths]
        name = (f"{attack.dataset} · {attack.generator} · {attack.metric} · {attack.query}"
                + (f" · guard {attack.guard}" if attack.guard else ""))
        out[name] = Section(tables=[t for t in tables if t], figures=[f for f in figs if f])
    return out


def attack_caption(stem: str) -> str:
    if stem.startswith("distances_"):
        return (f"{stem[len('distances_'):]}: Source-vs-Result distances beside the genuine and impostor "
                "distributions of real faces")
    if stem == "kanonymity":
        return "Supp. D: distance of the mean of k fakes to the source, k = 1…K"
    return stem


def access(results: Path, files: ReportFiles, opts: DictConfig) -> dict:
    """The access models' tables and figures (platform stage) and per-viewer views (`view`)."""
    layout = PlatformLayout(results)
    tables = [csv_table(layout.table_csv, files, "Access models (§3.3): leaks, over-fakes, storage and work per model"),
              csv_table(layout.scale_csv, files, "Storage and work at scale")]
    figs = [figure(p, files) for p in (layout.fig1, layout.fig2, layout.threshold_png, layout.scale_png)]
    section = Section(tables=[t for t in tables if t], figures=[f for f in figs if f])
    if not section.tables and not section.figures:
        section.status = "not run: `python -m bench platform`"
    views: dict[str, list[View]] = {}
    for folder in sorted(p for p in (layout.root / "views").glob("*") if p.is_dir()):
        shown = sorted(folder.glob("*.png"))
        for png in shown[: int(opts.max_views)]:
            photo, _, viewer = png.stem.partition("__")
            fig = figure(png, files, f"{photo} as {viewer} sees it (green: real, red: fake)", photo=True)
            if fig:
                views.setdefault(folder.name, []).append(View(fig, view_faces(png.with_suffix(".json"), files)))
    return {"section": section, "views": views}


def view_faces(path: Path, files: ReportFiles) -> HtmlTable | None:
    if not path.is_file():
        return None
    faces = json.loads(path.read_text(encoding="utf-8")).get("faces", [])
    if not faces:
        return None
    table = frame_table(pd.DataFrame([{k: "" if v is None else str(v) for k, v in f.items()} for f in faces]))
    table.source, table.source_name = files.file(path), relative(path, files)
    return table


# ---- failures and provenance -----------------------------------------------------------------

def failures(results: Path, dataset: str, pool: str, cells: list[Cell], files: ReportFiles, opts: DictConfig) -> Section:
    """Photos and faces no stage could process, and the faces left real, per cell."""
    cap = int(opts.max_rows)
    rows = []
    for cell in cells:
        table = accounting(cell)
        counts = dict(zip(table.columns, (c.text for c in table.rows[0]))) if table else {}
        failed = len(read_csv(cell.failures)) if cell.failures.is_file() else "n/a: no failures.csv"
        rows.append({"generator": cell.generator, "space": cell.metric, "strategy": cell.query, **counts,
                     "failures": str(failed)})
    tables = []
    if rows:
        frame = pd.DataFrame(rows).fillna("")
        per_cell = frame_table(frame, "Per cell: faces swapped, covered by the fallback or the audit, left real "
                                      "(NOT ANONYMIZED), failure rows")
        if "left_real" in frame:
            j = list(frame.columns).index("left_real")
            for i, value in enumerate(frame.left_real):
                if value not in ("0", ""):
                    per_cell.rows[i][j] = TableCell(value, kind="bad", title="faces left real: NOT ANONYMIZED")
        tables.append(per_cell)
    for path, title in ((DatasetLayout(results, dataset).failures, f"The dataset's failures ({dataset})"),
                        (pool_dir(results, pool).failures, f"The pool's failures ({pool})"),
                        (BaselineOutputs(results).failures, "The baseline's failures (identities set)")):
        table = csv_table(path, files, title, max_rows=cap)
        if table is not None:
            tables.append(table)
    return Section(tables=tables) if tables else Section(status="not run: `python -m bench faces`")


def provenance_files(results: Path, dataset: str, pool: str, cells: list[Cell]) -> list[Path]:
    """Every provenance record of what the page shows, in a fixed order."""
    data = DatasetLayout(results, dataset)
    paths = [data.provenance, *sorted((data.root / "targets" / pool).glob("*.provenance.json")),
             pool_dir(results, pool).generation, pool_dir(results, pool).provenance]
    for cell in cells:
        paths += [cell.provenance, cell.evaluate_provenance, cell.leaks_provenance]
    paths += [attack.provenance for attack in find_attacks(results, pool)]
    paths += [verification_provenance(results, dataset, pool),
              *sorted(tables_dir(results, dataset, pool).glob("*.provenance.json")),
              *sorted((results / "tables").glob("*.provenance.json"))]
    seen, out = set(), []
    for path in paths:
        if path.is_file() and path not in seen:
            seen.add(path)
            out.append(path)
    return out


def hashed_files(record, trail: tuple[str, ...] = ()) -> list[tuple[bool, str, str]]:
    """(is weights, path, sha256) of every {"path", "sha256"} entry of a provenance record
    (its config left out): under a "weights" key it is a model's weights, else data read."""
    if isinstance(record, dict):
        if "path" in record and "sha256" in record:
            return [("weights" in trail, str(record["path"]), str(record["sha256"]))]
        return [h for k, v in record.items() if k != "config" for h in hashed_files(v, (*trail, str(k)))]
    if isinstance(record, list):
        return [h for v in record for h in hashed_files(v, trail)]
    return []


def provenance(results: Path, dataset: str, pool: str, cells: list[Cell], files: ReportFiles, opts: DictConfig) -> Section:
    """Which run wrote each file: stage, seed, command, config choices; the weights and data
    read (sha256); the library versions."""
    paths = provenance_files(results, dataset, pool, cells)
    if not paths:
        return Section(status="no provenance records: nothing has run")
    runs, libraries, weights, inputs = [], defaultdict(lambda: defaultdict(int)), defaultdict(set), defaultdict(set)
    for path in paths:
        record = json.loads(path.read_text(encoding="utf-8"))
        name = relative(path, files)
        choices = (record.get("config") or {}).get("choices") or {}
        runs.append([TableCell(name, href=files.file(path) or ""), TableCell(str(record.get("stage", ""))),
                     TableCell(str(record.get("seed", ""))),
                     TableCell(" ".join(f"{k}={v}" for k, v in sorted(choices.items())
                                        if v is not None and k not in UNSHOWN_CHOICES)),
                     TableCell(command(str(record.get("command", ""))))])
        for library, version in sorted((record.get("libraries") or {}).items()):
            libraries[library][str(version)] += 1
        for is_weights, file, sha in hashed_files(record):
            (weights if is_weights else inputs)[(file, sha)].add(str(record.get("stage", name)))
    cap = int(opts.max_rows)
    run_table = HtmlTable(columns=["record", "stage", "seed", "config choices", "command"], rows=runs,
                          title="Provenance records (the whole record: the linked JSON)", folded=True)
    lib_frame = pd.DataFrame([{"library": lib, "version": ", ".join(
        v if len(versions) == 1 else f"{v} ({n} records)" for v, n in sorted(versions.items()))}
        for lib, versions in sorted(libraries.items())])
    tables = [run_table, frame_table(lib_frame, "Library versions")]
    for found, title in ((weights, "Weights (sha256; absent: not found, so its rows read n/a)"),
                         (inputs, "Data read (sha256)")):
        if found:
            frame = pd.DataFrame([{"path": p, "sha256": s, "read by": ", ".join(sorted(st))}
                                  for (p, s), st in sorted(found.items())])
            tables.append(frame_table(frame, title, max_rows=cap))
    tables[-1].folded = bool(inputs)  # the data read: one row per file, long
    return Section(tables=tables)


def command(text: str) -> str:
    """A recorded command line as typed: ".../bench/__main__.py faces ..." -> "python -m bench faces ..."."""
    program, _, rest = text.partition(" ")
    return f"python -m bench {rest}".strip() if program.endswith("bench/__main__.py") else text
