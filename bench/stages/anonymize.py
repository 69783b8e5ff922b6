"""Stage `anonymize`: every face of every photo replaced, the outsider's view of MFMC.

Reads:  <results_dir>/<dataset>/faces.parquet          (faces stage)
        <results_dir>/<dataset>/targets/<pool>/<metric>-<query>.parquet   (query stage)
        the dataset's photos, the pool's target images, the generator's weights.
Writes, under the cell folder (bench.cells.Cell.root):
        photos/<photo>.png   the anonymized photos (all faces swapped)
        pairs.parquet        one row per source face: target, result face, status
        faces.parquet        the anonymized photos' faces, re-detected (faces.parquet schema)
        crops/               their aligned crops
        failures.csv         every face not swapped, not re-detected, or left real
        provenance.json
A face whose swap fails (or that has no target) is obfuscated by `anonymize.fallback`
(blur by default) and reported; only when that fails too is it left real, and then the
failure row says so in capitals. A face the inventory's detector missed cannot be swapped:
`anonymize.audit_detector` (a second detector) looks for such faces in every photo and
reports each as a NOT ANONYMIZED failure row (stage "audit"). Per-photo records under records/ let a rerun resume.
"""
from __future__ import annotations

import hashlib
import json
import logging
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.boxes import greedy_match
from bench.cells import Cell
from bench.detectors.base import Detector
from bench.errors import BenchError, ImageLoadError
from bench.facetable import FACE_COLUMNS, face_row, failure, slug, weights_manifest, write_crop
from bench.generators.base import Face, Generator, SwapFailed
from bench.images import load_photo
from bench.provenance import record
from bench.registry import DETECTORS, GENERATORS

log = logging.getLogger(__name__)

PAIR_COLUMNS = [
    "source_face", "photo", "target", "result_face", "strategy", "space", "pool", "generator",
    "seed", "distance", "status", "redetected",
]
SWAPPED = "swapped"
LEFT_REAL = "NOT ANONYMIZED"


def run(cfg: DictConfig) -> Cell:
    """Anonymizes every photo of the dataset for one cell; returns the cell."""
    cell = Cell.from_config(cfg)
    faces = read_required(cell.dataset_dir / "faces.parquet", "python -m bench faces")
    generator: Generator = GENERATORS.build(cfg.generator, name=cfg.choices.generator)
    try:
        generator.prepare()
    except BenchError as err:  # the whole cell is n/a; targets are not needed to say so
        return write_unavailable_cell(cfg, cell, faces, read_targets(cell, None), generator, f"n/a: {err}")
    targets = read_targets(cell, generator)
    fallback = build_fallback(cfg)
    detector: Detector = DETECTORS.build(cfg.detector, name=cfg.choices.detector)
    detector.prepare()
    auditor = build_auditor(cfg)

    pairs, result_faces, failures = [], [], []
    for photo, group in faces.groupby("photo", sort=True):
        rec = anonymize_photo(cfg, cell, photo, group, targets, generator, fallback, detector, auditor)
        pairs += rec["pairs"]
        result_faces += rec["faces"]
        failures += rec["failures"]
    write_cell(cfg, cell, pairs, result_faces, failures, generator, detector, targets)
    return cell


def read_required(path: Path, how: str) -> pd.DataFrame:
    if not path.is_file():
        raise BenchError(f"{path} not found: run `{how}` for this configuration first")
    return pd.read_parquet(path)


def read_targets(cell: Cell, generator: Generator | None) -> pd.DataFrame:
    """The query stage's targets; optional for obfuscations, which take no identity, and
    for a generator that cannot run (generator None)."""
    if (generator is None or not generator.uses_target) and not cell.targets.is_file():
        return pd.DataFrame(columns=["source_face", "target", "target_image", "target_box",
                                     "target_landmarks", "distance"])
    return read_required(cell.targets, "python -m bench query")


def build_auditor(cfg: DictConfig) -> Detector | None:
    """A second detector that looks for faces the inventory missed (they stay real), or None
    when `anonymize.audit_detector` is unset or cannot run here (said in the log)."""
    name = cfg.anonymize.get("audit_detector")
    if not name or name == cfg.choices.detector:
        return None
    auditor = DETECTORS.build(str(name))
    try:
        auditor.prepare()
    except BenchError as err:
        log.warning("audit detector %s not available (%s): faces that %s missed cannot be reported",
                    name, err, cfg.choices.detector)
        return None
    return auditor


def audit_missed_faces(cfg, photo: str, image: np.ndarray, group: pd.DataFrame, auditor: Detector | None) -> list[dict]:
    """Failure rows for faces the audit detector finds that no listed face covers: the
    inventory missed them, so they are still real in the anonymized photo."""
    if auditor is None:
        return []
    found = auditor.detect(np.ascontiguousarray(image[:, :, ::-1]))
    boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
    covered = {j for _, j in greedy_match(group[["x1", "y1", "x2", "y2"]].to_numpy(np.float32), boxes,
                                          float(cfg.anonymize.redetect_iou))}
    return [failure(photo, "", "audit", f"{LEFT_REAL}: a face at box {[int(v) for v in found[j].box]} "
                                       f"(found by {auditor.name}, score {found[j].score:.2f}) is not in the "
                                       f"face inventory, so it was left real")
            for j in range(len(found)) if j not in covered]


def build_fallback(cfg: DictConfig) -> Generator | None:
    name = cfg.anonymize.get("fallback")
    if not name or name == cfg.choices.generator:
        return None
    fallback = GENERATORS.build(str(name))
    fallback.prepare()
    return fallback


def anonymize_photo(cfg, cell: Cell, photo: str, group: pd.DataFrame, targets: pd.DataFrame,
                    generator: Generator, fallback: Generator | None, detector: Detector,
                    auditor: Detector | None = None) -> dict:
    """Swaps every face of one photo, re-detects them; resumes from records/ when unchanged."""
    group = group.sort_values("face_index")
    key = photo_key(cfg, photo, group, targets)
    record_path = cell.root / "records" / f"{slug(photo)}.json"
    result_path = cell.photos / f"{slug(photo)}.png"
    if record_path.is_file() and result_path.is_file():
        rec = json.loads(record_path.read_text())
        if rec.get("key") == key:
            return rec
    rec = {"key": key, "pairs": [], "faces": [], "failures": []}
    try:
        image = load_photo(Path(str(cfg.dataset.path)) / photo, int(cfg.faces.max_image_pixels)).rgb
    except ImageLoadError as err:  # the faces stage read it, so this is a changed file
        for row in group.itertuples():
            rec["pairs"].append(pair_row(cfg, cell, row, None, f"{LEFT_REAL}: photo unreadable now: {err}"))
            rec["failures"].append(failure(photo, row.face_id, "anonymize", f"{LEFT_REAL}: photo unreadable: {err}"))
        resultsio.write_json(rec, record_path)
        return rec

    rec["failures"] += audit_missed_faces(cfg, photo, image, group, auditor)
    by_source = targets.set_index("source_face")
    for row in group.itertuples():
        target = by_source.loc[row.face_id] if row.face_id in by_source.index else None
        image, status = replace_face(image, row, target, generator, fallback)
        rec["pairs"].append(pair_row(cfg, cell, row, target, status))
        if status != SWAPPED:
            rec["failures"].append(failure(photo, row.face_id, "anonymize", status))
    resultsio.write_png(image, result_path)
    redetect(cfg, cell, photo, group, image, detector, rec)
    resultsio.write_json(rec, record_path)
    return rec


def replace_face(image: np.ndarray, row, target, generator: Generator, fallback: Generator | None):
    """(image with this face replaced, status). Never raises: a failure becomes the status."""
    face = Face(box=np.array([row.x1, row.y1, row.x2, row.y2], np.float32),
                landmarks=np.asarray(row.landmarks, np.float32).reshape(5, 2))
    try:
        if generator.uses_target:
            if target is None:
                raise SwapFailed("no target for this face (see the query stage's failures)")
            target_image, target_face = load_target(target)
        else:
            target_image, target_face = image, face
        return generator.swap(image, face, target_image, target_face), SWAPPED
    except Exception as err:  # a bug on one odd face must not lose the other faces
        reason = describe(err)
    if fallback is None:
        return image, f"{LEFT_REAL}: {generator.name} failed ({reason}); no fallback configured"
    try:
        return fallback.swap(image, face, image, face), f"fallback {fallback.name}: {generator.name} failed ({reason})"
    except Exception as err:
        return image, f"{LEFT_REAL}: {generator.name} failed ({reason}); fallback {fallback.name} failed ({describe(err)})"


def describe(err: Exception) -> str:
    if isinstance(err, BenchError):
        return str(err)
    log.debug("swap raised:\n%s", traceback.format_exc())
    return f"{type(err).__name__}: {err}"


def load_target(target) -> tuple[np.ndarray, Face]:
    rgb = load_photo(str(target["target_image"])).rgb
    face = Face(box=np.asarray(target["target_box"], np.float32).reshape(4),
                landmarks=np.asarray(target["target_landmarks"], np.float32).reshape(5, 2))
    return rgb, face


def pair_row(cfg, cell: Cell, row, target, status: str) -> dict:
    return {
        "source_face": row.face_id, "photo": row.photo,
        "target": "" if target is None else str(target["target"]),
        "result_face": "", "strategy": cell.query, "space": cell.metric, "pool": cell.pool,
        "generator": cell.generator, "seed": int(cfg.seed),
        "distance": float("nan") if target is None else float(target["distance"]),
        "status": status, "redetected": False,
    }


def redetect(cfg, cell: Cell, photo: str, group: pd.DataFrame, image: np.ndarray, detector: Detector, rec: dict) -> None:
    """Finds each anonymized face again (IoU with its source box): the result face of its pair."""
    found = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
    source_boxes = group[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
    found_boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
    matches = dict(greedy_match(source_boxes, found_boxes, float(cfg.anonymize.redetect_iou)))
    result_photo = f"photos/{slug(photo)}.png"
    for i, (pair, src) in enumerate(zip(rec["pairs"], group.itertuples())):
        if i not in matches:
            rec["failures"].append(failure(photo, src.face_id, "redetect",
                                           f"result face not found again by {detector.name}"))
            continue
        det = found[matches[i]]
        row = face_row(result_photo, src.face_id, src.face_index, detector.name, det)
        try:
            crop_rel, crop_sha = write_crop(image, det, src.face_id, cfg.faces, cell.crops)
            row.update(aligned=True, crop=crop_rel, crop_sha256=crop_sha)
        except ValueError as err:
            rec["failures"].append(failure(photo, src.face_id, "redetect", str(err)))
        rec["faces"].append(row)
        pair.update(result_face=src.face_id, redetected=True)


def photo_key(cfg, photo: str, group: pd.DataFrame, targets: pd.DataFrame) -> str:
    """Hash of everything that decides this photo's result: a changed input reruns it."""
    mine = targets[targets.source_face.isin(group.face_id)]
    parts = [
        photo, group.drop(columns=["crop"], errors="ignore").to_json(orient="records"),
        mine.to_json(orient="records"),
        json.dumps(OmegaConf.to_container(cfg.generator, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.detector, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.anonymize, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.faces, resolve=True), sort_keys=True),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def write_cell(cfg, cell: Cell, pairs, result_faces, failures, generator, detector, targets) -> None:
    pairs_df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    faces_df = pd.DataFrame(result_faces, columns=FACE_COLUMNS)
    resultsio.write_parquet(pairs_df, cell.pairs)
    resultsio.write_parquet(faces_df, cell.faces)
    resultsio.write_failures(failures, cell.failures)
    failures_df = pd.DataFrame(failures, columns=["photo", "face_id", "stage", "reason"])
    counts = {
        "missed_by_inventory": int((failures_df.stage == "audit").sum()),
        "faces": len(pairs_df),
        "swapped": int((pairs_df.status == SWAPPED).sum()),
        "fallback": int(pairs_df.status.str.startswith("fallback").sum()),
        "left_real": int(pairs_df.status.str.startswith(LEFT_REAL).sum()),
        "redetected": int(pairs_df.redetected.sum()),
    }
    resultsio.write_json(record(
        cfg, "anonymize", cell=str(cell.root), counts=counts,
        generator={"name": generator.name, "weights": weights_manifest(generator)},
        detector={"name": detector.name, "weights": weights_manifest(detector)},
        targets={"path": str(cell.targets),
                 "sha256": resultsio.sha256_file(cell.targets) if cell.targets.is_file() else "none (generator takes no target)"},
    ), cell.provenance)
    if counts["left_real"] or counts["missed_by_inventory"]:
        log.error("%d face(s) LEFT REAL in the output photos (%d not in the face inventory): see %s",
                  counts["left_real"] + counts["missed_by_inventory"], counts["missed_by_inventory"], cell.failures)
    log.info("%s: %d faces, %d swapped, %d by fallback, %d left real, %d re-detected -> %s",
             cell.generator, counts["faces"], counts["swapped"], counts["fallback"], counts["left_real"],
             counts["redetected"], cell.root)


def write_unavailable_cell(cfg, cell: Cell, faces, targets, generator, reason: str) -> Cell:
    """The generator cannot run here: the cell is n/a, with every face listed as not swapped."""
    by_source = targets.set_index("source_face")
    pairs = [pair_row(cfg, cell, row, by_source.loc[row.face_id] if row.face_id in by_source.index else None, reason)
             for row in faces.itertuples()]
    resultsio.write_parquet(pd.DataFrame(pairs, columns=PAIR_COLUMNS), cell.pairs)
    resultsio.write_parquet(pd.DataFrame([], columns=FACE_COLUMNS), cell.faces)
    resultsio.write_failures([failure(p["photo"], p["source_face"], "anonymize", reason) for p in pairs], cell.failures)
    resultsio.write_json(record(cfg, "anonymize", cell=str(cell.root), unavailable=reason,
                                generator={"name": generator.name, "weights": weights_manifest(generator)}),
                         cell.provenance)
    log.warning("%s is not available: %s (cell written as n/a)", generator.name, reason)
    return cell
