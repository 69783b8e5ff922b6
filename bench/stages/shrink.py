"""Stage `shrink`: can each recognizer still tell people apart when their faces are small?

The identities set (conf/config.yaml `identities`; one face per photo, as the baseline stage
chooses it) is shrunk to each face-size band of `leaks.size_bands` (bench.chance.SizeBands:
a closed band's middle, the open top band's lower edge, in px of the face box's shorter side):
each face's aligned crop, at the recognizer's input size, is downscaled with cv2.INTER_AREA
until its face box is that many pixels and scaled back with cv2.INTER_LINEAR
(bench.chance.shrink_crop), then embedded (the embedding cache of bench.embedding_runner:
each distinct crop once). Every pair of photos is compared at the recognizer's threshold for
`leaks.metric`; per recognizer and band the table gives the genuine and impostor pairs
verified and a one-sided Fisher's exact test of "genuine pairs are verified more often" at
`leaks.alpha`: p >= alpha is "indistinguishable", and the leaks stage reports a cell's faces of
that band as "too small to tell" for that recognizer. A row "full" (crops not shrunk) is the
reference.

Without the identities set every row says "n/a: identities set not found at <path>" and the
stage succeeds (as the baseline stage). A recognizer that cannot run here has "n/a: <why>" rows.

Reads:  <results_dir>/<identities.name>/faces.parquet (the baseline stage's inventory of the
        identities set), <identities.path>/<identities.labels> and the photos it lists.
Writes (bench.layout.shrink_files): <results_dir>/tables/shrink.csv, shrink.md,
        shrink.provenance.json.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import chance, resultsio
from bench.align import similarity_transform
from bench.embedding_runner import EmbeddingCache, cache_folder, crop_faces, fill, photo_chunks
from bench.embeddings import OK, na
from bench.errors import BenchError
from bench.footnotes import markdown_with_footnotes
from bench.identities import missing_identities, one_face_per_photo, read_labels
from bench.layout import BaselineOutputs, shrink_files
from bench.provenance import record
from bench.recognizers import build_recognizer, selected_recognizers
from bench.verification import pair_distances, threshold_of

log = logging.getLogger(__name__)

FULL = "full"  # the reference row: the crops as they are


def run(cfg: DictConfig) -> dict[str, Path]:
    """Writes the shrink table for every selected recognizer and band; returns its files.

    Raises:
        BenchError: the identities set is there but the baseline stage has not listed its faces.
    """
    files = shrink_files(cfg.results_dir)
    bands = chance.SizeBands.of(cfg.leaks.size_bands)
    alpha, metric = float(cfg.leaks.alpha), str(cfg.leaks.metric)
    folder = Path(str(cfg.identities.path)).expanduser()
    labels_path = folder / str(cfg.identities.labels)
    missing = missing_identities(folder, labels_path)
    rows = []
    if missing is not None:
        for name in selected_recognizers(cfg):
            threshold = threshold_of(build_recognizer(name, cfg), metric)[0]
            rows += [na_row(name, band, size, metric, threshold, alpha, missing) for band, size in sizes(bands)]
        return write(cfg, files, rows, missing, {})
    faces_path = BaselineOutputs.from_config(cfg).dataset.faces
    if not faces_path.is_file():
        raise BenchError(f"{faces_path} not found: run `python -m bench baseline` first (it lists the identities set's faces)")
    labels = read_labels(labels_path)
    chosen, _ = one_face_per_photo(labels, pd.read_parquet(faces_path))
    chosen = chosen[chosen.face_id != ""].reset_index(drop=True)
    faces = pd.read_parquet(faces_path).set_index("face_id").loc[chosen.face_id].reset_index()
    names = selected_recognizers(cfg)
    # building a recognizer loads nothing: its geometry only; each is built again (and loaded)
    # in turn below, and dropped before the next, so one model is in memory at a time
    geometries = {(r.input_size, r.margin) for r in (build_recognizer(name, cfg) for name in names)}
    crops = aligned_crops(cfg, faces, folder, geometries)
    for name in names:
        rows += recognizer_rows(cfg, build_recognizer(name, cfg), faces, chosen.identity.to_numpy(), crops, bands,
                                metric, alpha)
    data = {"labels": str(labels_path), "labels_sha256": resultsio.sha256_file(labels_path),
            "faces": str(faces_path), "faces_sha256": resultsio.sha256_file(faces_path), "photos_with_face": len(chosen)}
    return write(cfg, files, rows, OK, data)


def sizes(bands: chance.SizeBands) -> list[tuple[str, float]]:
    """(band, px) of every row: the full-size reference, then each band from the largest."""
    return [(FULL, float("nan")), *sorted(bands.sizes().items(), key=lambda kv: -kv[1])]


def na_row(name: str, band: str, size: float, metric: str, threshold: float, alpha: float, reason: str) -> dict:
    return {"recognizer": name, "band": band, "size_px": size, "metric": metric, "threshold": threshold,
            "status": na(reason), "alpha": alpha, "verdict": na(reason)}


def aligned_crops(cfg: DictConfig, faces: pd.DataFrame, photo_root: Path, geometries) -> dict[tuple, dict[int, np.ndarray]]:
    """{(input_size, margin): {row of `faces`: aligned RGB crop}} at every geometry, each photo
    decoded once for all of them (bench.embedding_runner.crop_faces); rows that cannot be
    aligned are absent."""
    geometries = sorted(geometries)
    table = faces.assign(aligned=True)
    crops: dict = {g: {} for g in geometries}
    for chunk in photo_chunks(table, len(table) + 1):
        found, _ = crop_faces(table, chunk, photo_root, geometries, cfg)
        for g in geometries:
            crops[g].update(found[g])
    return crops


def recognizer_rows(cfg: DictConfig, recognizer, faces: pd.DataFrame, identity: np.ndarray,
                    crops: dict[tuple, dict[int, np.ndarray]], bands: chance.SizeBands, metric: str,
                    alpha: float) -> list[dict]:
    """One recognizer's rows: its faces' aligned crops (`crops`, aligned_crops' at every
    geometry) shrunk to each band, embedded, every pair compared."""
    name = recognizer.name
    threshold, why_not = threshold_of(recognizer, metric)
    if why_not is None:
        try:
            cache = EmbeddingCache(cache_folder(recognizer, cfg))  # raises when the weights are absent
        except Exception as err:  # noqa: BLE001 - missing weights or model: the recognizer is n/a
            why_not = na(str(err))
    if why_not is not None:
        return [na_row(name, band, size, metric, threshold, alpha, why_not) for band, size in sizes(bands)]
    geometry = (recognizer.input_size, recognizer.margin)
    crops = crops[geometry]
    box = {row: float(faces.face_size.iloc[row]) * chance.alignment_scale(similarity_transform(
        np.asarray(faces.landmarks.iloc[row], np.float32).reshape(5, 2), *geometry)) for row in crops}
    rows = []
    for band, size in sizes(bands):
        shrunk = {row: crop if band == FULL else chance.shrink_crop(crop, box[row], size) for row, crop in crops.items()}
        status = [na("not aligned")] * len(faces)
        vectors = [np.zeros(0, np.float32)] * len(faces)
        fill(recognizer, shrunk, cache, status, vectors)
        ok = np.flatnonzero([s == OK for s in status])
        if len(ok) < 2:
            reasons = sorted({s for s in status if s != OK})
            rows.append(na_row(name, band, size, metric, threshold, alpha, reasons[0] if reasons else "fewer than two faces"))
            continue
        matrix = np.stack([vectors[k] for k in ok])
        i, j = np.triu_indices(len(ok), k=1)
        d = pair_distances(matrix[i], matrix[j], metric)
        rows.append(chance.shrink_rows(name, band, size, metric, threshold, d, identity[ok][i] == identity[ok][j],
                                       alpha, len(ok)))
        log.info("shrink %s at %s px: genuine %s, impostor %s -> %s", name, band, rows[-1]["genuine_rate"],
                 rows[-1]["impostor_rate"], rows[-1]["verdict"])
    return rows


def write(cfg: DictConfig, files: dict[str, Path], rows: list[dict], status: str, data: dict) -> dict[str, Path]:
    counts = ("faces", "genuine_pairs", "genuine_verified", "impostor_pairs", "impostor_verified")
    table = chance.rounded(pd.DataFrame(rows, columns=chance.SHRINK_COLUMNS)).astype({c: "Int64" for c in counts})
    resultsio.write_csv(table, files["csv"])
    shown = table.astype(object).where(table.notna(), "")
    lines = ["**Can a recognizer tell people apart at each face size? The identities set shrunk to each band**", "",
             markdown_with_footnotes(shown, index=False, tablefmt="pipe", disable_numparse=True), "",
             f"size_px: the face box's shorter side the aligned crops were shrunk to (INTER_AREA down, INTER_LINEAR "
             f"back up); {FULL}: not shrunk. Pairs: every two photos with a face, verified at the recognizer's "
             f"{cfg.leaks.metric} threshold. p_value: one-sided Fisher's exact test, genuine vs impostor pairs "
             f"verified; `{chance.INDISTINGUISHABLE}` (p >= alpha) makes a cell's faces of that band "
             f"`{chance.TOO_SMALL}` in the leak table."]
    resultsio.write_text("\n".join(lines) + "\n", files["markdown"])
    resultsio.write_json(record(cfg, "shrink", status=status, data_manifest=data,
                                options={"size_bands": list(cfg.leaks.size_bands), "alpha": float(cfg.leaks.alpha),
                                         "metric": str(cfg.leaks.metric)}), files["provenance"])
    log.info("shrink: %d rows (%s) -> %s", len(table), status, files["csv"])
    return files
