"""Benchmark: detection recall and time per photo of every configured detector on the nine
PASCAL VOC photos of ../shared/data/groups that dlib's hand-made boxes cover
(training.xml + testing.xml, 43 faces). A hand-made box counts as found when a detection
overlaps it with IoU >= `iou` (0.4: detectors draw looser boxes than dlib's annotators).

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
from omegaconf import DictConfig

from bench import resultsio
from bench.boxes import greedy_match
from bench.errors import BenchError, DatasetNotFound
from bench.images import load_photo
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


def evaluate_detector(name: str, truth: dict[Path, np.ndarray], iou: float) -> dict:
    detector = DETECTORS.build(name)
    try:
        detector.prepare()
    except BenchError as err:
        return {"detector": name, "status": f"n/a: {err}"}
    hits = total = detections = 0
    seconds = []
    for path, boxes in sorted(truth.items()):
        bgr = load_photo(path).bgr
        start = time.perf_counter()
        found = detector.detect(bgr)
        seconds.append(time.perf_counter() - start)
        found_boxes = np.array([d.box for d in found], dtype=np.float32).reshape(-1, 4)
        hits += matched(boxes, found_boxes, iou)
        total += len(boxes)
        detections += len(found)
    return {"detector": name, "status": "ok", "photos": len(truth), "boxes": total, "found": hits,
            "recall": round(hits / total, 4), "detections": detections,
            "seconds_per_photo": round(float(np.mean(seconds)), 4)}


def run(cfg: DictConfig) -> pd.DataFrame:
    groups_dir = Path(str(cfg.paths.shared)) / "data" / "groups"
    if not all((groups_dir / name).is_file() for name in ANNOTATIONS):
        raise DatasetNotFound(f"dlib's hand-made boxes not found in {groups_dir} (set BENCH_SHARED)")
    truth = read_boxes(groups_dir)
    iou = float(cfg.recall.iou)
    table = pd.DataFrame([evaluate_detector(name, truth, iou) for name in DETECTORS.names()])
    out = Path(cfg.results_dir) / "benchmarks"
    resultsio.write_csv(table, out / "detection_recall.csv")
    resultsio.write_text(
        f"# Detection recall on dlib's hand-made boxes (IoU >= {iou})\n\n" + table.to_markdown(index=False) + "\n",
        out / "detection_recall.md",
    )
    print(table.to_string(index=False))
    return table
