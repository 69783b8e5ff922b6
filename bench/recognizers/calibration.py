"""Command `calibrate`: verification thresholds for recognizers that have no published ones
(stand-in networks such as arcface_mbf, mobilefacenet, facenet512_opencv).

Reads:  the identities folder (config `identities`: photos + labels.csv), the recognizer
        `recognizer=NAME`, else those in `recognizers` whose threshold_source is `calibration:<file>`.
Writes: conf/calibration/<file> (or `calibrate.out_dir`), which those configs read: per metric
        the threshold of highest balanced accuracy (mean of TAR and 1 - FAR) over every
        genuine and impostor pair of labelled photos (one face per photo, the largest), plus
        the EER threshold, the rates at the chosen threshold, the pair counts, the labels'
        and weights' sha256, the detector and the crop. Balanced, because impostor pairs
        outnumber genuine ones about 11 to 1 here and plain accuracy would favour "reject".

Faces come from the faces stage run on the identities folder (as `baseline` runs it);
distances are deepface's (bench.verification.pair_distances).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import resultsio
from bench.embedding_runner import embed_with, used_weights
from bench.embeddings import OK
from bench.errors import BenchError
from bench.recognizers import build_recognizer, selected_recognizers
from bench.recognizers.base import METRICS
from bench.recognizers.thresholds import CALIBRATION_DIR

log = logging.getLogger(__name__)
METHOD = ("threshold of highest balanced accuracy ((TAR + 1 - FAR) / 2) over every genuine/impostor pair "
          "of the labelled photos, one face (the largest) per photo; the middle of the first range of "
          "thresholds that reach it (for separable pairs: midway between the largest genuine and the "
          "smallest impostor distance)")


def calibration_file(recognizer) -> str | None:
    kind, _, file = str(getattr(recognizer, "threshold_source", "") or "").partition(":")
    return file if kind == "calibration" and file else None


def run(cfg: DictConfig) -> dict[str, Path]:
    """Calibrates every selected recognizer whose thresholds come from a calibration file."""
    from bench import inventory
    from bench.identities import identities_config, one_face_per_photo, read_labels

    chosen_one = cfg.get("choices", {}).get("recognizer")  # `recognizer=NAME` narrows it to one
    targets = {n: build_recognizer(n, cfg) for n in ([chosen_one] if chosen_one else selected_recognizers(cfg))}
    targets = {n: r for n, r in targets.items() if calibration_file(r)}
    if not targets:
        raise BenchError("none of the selected recognizers has threshold_source calibration:<file>; "
                         "pick one with recognizer=arcface_mbf, or several with recognizers=[arcface_mbf,mobilefacenet]")
    labels_path = Path(str(cfg.identities.path)).expanduser() / str(cfg.identities.labels)
    labels = read_labels(labels_path)
    dataset_cfg = identities_config(cfg, labels)
    faces_out = inventory.build(dataset_cfg)  # the faces stage's work, on the identities set
    faces_table = pd.read_parquet(faces_out.faces)
    chosen, _ = one_face_per_photo(labels, faces_table)
    chosen = chosen[chosen.face_id != ""].reset_index(drop=True)
    subset = faces_table.set_index("face_id").loc[chosen.face_id].reset_index()
    out_dir = Path(str(cfg.calibrate.out_dir)) if cfg.calibrate.get("out_dir") else CALIBRATION_DIR
    written = {}
    for name, recognizer in targets.items():
        table = embed_with(recognizer, subset, Path(str(cfg.identities.path)).expanduser(), dataset_cfg)
        bad = table[table.status != OK]
        if len(bad) == len(table):
            log.error("%s: nothing embedded (%s); no calibration written", name, bad.status.iloc[0] if len(bad) else "no faces")
            continue
        fit = fit_recognizer(table, chosen.identity.to_numpy())
        path = out_dir / calibration_file(recognizer)
        weights = used_weights(recognizer)
        resultsio.write_json({
            "recognizer": name,
            "thresholds": fit["thresholds"],
            "method": METHOD,
            **{k: v for k, v in fit.items() if k != "thresholds"},
            "photos": {"labelled": len(labels), "with_face": len(chosen), "embedded": int((table.status == OK).sum())},
            "data": {"labels": str(labels_path), "labels_sha256": resultsio.sha256_file(labels_path)},
            "weights": {"path": str(weights), "sha256": resultsio.sha256_file(weights)},
            "detector": str(cfg.choices.get("detector", "")),
            "crop": {"input_size": recognizer.input_size, "margin": recognizer.margin},
            "command": " ".join(["python -m bench", *sys.argv[1:]]) if sys.argv else "",
        }, path)
        log.info("%s: %s -> %s", name, {m: round(t, 4) for m, t in fit["thresholds"].items()}, path)
        written[name] = path
    return written


def fit_recognizer(table: pd.DataFrame, identities: np.ndarray) -> dict:
    """Thresholds and rates over every pair of embedded faces (`table` rows align with `identities`)."""
    from bench.verification import pair_distances, rates_at

    ok = (table.status == OK).to_numpy()
    matrix = np.stack([np.asarray(e, dtype=np.float64) for e in table.embedding[ok]])
    ids = np.asarray(identities)[ok]
    i, j = np.triu_indices(len(ids), k=1)
    same = ids[i] == ids[j]
    if same.all() or not same.any():
        raise BenchError("calibration needs both genuine and impostor pairs")
    out = {"thresholds": {}, "eer": {}, "at_threshold": {},
           "pairs": {"genuine": int(same.sum()), "impostor": int((~same).sum())}}
    for metric in METRICS:
        d = pair_distances(matrix[i], matrix[j], metric)
        threshold, balanced = balanced_threshold(d, same)
        rates = rates_at(d, same, threshold)
        out["thresholds"][metric] = round(threshold, 6)
        out["at_threshold"][metric] = {"balanced_accuracy": round(balanced, 4), "accuracy": round(rates.accuracy, 4),
                                       "tar": round(rates.tar, 4), "far": round(rates.far, 4)}
        eer_threshold, eer = equal_error(d, same)
        out["eer"][metric] = {"threshold": round(eer_threshold, 6), "rate": round(eer, 4)}
    return out


def candidates(d: np.ndarray) -> np.ndarray:
    """Below every distance, each midpoint between distinct distances, and the largest."""
    values = np.unique(d)
    return np.concatenate([[np.nextafter(values[0], -np.inf)], (values[:-1] + values[1:]) / 2, [values[-1]]])


def accept_rates(d: np.ndarray, same: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(TAR, FAR) of `distance <= t` for every t."""
    genuine, impostor = np.sort(d[same]), np.sort(d[~same])
    tar = np.searchsorted(genuine, thresholds, side="right") / len(genuine)
    far = np.searchsorted(impostor, thresholds, side="right") / len(impostor)
    return tar, far


def balanced_threshold(d: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, balanced accuracy) maximising (TAR + 1 - FAR) / 2.

    Every threshold in a run of consecutive best candidates classifies the pairs alike; the
    middle of the first such run is taken, not its edge, so that a separable set (all
    genuine distances below all impostor ones) gets the midpoint of the gap between them.
    """
    t = candidates(np.asarray(d, dtype=np.float64))
    tar, far = accept_rates(np.asarray(d, dtype=np.float64), np.asarray(same, bool), t)
    score = (tar + 1.0 - far) / 2.0
    first = int(np.argmax(score))
    last = first
    while last + 1 < len(t) and score[last + 1] == score[first]:
        last += 1
    return float((t[first] + t[last]) / 2.0), float(score[first])


def equal_error(d: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """(threshold, rate) where FAR and FRR = 1 - TAR are closest; rate is their mean there."""
    t = candidates(np.asarray(d, dtype=np.float64))
    tar, far = accept_rates(np.asarray(d, dtype=np.float64), np.asarray(same, bool), t)
    best = int(np.argmin(np.abs(far - (1.0 - tar))))
    return float(t[best]), float((far[best] + 1.0 - tar[best]) / 2.0)
