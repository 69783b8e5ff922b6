"""Provenance written beside every result table: the resolved config, the weights and data
it read (with sha256), the seed and the library versions. A number in a table is only as
good as this record of the run that produced it."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

from omegaconf import DictConfig, OmegaConf

LIBRARIES = (
    "numpy", "pandas", "pyarrow", "pillow", "opencv-contrib-python-headless", "onnxruntime",
    "torch", "torchmetrics", "insightface", "deepface", "dlib-bin", "hydra-core", "dvc",
)


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def record(cfg: DictConfig, stage: str, **extra) -> dict:
    """The provenance dict for one stage run; `extra` holds weights, data manifests, counts."""
    return {
        "stage": stage,
        "command": " ".join(sys.argv),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "seed": int(cfg.get("seed", 0)),
        "libraries": library_versions(),
        **extra,
    }
