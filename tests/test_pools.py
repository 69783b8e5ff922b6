"""Pools: every conf/pool config builds; the DCGAN pool is seeded, byte-identical and
prefix-stable; a missing folder fails with a hint."""
from __future__ import annotations

import numpy as np
import pytest

from bench.errors import DatasetNotFound
from bench.pools import POOLS
from bench.pools.base import Pool
from bench.pools.dcgan import DcganPool, package_weights


@pytest.fixture(scope="module")
def dcgan_weights():
    path = package_weights()
    if path is None or not path.is_file():
        pytest.skip("gan-face-generate is not installed (scripts/install.sh installs it --no-deps)")
    return path


def test_pool_configs_build(tmp_path):
    assert {"dcgan", "devpool", "folder"} <= set(POOLS.names())
    for name in ("dcgan", "devpool"):
        pool = POOLS.build(name)
        assert isinstance(pool, Pool) and pool.name == name
    assert POOLS.build("dcgan").generated and not POOLS.build("devpool").generated


def test_folder_pool_lists_images_and_explains_a_missing_folder(tmp_path, cfg_factory):
    cfg = cfg_factory("pool=folder", f"pool.path={tmp_path / 'nowhere'}", "pool.name=mine")
    from bench.layout import pool_outputs
    from bench.pools.base import build_pool

    pool = build_pool(cfg)
    assert pool.name == "mine" and pool_outputs(cfg).root.name == "mine"
    with pytest.raises(DatasetNotFound, match="nowhere"):
        pool.images(cfg.faces.image_extensions)
    (tmp_path / "nowhere").mkdir()
    (tmp_path / "nowhere" / "b.png").write_bytes(b"")
    (tmp_path / "nowhere" / "a.jpg").write_bytes(b"")
    (tmp_path / "nowhere" / "notes.txt").write_text("x")
    assert [r.photo for r in pool.images(cfg.faces.image_extensions)] == ["a.jpg", "b.png"]


def test_dcgan_faces_are_seeded_and_prefix_stable(dcgan_weights, tmp_path):
    small = DcganPool("dcgan", str(tmp_path / "a"), n=3, seed=5, batch_size=4).faces()
    large = DcganPool("dcgan", str(tmp_path / "b"), n=6, seed=5, batch_size=4).faces()
    other = DcganPool("dcgan", str(tmp_path / "c"), n=3, seed=6, batch_size=4).faces()
    assert small.shape == (3, 64, 64, 3) and small.dtype == np.uint8
    np.testing.assert_array_equal(small, large[:3])
    assert not np.array_equal(small, other)
    assert small.std() > 20  # faces, not a constant image


def test_dcgan_generate_is_byte_identical(dcgan_weights, tmp_path):
    pool = DcganPool("dcgan", str(tmp_path / "img"), n=2, seed=0, batch_size=2)
    details = pool.generate()
    first = {p.name: p.read_bytes() for p in (tmp_path / "img").iterdir()}
    assert sorted(first) == ["dcgan_00000.png", "dcgan_00001.png"]
    assert details["weights"]["sha256"] != "absent"
    (tmp_path / "img" / "dcgan_00007.png").write_bytes(b"stale")
    pool.generate()
    assert {p.name: p.read_bytes() for p in (tmp_path / "img").iterdir()} == first
