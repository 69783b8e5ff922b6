"""deepface's own recognizer clients (DeepID, OpenFace, DeepFace, Facenet, Facenet512, Dlib,
ArcFace, ...) behind the Recognizer protocol. One class; each model is a YAML.

deepface runs on TensorFlow, PyTorch or onnxruntime (DEEPFACE_BACKEND_ENGINE forces one);
TensorFlow is never needed here: the configs pick `pytorch` unless that variable says
otherwise. Crops are fed as deepface's `represent` feeds them after its own detection:
BGR, float in [0, 1], letterboxed to the model's input shape by deepface's
`preprocessing.resize_image`, then deepface's `normalize_input` ("base" by default, as in
DeepFace.verify). The weight file is looked up in <deepface_home>/.deepface/weights
before deepface builds the client, so a missing file is a WeightsNotFound and deepface
never tries to download it.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import cv2
import numpy as np

from bench.align import template
from bench.detectors.base import first_existing
from bench.errors import BenchError
from bench.recognizers.base import Recognizer
from bench.recognizers.thresholds import load_thresholds

BACKEND_ENV = "DEEPFACE_BACKEND_ENGINE"


def deepface_weights_dir(home: str | os.PathLike) -> Path:
    """Where deepface keeps its weights under DEEPFACE_HOME (deepface.commons.folder_utils)."""
    return Path(home).expanduser() / ".deepface" / "weights"


def use_backend(engine: str) -> str:
    """Makes deepface run on `engine`; deepface picks its engine once per process."""
    from deepface.commons import backend_utils

    os.environ.setdefault(BACKEND_ENV, engine)
    actual = backend_utils.get_backend_engine()
    if actual != engine:
        raise BenchError(f"deepface already runs on its {actual} backend in this process, not {engine}; "
                         f"set {BACKEND_ENV}={engine} or the recognizers' backend to {actual}")
    return actual


@contextlib.contextmanager
def deepface_home(home: str | os.PathLike):
    """DEEPFACE_HOME set to `home` while deepface builds a client (it reads the variable then)."""
    old = os.environ.get("DEEPFACE_HOME")
    os.environ["DEEPFACE_HOME"] = str(Path(home).expanduser())
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("DEEPFACE_HOME", None)
        else:
            os.environ["DEEPFACE_HOME"] = old


class DeepfaceRecognizer(Recognizer):
    """Args:
        model_name: deepface's name (modeling.AVAILABLE_MODELS), e.g. "Facenet512".
        weight_files: {backend: file name deepface loads}; "any" for backend-free models (Dlib).
        deepface_home: the folder holding .deepface/weights (config paths.deepface_home).
        backend: deepface's backend engine: pytorch or onnx (tensorflow works if installed).
        normalization: deepface's normalize_input option ("base" = deepface's default).
        channels: "bgr" as deepface feeds its clients; "rgb" for weights that expect RGB.
        threshold_source: see bench.recognizers.thresholds; default deepface:<model_name>.
        model_template: for models trained on another crop than the ArcFace template, the
            five landmarks (eye centres, nose tip, mouth corners; x, y in pixels of the
            model's input) where the model expects them: the (input_size, margin) crop is
            warped onto them by one fixed similarity. null: the crop is fed as it is.
    """

    def __init__(self, model_name: str, weight_files: dict, deepface_home: str, backend: str = "pytorch",
                 normalization: str = "base", channels: str = "bgr", threshold_source: str | None = None,
                 model_template=None, input_size: int = 112, margin: float = 0.0, batch_size: int = 32,
                 thresholds: dict | None = None):
        super().__init__(input_size=input_size, margin=margin, batch_size=batch_size, thresholds=thresholds)
        if channels not in ("bgr", "rgb"):
            raise ValueError(f"channels must be bgr or rgb, not {channels!r}")
        self.model_name = model_name
        self.weight_files = dict(weight_files)
        self.deepface_home = str(deepface_home)
        self.backend = str(backend).lower()
        self.normalization = normalization
        self.channels = channels
        self.threshold_source = threshold_source or f"deepface:{model_name}"
        self.model_template = None if model_template is None else np.asarray(model_template, np.float32).reshape(5, 2)

    @property
    def weight_file(self) -> str | None:
        return self.weight_files.get(self.backend) or self.weight_files.get("any")

    def weights(self) -> list[Path]:
        file = self.weight_file
        return [deepface_weights_dir(self.deepface_home) / file] if file else []

    def default_thresholds(self) -> dict[str, float]:
        return load_thresholds(self.threshold_source, self.name)

    def _load(self) -> None:
        if not self.weight_file:
            raise BenchError(f"{self.name}: no weight file configured for deepface's {self.backend} backend")
        first_existing(self.model_name, self.weights())  # before deepface could try to download it
        use_backend(self.backend)
        from deepface.modules import modeling

        with deepface_home(self.deepface_home):
            # A fresh instance, not modeling.build_model's process-wide singleton: two
            # configs may load the same model from different homes.
            self._client = modeling.get_model_class("facial_recognition", self.model_name)()
        width, height = self._client.input_shape  # deepface's (x, y) convention
        self._target = (height, width)
        self._warp = None
        if self.model_template is not None:
            self._warp = similarity(template(self.input_size, self.margin), self.model_template)

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        from deepface.modules import preprocessing

        if self._warp is not None:
            height, width = self._target
            crops = np.stack([cv2.warpAffine(c, self._warp, (width, height), flags=cv2.INTER_LINEAR) for c in crops])
        images = crops[..., ::-1] if self.channels == "bgr" else crops
        # [0, 1] first: resize_image divides by 255 only when it sees a value above 1.
        images = images.astype(np.float32) / 255.0
        batch = np.concatenate([preprocessing.resize_image(img, target_size=self._target) for img in images])
        batch = preprocessing.normalize_input(batch, normalization=self.normalization)
        out = np.asarray(self._client.forward(batch), dtype=np.float32)
        return out.reshape(len(crops), -1)


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama) taking the points `src` onto `dst`."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    a, b = src - src_mean, dst - dst_mean
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / a.var(0).sum()
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError("degenerate five-point template")
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix.astype(np.float32)
