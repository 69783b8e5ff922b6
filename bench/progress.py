"""Progress bars for the loops that can run for minutes: done / total, rate and time left.

`progress(iterable, desc, total=None, unit="face")` is tqdm (the ecosystem's bar) with the
house settings; `chunks(items, size, desc)` slices a list into batches under one bar that
counts items, not batches. A bar reads, on stderr:

    pool faces:  45%|████▌     | 225/500 [01:02<01:16,  3.61image/s]

- **Only on a terminal.** Where stderr is not a terminal (CI, `dvc repro`'s logs, a
  redirected run, pytest) nothing is drawn (tqdm's `disable=None`). The environment
  variable `BENCH_PROGRESS` overrides that: `1` draws bars whatever stderr is (e.g. to
  follow a log file with `tail -f`), `0` never draws them; unset (or `auto`): terminal only.
  An environment variable rather than a config key, so that library code deep in a loop
  needs no config and a launcher's worker processes inherit it.
- **Only for slow loops.** A bar appears after `DELAY_S` seconds, so a loop that ends
  sooner leaves no trace; a bar is removed when its loop ends (the stage's log lines say
  what was done and how long it took).
- **Log lines never tear a bar.** `logging_to_bars()` (bench.cli wraps every command in
  it) sends console log lines through `tqdm.write` while bars can be drawn.
- **Results are untouched.** Bars write to stderr only; no output file depends on them.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from functools import lru_cache
from typing import Iterable, Iterator, Sequence, TypeVar

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

log = logging.getLogger(__name__)

ENV = "BENCH_PROGRESS"
# Seconds before a bar is drawn: loops shorter than this stay silent.
DELAY_S = 1.0
FALLBACK_SIZE = (80, 24)  # columns, rows: for a terminal that reports a size of 0
ON = ("1", "true", "yes", "on")
OFF = ("0", "false", "no", "off")

T = TypeVar("T")


def forced() -> bool | None:
    """BENCH_PROGRESS as True (always draw), False (never) or None (on a terminal only)."""
    return _parse(os.environ.get(ENV, ""))


@lru_cache(maxsize=8)
def _parse(value: str) -> bool | None:
    value = value.strip().lower()
    if value in ON:
        return True
    if value in OFF:
        return False
    if value not in ("", "auto"):  # a typo must not stop a run: say so once, then decide as unset
        log.warning("%s=%r is not one of %s, %s or auto: bars on a terminal only", ENV, value, "/".join(ON), "/".join(OFF))
    return None


def shown() -> bool:
    """Whether bars can be drawn now (forced on, or stderr is a terminal and not forced off)."""
    on = forced()
    if on is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return on


def progress(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None, unit: str = "face",
             delay: float | None = None, **options) -> tqdm:
    """A tqdm bar over `iterable` (or, with iterable None, one advanced by `bar.update(n)`).

    Args:
        iterable: what the loop goes over; None for a bar updated by hand (`with progress(
            None, desc, total=n) as bar: ... bar.update(k)`).
        desc: what the loop does, shown before the bar.
        total: the number of items, where `len(iterable)` does not give it (a generator,
            `itertuples()`); without it the bar shows the count and rate but no time left.
        unit: what one item is: face, photo, image.
        delay: seconds before the bar is drawn (default DELAY_S).
        **options: any other tqdm argument.

    Returns:
        The tqdm object: iterate over it, or `update()` it. Disabled (a plain pass-through)
        when bars are not shown (see the module docstring).
    """
    on = forced()
    # The bar follows the terminal's width; a terminal that reports none (a pseudo-terminal
    # opened without a size: `script` run from a pipe, `docker run -t`) would get no bar at all
    # (tqdm draws nothing 0 columns wide and no bar below the last of 0 rows).
    size = {"dynamic_ncols": True} if _terminal_width() != 0 else {"ncols": FALLBACK_SIZE[0], "nrows": FALLBACK_SIZE[1]}
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr,
                disable=None if on is None else not on, delay=DELAY_S if delay is None else delay,
                leave=False, **{**size, **options})


def _terminal_width() -> int | None:
    """Columns of the terminal stderr is on; None when it is not a terminal."""
    try:
        return os.get_terminal_size(sys.stderr.fileno()).columns
    except (AttributeError, OSError, ValueError):  # not a terminal, or a stream without a file
        return None


def chunks(items: Sequence[T], size: int, desc: str, unit: str = "face") -> Iterator[Sequence[T]]:
    """`items` in slices of `size` (the last one shorter), under one bar that counts items;
    an item counts as done when the loop asks for the next slice."""
    size = max(1, int(size))
    with progress(None, desc, total=len(items), unit=unit) as bar:
        for start in range(0, len(items), size):
            part = items[start:start + size]
            yield part
            bar.update(len(part))


@contextlib.contextmanager
def logging_to_bars():
    """Console log lines go through tqdm.write while bars can be drawn, so a log line is
    printed above the bars instead of through one; a no-op otherwise."""
    if not shown():
        yield
        return
    with logging_redirect_tqdm():
        yield
