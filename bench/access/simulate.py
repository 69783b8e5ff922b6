"""Running a workload on an access model and measuring it against the ground truth.

Per face of every view: **leak** = shown real although the owner does not allow this viewer
(bench.access.platform.Platform.allows, with the faces withdrawn so far); **over-fake** =
covered although the owner allows the viewer. Rates: leaks over the face-views the truth
forbids, over-fakes over the face-views it allows.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from bench.access.base import AccessModel, View
from bench.access.generate import Event
from bench.access.platform import Platform
from bench.progress import progress


@dataclass
class RunResult:
    """What one workload did on one model: the views (with their outcomes), per-view
    seconds, swap counts per phase, storage bytes, and the face-view counts."""

    model: str
    views: list[View] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    uploads: int = 0
    leaks: int = 0
    over_fakes: int = 0
    allowed: int = 0
    forbidden: int = 0
    swaps: dict = field(default_factory=dict)
    usage: dict = field(default_factory=dict)

    def timings(self) -> dict:
        """Wall time per view (ms, median and p95): a measurement of this machine, so it goes
        to the provenance, never into the table (one seed must give byte-identical tables)."""
        secs = np.asarray(self.seconds, np.float64)
        n_views = len(self.seconds)
        return {
            "view_ms_median": round(1000 * float(np.median(secs)), 2) if n_views else float("nan"),
            "view_ms_p95": round(1000 * float(np.percentile(secs, 95)), 2) if n_views else float("nan"),
        }

    def metrics(self) -> dict:
        """The row of results/tables/access_models.csv for this run (without names): counts
        and rates only, deterministic for one seed."""
        n_views = len(self.seconds)
        return {
            "uploads": self.uploads, "views": n_views, "face_views": self.allowed + self.forbidden,
            "swaps_per_upload": round(self.swaps.get("upload", 0) / self.uploads, 3) if self.uploads else float("nan"),
            "swaps_per_view": round(self.swaps.get("view", 0) / n_views, 3) if n_views else float("nan"),
            "swaps_on_untag": int(self.swaps.get("untag", 0)),
            "leaks": self.leaks, "leak_rate": round(self.leaks / self.forbidden, 4) if self.forbidden else float("nan"),
            "over_fakes": self.over_fakes,
            "over_fake_rate": round(self.over_fakes / self.allowed, 4) if self.allowed else float("nan"),
            **self.usage,
        }


def run_workload(model: AccessModel, platform: Platform, events: list[Event], render: bool = True,
                 keep_views: bool = False, check=None) -> RunResult:
    """Feeds `events` to an opened model; returns the measurements.

    Args:
        render: build each view's pixels (False: decisions only, e.g. for threshold curves).
        keep_views: keep every View in the result (tests, figures).
        check: optional callable(view, withdrawn) called after every view (property tests).
    """
    result = RunResult(model.name)
    withdrawn: set[str] = set()
    model.setup()
    for event in progress(events, f"{model.name}: workload", unit="event"):
        if event.kind == "upload":
            model.upload(event.photo_id)
            result.uploads += 1
        elif event.kind == "tag":
            model.tag(event.face_id, event.user)
        elif event.kind == "consent":
            model.consent(event.face_id)
        elif event.kind == "untag":
            withdrawn.add(event.face_id)
            model.untag(event.face_id)
        elif event.kind == "view":
            started = time.perf_counter()
            view = model.view(event.photo_id, event.user, render_image=render)
            result.seconds.append(time.perf_counter() - started)
            for outcome in view.faces:
                allowed = platform.allows(outcome.face_id, event.user, withdrawn)
                result.allowed += allowed
                result.forbidden += not allowed
                result.leaks += outcome.real and not allowed
                result.over_fakes += allowed and not outcome.real
            if check is not None:
                check(view, frozenset(withdrawn))
            if keep_views:
                result.views.append(view)
        else:
            raise ValueError(f"unknown event kind {event.kind!r}")
    model.storage.commit()
    result.swaps = dict(model.swaps)
    result.usage = model.storage.usage()
    return result
