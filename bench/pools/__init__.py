"""Pools of synthetic target faces (conf/pool/): a folder of face images, or one generated."""
from bench.registry import Registry

POOLS = Registry("pool", "bench.pools.base:Pool")
