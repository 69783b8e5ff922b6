"""Where each benchmark cell's files live. A cell is one (dataset, pool, metric, query,
generator) choice; every stage that reads or writes a cell's files asks this module, so a
path is written once."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig


@dataclass(frozen=True)
class Cell:
    results_dir: Path
    dataset: str
    pool: str
    metric: str
    query: str
    generator: str

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "Cell":
        return cls(Path(cfg.results_dir), str(cfg.dataset.name), str(cfg.pool.name),
                   cfg.choices.metric, cfg.choices.query, cfg.choices.generator)

    @property
    def dataset_dir(self) -> Path:
        return self.results_dir / self.dataset

    @property
    def targets(self) -> Path:
        """Written by the query stage: one target per source face."""
        return self.dataset_dir / "targets" / self.pool / f"{self.metric}-{self.query}.parquet"

    @property
    def root(self) -> Path:
        """The anonymize stage's folder for this cell."""
        return self.dataset_dir / "cells" / self.pool / self.generator / f"{self.metric}-{self.query}"

    @property
    def pairs(self) -> Path:
        return self.root / "pairs.parquet"

    @property
    def faces(self) -> Path:
        """The anonymized photos' faces, re-detected (faces.parquet schema)."""
        return self.root / "faces.parquet"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def photos(self) -> Path:
        return self.root / "photos"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def photo_table(self) -> Path:
        """One row per photo of the dataset: its anonymized photo and how its faces were
        covered (swapped, fallback, audit), or why it has none / what was left real."""
        return self.root / "photos.csv"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    @property
    def leaks(self) -> Path:
        """Written by the leaks stage: one row per face found in the anonymized photos x check."""
        return self.root / "leaks.parquet"

    @property
    def metrics(self) -> Path:
        """The cell's metrics (DVC metrics file); the leaks stage writes its "leaks" entry."""
        return self.root / "metrics.json"

    @property
    def leak_sheet(self) -> Path:
        """The leak check's contact sheet: red box = a face still real, green = anonymized."""
        return self.root / "leaks.png"

    @property
    def leaks_provenance(self) -> Path:
        return self.root / "leaks.provenance.json"
