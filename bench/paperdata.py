"""The paper's side of the `paper` stage: conf/paper/*.yaml read into claims, and what follows
from the paper's own numbers alone (column means, the percentages' formulas, which L2 its
Table 3 is consistent with). Nothing here reads a result file.

Every value in conf/paper/ is read from the paper's text (<paths.shared>/paper/
002_51291ee146431865.txt) and cites its table or figure, section and line. Three layouts:

    claims:   a list, one claim each (percentages.yaml): id, claim, where, line, value,
              formula, ours {kind, ...}
    rows:     a table (table1-3.yaml): `columns` and {paper's recognizer name: {line, values,
              notes}}; paper.yaml `recognizers` maps each name to ours, `not_the_papers` adds a
              row per recognizer of ours that is none of the seven (stand-ins), paper value n/a
    samples:  Fig. 4 (fig4.yaml): {sample: {measure: {line, values per generator}}}; the mean
              over the samples is added per measure and generator, marked as derived by us

A claim's `derived` is True for a number the paper does not print (column means, Fig. 4's mean).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from bench.config import CONF_DIR
from bench.errors import BenchError

PAPER_DIR = CONF_DIR / "paper"
AVERAGE = "average"
KINDS = ("verification", "quality", "percentage", "reduction")
SELECTORS = {"verification": ("table", "recognizer", "column"), "quality": ("generator", "column"),
             "percentage": ("table", "recognizer", "column", "form"), "reduction": ()}
FORMS = {"one_minus": lambda v: 100.0 * (1.0 - v), "as_is": lambda v: 100.0 * v}
MEAN_ROW = "mean of rows (derived by us)"
MEAN_SAMPLE = "mean"


class PaperDataError(BenchError, ValueError):
    """conf/paper/ is malformed: a value without its line, an unknown kind, a ragged grid."""


@dataclass(frozen=True)
class Claim:
    """One number the paper states (value in `unit`), or a row of ours it has none for (value None,
    `note` says why), and the selectors of our counterpart (`ours`: kind plus its keys).

    `paper_row` is the paper's spelling of the row (e.g. FaceNet512), `derived` True for a number
    computed by us from the paper's (not printed in it)."""

    id: str
    claim: str
    where: str
    section: str
    line: str
    value: float | None
    unit: str
    ours: dict
    file: str
    note: str = ""
    formula: str = ""
    paper_row: str = ""
    derived: bool = False


@dataclass
class Paper:
    """conf/paper/: the `paper:` block (citation, setup, recognizers, errors, order) and the claims."""

    meta: dict
    claims: list[Claim] = field(default_factory=list)

    @property
    def recognizers(self) -> dict[str, str]:
        """The paper's seven: its spelling -> our recognizer name."""
        return {str(k): str(v) for k, v in (self.meta.get("recognizers") or {}).items()}

    @property
    def seven(self) -> list[str]:
        return list(self.recognizers.values())

    @property
    def not_the_papers(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in (self.meta.get("not_the_papers") or {}).items()}

    def value(self, table: str, recognizer: str, column: str) -> float | None:
        """The paper's printed value of one cell of its table `table` (our table name)."""
        for c in self.claims:
            if (c.ours.get("kind") == "verification" and not c.derived and c.ours.get("table") == table
                    and c.ours.get("recognizer") == recognizer and c.ours.get("column") == column):
                return c.value
        return None


def load_paper(folder: Path = PAPER_DIR) -> Paper:
    """Every claim of conf/paper/, file by file in `paper.order`, then by name.

    Raises:
        PaperDataError: a value without its line, a grid row whose length differs from
            `columns`, a duplicate claim id, an unknown kind or form, a row of the paper's
            recognizers that paper.yaml does not map to ours.
    """
    files = sorted(Path(folder).glob("*.yaml"))
    if not files:
        raise PaperDataError(f"no paper data in {folder}: conf/paper/*.yaml holds the paper's values")
    loaded = {path: yaml.safe_load(path.read_text(encoding="utf-8")) or {} for path in files}
    paper = Paper(meta={})
    for data in loaded.values():
        paper.meta.update(data.get("paper") or {})
    order = {stem: i for i, stem in enumerate(paper.meta.get("order") or [])}
    for path in sorted(files, key=lambda p: (order.get(p.stem, len(order)), p.name)):
        data = loaded[path]
        for entry in data.get("claims") or []:
            ours = dict(entry.get("ours") or {})
            tables = _tables(ours) if "table" in ours else [None]
            for i, table in enumerate(tables):  # one claim per our table beside it ("@<table>" after the first)
                paper.claims.append(_claim(path, {
                    "where": data.get("where"), "section": data.get("section"), "unit": data.get("unit"), **entry,
                    "id": f"{entry.get('id')}" + (f"@{table}" if i else ""),
                    "claim": _text(entry.get("claim")) + (f" [beside our {table}]" if i else ""),
                    "ours": {**ours, "table": table} if table is not None else ours}))
        if "rows" in data:
            paper.claims += _table(path, data, paper)
        if "samples" in data:
            paper.claims += _figure(path, data)
    seen: set[str] = set()
    for c in paper.claims:
        if c.id in seen:
            raise PaperDataError(f"claim id {c.id!r} appears twice in {folder}")
        seen.add(c.id)
    return paper


def _text(value) -> str:
    return "" if value is None else " ".join(str(value).split())


def _claim(path: Path, entry: dict) -> Claim:
    where = f"{path.name}: {entry.get('id', '?')}"
    value = entry.get("value")
    if value is not None:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise PaperDataError(f"{where}: value {value!r} is not a number")
        if not _text(entry.get("line")):
            raise PaperDataError(f"{where}: a paper value needs the line of the paper's text it is read from")
    elif not _text(entry.get("note")):
        raise PaperDataError(f"{where}: a row without a paper value needs a `note` saying why")
    ours = dict(entry.get("ours") or {})
    if ours.get("kind") not in KINDS:
        raise PaperDataError(f"{where}: ours.kind must be one of {', '.join(KINDS)}, got {ours.get('kind')!r}")
    lacking = [key for key in SELECTORS[ours["kind"]] if key not in ours]
    if lacking:
        raise PaperDataError(f"{where}: ours of kind {ours['kind']} needs {', '.join(lacking)}")
    if ours["kind"] == "percentage" and ours["form"] not in FORMS:
        raise PaperDataError(f"{where}: ours.form must be one of {', '.join(FORMS)}")
    return Claim(id=str(entry["id"]), claim=_text(entry.get("claim")), where=_text(entry.get("where")),
                 section=_text(entry.get("section")), line=_text(entry.get("line")),
                 value=None if value is None else float(value), unit=_text(entry.get("unit")), ours=ours,
                 file=path.name, note=_text(entry.get("note")), formula=_text(entry.get("formula")),
                 paper_row=_text(entry.get("paper_row")), derived=bool(entry.get("derived", False)))


def _tables(ours: dict) -> list[str]:
    table = ours.get("table")
    return [str(t) for t in (table if isinstance(table, list) else [table])]


def _table(path: Path, data: dict, paper: Paper) -> list[Claim]:
    """A table of the paper: one claim per printed cell and per our table it stands beside
    (the first keeps the plain id, others get "@<table>"), the mean of the seven rows per column
    (derived), and a row per recognizer of ours that is none of the seven (no paper value)."""
    columns = [str(c) for c in data.get("columns") or []]
    base = {"where": data.get("where"), "section": data.get("section"), "unit": data.get("unit")}
    names = {**paper.recognizers, "Average": AVERAGE}
    tables = _tables(dict(data.get("ours") or {}))
    claims: list[Claim] = []
    printed: dict[str, list[float]] = {}
    for row, spec in (data.get("rows") or {}).items():
        row = str(row)
        if row not in names:
            raise PaperDataError(f"{path.name}: row {row!r} is none of paper.yaml's recognizers ({', '.join(names)})")
        values = list((spec or {}).get("values") or [])
        if len(values) != len(columns):
            raise PaperDataError(f"{path.name}: row {row!r} has {len(values)} values for {len(columns)} columns")
        notes = (spec or {}).get("notes") or {}
        if row != "Average":
            printed[row] = values
        for column, value in zip(columns, values):
            for i, table in enumerate(tables):
                claims.append(_claim(path, {
                    **base, "id": f"{path.stem}.{row}.{column}" + (f"@{table}" if i else ""),
                    "claim": f"{row}, {column.replace('/', ', ')}" + (f" [beside our {table}]" if i else ""),
                    "line": spec.get("line"), "value": value,
                    "note": notes.get(column, ""), "paper_row": row,
                    "ours": {"kind": "verification", "table": table, "recognizer": names[row], "column": column}}))
    for j, column in enumerate(columns):
        values = [v[j] for v in printed.values() if v[j] is not None]
        if len(values) != len(printed) or not values:
            continue
        for i, table in enumerate(tables):
            claims.append(_claim(path, {
                **base, "id": f"{path.stem}.mean_of_rows.{column}" + (f"@{table}" if i else ""),
                "claim": f"{MEAN_ROW}, {column.replace('/', ', ')}", "line": data.get("line"),
                "value": round(sum(values) / len(values), 4), "derived": True, "paper_row": MEAN_ROW,
                "note": f"the mean of the paper's {len(values)} rows, not printed in the paper",
                "ours": {"kind": "verification", "table": table, "recognizer": AVERAGE, "column": column}}))
    for name, why in paper.not_the_papers.items():
        for column in columns:
            for i, table in enumerate(tables):
                claims.append(_claim(path, {
                    **base, "id": f"{path.stem}.{name}.{column}" + (f"@{table}" if i else ""),
                    "claim": f"{name} [{why}], {column.replace('/', ', ')}", "value": None, "paper_row": name,
                    "note": f"not in the paper: {name} is {why}",
                    "ours": {"kind": "verification", "table": table, "recognizer": name, "column": column}}))
    return claims


def _figure(path: Path, data: dict) -> list[Claim]:
    """Fig. 4: every printed value (ours n/a: the paper's own photos), then per measure and
    generator the mean over the samples (derived), once per our column that stands beside it."""
    columns = [str(c) for c in data.get("columns") or []]
    ours = dict(data.get("ours") or {})
    generators, measures = ours.get("generators") or {}, ours.get("measures") or {}
    units = data.get("unit") or {}
    base = {"where": data.get("where"), "section": data.get("section")}
    claims: list[Claim] = []
    collected: dict[tuple[str, str], list[float]] = {}
    lines: dict[tuple[str, str], list[str]] = {}
    for sample, rows in (data.get("samples") or {}).items():
        for measure, spec in rows.items():
            values = list(spec.get("values") or [])
            if len(values) != len(columns):
                raise PaperDataError(f"{path.name}: {sample} {measure} has {len(values)} values for {len(columns)} columns")
            for generator, value in zip(columns, values):
                collected.setdefault((measure, generator), []).append(value)
                lines.setdefault((measure, generator), []).append(str(spec.get("line")))
                claims.append(_claim(path, {
                    **base, "id": f"{path.stem}.{sample}.{measure}.{generator}", "claim": f"sample {sample[1:]}, {measure}, {generator}",
                    "line": spec.get("line"), "value": value, "unit": units.get(measure, ""), "paper_row": sample,
                    "ours": {"kind": "quality", "generator": str(generators.get(generator, generator)), "column": "",
                             "paper_generator": generator, "sample": sample}}))
    for (measure, generator), values in collected.items():
        for column, measured_on in measures.get(measure) or []:
            claims.append(_claim(path, {
                **base, "id": f"{path.stem}.{MEAN_SAMPLE}.{measure}.{generator}.{column}",
                "claim": f"mean of {len(values)} samples, {measure}, {generator}; ours on the {measured_on}",
                "line": ", ".join(lines[(measure, generator)]), "value": round(sum(values) / len(values), 4),
                "unit": units.get(measure, ""), "derived": True, "paper_row": MEAN_SAMPLE,
                "note": f"the mean of the paper's {len(values)} samples, not printed in the paper",
                "ours": {"kind": "quality", "generator": str(generators.get(generator, generator)), "column": str(column),
                         "paper_generator": generator, "measured_on": str(measured_on)}}))
    return claims


# ---- what follows from the paper's numbers alone ---------------------------------------------

def formula_value(paper: Paper, claim: Claim) -> float | None:
    """A percentage claim's formula on the paper's own table (its first table), in percent."""
    ours = claim.ours
    if ours.get("kind") != "percentage":
        return None
    value = paper.value(_tables(ours)[0], str(ours["recognizer"]), str(ours["column"]))
    return None if value is None else round(FORMS[ours["form"]](value), 4)


def l2_consistency(paper: Paper, thresholds: dict[str, dict[str, float]], cosine_table: str = "table1",
                   l2_table: str = "table3") -> list[str]:
    """Whether the paper's Table 3 can be deepface's euclidean_l2 on Table 1's pairs.

    On unit-length embeddings euclidean_l2 = sqrt(2 x cosine distance), so an euclidean_l2
    threshold t verifies exactly the pairs a cosine threshold t^2 / 2 does. Where that is stricter
    than the recognizer's cosine threshold, the same pairs cannot verify MORE under L2; a
    recognizer whose Table 3 value exceeds its Table 1 value there rules euclidean_l2 out.

    Args:
        thresholds: our recognizer name -> {metric: threshold} (deepface's, bench.recognizers.thresholds).

    Returns:
        one sentence per recognizer of the seven with thresholds, then the conclusion.
    """
    columns = [c.ours["column"] for c in paper.claims if c.ours.get("kind") == "verification"
               and c.ours.get("table") == cosine_table and c.ours.get("recognizer") == AVERAGE and not c.derived]
    lines, ruled_out = [], []
    for paper_name, ours in paper.recognizers.items():
        t = thresholds.get(ours) or {}
        if "cosine" not in t or "euclidean_l2" not in t:
            lines.append(f"{paper_name}: no thresholds ({ours})")
            continue
        equivalent = t["euclidean_l2"] ** 2 / 2
        more = [(c, paper.value(cosine_table, ours, c), paper.value(l2_table, ours, c)) for c in columns]
        more = [(c, a, b) for c, a, b in more if a is not None and b is not None and b > a]
        stricter = equivalent < t["cosine"]
        verdict = ""
        if stricter and more:
            ruled_out.append(paper_name)
            verdict = ("; yet Table 3 verifies more: " + ", ".join(f"{c} {b:g} > {a:g}" for c, a, b in more)
                       + " -> not euclidean_l2 on the same pairs")
        lines.append(f"{paper_name}: euclidean_l2 threshold {t['euclidean_l2']:g} = cosine {equivalent:.4g}, "
                     f"{'stricter' if stricter else 'looser'} than its cosine threshold {t['cosine']:g}{verdict}")
    if ruled_out:
        lines.append(f"Table 3 is not consistent with deepface's euclidean_l2 at deepface's thresholds on Table 1's "
                     f"pairs ({', '.join(ruled_out)}); the raw euclidean distance is not ruled out by this argument "
                     "(its thresholds do not map onto cosine ones), nor are other pairs or thresholds.")
    else:
        lines.append("Table 3 is consistent with deepface's euclidean_l2 by this argument.")
    return lines


__all__ = ["Claim", "Paper", "PaperDataError", "load_paper", "formula_value", "l2_consistency", "replace"]
