"""Benchmark: detection recall and time per photo of every configured detector on the nine
PASCAL VOC photos of ../shared/data/groups that dlib's hand-made boxes cover
(training.xml + testing.xml, 43 faces). A hand-made box counts as found when a detection
overlaps it with IoU >= `iou` (0.4: detectors draw looser boxes than dlib's annotators).
`devset_faces` is the number of faces each detector finds on every photo of that folder (the
devset: 14 photos, including crowds that no one annotated): more is better only while the
extra faces are real, so read it beside `detections` on the annotated nine.

Writes <results_dir>/benchmarks/detection_recall.{csv,md}. Run:
    python -m bench recall [recall.iou=0.5]
"""
from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench import resultsio
from bench.boxes import greedy_match
from bench.datasets import list_photos
from bench.errors import BenchError, DatasetNotFound
from bench.images import load_photo
from bench.progress import progress
from bench.registry import DETECTORS

log = logging.getLogger(__name__)
ANNOTATIONS = ("training.xml", "testing.xml")
FILE_PREFIX = "dlib_"  # ../shared renamed dlib's 2008_001322.jpg to dlib_2008_001322.jpg


def read_boxes(groups_dir: Path) -> dict[Path, np.ndarray]:
    """photo path -> (N, 4) hand-made boxes as x1, y1, x2, y2."""
    boxes = {}
    for name in ANNOTATIONS:
        for image in ET.parse(groups_dir / name).getroot().iter("image"):
            rows = [
                [float(b.get("left")), float(b.get("top")),
                 float(b.get("left")) + float(b.get("width")), float(b.get("top")) + float(b.get("height"))]
                for b in image.iter("box") if b.get("ignore", "0") != "1"
            ]
            boxes[groups_dir / f"{FILE_PREFIX}{image.get('file')}"] = np.array(rows, dtype=np.float32).reshape(-1, 4)
    return boxes


def matched(truth: np.ndarray, found: np.ndarray, iou: float) -> int:
    """Number of hand-made boxes matched one-to-one (greedy by IoU) with IoU >= iou."""
    return len(greedy_match(truth, found, iou))


def evaluate_detector(name: str, truth: dict[Path, np.ndarray], iou: float, photos: list[Path] = ()) -> dict:
    """One table row: recall, detections and seconds per photo on the annotated photos
    (`truth`), and `devset_faces`, the faces found on `photos` and the annotated ones together
    (each photo detected once)."""
    detector = DETECTORS.build(name)
    try:
        detector.prepare()
    except BenchError as err:
        return {"detector": name, "status": f"n/a: {err}"}
    hits = total = detections = devset_faces = 0
    seconds = []
    for path in progress(sorted({*truth, *photos}), f"{name}: detect faces", unit="photo"):
        bgr = load_photo(path).bgr
        start = time.perf_counter()
        found = detector.detect(bgr)
        elapsed = time.perf_counter() - start
        devset_faces += len(found)
        if path not in truth:
            continue
        seconds.append(elapsed)
        found_boxes = np.array([d.box for d in found], dtype=np.float32).reshape(-1, 4)
        hits += matched(truth[path], found_boxes, iou)
        total += len(truth[path])
        detections += len(found)
    return {"detector": name, "status": "ok", "photos": len(truth), "boxes": total, "found": hits,
            "recall": round(hits / total, 4), "detections": detections,
            "seconds_per_photo": round(float(np.mean(seconds)), 4),
            "devset_photos": len({*truth, *photos}), "devset_faces": devset_faces}


def run(cfg: DictConfig) -> pd.DataFrame:
    groups_dir = Path(str(cfg.paths.shared)) / "data" / "groups"
    if not all((groups_dir / name).is_file() for name in ANNOTATIONS):
        raise DatasetNotFound(f"dlib's hand-made boxes not found in {groups_dir} (set BENCH_SHARED)")
    truth = read_boxes(groups_dir)
    devset, _ = list_photos(OmegaConf.create({"name": "groups", "path": str(groups_dir), "files": None}),
                            cfg.faces.image_extensions)
    iou = float(cfg.recall.iou)
    photos = [ref.path for ref in devset]
    names = [str(n) for n in cfg.recall.detectors] if cfg.recall.get("detectors") else DETECTORS.names()
    table = pd.DataFrame([evaluate_detector(name, truth, iou, photos) for name in names])
    out = Path(cfg.results_dir) / "benchmarks"
    resultsio.write_csv(table, out / "detection_recall.csv")
    resultsio.write_text(
        f"# Detection recall on dlib's hand-made boxes (IoU >= {iou})\n\n"
        f"recall, detections, seconds_per_photo: the {len(truth)} annotated photos; devset_faces: faces "
        f"found on all {len({*truth, *photos})} photos of {groups_dir.name}/.\n\n"
        + table.to_markdown(index=False) + "\n",
        out / "detection_recall.md",
    )
    print(table.to_string(index=False))
    return table
