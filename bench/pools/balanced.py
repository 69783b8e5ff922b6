"""A pool with an equal class distribution, cut from any pool (`pool.balanced=true`).

MFMC evaluates two kinds of synthetic pool (abstract: "two synthetic datasets with random
and equal class distributions"): one whose faces come as a generator draws them (StyleGAN)
and one with an equal class distribution (Generated.Photos). Any pool folder gives the
second kind here: the subset with an equal number of faces in every stratum of estimated
gender x age band, the largest such subset or one of `pool.balanced_n` faces, drawn with a
seed. The estimates are the manifold's own (bench.spaces.features kind "agegender", the
estimator of bench.agegender), so the strata are what the *_ag query strategies and Fig. 5
see. The manifold stage applies the subset (Pool.select), so faces.parquet, crops/,
manifold.* and everything downstream (query, cells, Tables 1-3, Fig. 5) hold only the
subset, under the pool's own name `<name>-balanced` (`<name>-balanced<n>` for a set size):
both kinds of pool coexist under <results_dir>/pools/.

The age bands (`pool.balanced_age_edges`, years) are our choice: the paper gives none here.
Every gender x band stratum must hold a face, or the pool cannot be balanced (a named error
says which stratum is empty and suggests coarser edges).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.errors import BenchError

log = logging.getLogger(__name__)

SUFFIX = "-balanced"
GENDERS = ("female", "male")  # bench.spaces.features.Features.table()'s labels
OK = "ok"


class UnbalanceablePool(BenchError, ValueError):
    """No subset with an equal number of faces per stratum exists for the requested size."""


def balanced_name(name: str, n: int | None = None) -> str:
    """The results name of the balanced subset of pool `name`: "dcgan" -> "dcgan-balanced",
    with a set size "dcgan-balanced72"; a name that already says so is kept."""
    name = str(name)
    suffix = SUFFIX + (str(int(n)) if n is not None else "")
    return name if name.endswith(suffix) else name + suffix


def age_bands(edges) -> list[tuple[float, float, str]]:
    """(low, high, label) per band, high exclusive; the last band is open: [0, 30, 40] ->
    (0, 30, "0-29"), (30, 40, "30-39"), (40, inf, "40+").

    Raises:
        ValueError: fewer than one edge, or edges not strictly increasing from >= 0.
    """
    edges = [float(e) for e in edges]
    if not edges or edges[0] < 0 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"pool.balanced_age_edges must be increasing ages >= 0, got {edges}")
    bounds = edges + [math.inf]
    return [(lo, hi, f"{lo:g}+" if math.isinf(hi) else f"{lo:g}-{hi - 1:g}") for lo, hi in zip(bounds, bounds[1:])]


@dataclass(frozen=True)
class BalancedSubset:
    """Which faces a balanced pool keeps, and why.

    keep: (N,) bool, row-aligned with the estimates given to balanced_subset().
    per_stratum: faces kept in every stratum.
    strata: one dict per stratum (gender, age_band, available, kept), genders then bands.
    excluded: faces without a usable estimate, by reason.
    """

    keep: np.ndarray
    per_stratum: int
    strata: list[dict]
    excluded: dict = field(default_factory=dict)
    edges: tuple = ()
    seed: int = 0
    requested_n: int | None = None

    def provenance(self) -> dict:
        """What manifold.provenance.json records under pool.balance (JSON-ready)."""
        return {"faces": int(self.keep.sum()), "per_stratum": self.per_stratum, "strata": self.strata,
                "excluded": self.excluded, "age_edges": list(self.edges), "seed": self.seed,
                "requested_n": self.requested_n,
                "estimates": "manifold agegender features (bench.agegender, age_gender.estimator)"}


def balanced_subset(estimates: pd.DataFrame, edges, n: int | None = None, seed: int = 0) -> BalancedSubset:
    """The seeded subset with an equal number of faces per estimated gender x age band.

    Args:
        estimates: one row per pool face with columns face_id, age (years, float),
            gender ("female"/"male") and agegender_status ("ok" or why not), as
            Features.table() and manifold.parquet have them. Faces whose status is not ok
            (or whose age or gender is missing) take no part and are counted in `excluded`.
        edges: lower age edges of the bands in years (age_bands()).
        n: faces wanted in all; None: the largest balanced subset (the smallest stratum's
            size in every stratum). A size that is not a multiple of the number of strata is
            rounded down to one (with a warning).
        seed: the draw within each stratum (faces ordered by face_id, then a seeded
            permutation per stratum: a smaller n keeps a subset of a larger one).

    Raises:
        UnbalanceablePool: a stratum is empty, or n needs more faces per stratum than the
            smallest stratum holds, or n is smaller than the number of strata.
    """
    bands = age_bands(edges)
    table = estimates.reset_index(drop=True)
    status = table.get("agegender_status", pd.Series(OK, index=table.index)).astype(str)
    age = pd.to_numeric(table.age, errors="coerce").to_numpy(float)
    gender = table.gender.fillna("").astype(str).to_numpy()
    excluded: dict[str, int] = {}
    usable = np.ones(len(table), bool)
    for i in range(len(table)):
        reason = None
        if status.iat[i] != OK:
            reason = status.iat[i]
        elif gender[i] not in GENDERS or not np.isfinite(age[i]):
            reason = "no age/gender estimate"
        elif age[i] < bands[0][0]:
            reason = f"age below {bands[0][0]:g}"
        if reason is not None:
            usable[i] = False
            excluded[reason] = excluded.get(reason, 0) + 1

    members: list[tuple[str, str, np.ndarray]] = []
    order = np.argsort(table.face_id.astype(str).to_numpy(), kind="stable")
    for g in GENDERS:
        for lo, hi, label in bands:
            rows = order[(usable & (gender == g) & (age >= lo) & (age < hi))[order]]
            members.append((g, label, rows))
    counts = [len(rows) for _, _, rows in members]
    empty = [f"{g} {label}" for (g, label, _), c in zip(members, counts) if c == 0]
    if empty:
        raise UnbalanceablePool(
            f"no pool face in stratum {', '.join(empty)} (estimated gender x age band): a balanced "
            f"pool needs a face in every one; use coarser pool.balanced_age_edges (now {list(edges)})")
    largest = min(counts)
    per_stratum = largest
    if n is not None:
        n = int(n)
        per_stratum = n // len(members)
        if per_stratum < 1:
            raise UnbalanceablePool(f"pool.balanced_n={n} is fewer than the {len(members)} strata")
        if per_stratum > largest:
            raise UnbalanceablePool(
                f"pool.balanced_n={n} needs {per_stratum} faces in each of {len(members)} strata, but the "
                f"smallest stratum holds {largest} (largest balanced pool: {largest * len(members)} faces)")
        if per_stratum * len(members) != n:
            log.warning("pool.balanced_n=%d is not a multiple of the %d strata: keeping %d faces",
                        n, len(members), per_stratum * len(members))

    rng = np.random.default_rng(int(seed))
    keep = np.zeros(len(table), bool)
    strata = []
    for g, label, rows in members:
        chosen = rows[rng.permutation(len(rows))[:per_stratum]]
        keep[chosen] = True
        strata.append({"gender": g, "age_band": label, "available": int(len(rows)), "kept": per_stratum})
    return BalancedSubset(keep=keep, per_stratum=per_stratum, strata=strata, excluded=excluded,
                          edges=tuple(float(e) for e in edges), seed=int(seed), requested_n=n)


def pool_kinds(cfg) -> list:
    """The configured pool and its other kind (the full pool beside its balanced subset, or
    the reverse), as configs, each only where its manifold exists: Fig. 5 draws one row per
    kind, as the paper compares its random and its equal-distribution pool.

    Args:
        cfg: the composed config (cfg.pool.name already suffixed when balanced).

    Returns:
        [cfg] or [cfg, twin] (cfg first, kept even without a manifold: the caller checks it).
    """
    from omegaconf import open_dict

    from bench.layout import pool_outputs

    twin = cfg.copy()
    with open_dict(twin):
        if cfg.pool.get("balanced"):
            twin.pool.balanced = False
            name = str(cfg.pool.name)
            twin.pool.name = name[: name.rindex(SUFFIX)] if SUFFIX in name else name
        else:
            twin.pool.balanced = True
            twin.pool.name = balanced_name(str(cfg.pool.name), cfg.pool.get("balanced_n"))
    return [cfg] + ([twin] if pool_outputs(twin).manifold.is_file() else [])
