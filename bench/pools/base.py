"""The pool protocol: a folder of single-face images that targets are drawn from.

A pool is built from conf/pool/<name>.yaml without touching weights or files. `images()`
lists its face images; a generated pool (`generated = True`, e.g. the DCGAN pool) writes
them first with `generate()` (`python -m bench pool pool=<name>`). Everything computed
from a pool goes under `<results_dir>/pools/<pool.name>/` (see `PoolOutputs`).

Any pool can be balanced (`pool.balanced=true`, bench.pools.balanced): the manifold stage
then keeps, through `select()`, only an equal number of faces per estimated gender x age
band, and the pool's name (hence its results folder) becomes `<name>-balanced`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
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

    def __init__(self, name: str, path: str, missing_hint: str | None = None, balanced: bool = False,
                 balanced_n: int | None = None, balanced_age_edges=(0, 30, 40), balanced_seed: int = 0):
        self.name = str(name)
        self.path = Path(str(path)).expanduser()
        self.missing_hint = missing_hint
        self.balanced = bool(balanced)
        self.balanced_n = None if balanced_n is None else int(balanced_n)
        self.balanced_age_edges = tuple(float(e) for e in balanced_age_edges)
        self.balanced_seed = int(balanced_seed)
        if self.balanced:
            from bench.pools.balanced import age_bands

            age_bands(self.balanced_age_edges)  # a bad edge list fails when the config is built

    def images(self, extensions) -> list[PhotoRef]:
        """The pool's images, sorted by their path relative to `path`.

        Raises:
            DatasetNotFound: the folder is missing (the message says how to get it).
        """
        node = OmegaConf.create({"name": f"pool {self.name}", "path": str(self.path), "files": None,
                                 "missing_hint": self.missing_hint or "set pool.path to a folder of face images"})
        photos, _ = list_photos(node, extensions)
        return photos

    def select(self, faces: pd.DataFrame, images: list[dict], estimate) -> tuple[pd.DataFrame, list[dict], dict | None]:
        """The faces this pool offers as targets, of those the manifold stage found.

        Args:
            faces: the pool's faces (faces.parquet schema), one per usable image.
            images: the manifold's image rows (dicts with photo and status).
            estimate: called with `faces`, returns their Features with kind "agegender"
                (only called for a balanced pool).

        Returns:
            (faces kept, image rows with status "not in the balanced subset" for the
            others, the subset's provenance or None). A pool that is not balanced keeps
            everything and returns None.

        Raises:
            UnbalanceablePool: see bench.pools.balanced.balanced_subset.
        """
        if not self.balanced:
            return faces, images, None
        from bench.pools.balanced import balanced_subset

        subset = balanced_subset(estimate(faces).table(), self.balanced_age_edges, self.balanced_n,
                                 self.balanced_seed)
        kept = faces[subset.keep].reset_index(drop=True)
        dropped = set(faces.photo[~subset.keep].astype(str))
        images = [dict(row, status="not in the balanced subset") if row["photo"] in dropped else row for row in images]
        return kept, images, subset.provenance()

    def generate(self) -> dict:
        """Writes the pool's images (generated pools only); returns provenance details."""
        raise NotImplementedError(f"pool {self.name!r} is a folder of existing images; nothing to generate")

    def weights(self) -> list[Path]:
        return []


def build_pool(cfg: DictConfig) -> Pool:
    """The configured pool (cfg.pool), named by cfg.pool.name."""
    from bench.pools import POOLS

    return POOLS.build(cfg.pool, name=str(cfg.pool.name))
