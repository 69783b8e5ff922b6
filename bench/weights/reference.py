"""Does a provisioned weights file behave like deepface's own? Two checks:

- `reference_check`: deepface's own pipeline (DeepFace.verify's steps: its default opencv
  detector, alignment, letterbox, "base" normalisation; the closest pair of faces when a
  photo has several) on the identities pairs of deepface_reference_distances.csv, compared
  with the distances deepface's official weights gave: Pearson r and mean absolute
  difference per metric, and how often the two agree on "same person" at deepface's threshold.
- `graph_check`: a converted frozen graph against the graph itself, run op by op.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.recognizers.base import METRICS
from bench.recognizers.deepface_client import deepface_home, use_backend

log = logging.getLogger(__name__)


def reference_check(model_name: str, home: Path, reference_csv: Path, backend: str = "pytorch") -> dict:
    """Distances with the weights under `home` vs deepface's reference distances for `model_name`."""
    if not Path(reference_csv).is_file():
        raise BenchError(f"reference distances {reference_csv} not found (../shared/data/identities)")
    ref = pd.read_csv(reference_csv)
    columns = {m: f"{model_name}_{m}" for m in METRICS if f"{model_name}_{m}" in ref.columns}
    if not columns:
        raise BenchError(f"{reference_csv} has no {model_name}_* column: no reference to check against")
    root = Path(reference_csv).parent
    use_backend(backend)
    from deepface.modules import modeling, representation, verification

    photos = sorted(set(ref.file_x) | set(ref.file_y))
    with deepface_home(home):
        getattr(modeling, "cached_models", {}).get("facial_recognition", {}).pop(model_name, None)
        faces = {}
        for photo in photos:  # every face of every photo, as verify() extracts them
            found = representation.represent(str(root / photo), model_name=model_name,
                                              detector_backend="opencv", enforce_detection=False)
            faces[photo] = [np.asarray(f["embedding"], dtype=np.float64) for f in found]
        getattr(modeling, "cached_models", {}).get("facial_recognition", {}).pop(model_name, None)
    result = {"model": model_name, "pairs": len(ref), "photos": len(photos),
              "pipeline": "deepface.represent, detector_backend=opencv, align=True, normalization=base; "
                          "min distance over face pairs (as DeepFace.verify)"}
    for metric, column in columns.items():
        ours = np.array([min(float(verification.find_distance(a, b, metric)) for a in faces[x] for b in faces[y])
                         for x, y in zip(ref.file_x, ref.file_y)])
        theirs = ref[column].to_numpy(dtype=np.float64)
        threshold = float(verification.find_threshold(model_name, metric))
        result[metric] = {
            "pearson": round(float(np.corrcoef(ours, theirs)[0, 1]), 4),
            "mean_abs_diff": round(float(np.abs(ours - theirs).mean()), 4),
            "median_abs_diff": round(float(np.median(np.abs(ours - theirs))), 4),
            "mean_ours": round(float(ours.mean()), 4), "mean_reference": round(float(theirs.mean()), 4),
            "decision_agreement": round(float(((ours <= threshold) == (theirs <= threshold)).mean()), 4),
            "threshold": threshold,
        }
    return result


def graph_check(graph: Path, state_dict_file: Path, dimension: int, faces: int = 4, seed: int = 0) -> dict:
    """Max abs difference between the converted PyTorch model and the frozen graph itself."""
    import torch
    from deepface.models.facial_recognition.pytorch.Facenet import InceptionResNetV1

    from bench.weights.tf_graph import GraphRunner

    model = InceptionResNetV1(dimension=dimension)
    model.load_state_dict(torch.load(state_dict_file, map_location="cpu", weights_only=True))
    model.eval()
    x = np.random.default_rng(seed).normal(size=(faces, 160, 160, 3)).astype(np.float32)
    expected = GraphRunner(graph)(x)
    with torch.no_grad():
        got = model(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    return {"inputs": f"{faces} random 160x160x3 inputs (seed {seed})",
            "max_abs_diff": float(np.abs(expected - got).max()),
            "max_abs_output": float(np.abs(expected).max())}
