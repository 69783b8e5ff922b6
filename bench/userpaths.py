"""How a file path is written in text a user reads (n/a reasons, footnotes, the report).

A reason such as "n/a: weights not found at <path>" ends up in CSVs, metrics.json, the gate's
baseline and the HTML report, so it must read the same on every machine and name no folder of
the machine that wrote it. A path is therefore written relative to the root it lives under,
the most specific root first:

    $DEEPFACE_HOME/...     deepface's home (DEEPFACE_HOME, else HOME), and any path through a
                           ".deepface" folder: "$DEEPFACE_HOME/.deepface/weights/x.pth"
    $INSIGHTFACE_HOME/...  insightface's home (INSIGHTFACE_HOME, else ~/.insightface), and any
                           path through an ".insightface" folder
    $BENCH_SHARED/...      ../shared (BENCH_SHARED, else ../shared from the project root)
    <site-packages>/...    a file an installed package ships
    relative               a file in the project (or the working directory): "results/x.csv"
    ~/...                  anything else under the home folder

A path under none of these roots (one a user configured, e.g. `model_paths=[/opt/x.onnx]`)
is written as given. Relative paths are taken from the working directory, as the config's are.

    >>> shown_path("/home/ana/.deepface/weights/arcface_weights.pth")
    '$DEEPFACE_HOME/.deepface/weights/arcface_weights.pth'
"""
from __future__ import annotations

import os
import re
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Folders that name their root whatever the environment says: (component, label, keep it).
_MARKERS = ((".deepface", "$DEEPFACE_HOME", True), (".insightface", "$INSIGHTFACE_HOME", False),
            ("site-packages", "<site-packages>", False), ("dist-packages", "<site-packages>", False))

# An absolute path inside free text: starts at "/" (not inside a word, a URL or a relative
# path) and runs to whitespace or a closing delimiter.
_ABSOLUTE_IN_TEXT = re.compile(r"(?<![\w.~$/:<>-])/[^\s,;()'\"<>]+")


def _roots() -> list[tuple[str, str]]:
    """[(label, absolute folder)] of the roots named by the environment, label "" = relative."""
    home = os.path.expanduser("~")
    env = os.environ.get
    roots = [("$DEEPFACE_HOME", env("DEEPFACE_HOME") or ""),
             ("$INSIGHTFACE_HOME", env("INSIGHTFACE_HOME") or os.path.join(home, ".insightface")),
             ("$BENCH_SHARED", env("BENCH_SHARED") or str(PROJECT_ROOT.parent / "shared")),
             ("", str(PROJECT_ROOT)), ("", os.getcwd()), ("~", home)]
    return [(label, os.path.abspath(os.path.expanduser(root))) for label, root in roots if root]


def _under(path: str, root: str) -> str | None:
    """`path` relative to `root` ("" for the root itself), or None when it is outside."""
    if path == root:
        return ""
    prefix = root.rstrip(os.sep) + os.sep
    return path[len(prefix):] if path.startswith(prefix) else None


def shown_path(path: str | os.PathLike) -> str:
    """`path` as a user reads it: relative to the most specific root it lives under (module
    docstring); a path outside every root is returned as given (str)."""
    given = os.fspath(path)
    absolute = os.path.abspath(os.path.expanduser(given))
    best: tuple[int, str] | None = None  # (length of the root, the path as shown)

    def offer(root: str, label: str, rest: str) -> None:
        nonlocal best
        shown = "/".join(p for p in (label, rest) if p) or "."
        if best is None or len(root) > best[0]:
            best = (len(root), shown)

    parts = Path(absolute).parts
    for marker, label, keep in _MARKERS:  # first: at equal length a marker names the root better
        if marker in parts:
            i = parts.index(marker) + (0 if keep else 1)
            offer(str(Path(*parts[:i])), label, "/".join(parts[i:]))
    for label, root in _roots():
        rest = _under(absolute, root)
        if rest is not None:
            offer(root, label, rest)
    return best[1] if best is not None else given


def shown_paths_in(text: str) -> str:
    """`text` with every absolute path in it written by shown_path (the rest unchanged)."""
    return _ABSOLUTE_IN_TEXT.sub(lambda m: shown_path(m.group(0)), text)
