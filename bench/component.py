"""What every model-backed component shares (insightface's prepare()/get() protocol):
construction touches no file; prepare() loads the weights once; weights() lists the files
it would load, for `bench weights status` and provenance."""
from __future__ import annotations

from pathlib import Path


class Component:
    name: str = "component"

    def prepare(self) -> None:
        """Loads weights once; raises bench.errors.WeightsNotFound (or another BenchError
        saying how to install the model) if it cannot run here."""
        if not getattr(self, "_prepared", False):
            self._load()
            self._prepared = True

    def _load(self) -> None:
        """Override to load weights."""

    def weights(self) -> list[Path]:
        """The weight files this component would load."""
        return []
