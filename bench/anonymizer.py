"""Replacing one face in a photo: the generator, and the fallback where it fails. Shared by
every stage that anonymizes (the anonymize stage, the access models' fakes), so that a face
is covered the same way everywhere; nothing here reads or writes result files.

Every function returns (image, status) and never raises on a bad face: the status
(bench.status) says what happened, and a face nothing could cover says NOT ANONYMIZED.
"""
from __future__ import annotations

import logging
import traceback

import numpy as np
from omegaconf import DictConfig

from bench.detectors.base import Detection
from bench.errors import BenchError
from bench.generators.base import Face, Generator, SwapFailed
from bench.images import load_photo
from bench.generators import build_generator
from bench.status import LEFT_REAL, SWAPPED, fallback_status

log = logging.getLogger(__name__)


def unchanged_max_diff(cfg: DictConfig) -> float:
    """`unchanged_max_diff`: a face region whose mean absolute pixel difference from the
    original is below this (gray levels) is still the real face (the anonymize stage's last
    look and the leak check share this one definition)."""
    return float(cfg.unchanged_max_diff)


def build_fallback(cfg: DictConfig) -> Generator | None:
    """`anonymize.fallback` prepared, or None when unset or the same as the generator."""
    name = cfg.anonymize.get("fallback")
    if not name or name == cfg.choices.generator:
        return None
    fallback = build_generator(str(name), cfg)
    fallback.prepare()
    return fallback


def replace_face(image: np.ndarray, row, target, generator: Generator, fallback: Generator | None):
    """(image with this face replaced, status). Never raises: a failure becomes the status."""
    face = Face(box=np.array([row.x1, row.y1, row.x2, row.y2], np.float32),
                landmarks=np.asarray(row.landmarks, np.float32).reshape(5, 2))
    try:
        if generator.uses_target:
            if target is None:
                raise SwapFailed("no target for this face (see the query stage's failures)")
            target_image, target_face = load_target(target)
        else:
            target_image, target_face = image, face
        return generator.swap(image, face, target_image, target_face), SWAPPED
    except Exception as err:  # a bug on one odd face must not lose the other faces
        reason = describe(err)
    if fallback is None:
        return image, f"{LEFT_REAL}: {generator.name} failed ({reason}); no fallback configured"
    try:
        return fallback.swap(image, face, image, face), fallback_status(fallback.name, f"{generator.name} failed ({reason})")
    except Exception as err:
        return image, f"{LEFT_REAL}: {generator.name} failed ({reason}); fallback {fallback.name} failed ({describe(err)})"


def describe(err: Exception) -> str:
    if isinstance(err, BenchError):
        return str(err)
    log.debug("swap raised:\n%s", traceback.format_exc())
    return f"{type(err).__name__}: {err}"


def load_target(target) -> tuple[np.ndarray, Face]:
    rgb = load_photo(str(target["target_image"])).rgb
    face = Face(box=np.asarray(target["target_box"], np.float32).reshape(4),
                landmarks=np.asarray(target["target_landmarks"], np.float32).reshape(5, 2))
    return rgb, face


def cover_missed_face(image: np.ndarray, det: Detection, cover: Generator | None,
                      where: str = "in the original photo") -> tuple[np.ndarray, str]:
    """(image with a face the inventory missed obfuscated by `cover`, status). Never raises.

    Args:
        image: (H, W, 3) uint8 RGB.
        det: the face (box and landmarks in pixels; `found_by` names who found it).
        cover: an obfuscating generator (the fallback), or None: then the face stays real
            and the status says NOT ANONYMIZED.
        where: where the face was found, for the status text.
    """
    where = (f"a face at box {[int(v) for v in det.box]} (found {where} by {', '.join(det.found_by)}, "
             f"score {det.score:.2f}) is not in the face inventory")
    if cover is None:
        return image, f"{LEFT_REAL}: {where}; no fallback configured to cover it"
    face = Face(box=np.asarray(det.box, np.float32), landmarks=np.asarray(det.landmarks, np.float32).reshape(5, 2))
    try:
        return cover.swap(image, face, image, face), fallback_status(cover.name, f"covered: {where}")
    except Exception as err:
        return image, f"{LEFT_REAL}: {where}; {cover.name} failed ({describe(err)})"
