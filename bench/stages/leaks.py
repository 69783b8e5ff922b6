"""Stage `leaks`: does any real face survive in one cell's anonymized photos?

Every available detector (conf/detector/, ensembles excluded: they are unions of the others)
looks at each anonymized photo, upright and turned; their faces are merged by IoU (`found_by`
keeps which detectors found each; bench.leakscan, which the anonymize stage's guards also look
through). Each face found is compared with the ORIGINAL photo at the same
place: the anonymized photo is the original with face regions replaced, so the same box and
the same five landmarks cut the same spot out of both.

- unchanged: the mean absolute pixel difference inside the box (clipped to the image) is
  below `unchanged_max_diff` gray levels (bench.anonymizer). A face that any detector still finds
  unchanged is a leak whatever the recognizers say.
- per recognizer (`recognizers`, those whose weights are here; the others are "n/a: ..."):
  the anonymized and the original crop, aligned at the same landmarks, are embedded and their
  `leaks.metric` (cosine) distance is compared with the recognizer's threshold (deepface's or
  the calibrated one); verified as the same person = a leak. A face smaller than
  faces.min_face_size cannot be aligned: it is checked for unchanged pixels only.
- against chance (bench.chance): each found face gets a size band (`leaks.size_bands`, px on
  the box's shorter side) and a treatment (the pairs.parquet status of the inventory face its
  box overlaps, at anonymize.redetect_iou: swapped, fallback, not anonymized; "audit" where
  none; "unchanged" when its pixels are). Per recognizer x band x treatment the owner-verified
  count is tested against the impostor pairs of the cell (one-sided Fisher's exact test at
  `leaks.alpha`, bench.chance); a verified face counts as a leak against chance only where
  the test rejects, or where there are fewer than `leaks.min_impostor_pairs` impostor pairs
  (then flagged). Where the shrink stage found the recognizer unable to tell people apart at the
  band's size, the faces are "too small to tell", neither leak nor safe. The columns `leak` and
  the totals of metrics.json without "_vs_chance" keep the plain check (verified = leak).

Reads:  <results_dir>/<dataset>/photos.csv and faces.parquet (faces stage: which photos are
        readable, where their faces are), <results_dir>/tables/shrink.csv (shrink stage; without
        it the bands' separability is "n/a: ..."), the dataset's identity labels if it has any,
        the cell's photos/<slug(photo)>.png and pairs.parquet (anonymize stage), the
        original photos under dataset.path, detector and recognizer weights.
Writes, in the cell folder (bench.layout.Cell):
        leaks.parquet             one row per found face x check (LEAK_COLUMNS), plus one
                                  row per readable photo that has no anonymized photo
        leaks_chance.csv, .md     the leak table: recognizer x band x treatment (bench.chance)
        metrics.json              {"leaks": per recognizer, per photo, totals, missing outputs,
                                  the counts against chance}
        leaks.png                 contact sheet: red box = leak, green = anonymized
        leaks.provenance.json     detectors, recognizers, weights sha256, photo sha256
Cache:  <results_dir>/cache/detections/<detector key>/<hash>.npz, the hash of the anonymized pixels
        (with scan_margin, of them and the original's pixels: bench.leakscan)
        and the embedding cache of bench.embedding_runner, so a rerun costs little.
A readable photo without an anonymized photo is reported (`missing_output`), never a crash.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench.datasets import dataset_root
from bench import chance, resultsio
from bench.anonymizer import unchanged_max_diff
from bench.boxes import box_mean_abs_diff
from bench.identities import dataset_labels_path, face_identities, read_labels
from bench.layout import Cell, DatasetLayout, shrink_files
from bench.detectors.base import Detection
from bench.embedding_runner import embed_many, used_weights
from bench.embeddings import OK, na
from bench.errors import BenchError, ImageLoadError
from bench.facetable import slug, weights_manifest
from bench.figures.leak_sheet import contact_sheet, retried_faces
from bench.guard import cell_guards
from bench.images import load_photo
from bench.leakscan import LeakScan
from bench.progress import progress
from bench.provenance import record
from bench.recognizers import build_recognizer, selected_recognizers
from bench.status import READABLE
from bench.verification import pair_distances, threshold_of

log = logging.getLogger(__name__)

UNCHANGED = "unchanged"
MISSING_OUTPUT = "missing_output"
LEAK_COLUMNS = [
    "photo", "face", "check", "x1", "y1", "x2", "y2", "found_by", "face_size", "mean_abs_diff",
    UNCHANGED, "recognizer", "metric", "distance", "threshold", "verified", "leak", "status",
    "band", "treatment", "verdict", "leak_vs_chance",
]


@dataclass
class FoundFace:
    """One face found in an anonymized photo, with the pixel comparison at its box."""

    photo: str
    face: str  # <slug(photo)>#<index>, unique in the cell
    det: Detection
    mean_abs_diff: float
    unchanged: bool
    alignable: bool


def options(cfg: DictConfig) -> dict:
    """The run's `leaks` block as plain values (they go into provenance)."""
    return OmegaConf.to_container(cfg.leaks, resolve=True)


def run(cfg: DictConfig) -> Cell:
    """Checks one cell's anonymized photos for faces that are still real; returns the cell."""
    cell = Cell.from_config(cfg)
    opts = options(cfg)
    manifest_path = DatasetLayout(cell.results_dir, cell.dataset).photos
    if not manifest_path.is_file():
        raise BenchError(f"{manifest_path} not found: run `python -m bench faces` for this configuration first")
    if not cell.pairs.is_file():
        raise BenchError(f"{cell.pairs} not found: run `python -m bench anonymize` for this cell first")
    manifest = pd.read_csv(manifest_path, keep_default_na=False)
    readable = sorted(manifest.photo[manifest.status.isin(READABLE)].astype(str))
    cell_status = unavailable_cell(pd.read_parquet(cell.pairs))
    if cell_status != OK:  # nothing was published, so nothing can leak (and nothing is "missing")
        readable = []

    scanner = LeakScan.from_config(cfg)
    detectors, unavailable = scanner.detectors, scanner.unavailable
    if not detectors:
        raise BenchError(f"no detector can run here: {unavailable}")

    rows, found, missing, per_photo, photo_sha = [], [], [], {}, {}
    for photo in progress(readable, "leaks: detect faces", unit="photo"):
        out = cell.photos / f"{slug(photo)}.png"
        if not out.is_file():
            missing.append(photo)
            per_photo[photo] = {"status": MISSING_OUTPUT}
            rows.append(photo_row(photo, MISSING_OUTPUT, f"{MISSING_OUTPUT}: the photo is readable but {out.name} was not written"))
            continue
        photo_sha[photo] = resultsio.sha256_file(out)
        faces, status, errors = check_photo(cfg, photo, out, scanner)
        found += faces
        per_photo[photo] = {"status": status, **({"detector_errors": errors} if errors else {})}
        if status == OK:
            rows += [unchanged_row(f, unchanged_max_diff(cfg)) for f in faces]
        else:  # the photo could not be checked at all: a row says why
            rows.append(photo_row(photo, "photo", status))

    recognizer_rows, recognizers, verified = judge(cfg, opts, cell, selected_recognizers(cfg), found)
    rows += recognizer_rows

    faces_info, chance_rows, verdicts, shrink_status = against_chance(cfg, opts, cell, found, verified)
    table = chance.with_verdicts(leak_table(rows), faces_info, verdicts, UNCHANGED)
    metrics = summarize(table, found, per_photo, missing, detectors, unavailable, recognizers,
                        {**opts, "unchanged_max_diff": unchanged_max_diff(cfg)})
    metrics["leaks"]["status"] = cell_status
    metrics["leaks"].update(chance.summary(opts, [f.unchanged for f in found], [f.alignable for f in found],
                                            faces_info, verdicts, shrink_status))
    guards = cell_guards(cell)
    for name, entry in metrics["leaks"]["per_recognizer"].items():
        mine = verdicts[verdicts.recognizer == name]
        entry["leaks_vs_chance"] = int(mine.leak.sum())
        entry["guard"] = name in guards
    metrics["leaks"]["guard"] = guard_summary(guards, faces_info, verdicts, chance.ChanceOptions.of(opts))
    chance_rows.insert(1, "guard", chance_rows.recognizer.isin(guards))
    resultsio.write_parquet(table, cell.leaks)
    write_chance_table(cell, chance_rows, opts, shrink_status, guards)
    shrink_csv = shrink_files(cell.results_dir)["csv"]
    resultsio.write_json(metrics, cell.metrics)
    contact_sheet(cell, readable, table, int(opts["sheet_tile"]), note="" if cell_status == OK else cell_status,
                  retried=retried_faces(cell))
    resultsio.write_json(record(
        cfg, "leaks", cell=str(cell.root), options=opts,
        detectors={name: {"weights": weights_manifest(det)} for name, det in detectors.items()},
        detectors_unavailable=unavailable, recognizers=recognizers,
        photos={photo: {"anonymized_sha256": sha} for photo, sha in photo_sha.items()},
        data_manifest={"path": str(manifest_path), "sha256": resultsio.sha256_file(manifest_path)},
        pairs={"path": str(cell.pairs), "sha256": resultsio.sha256_file(cell.pairs)},
        shrink={"path": str(shrink_csv), "status": shrink_status,
                **({"sha256": resultsio.sha256_file(shrink_csv)} if shrink_csv.is_file() else {})},
    ), cell.leaks_provenance)
    report(cell, metrics["leaks"])
    return cell


def unavailable_cell(pairs: pd.DataFrame) -> str:
    """"n/a: <reason>" when the anonymize stage wrote the cell as n/a (its generator cannot
    run here: every pair's status is the reason and no photo was written), else "ok"."""
    status = pairs["status"].astype(str) if "status" in pairs.columns else pd.Series([], dtype=str)
    if len(status) and status.str.startswith("n/a").all():
        return na(f"the cell is n/a ({status.iloc[0].removeprefix('n/a: ')}): no anonymized photos to check")
    return OK


# ---- detection ----------------------------------------------------------------------------

def check_photo(cfg, photo: str, out: Path, scanner: LeakScan) -> tuple[list[FoundFace], str, dict]:
    """(faces found in the anonymized photo, photo status, {detector: error}). Never raises
    on bad input. The faces are bench.leakscan's: every detector, upright and turned, merged."""
    max_pixels = int(cfg.faces.max_image_pixels)
    try:
        anonymized = load_photo(out, max_pixels).rgb
        original = load_photo(dataset_root(cfg.dataset) / photo, max_pixels).rgb
    except ImageLoadError as err:
        return [], na(f"photo unreadable: {err}"), {}
    if anonymized.shape != original.shape:
        return [], na(f"anonymized photo is {anonymized.shape[1]}x{anonymized.shape[0]}, "
                      f"the original {original.shape[1]}x{original.shape[0]}: no place to compare"), {}
    merged, errors = scanner.faces(anonymized, original)
    min_size = float(cfg.faces.min_face_size)
    faces = []
    for index, det in enumerate(merged):
        diff = box_mean_abs_diff(anonymized, original, det.box)
        faces.append(FoundFace(photo, f"{slug(photo)}#{index:03d}", det, diff,
                               bool(diff < unchanged_max_diff(cfg)), det.size >= min_size))
    return faces, OK, errors


# ---- recognizers -------------------------------------------------------------------------

def judge(cfg, opts, cell: Cell, names: list[str], faces: list[FoundFace]
          ) -> tuple[list[dict], dict[str, dict], dict[str, np.ndarray | str]]:
    """(rows of every recognizer, {recognizer: its summary}, {recognizer: bench.chance.cross_verified's
    matrix over `faces`, or its "n/a: ..." status}): each face's anonymized crop vs the original's,
    and vs every other face's original. The recognizers that can run embed together
    (bench.embedding_runner.embed_many: each photo decoded and each face aligned once for all of them)."""
    metric = str(opts["metric"])
    rows, summaries, ready = [], {}, []
    for name in names:
        recognizer = build_recognizer(name, cfg)
        threshold, why_not = threshold_of(recognizer, metric)
        if why_not is None:
            try:
                used_weights(recognizer)
            except Exception as err:  # noqa: BLE001 - missing weights or model: the recognizer is n/a
                why_not = na(str(err))
        summaries[name] = {"status": why_not or OK, "metric": metric, "threshold": threshold,
                           "weights": weights_manifest(recognizer)}
        if why_not is None:
            ready.append(recognizer)
    anonymized, original = {}, {}
    if ready:
        anonymized = embed_many(ready, face_table(faces, lambda f: f"{slug(f.photo)}.png"), cell.photos, cfg)
        original = embed_many(ready, face_table(faces, lambda f: f.photo), dataset_root(cfg.dataset), cfg)
    verified: dict[str, np.ndarray | str] = {}
    for name in names:
        summary = summaries[name]
        if name not in anonymized:
            rows += [recognizer_row(f, name, metric, summary["threshold"], np.nan, summary["status"]) for f in faces]
            verified[name] = summary["status"]
        else:
            mine, matrix = compare(cfg, name, metric, summary, faces, anonymized[name], original[name])
            rows += mine
            verified[name] = matrix if summary["status"] == OK else summary["status"]
    return rows, summaries, verified


def compare(cfg, name: str, metric: str, summary: dict, faces: list[FoundFace], anonymized: pd.DataFrame,
            original: pd.DataFrame) -> tuple[list[dict], np.ndarray]:
    """One recognizer's rows from its embeddings of the anonymized and the original faces, and
    its bench.chance.cross_verified matrix (every fake against every original); sets
    summary["status"] when no face could be compared for one reason (e.g. the model failed to load)."""
    threshold = summary["threshold"]
    distances = np.full(len(faces), np.nan)
    status = [OK] * len(faces)
    for i, face in enumerate(faces):
        if not face.alignable:
            status[i] = na(f"face too small to align: {face.det.size:.0f} px < faces.min_face_size="
                           f"{cfg.faces.min_face_size} (checked for unchanged pixels only)")
    for i, (a, o) in enumerate(zip(anonymized.itertuples(), original.itertuples())):
        if status[i] != OK:
            continue
        if a.status != OK:
            status[i] = na(f"anonymized face: {a.status.removeprefix('n/a: ')}")
        elif o.status != OK:
            status[i] = na(f"original face: {o.status.removeprefix('n/a: ')}")
        else:
            distances[i] = pair_distances(a.embedding[None], o.embedding[None], metric)[0]
    rows = [recognizer_row(f, name, metric, threshold, d, s) for f, d, s in zip(faces, distances, status)]
    compared = [s == OK for s in status]
    reasons = {s for s, f in zip(status, faces) if s != OK and f.alignable}
    if faces and any(f.alignable for f in faces) and not any(compared) and len(reasons) == 1:
        summary["status"] = reasons.pop()  # e.g. the model failed to load: nothing was compared
    dim = next((len(a.embedding) for a, ok in zip(anonymized.itertuples(), compared) if ok), 0)

    def stacked(table: pd.DataFrame) -> np.ndarray:
        return np.stack([np.asarray(e, np.float32) if ok else np.zeros(dim, np.float32)
                         for e, ok in zip(table.embedding, compared)]) if dim else np.zeros((len(faces), 0))
    matrix = chance.cross_verified(stacked(anonymized), stacked(original), np.asarray(compared, bool), metric,
                                   threshold) if dim else np.full((len(faces), len(faces)), np.nan)
    return rows, matrix


def face_table(faces: list[FoundFace], photo_of) -> pd.DataFrame:
    """The found faces as an embed_with input (landmarks of the anonymized photo's detector)."""
    return pd.DataFrame({
        "face_id": [f.face for f in faces],
        "photo": [photo_of(f) for f in faces],
        "landmarks": [np.asarray(f.det.landmarks, np.float32).reshape(-1).tolist() for f in faces],
        "aligned": [f.alignable for f in faces],
    }, columns=["face_id", "photo", "landmarks", "aligned"])


# ---- against chance (bench.chance) -------------------------------------------------------

def against_chance(cfg, opts, cell: Cell, faces: list[FoundFace], verified: dict[str, np.ndarray | str]
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, str]:
    """(one row per found face: face, photo, band, treatment, person; the leak table; per face x
    recognizer verdicts, bench.chance.face_verdicts; the shrink table's status)."""
    options = chance.ChanceOptions.of(opts)
    found = pd.DataFrame({
        "photo": [f.photo for f in faces], "face": [f.face for f in faces],
        **{k: [float(f.det.box[i]) for f in faces] for i, k in enumerate(("x1", "y1", "x2", "y2"))},
        "unchanged": [f.unchanged for f in faces],
    }, columns=["photo", "face", "x1", "y1", "x2", "y2", "unchanged"])
    inventory = pd.read_parquet(DatasetLayout(cell.results_dir, cell.dataset).faces)
    labels_path = dataset_labels_path(cfg.dataset)
    identities = face_identities(read_labels(labels_path), inventory) if labels_path and labels_path.is_file() else {}
    info = chance.attribute(found, inventory, pd.read_parquet(cell.pairs), identities, float(cfg.anonymize.redetect_iou))
    info["band"] = [options.bands.label(f.det.size) for f in faces]
    shrink, shrink_status = chance.read_shrink(shrink_files(cell.results_dir)["csv"])
    if shrink_status != OK:
        log.warning("leaks against chance: %s", shrink_status)
    table = chance.chance_table(info, verified, shrink, shrink_status, options)
    return info, table, chance.face_verdicts(info, verified, table), shrink_status


def guard_summary(guards: list[str], info: pd.DataFrame, verdicts: pd.DataFrame, options) -> dict:
    """Found faces verified as their owner (the plain check) by at least one guard, and by at
    least one recognizer that did not guard (transfer), per size band and in all: the closed
    loop's targets are read here (issue 24: faces of 40 px and more)."""
    role = verdicts.recognizer.isin(guards)
    by_guard = set(verdicts.face[verdicts.verified & role])
    by_other = set(verdicts.face[verdicts.verified & ~role])
    compared_guard = set(verdicts.face[role])
    compared_other = set(verdicts.face[~role])

    def counts(faces: set) -> dict:
        return {"faces": len(faces),
                "compared_by_guard": len(faces & compared_guard), "verified_by_guard": len(faces & by_guard),
                "compared_by_non_guard": len(faces & compared_other), "verified_by_non_guard": len(faces & by_other)}
    bands = info.band.to_numpy(dtype=object)
    return {"recognizers": list(guards), **counts(set(range(len(info)))),
            "per_band": {b: counts(set(np.flatnonzero(bands == b))) for b in options.bands.labels() if (bands == b).any()}}


def write_chance_table(cell: Cell, table: pd.DataFrame, opts: dict, shrink_status: str, guards: list[str]) -> None:
    resultsio.write_csv(chance.rounded(table), cell.leaks_chance_csv)
    notes = [
        f"guard: the recognizer guarded this cell's fakes (bench.guard: {', '.join(guards)}); the others judge "
        "them unseen (transfer)." if guards else "guard: none (the open loop: no recognizer saw the fakes before).",
        f"Cell {cell.generator}/{cell.pool}/{cell.root.name} of {cell.dataset}. One row per recognizer x "
        "face-size band (px, the face box's shorter side) x treatment. owner_verified of faces_compared: fakes "
        "verified as their own original; chance_rate: the share of impostor_pairs (the fake of one face against "
        "the original of another person's face of the same band) verified. p_value: one-sided Fisher's exact "
        f"test of owner_verified/faces_compared against impostor_verified/impostor_pairs; verdict `{chance.ABOVE_CHANCE}` where p < alpha = "
        f"{float(opts['alpha']):g}. With fewer than {int(opts['min_impostor_pairs'])} impostor pairs the verified "
        "faces count as leaks and are flagged. shrink: whether the recognizer tells people apart on the "
        "identities set shrunk to the band's size (one-sided Fisher's exact test, genuine vs impostor pairs); "
        f"`{chance.INDISTINGUISHABLE}` makes the faces `{chance.TOO_SMALL}`, neither leak nor safe. "
        "Pairs sharing a face are not independent: p-values are approximate.",
    ]
    if shrink_status != OK:
        notes.append(f"shrink: {shrink_status}")
    resultsio.write_text(chance.chance_markdown(table, "Leaks against chance", notes), cell.leaks_chance_md)


# ---- rows and metrics --------------------------------------------------------------------

def base_row(face: FoundFace) -> dict:
    x1, y1, x2, y2 = (round(float(v), 2) for v in face.det.box)
    return {"photo": face.photo, "face": face.face, "x1": x1, "y1": y1, "x2": x2, "y2": y2,
            "found_by": ",".join(face.det.found_by), "face_size": round(face.det.size, 2),
            "mean_abs_diff": round(face.mean_abs_diff, 4), UNCHANGED: face.unchanged}


def unchanged_row(face: FoundFace, max_diff: float) -> dict:
    return {**base_row(face), "check": UNCHANGED, "recognizer": "", "metric": "mean_abs_diff",
            "distance": round(face.mean_abs_diff, 4), "threshold": max_diff,
            "verified": face.unchanged, "leak": face.unchanged,
            "status": OK if np.isfinite(face.mean_abs_diff) else na("the box lies outside the photo")}


def recognizer_row(face: FoundFace, name: str, metric: str, threshold: float, distance: float, status: str) -> dict:
    verified = bool(distance <= threshold) if status == OK else None
    return {**base_row(face), "check": "recognizer", "recognizer": name, "metric": metric,
            "distance": float(distance), "threshold": float(threshold), "verified": verified,
            "leak": verified, "status": status}


def photo_row(photo: str, check: str, status: str) -> dict:
    """A row for a photo that has no faces to check: no output (check missing_output), or
    an output that cannot be compared with its original (check photo)."""
    return {"photo": photo, "face": "", "check": check, "found_by": "", "recognizer": "", "metric": "",
            "status": status}


def leak_table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=LEAK_COLUMNS)
    for column in ("photo", "face", "check", "found_by", "recognizer", "metric", "status"):
        table[column] = table[column].fillna("").astype(str)
    for column in ("x1", "y1", "x2", "y2", "face_size", "mean_abs_diff", "distance", "threshold"):
        table[column] = table[column].astype(float)
    for column in (UNCHANGED, "verified", "leak"):
        table[column] = table[column].astype("boolean")
    return table.sort_values(["photo", "face", "check", "recognizer"], kind="stable").reset_index(drop=True)


def summarize(table, faces, per_photo, missing, detectors, unavailable, recognizers, opts) -> dict:
    """metrics.json: {"leaks": ...}, every count an int, every key sorted when written."""
    checked = table[table.check == "recognizer"]
    leaking = set(table.face[table.leak.fillna(False).astype(bool)])
    per_recognizer = {}
    for name, info in recognizers.items():
        mine = checked[checked.recognizer == name]
        compared = mine[mine.status == OK]
        per_recognizer[name] = {"leaks": int(compared.verified.astype(bool).sum()), "faces_compared": len(compared),
                                "status": info["status"], "metric": info["metric"],
                                "threshold": info["threshold"] if np.isfinite(info["threshold"]) else None}
    for photo, entry in per_photo.items():
        mine = [f for f in faces if f.photo == photo]
        if entry["status"] != OK:
            continue
        photo_rows = checked[checked.photo == photo]
        entry.update(
            faces_found=len(mine), unchanged=sum(f.unchanged for f in mine),
            leaking_faces=sum(f.face in leaking for f in mine),
            per_recognizer={name: int(photo_rows[(photo_rows.recognizer == name) & (photo_rows.status == OK)]
                                      .verified.astype(bool).sum())
                            for name, info in recognizers.items() if info["status"] == OK},
        )
    return {"leaks": {
        "faces_found": len(faces),
        "unchanged_faces": sum(f.unchanged for f in faces),
        "leaking_faces": len(leaking),
        "too_small_to_embed": sum(not f.alignable for f in faces),
        "per_recognizer": per_recognizer,
        "per_photo": per_photo,
        "missing_output": sorted(missing),
        "detectors": sorted(detectors),
        "detectors_not_run": dict(sorted(unavailable.items())),
        "unchanged_max_diff": float(opts["unchanged_max_diff"]),  # the run's, for the reader
    }}


def report(cell: Cell, leaks: dict) -> None:
    ran = {n: r["leaks"] for n, r in leaks["per_recognizer"].items() if r["status"] == OK}
    per_recognizer = " ".join(f"{n}={k}" for n, k in ran.items()) or "(none ran)"
    log.info("leaks %s/%s/%s-%s: %d faces found by %s, %d unchanged, leaks per recognizer: %s "
             "(%d n/a), %d photo(s) without output -> %s",
             cell.generator, cell.pool, cell.metric, cell.query, leaks["faces_found"],
             "+".join(leaks["detectors"]), leaks["unchanged_faces"], per_recognizer,
             len(leaks["per_recognizer"]) - len(ran), len(leaks["missing_output"]), cell.metrics)
    if leaks["leaking_faces"]:
        log.error("%d face(s) LEAK in the anonymized photos (%d unchanged; verified as the original: %s): see %s and %s",
                  leaks["leaking_faces"], leaks["unchanged_faces"], per_recognizer, cell.leaks, cell.leak_sheet)
    if leaks["missing_output"]:
        log.warning("%d readable photo(s) have no anonymized photo: %s", len(leaks["missing_output"]),
                    ", ".join(leaks["missing_output"]))
