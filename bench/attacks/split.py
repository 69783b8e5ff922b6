"""Who is in the attacker's gallery: per identity, enrolment photos (gallery) and probes.

The split is made on the labels alone, before any face is detected, so that only the photos
it uses are anonymized (the cost of a swap is per face). It is deterministic: each identity's
photos are shuffled with a generator seeded by the run's seed and the identity
(bench.queries.base.rng_for), so adding a person does not change anyone else's split.
"""
from __future__ import annotations

import pandas as pd

from bench.queries.base import rng_for

GALLERY, PROBE, UNUSED = "gallery", "probe", "unused"
SPLIT_COLUMNS = ["path", "identity", "role"]


def split_identities(labels: pd.DataFrame, gallery_per_identity: int, probes_per_identity: int | None,
                     seed: int) -> pd.DataFrame:
    """Assigns every labelled photo a role: gallery, probe or unused.

    Args:
        labels: columns path, identity (bench.identities.read_labels).
        gallery_per_identity: enrolment photos per identity (>= 1). An identity with no more
            photos than this has gallery photos only (a distractor: it still counts in N).
        probes_per_identity: at most this many of the remaining photos are probes; None: all.
        seed: the run's seed.

    Returns:
        DataFrame path, identity, role, sorted by identity then path.

    Raises:
        ValueError: gallery_per_identity < 1 or probes_per_identity < 0.
    """
    gallery_n = int(gallery_per_identity)
    if gallery_n < 1:
        raise ValueError(f"gallery_per_identity must be >= 1, got {gallery_per_identity}")
    if probes_per_identity is not None and int(probes_per_identity) < 0:
        raise ValueError(f"probes_per_identity must be >= 0 or null, got {probes_per_identity}")
    rows = []
    for identity, group in labels.groupby("identity", sort=True):
        paths = sorted(group.path.astype(str))
        order = rng_for(int(seed), f"split:{identity}").permutation(len(paths))
        shuffled = [paths[i] for i in order]
        probes_n = len(shuffled) - gallery_n if probes_per_identity is None else int(probes_per_identity)
        for k, path in enumerate(shuffled):
            role = GALLERY if k < gallery_n else PROBE if k < gallery_n + probes_n else UNUSED
            rows.append({"path": path, "identity": str(identity), "role": role})
    table = pd.DataFrame(rows, columns=SPLIT_COLUMNS)
    return table.sort_values(["identity", "path"], kind="stable").reset_index(drop=True)
