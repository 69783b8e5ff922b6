"""The pool protocol: a folder of single-face images that targets are drawn from.

A pool is built from conf/pool/<name>.yaml without touching weights or files. `images()`
lists its face images; a generated pool (`generated = True`, e.g. the DCGAN pool) writes
them first with `generate()` (`python -m bench pool pool=<name>`). Everything computed
from a pool goes under `<results_dir>/pools/<pool.name>/` (see `PoolOutputs`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bench.datasets import PhotoRef, list_photos


class Pool:
    """A folder of face images, one aligned face per image.

    Attributes:
        name: the pool's name: the folder under <results_dir>/pools/ and the `pool`
            column of result files.
        path: the folder holding the images.
        generated: True when `generate()` writes the images (python -m bench pool).
    """

    name: str = "pool"
    generated: bool = False

    def __init__(self, name: str, path: str, missing_hint: str | None = None):
        self.name = str(name)
        self.path = Path(str(path)).expanduser()
        self.missing_hint = missing_hint

    def images(self, extensions) -> list[PhotoRef]:
        """The pool's images, sorted by their path relative to `path`.

        Raises:
            DatasetNotFound: the folder is missing (the message says how to get it).
        """
        node = OmegaConf.create({"name": f"pool {self.name}", "path": str(self.path), "files": None,
                                 "missing_hint": self.missing_hint or "set pool.path to a folder of face images"})
        photos, _ = list_photos(node, extensions)
        return photos

    def generate(self) -> dict:
        """Writes the pool's images (generated pools only); returns provenance details."""
        raise NotImplementedError(f"pool {self.name!r} is a folder of existing images; nothing to generate")

    def weights(self) -> list[Path]:
        return []


@dataclass(frozen=True)
class PoolOutputs:
    """Where the pool stages write: <results_dir>/pools/<pool.name>/."""

    root: Path

    @property
    def faces(self) -> Path:
        """The pool's faces in the faces.parquet schema (photo relative to the pool's path)."""
        return self.root / "faces.parquet"

    @property
    def images(self) -> Path:
        """One row per pool image: the data manifest (photo, sha256, size, status)."""
        return self.root / "images.csv"

    @property
    def failures(self) -> Path:
        return self.root / "failures.csv"

    @property
    def crops(self) -> Path:
        return self.root / "crops"

    @property
    def manifold(self) -> Path:
        """One row per pool face: feature statuses, estimated age and gender."""
        return self.root / "manifold.parquet"

    @property
    def arrays(self) -> Path:
        """The feature arrays, row-aligned with manifold.parquet (bench.spaces.features)."""
        return self.root / "manifold.npz"

    @property
    def provenance(self) -> Path:
        return self.root / "manifold.provenance.json"

    @property
    def generation(self) -> Path:
        """Written by `python -m bench pool` for generated pools."""
        return self.root / "pool.provenance.json"


def pool_outputs(cfg: DictConfig) -> PoolOutputs:
    return PoolOutputs(Path(cfg.results_dir) / "pools" / str(cfg.pool.name))


def build_pool(cfg: DictConfig) -> Pool:
    """The configured pool (cfg.pool), named by cfg.pool.name."""
    from bench.pools import POOLS

    return POOLS.build(cfg.pool, name=str(cfg.pool.name))
