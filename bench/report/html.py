"""Tables from result files, copies of the files the page shows, and the page's template.

Every value is shown as the result file holds it (no number is recomputed or reformatted);
an "n/a: <reason>" cell reads "n/a" with a footnote mark (bench.footnotes) and carries its
full reason as hover text. Tables 1-3's "<column>" / "<column> n" pairs are shown as one cell,
"<value> (n=<n>)".
"""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import jinja2
import markupsafe
import pandas as pd
from PIL import Image

from bench.footnotes import na_footnotes, na_reason

PAIR_COUNT = " n"  # Tables 1-3: the column "<key> n" holds the pairs behind "<key>"
FILES = "files"    # the copies' folder inside the report


@dataclass(frozen=True)
class TableCell:
    """One cell of an HTML table: its text, hover text (an n/a cell's reason), CSS class, link."""

    text: str
    title: str = ""
    kind: str = ""
    href: str = ""


@dataclass
class HtmlTable:
    """A table as the template renders it.

    Attributes:
        columns: the header labels.
        rows: the cells, row by row.
        title: shown above the table.
        notes: shown under it: footnotes of the n/a reasons, then captions.
        source: the link (relative to index.html) to the whole file, when it is copied.
        source_name: the file's path under results_dir.
        left_out: rows not shown (the caps of conf/config.yaml `report`).
        folded: shown folded (a long table a reader opens when wanted).
    """

    columns: list[str]
    rows: list[list[TableCell]]
    title: str = ""
    notes: list[str] = field(default_factory=list)
    source: str | None = None
    source_name: str = ""
    left_out: int = 0
    folded: bool = False


def read_csv(path: Path) -> pd.DataFrame:
    """A result CSV with every value as the file spells it (no float parsing, "" for empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def header(column: str) -> str:
    """"source_vs_result/random_ag" -> "Source vs Result / random_ag"."""
    return (column.replace("source_vs_target", "Source vs Target").replace("source_vs_result", "Source vs Result")
            .replace("/", " / "))


def with_pair_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Tables 1-3's "<key>" and "<key> n" columns as one: "0.1667 (n=6)"; an n/a value keeps
    its reason alone (its n is 0)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        if column.endswith(PAIR_COUNT) and column[: -len(PAIR_COUNT)] in frame.columns:
            continue
        counts = f"{column}{PAIR_COUNT}"
        if counts in frame.columns:
            out[column] = [value if na_reason(value) is not None or n == "" else f"{value} (n={n})"
                           for value, n in zip(frame[column], frame[counts])]
        else:
            out[column] = frame[column]
    return out


def frame_table(frame: pd.DataFrame, title: str = "", *, columns: list[str] | None = None,
                max_rows: int | None = None, notes: list[str] | None = None) -> HtmlTable:
    """An HtmlTable of `frame` (string cells), its n/a reasons numbered as footnotes.

    Args:
        frame: the table, every value a string (read_csv).
        title: shown above it.
        columns: the columns shown, in this order (those the frame lacks are skipped); None: all.
        max_rows: rows shown at most; the rest are counted in `left_out`.
        notes: captions under the footnotes.
    """
    if columns is not None:
        frame = frame[[c for c in columns if c in frame.columns]]
    left_out = max(0, len(frame) - max_rows) if max_rows is not None else 0
    frame = frame.iloc[: len(frame) - left_out].reset_index(drop=True)
    marked, footnotes = na_footnotes(frame)
    rows = []
    for i in range(len(frame)):
        row = []
        for j in range(frame.shape[1]):
            value, shown = frame.iat[i, j], marked.iat[i, j]
            reason = na_reason(value)
            row.append(TableCell(str(shown), title=reason or "", kind="na" if reason is not None else ""))
        rows.append(row)
    return HtmlTable(columns=[header(str(c)) for c in frame.columns], rows=rows, title=title,
                     notes=[*footnotes, *(notes or [])], left_out=left_out)


class ReportFiles:
    """Copies the result files the page shows into <report>/files/, at their path under
    results_dir (so names are deterministic and a file shown twice is copied once), and gives
    each copy's link relative to index.html: the report folder can be moved or served as is.

    Images larger than `max_side` pixels are downscaled (PNG); photos (`photo=True`: leak
    sheets, platform views) are saved as JPEG, which keeps the report small.
    """

    def __init__(self, results_dir: Path, out_dir: Path, max_side: int):
        self.results_dir = Path(results_dir).resolve()
        self.out_dir = Path(out_dir)
        self.max_side = int(max_side)
        self._links: dict[tuple[Path, bool], str] = {}

    def _relative(self, path: Path) -> Path:
        path = Path(path).resolve()
        try:
            return path.relative_to(self.results_dir)
        except ValueError:  # outside results_dir: a short, stable name of its own
            return Path("_outside") / f"{hashlib.sha256(str(path).encode()).hexdigest()[:12]}-{path.name}"

    def _link(self, relative: Path) -> str:
        return quote(f"{FILES}/{relative.as_posix()}")

    def file(self, path: Path) -> str | None:
        """Copies a file (CSV, JSON) as it is; its link, or None when it does not exist."""
        path = Path(path)
        if not path.is_file():
            return None
        key = (path.resolve(), False)
        if key not in self._links:
            relative = self._relative(path)
            target = self.out_dir / FILES / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            self._links[key] = self._link(relative)
        return self._links[key]

    def image(self, path: Path, photo: bool = False) -> str | None:
        """Copies (or downscales) an image; its link, or None when it does not exist or
        cannot be read."""
        path = Path(path)
        if not path.is_file():
            return None
        key = (path.resolve(), photo)
        if key in self._links:
            return self._links[key]
        relative = self._relative(path)
        try:
            with Image.open(path) as im:
                size = im.size
                if not photo and max(size) <= self.max_side:
                    image = None
                else:
                    image = im.convert("RGB")
                    image.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
        except (OSError, ValueError):
            return None
        if photo:
            relative = relative.with_name(relative.name + ".jpg")
        target = self.out_dir / FILES / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if image is None:
            shutil.copyfile(path, target)
        elif photo:
            image.save(target, format="JPEG", quality=85)
        else:
            image.save(target, format="PNG")
        self._links[key] = self._link(relative)
        return self._links[key]


def code(text) -> markupsafe.Markup:
    """The template filter `code`: escapes `text` and shows its `backquoted` parts as <code>."""
    parts = str(text).split("`")
    return markupsafe.Markup("".join(f"<code>{markupsafe.escape(p)}</code>" if i % 2 else markupsafe.escape(p)
                                     for i, p in enumerate(parts)))


def environment() -> jinja2.Environment:
    """The templates of bench/report/templates/, HTML-escaped; an undefined name is an error."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bench.report", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    env.filters["code"] = code
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
