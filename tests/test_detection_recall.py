"""Detection recall against dlib's hand-made boxes (needs ../shared/data/groups)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.benchmarks import detection_recall


def test_greedy_matching_counts_each_box_once():
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    found = np.array([[1, 1, 11, 11], [0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    assert detection_recall.matched(truth, found, 0.4) == 1
    assert detection_recall.matched(truth, found[:0], 0.4) == 0


@pytest.mark.shared
def test_annotations_hold_43_boxes_on_9_photos(shared):
    boxes = detection_recall.read_boxes(shared("data", "groups"))
    assert len(boxes) == 9 and sum(len(b) for b in boxes.values()) == 43
    assert all(p.is_file() for p in boxes)


@pytest.mark.slow
@pytest.mark.shared
def test_default_detector_recall_is_at_least_0_9(cfg_factory, shared):
    shared("data", "groups", "training.xml")
    cfg = cfg_factory()
    table = detection_recall.run(cfg_factory(f"recall.detectors=[{cfg.choices.detector},dlib_hog]"))
    row = table.set_index("detector").loc[cfg.choices.detector]
    assert row.status == "ok" and row.recall >= 0.9
    assert (pd.read_csv(f"{cfg.results_dir}/benchmarks/detection_recall.csv").detector == table.detector).all()
