"""Leaks measured against chance: face-size bands, the owner-verified rate beside the rate at
which a recognizer verifies two different people treated the same way, and the sizes at which
a recognizer cannot tell people apart at all. Pure functions on arrays and tables; the leaks
stage (bench/stages/leaks.py) and the shrink stage (bench/stages/shrink.py) call them.

Bands: `leaks.size_bands` are pixel edges on the face box's shorter side (as
faces.min_face_size, bench.detectors.base.Detection.size): [20, 30, 40, 60, 100] gives
"20-30", "30-40", "40-60", "60-100" and "100+"; a face below the first edge is "<20".

Tests (alpha = `leaks.alpha`):
- owner vs chance, per recognizer x band x treatment of a cell: k of n faces' fakes are
  verified as their own original; the chance rate p0 is the share of impostor pairs (the fake
  of face A against the ORIGINAL of a face B of another person, both in the band; A of that
  treatment) that are verified, j of m. One-sided Fisher's exact test of the 2x2 table
  [[k, n - k], [j, m - j]] (scipy.stats.fisher_exact, alternative="greater"; the chance rate
  is itself estimated from m pairs, so a lone verified owner against 0 of 20 impostor pairs is
  not enough): the verified faces count as leaks only where p < alpha. Fewer than `leaks.min_impostor_pairs` impostor pairs: no test, the
  verified faces count as leaks (as without this check) and are flagged.
- separable, per recognizer x band, on the identities set shrunk to the band's size (the
  shrink stage): genuine pairs verified vs impostor pairs verified, one-sided Fisher's exact
  test (alternative="greater"). p >= alpha: "indistinguishable", and the cell's faces in that
  band are "too small to tell" for that recognizer, neither leak nor safe.
Pairs that share a face are not independent, so both p-values are approximate (optimistic
when one face dominates the pairs); the counts behind them are in every row.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy import stats

from bench import status as face_status
from bench.embeddings import OK, na
from bench.footnotes import markdown_with_footnotes

# Verdicts of a recognizer x band x treatment row (the leak table's `verdict` column).
ABOVE_CHANCE = "leak: above chance"
AT_CHANCE = "not above chance"
UNCHANGED_LEAK = "leak: pixels unchanged"
TOO_SMALL = "too small to tell"
NO_FACES = "no faces compared"
# The shrink table's verdicts.
SEPARABLE = "distinguishable"
INDISTINGUISHABLE = "indistinguishable"

CHANCE_COLUMNS = [
    "recognizer", "band", "treatment", "faces", "faces_compared", "owner_verified", "owner_rate",
    "impostor_pairs", "impostor_verified", "chance_rate", "p_value", "alpha", "shrink", "shrink_p_value",
    "verdict", "leaks", "flagged",
]
SHRINK_COLUMNS = [
    "recognizer", "band", "size_px", "metric", "threshold", "status", "faces", "genuine_pairs",
    "genuine_verified", "genuine_rate", "impostor_pairs", "impostor_verified", "impostor_rate", "p_value",
    "alpha", "verdict",
]


# ---- bands --------------------------------------------------------------------------------

@dataclass(frozen=True)
class SizeBands:
    """Face-size bands from ascending pixel edges on the face box's shorter side."""

    edges: tuple[float, ...]

    @classmethod
    def of(cls, edges) -> "SizeBands":
        """Raises ValueError unless `edges` are at least one positive, strictly ascending number."""
        values = tuple(float(e) for e in edges or ())
        if not values or values[0] <= 0 or any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"leaks.size_bands must be positive, strictly ascending pixel edges; got {list(edges or [])}")
        return cls(values)

    def labels(self) -> list[str]:
        """Every band from the smallest, the one below the first edge included ("<20", ..., "100+")."""
        return [self.label(v) for v in (self.edges[0] / 2, *self.edges)]

    def label(self, size: float) -> str:
        """The band of a face whose box's shorter side is `size` px ("" for NaN)."""
        if not np.isfinite(size):
            return ""
        e = self.edges
        if size < e[0]:
            return f"<{e[0]:g}"
        k = int(np.searchsorted(np.asarray(e), size, side="right")) - 1
        return f"{e[k]:g}+" if k == len(e) - 1 else f"{e[k]:g}-{e[k + 1]:g}"

    def sizes(self) -> dict[str, float]:
        """{band: the face size (px, shorter box side) the identities set is shrunk to}: a closed
        band's middle, the open top band's lower edge; the band below the first edge is left out
        (its faces are not aligned: faces.min_face_size)."""
        e = self.edges
        out = {self.label(lo): (lo + hi) / 2 for lo, hi in zip(e, e[1:])}
        out[self.label(e[-1])] = e[-1]
        return out


# ---- the identities set shrunk to a band ----------------------------------------------------

def shrink_crop(crop: np.ndarray, box_in_crop: float, size: float) -> np.ndarray:
    """An aligned crop as if its face had been `size` px: downscaled (cv2.INTER_AREA) so that
    the face box, `box_in_crop` px of the crop, becomes `size` px, then scaled back to the
    crop's size (cv2.INTER_LINEAR), as a recognizer sees a small face aligned. A face that
    is already that small is returned as it is.

    Args:
        crop: (N, N, 3) uint8 aligned crop.
        box_in_crop: the face box's shorter side, in crop pixels (box side x alignment scale).
        size: the face size to simulate, px.
    """
    n = crop.shape[0]
    small = int(round(n * size / box_in_crop)) if box_in_crop > 0 else n
    if small >= n:
        return crop
    reduced = cv2.resize(crop, (max(1, small), max(1, small)), interpolation=cv2.INTER_AREA)
    return cv2.resize(reduced, (crop.shape[1], n), interpolation=cv2.INTER_LINEAR)


def alignment_scale(matrix: np.ndarray) -> float:
    """The scale of a 2x3 similarity matrix (crop px per photo px)."""
    m = np.asarray(matrix, dtype=np.float64)[:, :2]
    return float(math.sqrt(abs(np.linalg.det(m))))


def separable(genuine_verified: int, genuine_pairs: int, impostor_verified: int, impostor_pairs: int,
              alpha: float) -> tuple[float, str]:
    """(p-value, verdict) of "genuine pairs are verified more often than impostor pairs":
    one-sided Fisher's exact test; SEPARABLE when p < alpha, else INDISTINGUISHABLE; NaN and
    "n/a: ..." without both kinds of pairs."""
    if genuine_pairs <= 0 or impostor_pairs <= 0:
        return float("nan"), na("needs both genuine and impostor pairs")
    table = [[genuine_verified, genuine_pairs - genuine_verified],
             [impostor_verified, impostor_pairs - impostor_verified]]
    p = float(stats.fisher_exact(table, alternative="greater").pvalue)
    return p, SEPARABLE if p < alpha else INDISTINGUISHABLE


def shrink_rows(recognizer: str, band: str, size: float, metric: str, threshold: float, distances: np.ndarray,
                same: np.ndarray, alpha: float, faces: int) -> dict:
    """One row of the shrink table from the pair distances of the shrunk faces (`same`: the
    pair is one person)."""
    verified = np.asarray(distances) <= threshold
    same = np.asarray(same, dtype=bool)
    gk, gn = int(verified[same].sum()), int(same.sum())
    ik, i_n = int(verified[~same].sum()), int((~same).sum())
    p, verdict = separable(gk, gn, ik, i_n, alpha)
    return {"recognizer": recognizer, "band": band, "size_px": size, "metric": metric, "threshold": threshold,
            "status": OK if not verdict.startswith("n/a") else verdict, "faces": faces,
            "genuine_pairs": gn, "genuine_verified": gk, "genuine_rate": rate(gk, gn),
            "impostor_pairs": i_n, "impostor_verified": ik, "impostor_rate": rate(ik, i_n),
            "p_value": p, "alpha": alpha, "verdict": verdict}


def read_shrink(path: Path) -> tuple[dict[tuple[str, str], tuple[str, float]], str]:
    """({(recognizer, band): (verdict, p-value)}, status) from the shrink stage's CSV; status
    "n/a: <why>" and no entries when the file is absent or says the identities set is."""
    if not Path(path).is_file():
        return {}, na(f"{Path(path).name} not found (run `python -m bench shrink`): the bands' separability is unknown")
    table = pd.read_csv(path, keep_default_na=False)
    if table.empty:
        return {}, na(f"{Path(path).name} has no rows")
    statuses = set(table.status.astype(str))
    if statuses != {OK} and all(s.startswith("n/a") for s in statuses) and len(statuses) == 1:
        return {}, statuses.pop()
    out = {}
    for row in table.itertuples():
        p = pd.to_numeric(pd.Series([row.p_value]), errors="coerce").iloc[0]
        out[(str(row.recognizer), str(row.band))] = (str(row.verdict) if row.status == OK else str(row.status), float(p))
    return out, OK


# ---- a cell's faces against chance ----------------------------------------------------------

def treatment_of(pair_status: str | None, unchanged: bool) -> str:
    """A found face's treatment: "unchanged" (its pixels are the original's, whatever its
    status), else from its source face's pairs.parquet status (bench.status.treatment), or
    bench.status.AUDIT when no inventory face lies at its place (None)."""
    if unchanged:
        return face_status.TREATMENT_UNCHANGED
    return face_status.AUDIT if pair_status is None else face_status.treatment(pair_status)


def attribute(found: pd.DataFrame, inventory: pd.DataFrame, pairs: pd.DataFrame, identities: dict[str, str],
              min_iou: float) -> pd.DataFrame:
    """Who each found face is and how it was treated.

    Args:
        found: the found faces: photo, face (unique id), x1, y1, x2, y2, unchanged (bool).
        inventory: the dataset's faces.parquet (photo, face_id, x1..y2).
        pairs: the cell's pairs.parquet (source_face, status).
        identities: {inventory face_id: person} for a dataset with identity labels, else {}.
        min_iou: a found face is the inventory face its box overlaps most, at least this much
            (bench.boxes.greedy_match, per photo).

    Returns:
        found's rows in order with source_face ("" when none), treatment (treatment_of) and
        person: the labelled identity of its source face, else its source face (in a dataset
        without labels every inventory face is taken for another person, as in group photos),
        else the found face itself.
    """
    from bench.boxes import greedy_match

    status = dict(zip(pairs["source_face"].astype(str), pairs["status"].astype(str))) if len(pairs) else {}
    source = [""] * len(found)
    columns = ["x1", "y1", "x2", "y2"]
    by_photo = {p: g for p, g in inventory.groupby("photo")} if len(inventory) else {}
    for photo, mine in found.groupby("photo", sort=False):
        candidates = by_photo.get(photo)
        if candidates is None:
            continue
        rows = mine.index.to_numpy()
        for a, b in greedy_match(mine[columns].to_numpy(np.float32), candidates[columns].to_numpy(np.float32), min_iou):
            source[found.index.get_loc(rows[a])] = str(candidates.face_id.iloc[b])
    unchanged = found["unchanged"].fillna(False).astype(bool).to_numpy()
    treatment = [treatment_of(status.get(s) if s else None, u) for s, u in zip(source, unchanged)]
    person = [identities.get(s) or s or f"found:{f}" for s, f in zip(source, found["face"].astype(str))]
    return found.assign(source_face=source, treatment=treatment, person=person)


def cross_verified(anonymized: np.ndarray, original: np.ndarray, compared: np.ndarray, metric: str,
                   threshold: float) -> np.ndarray:
    """(n, n) float matrix V: V[i, j] = 1.0 when the fake of face i and the ORIGINAL of face j
    are verified as one person (distance <= threshold), 0.0 when not, NaN where face i or j was
    not compared. The diagonal is the owner check.

    Args:
        anonymized, original: (n, d) embeddings, row i = face i (any values where not compared).
        compared: (n,) bool, the faces with both embeddings.
        metric: a bench.verification distance ("cosine", "euclidean_l2", "euclidean").
    """
    from bench.verification import pair_distances

    n = len(compared)
    out = np.full((n, n), np.nan)
    idx = np.flatnonzero(compared)
    if len(idx):
        a, o = np.asarray(anonymized)[idx], np.asarray(original)[idx]
        i, j = np.meshgrid(np.arange(len(idx)), np.arange(len(idx)), indexing="ij")
        d = pair_distances(a[i.ravel()], o[j.ravel()], metric).reshape(len(idx), len(idx))
        out[np.ix_(idx, idx)] = (d <= threshold).astype(float)
    return out


def owner_test(k: int, n: int, j: int, m: int) -> float:
    """One-sided Fisher's exact p-value that k owner-verified faces of n exceed j verified
    impostor pairs of m (NaN when n or m is 0)."""
    if n <= 0 or m <= 0:
        return float("nan")
    table = [[int(k), int(n) - int(k)], [int(j), int(m) - int(j)]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)


@dataclass(frozen=True)
class ChanceOptions:
    """The `leaks` keys of the test: bands, alpha, the fewest impostor pairs that give a chance rate."""

    bands: SizeBands
    alpha: float
    min_impostor_pairs: int

    @classmethod
    def of(cls, opts: dict) -> "ChanceOptions":
        return cls(SizeBands.of(opts["size_bands"]), float(opts["alpha"]), int(opts["min_impostor_pairs"]))


def chance_table(faces: pd.DataFrame, verified: dict[str, np.ndarray | str], shrink: dict, shrink_status: str,
                 options: ChanceOptions) -> pd.DataFrame:
    """The leak table: one row per recognizer x band x treatment that has faces (CHANCE_COLUMNS).

    Args:
        faces: one row per found face, in the order of the `verified` matrices: band (str),
            treatment (str), person (str: faces of one person share it).
        verified: {recognizer: cross_verified's matrix, or "n/a: <why>" when it did not run}.
        shrink: read_shrink's {(recognizer, band): (verdict, p)}; shrink_status its status.
        options: bands, alpha, min_impostor_pairs.

    `leaks` is how many of the row's faces count as leaks: every compared face for
    "unchanged", the owner-verified ones where the test rejects or could not run (`flagged`),
    none elsewhere.
    """
    rows = []
    band = faces["band"].to_numpy(dtype=object)
    treatment = faces["treatment"].to_numpy(dtype=object)
    person = faces["person"].to_numpy(dtype=object)
    groups = faces.groupby(["band", "treatment"], sort=False).size()
    order = {b: k for k, b in enumerate(options.bands.labels())}
    keys = sorted(groups.index, key=lambda bt: (order.get(bt[0], -1), face_status.TREATMENTS.index(bt[1])
                                                if bt[1] in face_status.TREATMENTS else 99, bt[1]))
    for name, matrix in verified.items():
        for b, t in keys:
            mine = (band == b) & (treatment == t)
            row = {"recognizer": name, "band": b, "treatment": t, "faces": int(mine.sum()), "alpha": options.alpha}
            if isinstance(matrix, str):
                rows.append({**row, "verdict": matrix, "leaks": 0, "flagged": False})
                continue
            rows.append(group_row(row, matrix, mine, band == b, person, shrink.get((name, b)), shrink_status, options))
    counts = ("faces", "faces_compared", "owner_verified", "impostor_pairs", "impostor_verified", "leaks")
    return pd.DataFrame(rows, columns=CHANCE_COLUMNS).astype({c: "Int64" for c in counts} | {"flagged": bool})


def group_row(row: dict, matrix: np.ndarray, mine: np.ndarray, in_band: np.ndarray, person: np.ndarray,
              shrunk, shrink_status: str, options: ChanceOptions) -> dict:
    """One recognizer x band x treatment row (chance_table)."""
    owner = np.diag(matrix)
    compared = mine & np.isfinite(owner)
    n, k = int(compared.sum()), int(np.nansum(owner[compared]))
    # impostor pairs: the fake of a compared face of the group, the original of another
    # person's compared face of the band
    pairs = matrix[np.ix_(compared, in_band)]
    other = person[compared][:, None] != person[in_band][None, :]
    values = pairs[other & np.isfinite(pairs)]
    m, mk = int(values.size), int(values.sum())
    chance = rate(mk, m)
    shrink_verdict, shrink_p = shrunk if shrunk is not None else (shrink_status if shrink_status != OK else
                                                                  na("no shrink row for this recognizer and band"),
                                                                  float("nan"))
    row.update(faces_compared=n, owner_verified=k, owner_rate=rate(k, n), impostor_pairs=m, impostor_verified=mk,
               chance_rate=chance, shrink=shrink_verdict, shrink_p_value=shrink_p, flagged=False)
    p = owner_test(k, n, mk, m) if m >= options.min_impostor_pairs else float("nan")
    row["p_value"] = p
    if n == 0:
        return {**row, "verdict": NO_FACES, "leaks": 0}
    if row["treatment"] == face_status.TREATMENT_UNCHANGED:
        return {**row, "verdict": UNCHANGED_LEAK, "leaks": n}
    if shrink_verdict == INDISTINGUISHABLE:
        return {**row, "verdict": TOO_SMALL, "leaks": 0}
    if m < options.min_impostor_pairs:
        return {**row, "verdict": na(f"too few impostor pairs ({m} < leaks.min_impostor_pairs="
                                     f"{options.min_impostor_pairs}): verified faces counted as leaks"),
                "leaks": k, "flagged": k > 0}
    if p < options.alpha:
        return {**row, "verdict": ABOVE_CHANCE, "leaks": k}
    return {**row, "verdict": AT_CHANCE, "leaks": 0}


def face_verdicts(faces: pd.DataFrame, verified: dict[str, np.ndarray | str], table: pd.DataFrame) -> pd.DataFrame:
    """Per found face and recognizer, whether it counts as a leak against chance.

    Returns: one row per (face index, recognizer that compared it): face (int, the row of
    `faces`), recognizer, verified (bool), verdict (its group's), leak (bool: verified and
    the group counts leaks, or its pixels are unchanged), flagged (bool).
    """
    verdict = {(r.recognizer, r.band, r.treatment): (r.verdict, bool(r.leaks > 0 or r.verdict == UNCHANGED_LEAK),
                                                      r.verdict.startswith("n/a: too few"))
               for r in table.itertuples()}
    rows = []
    for name, matrix in verified.items():
        if isinstance(matrix, str):
            continue
        owner = np.diag(matrix)
        for i, f in enumerate(faces.itertuples()):
            if not np.isfinite(owner[i]):
                continue
            v, counts, few = verdict[(name, f.band, f.treatment)]
            is_verified = bool(owner[i])
            leak = f.treatment == face_status.TREATMENT_UNCHANGED or (is_verified and counts)
            rows.append({"face": i, "recognizer": name, "verified": is_verified, "verdict": v, "leak": leak,
                         "flagged": bool(leak and few)})
    return pd.DataFrame(rows, columns=["face", "recognizer", "verified", "verdict", "leak", "flagged"])


def face_outcome(unchanged: bool, alignable: bool, rows: pd.DataFrame) -> str:
    """One face's overall outcome from its face_verdicts rows: "leak" (pixels unchanged, or a
    recognizer links it above chance or without enough impostor pairs), TOO_SMALL (no
    recognizer that compared it can tell people apart at its size), "verified at chance"
    (verified, but no more often than different people), "no leak", or "not compared"
    (too small to align, or no recognizer ran)."""
    if unchanged or bool(rows.leak.any()):
        return "leak"
    if not alignable or rows.empty:
        return "not compared"
    if (rows.verdict == TOO_SMALL).all():
        return TOO_SMALL
    if bool((rows.verified & (rows.verdict != TOO_SMALL)).any()):
        return "verified at chance"
    return "no leak"


def with_verdicts(table: pd.DataFrame, info: pd.DataFrame, verdicts: pd.DataFrame, unchanged_check: str) -> pd.DataFrame:
    """The leaks stage's rows (face, check, recognizer, unchanged) with each face's band and
    treatment, and per recognizer row its group's verdict and whether it is a leak against
    chance (rows of `unchanged_check`: the pixels decide)."""
    by_face = info.set_index("face")
    table["band"] = table.face.map(by_face.band).fillna("").astype(str)
    table["treatment"] = table.face.map(by_face.treatment).fillna("").astype(str)
    faces = info.face.to_numpy()
    keyed = {(faces[r.face], r.recognizer): (r.verdict, r.leak) for r in verdicts.itertuples()}
    verdict, leak = [], []
    for row in table.itertuples():
        if row.check == unchanged_check:
            unchanged = bool(row.unchanged) if not pd.isna(row.unchanged) else None
            verdict.append(UNCHANGED_LEAK if unchanged else "")
            leak.append(unchanged)
        else:
            v, is_leak = keyed.get((row.face, row.recognizer), ("", None))
            verdict.append(v)
            leak.append(is_leak)
    table["verdict"] = verdict
    table["leak_vs_chance"] = pd.array(leak, dtype="boolean")
    return table


def summary(opts: dict, unchanged: list[bool], alignable: list[bool], info: pd.DataFrame, verdicts: pd.DataFrame,
            shrink_status: str) -> dict:
    """The leaks stage's metrics.json counts against chance: found faces per outcome
    (face_outcome), in all and per size band, and the test's settings (`opts`: the `leaks`
    block). `unchanged`, `alignable`: per found face, in `info`'s order."""
    outcomes = [face_outcome(u, a, verdicts[verdicts.face == i]) for i, (u, a) in enumerate(zip(unchanged, alignable))]
    flagged = set(verdicts.face[verdicts.flagged]) - set(verdicts.face[verdicts.leak & ~verdicts.flagged])
    flagged = {i for i in flagged if not unchanged[i]}

    def counts(mask) -> dict:
        picked = [o for o, m in zip(outcomes, mask) if m]
        return {"faces": len(picked), "leaking_faces_vs_chance": picked.count("leak"),
                "verified_at_chance": picked.count("verified at chance"),
                "too_small_to_tell": picked.count(TOO_SMALL), "no_leak": picked.count("no leak"),
                "not_compared": picked.count("not compared")}
    everything = counts([True] * len(outcomes))
    return {
        "leaking_faces_vs_chance": everything["leaking_faces_vs_chance"],
        "leaks_flagged_too_few_impostors": len(flagged),
        "verified_at_chance": everything["verified_at_chance"],
        "too_small_to_tell": everything["too_small_to_tell"],
        "chance": {"alpha": float(opts["alpha"]), "min_impostor_pairs": int(opts["min_impostor_pairs"]),
                   "size_bands": [float(e) for e in opts["size_bands"]], "shrink": shrink_status,
                   "per_band": {band: counts((info.band == band).to_numpy())
                                for band in SizeBands.of(opts["size_bands"]).labels() if (info.band == band).any()}},
    }


# ---- rendering ------------------------------------------------------------------------------

def rate(k: int, n: int) -> float:
    return k / n if n else float("nan")


def rounded(table: pd.DataFrame, digits: int = 6) -> pd.DataFrame:
    """Float columns rounded (the same inputs give the same bytes)."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype.kind == "f":
            out[column] = out[column].round(digits)
    return out


def chance_markdown(table: pd.DataFrame, title: str, notes: list[str]) -> str:
    """The leak table as Markdown: rates to 3 decimals, p-values to 4, n/a reasons as footnotes."""
    shown = table.copy().astype(object)
    for column in ("owner_rate", "chance_rate"):
        shown[column] = [f"{v:.3f}" if isinstance(v, float) and np.isfinite(v) else "" for v in table[column]]
    for column in ("p_value", "shrink_p_value"):
        shown[column] = [f"{v:.4f}" if isinstance(v, float) and np.isfinite(v) else "" for v in table[column]]
    shown = shown.where(shown.notna(), "")
    body = markdown_with_footnotes(shown, index=False, tablefmt="pipe", disable_numparse=True) if len(shown) else "(no faces)"
    return "\n".join([f"**{title}**", "", body, "", *notes]) + "\n"
