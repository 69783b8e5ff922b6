"""Face detectors: each returns boxes, scores and the five ArcFace landmarks.

`build_detector(name, cfg)` is the way a stage gets a detector other than the run's own
`cfg.detector` (the manifold's, the audit's, the leak check's): conf/detector/<name>.yaml
composed against the run's config, so `paths.*` overrides apply to it too.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf


def build_detector(name: str, cfg: DictConfig):
    """The Detector `name` configured for this run; loads no weights (see prepare()).

    Raises:
        UnknownComponent: no conf/detector/<name>.yaml.
    """
    from bench.recognizers import component_config
    from bench.registry import DETECTORS

    return DETECTORS.build(OmegaConf.create(component_config("detector", str(name), cfg)), name=str(name))
