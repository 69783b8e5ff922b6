"""What the learned swappers share: finding their weight files, and the identity vector of
the target face from insightface's own ArcFace loader (insightface.model_zoo.get_model
-> ArcFaceONNX), as inswapper's and facefusion's users compute it.

Naming: in MFMC the photo's face is replaced and the synthetic pool face gives the identity;
insightface calls these `target_face` and `source_face`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import BenchError, WeightsNotFound
from bench.generators.base import Face, SwapFailed
from bench.userpaths import shown_path

CPU = ["CPUExecutionProvider"]


def find_all(model: str, files: dict[str, list]) -> list[Path]:
    """The first existing candidate of each required file, in the order of `files`
    ({role: candidates}).

    Raises:
        WeightsNotFound: listing, per missing file, every candidate looked at.
    """
    found, missing, parts = [], [], []
    for role, candidates in files.items():
        paths = [Path(str(c)).expanduser() for c in (candidates or [])]
        hit = next((p for p in paths if p.is_file()), None)
        found.append(hit)
        if hit is None:
            missing.extend(paths)
            parts.append(f"{' or '.join(map(shown_path, paths)) or '(no path configured)'} ({role})")
    if missing:
        error = WeightsNotFound(model, missing)
        error.args = (f"weights not found at {'; at '.join(parts)}",)
        raise error
    return found


def check_landmarks(face: Face, role: str) -> np.ndarray:
    """The face's five landmarks as (5, 2) float32.

    Raises:
        SwapFailed: they are missing, not finite, or degenerate.
    """
    points = np.asarray(face.landmarks, dtype=np.float32)
    if points.size != 10 or not np.isfinite(points).all():
        raise SwapFailed(f"{role} face has no usable five landmarks")
    points = points.reshape(5, 2)
    if np.ptp(points, axis=0).max() < 1.0:
        raise SwapFailed(f"{role} face's landmarks are degenerate (all within one pixel)")
    return points


def insight_face(face: Face, role: str):
    """An insightface `Face` record (bbox, kps) for one of our faces."""
    from insightface.app.common import Face as InsightFace

    return InsightFace(bbox=np.asarray(face.box, dtype=np.float32).reshape(4), kps=check_landmarks(face, role), det_score=1.0)


def load_arcface(path: Path):
    """insightface's ArcFaceONNX for a recognition ONNX file, on CPU.

    Raises:
        BenchError: insightface does not take the file for a recognition model.
    """
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    model = get_model(str(path), providers=CPU)
    if not isinstance(model, ArcFaceONNX):
        raise BenchError(f"{path} is not an ArcFace recognition model (insightface loads it as {type(model).__name__})")
    model.prepare(ctx_id=-1)
    return model


def embedding_size(model) -> int | None:
    """The embedding length an ArcFaceONNX produces, if its graph says so."""
    size = model.output_shape[-1] if model.output_shape else None
    return size if isinstance(size, int) else None


def identity(arcface, rgb: np.ndarray, face: Face):
    """insightface's `source_face`: the identity face with its ArcFace embedding set
    (`.embedding`, `.normed_embedding`), computed on its five landmarks."""
    record = insight_face(face, "identity (target)")
    arcface.get(np.ascontiguousarray(rgb[..., ::-1]), record)  # insightface models take BGR
    if not np.isfinite(record.embedding).all() or record.embedding_norm == 0:
        raise SwapFailed("the identity face's ArcFace embedding is zero or not finite")
    return record
