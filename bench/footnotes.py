"""Markdown tables whose "n/a: <reason>" cells read as short footnote marks.

A cell that reads "n/a: <reason>" becomes "n/a¹" (superscript digits, numbered in reading
order: row by row, left to right), and each distinct reason is written once under the table
("¹ <reason>"). A bare "n/a" stays as it is. CSV files keep the full reason; only the
Markdown renderings use this, so a wide reason (a weights path) does not widen a column. A
reason is shown with every absolute path in it written relative to its root
(bench.userpaths: "$DEEPFACE_HOME/.deepface/weights/x.pth"), so a page names no folder of the
machine that wrote the result files.

    >>> frame, notes = na_footnotes(pd.DataFrame({"x": ["0.5", "n/a: no pairs", "n/a: no pairs"]}))
    >>> frame.x.tolist(), notes
    (['0.5', 'n/a¹', 'n/a¹'], ['¹ no pairs'])
"""
from __future__ import annotations

import pandas as pd

from bench.userpaths import shown_paths_in

NA_PREFIX = "n/a:"
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


def superscript(number: int) -> str:
    """12 -> "¹²"."""
    return str(int(number)).translate(_SUPERSCRIPT)


def na_reason(value) -> str | None:
    """The reason of an "n/a: <reason>" cell (stripped, its paths as bench.userpaths.shown_paths_in
    writes them), or None for any other value."""
    if isinstance(value, str) and value.startswith(NA_PREFIX):
        return shown_paths_in(value[len(NA_PREFIX):].strip())
    return None


def na_footnotes(frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(a copy of `frame` with every "n/a: <reason>" cell replaced by "n/a<mark>", the
    footnote lines "<mark> <reason>" in mark order). Index and column labels are kept;
    non-string cells are never touched."""
    marks: dict[str, str] = {}
    out = frame.copy()
    columns = list(out.columns)
    for i in range(len(out)):
        for j, _ in enumerate(columns):
            reason = na_reason(out.iat[i, j])
            if reason is None:
                continue
            if reason not in marks:
                marks[reason] = superscript(len(marks) + 1)
            if out.dtypes.iloc[j] != object:
                out[columns[j]] = out[columns[j]].astype(object)
            out.iat[i, j] = f"n/a{marks[reason]}"
    return out, [f"{mark} {reason}" for reason, mark in marks.items()]


def markdown_with_footnotes(frame: pd.DataFrame, **to_markdown) -> str:
    """`frame.to_markdown(**to_markdown)` with n/a reasons as footnotes under the table
    (each footnote its own paragraph, so every renderer shows one per line); no trailing
    newline, like to_markdown."""
    shown, notes = na_footnotes(frame)
    text = shown.to_markdown(**to_markdown)
    return "\n\n".join([text, *notes])
