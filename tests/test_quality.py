"""The quality stage's FID like with like (bench.stages.quality.common_fid): a cell of another
guard is compared with its default-guard twin over the faces both swapped, not over sets of
different sizes (FID rises as n falls)."""
from __future__ import annotations

import numpy as np

from bench.stages import quality


def faces(ids, seed):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, (len(ids), 112, 112, 3), dtype=np.uint8)
    return list(ids), src, 255 - src


def test_common_fid_uses_the_faces_both_cells_swapped_in_one_order(monkeypatch):
    seen = []

    def fake_fid(real, fake):
        seen.append((real.copy(), fake.copy()))
        return float(len(real))

    monkeypatch.setattr(quality, "frechet_distance", fake_fid)
    open_cell = faces(["c", "a", "b", "d"], 0)      # the open loop swapped every face
    closed = faces(["b", "a", "e"], 1)              # the closed loop covered c and d; e only here
    got = quality.common_fid(open_cell, closed)
    assert got == {"n_common": 2, "fid_common": 2.0, "fid_common_default": 2.0}
    (mine_real, mine_fake), (twin_real, twin_fake) = seen
    assert np.array_equal(mine_real, open_cell[1][[1, 2]]) and np.array_equal(mine_fake, open_cell[2][[1, 2]])
    assert np.array_equal(twin_real, closed[1][[1, 0]]) and np.array_equal(twin_fake, closed[2][[1, 0]])


def test_common_fid_without_a_twin_adds_nothing():
    assert quality.common_fid(faces(["a"], 0), None) == {}
    assert quality.common_fid(None, faces(["a"], 0)) == {}
