"""Where the platform stage and the view command write, in one place (dvc.yaml names the
same paths): under <results_dir>/

    tables/access_models.{csv,md}, .provenance.json   one row per access model
    tables/access_threshold.csv                        the rules model over thresholds
    tables/access_scale.{csv,md}                       storage and work for 10^3..10^6 users
    figures/access_threshold.png, access_scale.png
    figures/access_fig1.png, access_fig2.png           Figs. 1 and 2 rendered by the harness
    platform/store/<access>/server.sqlite, clients/<user>.sqlite   each model's storage
    platform/photos/                                   the uploads' pixels (composed ones too)
    platform/enrol/                                    enrolment crops (faces mode)
    platform/views/<access>/<photo>__<viewer>.{png,json}   `python -m bench view`
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from bench.facetable import slug


@dataclass(frozen=True)
class PlatformLayout:
    results_dir: Path

    @classmethod
    def from_config(cls, cfg: DictConfig) -> "PlatformLayout":
        return cls(Path(cfg.results_dir))

    @property
    def tables(self) -> Path:
        return self.results_dir / "tables"

    @property
    def figures(self) -> Path:
        return self.results_dir / "figures"

    @property
    def root(self) -> Path:
        return self.results_dir / "platform"

    @property
    def table_csv(self) -> Path:
        return self.tables / "access_models.csv"

    @property
    def table_md(self) -> Path:
        return self.tables / "access_models.md"

    @property
    def provenance(self) -> Path:
        return self.tables / "access_models.provenance.json"

    @property
    def threshold_csv(self) -> Path:
        return self.tables / "access_threshold.csv"

    @property
    def threshold_png(self) -> Path:
        return self.figures / "access_threshold.png"

    @property
    def scale_csv(self) -> Path:
        return self.tables / "access_scale.csv"

    @property
    def scale_md(self) -> Path:
        return self.tables / "access_scale.md"

    @property
    def scale_png(self) -> Path:
        return self.figures / "access_scale.png"

    @property
    def fig1(self) -> Path:
        return self.figures / "access_fig1.png"

    @property
    def fig2(self) -> Path:
        return self.figures / "access_fig2.png"

    @property
    def photos(self) -> Path:
        return self.root / "photos"

    @property
    def enrol(self) -> Path:
        return self.root / "enrol"

    def declared(self) -> list[Path]:
        """The platform stage's outputs, as dvc.yaml declares them (bench.stagetable)."""
        return [self.table_csv, self.table_md, self.threshold_csv, self.scale_csv, self.scale_md,
                self.threshold_png, self.scale_png, self.fig1, self.fig2, self.root, self.provenance]

    def store(self, access: str) -> Path:
        return self.root / "store" / access

    def view(self, access: str, photo: str, viewer: str, suffix: str) -> Path:
        return self.root / "views" / access / f"{slug(photo)}__{slug(viewer)}{suffix}"
