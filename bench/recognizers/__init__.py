"""Face recognizers: aligned crop in, embedding out, with per-metric verification thresholds.

`build_recognizer(name, cfg)` is the one way stages get a recognizer: it composes
conf/recognizer/<name>.yaml against the run's config (so `paths.*` overrides apply) plus
any `recognizer_overrides.<name>.*` from the command line, e.g.
`python -m bench embed +recognizer_overrides.dlib.thresholds.cosine=0.06`.
"""
from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bench.registry import RECOGNIZERS, component_config


def selected_recognizers(cfg: DictConfig) -> list[str]:
    """The recognizers a run uses: config `recognizers`, else every conf/recognizer/*.yaml."""
    names = cfg.get("recognizers")
    return [str(n) for n in names] if names else RECOGNIZERS.names()


def recognizer_config(name: str, cfg: DictConfig) -> dict:
    """conf/recognizer/<name>.yaml resolved against `cfg`, with cfg.recognizer_overrides[name]."""
    overrides = (cfg.get("recognizer_overrides") or {}).get(name)
    return component_config("recognizer", name, cfg, overrides)


def build_recognizer(name: str, cfg: DictConfig):
    """The Recognizer `name`, configured for this run; loads no weights (see prepare())."""
    return RECOGNIZERS.build(OmegaConf.create(recognizer_config(name, cfg)), name=name)
