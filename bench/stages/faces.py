"""Stage `faces`: the face inventory of a dataset.

Reads:  the dataset's photos (conf/dataset/), the detector's weights (conf/detector/).
Writes: <results_dir>/<dataset>/faces.parquet   one row per detected face
        <results_dir>/<dataset>/photos.csv      one row per file (the data manifest)
        <results_dir>/<dataset>/failures.csv    photo or face, stage, reason
        <results_dir>/<dataset>/crops/<face_id>.png   aligned crops (ArcFace template)
        <results_dir>/<dataset>/faces.provenance.json
Detections are cached per photo content under <results_dir>/cache/detections/, so a rerun
(or another dataset holding the same photo) resumes instead of detecting again.

The work is bench.inventory.build (the baseline stage and the calibration build the
identities set's inventory with it too); its names are re-exported here, this stage's API.
"""
from __future__ import annotations

from omegaconf import DictConfig

from bench.facetable import content_hash  # noqa: F401 (public API of the stage)
from bench.inventory import PHOTO_COLUMNS, build, detect_photos, inventory_photo  # noqa: F401
from bench.layout import DatasetLayout


def outputs(cfg: DictConfig) -> DatasetLayout:
    return DatasetLayout.from_config(cfg)


def run(cfg: DictConfig) -> DatasetLayout:
    """Detects, aligns and lists every face of `cfg.dataset`; returns where it wrote
    (bench.inventory.build)."""
    return build(cfg)


__all__ = ["run", "outputs", "content_hash"]
