"""A pool that is a folder of face images already on disk (StyleGAN, Generated.Photos, ...)."""
from __future__ import annotations

from bench.pools.base import Pool


class FolderPool(Pool):
    """Any folder of single-face images: `pool=folder pool.path=DIR [pool.name=NAME]`."""
