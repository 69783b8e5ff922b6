"""Stage `anonymize`: every face of every photo replaced, the outsider's view of MFMC.

Reads:  <results_dir>/<dataset>/faces.parquet, photos.csv     (faces stage)
        <results_dir>/<dataset>/targets/<pool>/<metric>-<query>.parquet   (query stage)
        the dataset's photos, the pool's target images, the generator's weights.
Writes, under the cell folder (bench.layout.Cell.root):
        photos/<slug(photo)>.png  one anonymized photo per readable photo of the dataset,
                             also those where no face was found (then a copy)
        photos.csv           one row per photo of the manifest: faces, swapped, fallback,
                             audit_found, audit_covered, left_real, status (bench.status)
        pairs.parquet        one row per source face: target, result face, status
        faces.parquet        the anonymized photos' faces, re-detected (faces.parquet schema)
        crops/               their aligned crops
        failures.csv         every face not swapped, not re-detected, covered by the audit,
                             or left real
        provenance.json
No face that was found stays real if anything can cover it: a face whose swap fails (or that
has no target) is obfuscated by `anonymize.fallback` (blur by default) and reported. The
`anonymize.audit_detectors` look at every readable photo, also those where the inventory
found nothing; a face they find that no inventory face covers is obfuscated by the fallback
too (failure stage "audit"). Only a face that nothing can cover stays real: its status reads
NOT ANONYMIZED, its photo is marked in photos.csv, and the run's summary line counts it.
Under the closed loop (bench.guard) each fake is checked against its owner before the photo is
written, last at the landmarks the leak check's detectors find on the finished photo
(bench.leakscan; those scans are cached for the leaks stage).
Per-photo records under records/ let a rerun resume.
"""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench.datasets import dataset_root
from bench import resultsio
from bench.boxes import box_changed_fraction, box_mean_abs_diff, greedy_match, iou_matrix
from bench.layout import Cell, DatasetLayout
from bench.detectors import build_detector, detect_turned, memoize, split_turned, turned_cache, turned_consensus
from bench.detectors.ensemble import merge_detections
from bench.detectors.base import Detection, Detector
from bench.detectors.changed import scan_changed
from bench.errors import BenchError, ImageLoadError
from bench.facetable import (
    FACE_COLUMNS, DetectionCache, face_row, failure, slug, weights_manifest, write_crop,
)
from bench.anonymizer import build_fallback, cover_missed_face, unchanged_max_diff
from bench.guard import (
    STOP_FALLBACK, STOP_STILL_IDENTIFIED, STOP_STILL_VERIFIED, STOP_UNCHECKED, Guard, GuardOutcome, candidate_targets,
    recheck_photo, replace_guarded, settings as guard_settings, was_identified,
)
from bench.generators.base import Generator
from bench.images import load_photo
from bench.leakscan import LeakScan
from bench.progress import progress
from bench.provenance import code_sha256, record
from bench.registry import DETECTORS, GENERATORS
from bench.status import (
    LEFT_REAL, READABLE, PHOTO_ANONYMIZED, PHOTO_LEFT_REAL, PHOTO_NO_FACE, PHOTO_UNREADABLE, SWAPPED,
    is_fallback, is_left_real,
)

log = logging.getLogger(__name__)

PAIR_COLUMNS = [
    "source_face", "photo", "target", "result_face", "strategy", "space", "pool", "generator",
    "seed", "distance", "status", "redetected",
    # the closed loop (bench.guard.GuardOutcome): swaps made, pool faces tried (JSON list), the
    # last check's distances per guard (JSON), the guards that verified it, the owner's rank
    # among the gallery per guard (JSON; {} when guard.max_owner_rank is off), the guards that
    # identified it, why each flagged check failed (JSON list), why it stopped
    "tries", "targets_tried", "guard_distances", "guard_verified_by", "guard_owner_ranks",
    "guard_identified_by", "guard_why", "guard_stop",
]
PHOTO_COLUMNS = ["photo", "result", "faces", "swapped", "fallback", "audit_found", "audit_covered",
                 "left_real", "status"]


def run(cfg: DictConfig) -> Cell:
    """Anonymizes every readable photo of the dataset for one cell; returns the cell."""
    cell = Cell.from_config(cfg)
    inventory = DatasetLayout(cell.results_dir, cell.dataset)
    faces = read_required(inventory.faces, "python -m bench faces")
    manifest = read_manifest(inventory.photos)
    generator: Generator = GENERATORS.build(cfg.generator, name=cfg.choices.generator)
    try:
        generator.prepare()
    except BenchError as err:  # the whole cell is n/a; targets are not needed to say so
        return write_unavailable_cell(cfg, cell, faces, manifest, read_targets(cell, None), generator, f"n/a: {err}")
    targets = read_targets(cell, generator, faces)
    fallback = build_fallback(cfg)
    guard = Guard(cfg) if generator.uses_target else None
    if guard is not None:  # the identification gallery: every face with a target, embedded once
        with_target = faces[faces.face_id.isin(set(targets.source_face))]
        guard.enrol(with_target, dataset_root(cfg.dataset))
    detector: Detector = memoize(DETECTORS.build(cfg.detector, name=cfg.choices.detector), cfg.detector, cfg.results_dir)
    detector.prepare()
    auditors = build_auditors(cfg)
    scanner = (LeakScan.from_config(cfg, {a.name: a.detector for a in auditors})
               if int(cfg.anonymize.output_audit_rounds) else None)

    pairs, result_faces, failures, photo_rows = [], [], [], []
    by_photo = {photo: group for photo, group in faces.groupby("photo", sort=True)}
    unlisted = sorted(set(by_photo) - set(manifest.photo))
    if unlisted:  # faces.parquet and photos.csv disagree: never drop those faces silently
        raise BenchError(f"faces.parquet lists photos that photos.csv does not ({', '.join(unlisted[:3])}): "
                         "rerun `python -m bench faces`")
    for entry in progress(manifest.itertuples(), f"{cell.generator}: anonymize", total=len(manifest), unit="photo"):
        if entry.status not in READABLE:
            photo_rows.append(photo_row(entry.photo, "", [], [], PHOTO_UNREADABLE if entry.status == "unreadable"
                                        else str(entry.status)))
            continue
        group = by_photo.get(entry.photo, faces.iloc[0:0])
        rec = anonymize_photo(cfg, cell, entry.photo, group, targets, generator, fallback, detector, auditors, guard,
                              scanner)
        pairs += rec["pairs"]
        result_faces += rec["faces"]
        failures += rec["failures"]
        photo_rows.append(rec["photo"])
    write_cell(cfg, cell, pairs, result_faces, failures, photo_rows, generator, detector, auditors, targets, guard)
    return cell


def read_required(path: Path, how: str) -> pd.DataFrame:
    if not path.is_file():
        raise BenchError(f"{path} not found: run `{how}` for this configuration first")
    return pd.read_parquet(path)


def read_manifest(path: Path) -> pd.DataFrame:
    """The faces stage's photos.csv (every file of the dataset, with its status)."""
    if not path.is_file():
        raise BenchError(f"{path} not found: run `python -m bench faces` for this dataset first")
    table = pd.read_csv(path, dtype={"photo": str, "status": str}, keep_default_na=False)
    return table.sort_values("photo", kind="stable").reset_index(drop=True)


def read_targets(cell: Cell, generator: Generator | None, faces: pd.DataFrame | None = None) -> pd.DataFrame:
    """The query stage's targets; optional for obfuscations, which take no identity, for a
    generator that cannot run (generator None), and where the inventory has no face."""
    optional = generator is None or not generator.uses_target or (faces is not None and faces.empty)
    if optional and not cell.targets.is_file():
        return pd.DataFrame(columns=["source_face", "target", "target_image", "target_box",
                                     "target_landmarks", "distance"])
    return read_required(cell.targets, "python -m bench query")


class Auditor:
    """A detector that looks for faces the inventory missed, on the photo upright and turned
    by `rotations` (faces upside down or sideways), with its own detection cache (per photo
    content, shared by every cell)."""

    def __init__(self, detector: Detector, cache: DetectionCache, rotations=(), merge_iou: float = 0.4):
        self.detector, self.cache = detector, cache
        self.rotations, self.merge_iou = [int(r) for r in rotations], float(merge_iou)
        self.name = detector.name

    def detect(self, image: np.ndarray, sha: str) -> list[Detection]:
        found = self.cache.get(sha)
        if found is None:
            found = detect_turned(self.detector, np.ascontiguousarray(image[:, :, ::-1]), self.rotations,
                                  self.merge_iou)
            self.cache.put(sha, found)
        return found


def build_auditors(cfg: DictConfig) -> list[Auditor]:
    """The `anonymize.audit_detectors` that can run here (others are named in the log)."""
    auditors = []
    for name in cfg.anonymize.get("audit_detectors") or []:
        detector = build_detector(str(name), cfg)
        try:
            detector.prepare()
        except BenchError as err:
            log.warning("audit detector %s not available (%s): faces that %s missed cannot be found by it",
                        name, err, cfg.choices.detector)
            continue
        rotations = [int(r) for r in cfg.anonymize.audit_rotations or []]
        merge_iou = float(cfg.anonymize.redetect_iou)
        auditors.append(Auditor(detector, turned_cache(cfg, str(name), detector, rotations, merge_iou),
                                rotations, merge_iou))
    return auditors


def missed_faces(cfg, image: np.ndarray, sha: str, group: pd.DataFrame, auditors: list[Auditor]) -> list[Detection]:
    """Faces the auditors find that no inventory face covers (IoU >= anonymize.redetect_iou),
    merged across auditors (a face two auditors find is listed once, `found_by` both). A face
    found only on turned photos counts when `anonymize.turned_min_detectors` auditors agree."""
    known = group[["x1", "y1", "x2", "y2"]].to_numpy(np.float32).reshape(-1, 4)
    min_iou = float(cfg.anonymize.redetect_iou)
    found = split_turned({a.name: a.detect(image, sha) for a in auditors})
    merged = [d for d in merge_detections(found, min_iou)
              if turned_consensus(d, int(cfg.anonymize.turned_min_detectors))]
    return [d for d in merged if not (len(known) and iou_matrix(d.box[None], known).max() >= min_iou)]


def anonymize_photo(cfg, cell: Cell, photo: str, group: pd.DataFrame, targets: pd.DataFrame,
                    generator: Generator, fallback: Generator | None, detector: Detector,
                    auditors: list[Auditor] = (), guard: Guard | None = None,
                    scanner: LeakScan | None = None) -> dict:
    """Swaps every inventory face of one photo, covers the faces the auditors find that the
    inventory missed, re-detects the swapped faces, writes the anonymized photo (also for a
    photo without faces). Resumes from records/ when nothing that decides it has changed.

    Returns:
        {"key", "pairs", "faces", "failures", "photo"}: rows for pairs.parquet, the cell's
        faces.parquet, failures.csv and photos.csv.
    """
    group = group.sort_values("face_index")
    key = photo_key(cfg, photo, group, targets, [a.cache for a in auditors],
                    [generator, fallback, detector, *(guard.components() if guard else [])],
                    guard.gallery_key() if guard else "", scanner.key() if scanner else "")
    record_path = cell.root / "records" / f"{slug(photo)}.json"
    result_path = cell.photos / f"{slug(photo)}.png"
    if record_path.is_file() and result_path.is_file():
        rec = json.loads(record_path.read_text())
        if rec.get("key") == key:
            return rec
    rec = {"key": key, "pairs": [], "faces": [], "failures": []}
    path = dataset_root(cfg.dataset) / photo
    try:
        original = image = load_photo(path, int(cfg.faces.max_image_pixels)).rgb
    except ImageLoadError as err:  # the faces stage read it, so this is a changed file
        for row in group.itertuples():
            rec["pairs"].append(pair_row(cfg, cell, row, None, f"{LEFT_REAL}: photo unreadable now: {err}", GuardOutcome()))
            rec["failures"].append(failure(photo, row.face_id, "anonymize", f"{LEFT_REAL}: photo unreadable: {err}"))
        rec["photo"] = photo_row(photo, "", rec["pairs"], [], PHOTO_UNREADABLE)
        resultsio.write_json(rec, record_path)
        return rec

    missed = missed_faces(cfg, image, resultsio.sha256_file(path), group, auditors)
    by_source = targets.set_index("source_face")
    rows, chosen, statuses, outcomes = [], [], [], []
    for row in group.itertuples():
        target = by_source.loc[row.face_id] if row.face_id in by_source.index else None
        image, status, outcome = replace_guarded(image, original, row, target, generator, fallback, guard)
        rows.append(row), chosen.append(target), statuses.append(status), outcomes.append(outcome)
    # the last check on the finished photo (neighbours' swaps reach into a face's crop)
    image, _ = recheck_photo(image, original, rows, outcomes, statuses, guard)
    rec["pairs"] = [pair_row(cfg, cell, *face) for face in zip(rows, chosen, statuses, outcomes)]
    # Faces the inventory missed take the fallback (an obfuscating generator covers them itself).
    cover = fallback or (generator if not generator.uses_target else None)
    audit_status = []
    for det in missed:
        image, status = cover_missed_face(image, det, cover)
        audit_status.append(status)
        rec["failures"].append(failure(photo, "", "audit", status))
    # The last look includes the leak check's own (bench.leakscan: every detector, upright and
    # turned): a face it would find unchanged is covered here. Its scans are cached under the
    # published photo's pixels' hash, so the leaks stage reads them instead of scanning again.
    leak_scan = None
    if scanner is not None:
        def leak_scan(rgb: np.ndarray) -> list[Detection]:
            return scanner.faces(rgb, original)[0]
    counted: list = []
    # An auditor that the leak check also runs (the default: the same eight) looks upright within
    # leak_scan's look already: it is not run upright a second time, on windows of its own.
    looking = [a for a in auditors if scanner is None or a.name not in scanner.detectors]
    image, found = audit_output(cfg, photo, group, missed, original, image, cover, detector, looking, audit_status,
                                rec, leak_scan, counted)
    # The guards look where the leak check will: each fake at the landmarks of the faces the
    # leak check finds over it on the photo as published; a face covered then means another
    # look, and after `anonymize.output_audit_rounds` covering looks a last one only counts.
    looks = int(cfg.anonymize.output_audit_rounds)
    for look in range(looks + 1) if leak_scan is not None and guard is not None and generator.uses_target else ():
        image, changed = recheck_photo(image, original, rows, outcomes, statuses, guard,
                                       faces_over(cfg, leak_scan(image), group), cover=look < looks)
        if not changed:
            break
        rec["pairs"] = [pair_row(cfg, cell, *face) for face in zip(rows, chosen, statuses, outcomes)]
        image, found = audit_output(cfg, photo, group, missed, original, image, cover, detector, looking,
                                    audit_status, rec, leak_scan, counted)
    resultsio.write_png(image, result_path)
    for row, outcome, status in zip(rows, outcomes, statuses):
        if outcome.stop in (STOP_STILL_VERIFIED, STOP_STILL_IDENTIFIED):
            last = outcome.why[-1] if outcome.why else "no check"
            rec["failures"].append(failure(photo, row.face_id, "guard",
                                           f"{outcome.stop}: {last} after {outcome.tries} tries"))
        if status != SWAPPED:
            rec["failures"].append(failure(photo, row.face_id, "anonymize", status))
    redetect(cfg, cell, photo, group, image, detector, rec, found)
    rec["photo"] = photo_row(photo, f"photos/{slug(photo)}.png", rec["pairs"], audit_status)
    resultsio.write_json(rec, record_path)
    return rec


def faces_over(cfg, dets: list[Detection], group: pd.DataFrame) -> list[list[Detection]]:
    """Per inventory face of `group` (in order), the faces of `dets` (the leak check's faces on
    the photo as published) over it: each alignable face (faces.min_face_size) goes to the
    inventory face it overlaps most among those whose box it overlaps at
    anonymize.redetect_iou or more (as the leak check's treatment) or that hold its nose
    point (a box drawn much larger or smaller around the same face)."""
    out: list[list[Detection]] = [[] for _ in range(len(group))]
    boxes = group[["x1", "y1", "x2", "y2"]].to_numpy(np.float32).reshape(-1, 4)
    min_iou, min_size = float(cfg.anonymize.redetect_iou), float(cfg.faces.min_face_size)
    for det in dets:
        if det.size < min_size or not len(boxes):
            continue
        nose_x, nose_y = np.asarray(det.landmarks, np.float32).reshape(5, 2)[2]
        overlap = iou_matrix(np.asarray(det.box, np.float32)[None], boxes)[0]
        holds = (boxes[:, 0] <= nose_x) & (nose_x <= boxes[:, 2]) & (boxes[:, 1] <= nose_y) & (nose_y <= boxes[:, 3])
        eligible = (overlap >= min_iou) | (holds & (overlap > 0))
        if eligible.any():
            out[int(np.where(eligible, overlap, -1.0).argmax())].append(det)
    return out


def audit_output(cfg, photo: str, group: pd.DataFrame, missed: list[Detection], original: np.ndarray,
                 image: np.ndarray, cover: Generator | None,
                 detector: Detector, auditors: list[Auditor], audit_status: list[str],
                 rec: dict, leak_scan=None, counted: list | None = None) -> tuple[np.ndarray, list[Detection]]:
    """The last look: the inventory detector and `auditors` run on the anonymized photo, and
    `leak_scan` (RGB image -> the leak check's faces on it, bench.leakscan; None: not run;
    an auditor the leak check runs too is left out of `auditors` by the caller);
    a face they find whose pixels are unchanged from the original (`unchanged_max_diff`) is
    one every detector missed on the original (a score just under its threshold, a face in a
    crowd, a face found only on the photo turned) or one nothing covered: it is covered too.
    Repeated up to `anonymize.output_audit_rounds` times while such faces turn up. `counted`:
    boxes of the faces an earlier call left real (extended in place), not counted twice.

    Returns:
        (the final image, the inventory detector's faces on it: the re-detection's input).
    """
    min_iou, max_diff = float(cfg.anonymize.redetect_iou), unchanged_max_diff(cfg)
    min_fraction = float(cfg.anonymize.min_changed_fraction)
    swapped = np.array([[row.x1, row.y1, row.x2, row.y2] for row, pair in zip(group.itertuples(), rec["pairs"])
                        if pair["status"] == SWAPPED], np.float32).reshape(-1, 4)
    # faces already counted as left real (a failed swap with no fallback) are not counted twice
    known_real = [np.array([row.x1, row.y1, row.x2, row.y2], np.float32)
                  for row, pair in zip(group.itertuples(), rec["pairs"]) if is_left_real(pair["status"])]
    known_real += [np.asarray(det.box, np.float32) for det, status in zip(missed, audit_status) if is_left_real(status)]
    counted = [] if counted is None else counted
    known_real += counted
    scan = output_scan(cfg, original)
    found = scan(detector, image)
    for _ in range(int(cfg.anonymize.output_audit_rounds)):
        candidates = merge_detections({detector.name: found, **{a.name: scan(a.detector, image) for a in auditors}},
                                      min_iou)
        for det in leak_scan(image) if leak_scan is not None else []:  # found_by: the leak check's detectors
            known = np.array([d.box for d in candidates], np.float32).reshape(-1, 4)
            if not (len(known) and iou_matrix(np.asarray(det.box, np.float32)[None], known).max() >= min_iou):
                candidates.append(det)
        new = [d for d in candidates
               if not_covered(d.box, image, original, swapped, max_diff, min_fraction, min_iou)
               and not (known_real and iou_matrix(d.box[None], np.array(known_real)).max() >= min_iou)]
        if not new:
            break
        for det in new:
            image, status = cover_missed_face(image, det, cover, where="in the anonymized photo")
            if not is_left_real(status) and box_mean_abs_diff(image, original, det.box) < max_diff:
                status = f"{LEFT_REAL}: {status} left its pixels unchanged"
            if is_left_real(status):
                known_real.append(np.asarray(det.box, np.float32))
                counted.append(known_real[-1])
            audit_status.append(status)
            rec["failures"].append(failure(photo, "", "audit", status))
        found = scan(detector, image)
    return image, found


def output_scan(cfg, original: np.ndarray):
    """scan(detector, image) -> the detector's faces on the anonymized RGB `image`: a whole
    scan (`anonymize.scan_margin` null), or the original's faces where the pixels are unchanged
    and a scan of windows around the changed ones (bench.detectors.changed; the detector's
    own memo holds its faces on the original, found by the faces stage and the audit)."""
    margin = cfg.anonymize.get("scan_margin")
    original_bgr = np.ascontiguousarray(original[:, :, ::-1])

    def scan(detector: Detector, image: np.ndarray) -> list[Detection]:
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        if margin is None:
            return detector.detect(bgr)
        return scan_changed(detector, bgr, original_bgr, float(margin))
    return scan


def not_covered(box, image: np.ndarray, original: np.ndarray, swapped: np.ndarray, max_diff: float,
                min_fraction: float, min_iou: float) -> bool:
    """Whether a face found in the anonymized photo still needs covering: its pixels are
    unchanged (mean difference below `max_diff`), or it is not a swapped face and less than
    `min_fraction` of its pixels changed (an obfuscation that covered only part of it, e.g.
    a box drawn too small by the detector that found it)."""
    if box_mean_abs_diff(image, original, box) < max_diff:
        return True
    if len(swapped) and iou_matrix(np.asarray(box)[None], swapped).max() >= min_iou:
        return False  # a swapped face: the leak check judges it, an obfuscation would undo it
    return box_changed_fraction(image, original, box) < min_fraction


def photo_row(photo: str, result: str, pairs: list[dict], audit_status: list[str], status: str | None = None) -> dict:
    """One row of the cell's photos.csv: how this photo's faces were covered."""
    left = sum(is_left_real(p["status"]) for p in pairs) + sum(is_left_real(s) for s in audit_status)
    if status is None:
        status = PHOTO_LEFT_REAL if left else (PHOTO_ANONYMIZED if pairs or audit_status else PHOTO_NO_FACE)
    return {
        "photo": photo, "result": result, "faces": len(pairs),
        "swapped": sum(p["status"] == SWAPPED for p in pairs),
        "fallback": sum(is_fallback(p["status"]) for p in pairs),
        "audit_found": len(audit_status), "audit_covered": sum(is_fallback(s) for s in audit_status),
        "left_real": left, "status": status,
    }


def pair_row(cfg, cell: Cell, row, target, status: str, outcome: GuardOutcome) -> dict:
    """One pairs.parquet row; `target` is the first target (the query's pick), the target
    the result shows is the last of `outcome.targets`."""
    tried = outcome.targets
    return {
        "source_face": row.face_id, "photo": row.photo,
        "target": tried[-1] if tried else ("" if target is None else str(target["target"])),
        "result_face": "", "strategy": cell.query, "space": cell.metric, "pool": cell.pool,
        "generator": cell.generator, "seed": int(cfg.seed),
        "distance": float("nan") if target is None else last_distance(target, tried),
        "status": status, "redetected": False, **outcome.columns(),
    }


def last_distance(target, tried: list[str]) -> float:
    """The query-space distance of the target the result shows (the pick or an alternate)."""
    if not tried or tried[-1] == str(target["target"]):
        return float(target["distance"])
    for alt in candidate_targets(target, len(tried) + 1):
        if str(alt["target"]) == tried[-1]:
            return float(alt["distance"])
    return float("nan")


def redetect(cfg, cell: Cell, photo: str, group: pd.DataFrame, image: np.ndarray, detector: Detector, rec: dict,
             found: list[Detection] | None = None) -> None:
    """Finds each anonymized face again (IoU with its source box): the result face of its
    pair. `found`: the detector's faces on `image`, when already computed."""
    if found is None:
        found = detector.detect(np.ascontiguousarray(image[:, :, ::-1]))
    source_boxes = group[["x1", "y1", "x2", "y2"]].to_numpy(np.float32)
    found_boxes = np.array([d.box for d in found], np.float32).reshape(-1, 4)
    matches = dict(greedy_match(source_boxes, found_boxes, float(cfg.anonymize.redetect_iou)))
    result_photo = f"photos/{slug(photo)}.png"
    for i, (pair, src) in enumerate(zip(rec["pairs"], group.itertuples())):
        if i not in matches:
            if pair["status"] == SWAPPED:  # an obfuscated face is meant not to be found again
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


def photo_key(cfg, photo: str, group: pd.DataFrame, targets: pd.DataFrame, caches=(), components=(),
              gallery: str = "", scan: str = "") -> str:
    """Hash of everything that decides this photo's result: a changed input reruns it, and so
    do changed weights of `components` (the generator, fallback and detector; None skipped),
    by their sha256, even at the same path, and changed code (this module's, the components'
    and what they import: bench.provenance.code_sha256), and the guard's identification
    gallery (`gallery`: Guard.gallery_key(), the other photos' faces) and the leak check's look
    the guards check the fakes at (`scan`: bench.leakscan.LeakScan.key())."""
    mine = targets[targets.source_face.isin(group.face_id)]
    parts = [
        photo, group.drop(columns=["crop"], errors="ignore").to_json(orient="records"),
        mine.to_json(orient="records"),
        json.dumps(OmegaConf.to_container(cfg.generator, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.detector, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.anonymize, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.guard, resolve=True), sort_keys=True),
        json.dumps(OmegaConf.to_container(cfg.faces, resolve=True), sort_keys=True),
        json.dumps([str(c.folder.name) for c in caches]), str(unchanged_max_diff(cfg)),
        json.dumps([weights_manifest(c) for c in components if c is not None]),
        code_sha256(__name__, *(type(c).__module__ for c in components if c is not None)),
        gallery, scan,
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def make_folders(cell: Cell) -> None:
    """The cell's declared folders exist even when empty (an obfuscation re-detects no face,
    so writes no crop; an n/a cell writes no photo): DVC requires every declared output."""
    for folder in (cell.photos, cell.crops, cell.records):
        folder.mkdir(parents=True, exist_ok=True)


def write_cell(cfg, cell: Cell, pairs, result_faces, failures, photo_rows, generator, detector, auditors, targets,
               guard: Guard | None = None) -> None:
    make_folders(cell)
    pairs_df = pd.DataFrame(pairs, columns=PAIR_COLUMNS)
    faces_df = pd.DataFrame(result_faces, columns=FACE_COLUMNS)
    photos_df = pd.DataFrame(photo_rows, columns=PHOTO_COLUMNS)
    resultsio.write_parquet(pairs_df, cell.pairs)
    resultsio.write_parquet(faces_df, cell.faces)
    resultsio.write_csv(photos_df, cell.photo_table)
    resultsio.write_failures(failures, cell.failures)
    counts = cell_counts(pairs_df, photos_df)
    resultsio.write_json(record(
        cfg, "anonymize", cell=str(cell.root), counts=counts,
        generator={"name": generator.name, "weights": weights_manifest(generator)},
        detector={"name": detector.name, "weights": weights_manifest(detector),
                  **({"members": detector.available(), "members_missing": detector.missing()}
                     if hasattr(detector, "available") else {})},
        audit_detectors=[{"name": a.name, "weights": weights_manifest(a.detector)} for a in auditors],
        guard=guard.describe() if guard else {"name": guard_settings(cfg).name,
                                               "note": f"{generator.name} takes no target: nothing to retry"},
        targets={"path": str(cell.targets),
                 "sha256": resultsio.sha256_file(cell.targets) if cell.targets.is_file() else "none (generator takes no target)"},
    ), cell.provenance)
    if counts["left_real"]:
        log.error("%d face(s) LEFT REAL in %d photo(s) (%d of them missed by the inventory): see %s",
                  counts["left_real"], counts["photos_left_real"], counts["audit_left_real"], cell.photo_table)
    if counts["guard_still_verified"] or counts["guard_still_identified"]:
        log.error("%d face(s) still verified and %d still identified (owner within guard.max_owner_rank) as their "
                  "owner by a guard after the guard fallback: see %s",
                  counts["guard_still_verified"], counts["guard_still_identified"], cell.failures)
    log.info("guard: %d of %d swapped faces needed more than one try (%d identified at a check), %d covered by "
             "the guard fallback, %d unchecked", counts["guard_retried"], counts["faces"], counts["guard_identified"],
             counts["guard_fallback"], counts["guard_unchecked"])
    log.info("%s: %d photos written, %d faces: %d swapped, %d by fallback, %d missed by the inventory and "
             "found by the audit (%d covered), %d LEFT REAL in %d photos; %d re-detected -> %s",
             cell.generator, counts["photos_written"], counts["faces"], counts["swapped"], counts["fallback"],
             counts["audit_found"], counts["audit_covered"], counts["left_real"], counts["photos_left_real"],
             counts["redetected"], cell.root)


def cell_counts(pairs_df: pd.DataFrame, photos_df: pd.DataFrame) -> dict:
    """The cell's accounting: every face found is swapped, covered, or left real (counted)."""
    return {
        "photos": len(photos_df),
        "photos_written": int((photos_df.result != "").sum()),
        "photos_left_real": int((photos_df.left_real > 0).sum()),
        "faces": len(pairs_df),
        "swapped": int((pairs_df.status == SWAPPED).sum()),
        "fallback": int(pairs_df.status.map(is_fallback).sum()),
        "audit_found": int(photos_df.audit_found.sum()),
        "audit_covered": int(photos_df.audit_covered.sum()),
        "audit_left_real": int((photos_df.audit_found - photos_df.audit_covered).sum()),
        "left_real": int(photos_df.left_real.sum()),
        "redetected": int(pairs_df.redetected.sum()),
        # the closed loop (bench.guard): faces swapped more than once, covered by the guard
        # fallback, still verified / identified after it (counted as a failure), not checked,
        # identified (owner within guard.max_owner_rank) at one check or more
        "guard_retried": int((pd.to_numeric(pairs_df.tries, errors="coerce").fillna(0) > 1).sum()),
        "guard_fallback": int((pairs_df.guard_stop == STOP_FALLBACK).sum()),
        "guard_still_verified": int((pairs_df.guard_stop == STOP_STILL_VERIFIED).sum()),
        "guard_unchecked": int((pairs_df.guard_stop == STOP_UNCHECKED).sum()),
        "guard_still_identified": int((pairs_df.guard_stop == STOP_STILL_IDENTIFIED).sum()),
        "guard_identified": int(pairs_df.guard_why.map(was_identified).sum()),
    }


def write_unavailable_cell(cfg, cell: Cell, faces, manifest, targets, generator, reason: str) -> Cell:
    """The generator cannot run here: the cell is n/a, with every face listed as not swapped
    (no photo is written: a user must not take an untouched copy for an anonymized one)."""
    make_folders(cell)
    by_source = targets.set_index("source_face")
    pairs = [pair_row(cfg, cell, row, by_source.loc[row.face_id] if row.face_id in by_source.index else None, reason,
                      GuardOutcome()) for row in faces.itertuples()]
    resultsio.write_parquet(pd.DataFrame(pairs, columns=PAIR_COLUMNS), cell.pairs)
    resultsio.write_parquet(pd.DataFrame([], columns=FACE_COLUMNS), cell.faces)
    photo_rows = [photo_row(p, "", [r for r in pairs if r["photo"] == p], [], reason) for p in manifest.photo]
    resultsio.write_csv(pd.DataFrame(photo_rows, columns=PHOTO_COLUMNS), cell.photo_table)
    resultsio.write_failures([failure(p["photo"], p["source_face"], "anonymize", reason) for p in pairs], cell.failures)
    resultsio.write_json(record(cfg, "anonymize", cell=str(cell.root), unavailable=reason,
                                generator={"name": generator.name, "weights": weights_manifest(generator)}),
                         cell.provenance)
    log.warning("%s is not available: %s (cell written as n/a)", generator.name, reason)
    return cell
