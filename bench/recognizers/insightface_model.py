"""An ArcFace ONNX through insightface's own `model_zoo.get_model` (its ArcFaceONNX class,
with insightface's own input normalisation), e.g. buffalo_l's w600k_r50.onnx."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.detectors.base import first_existing
from bench.errors import BenchError
from bench.recognizers.base import Recognizer
from bench.recognizers.thresholds import load_thresholds


class InsightfaceRecognizer(Recognizer):
    def __init__(self, model_paths, threshold_source: str | None = None, input_size: int = 112,
                 margin: float = 0.0, batch_size: int = 32, thresholds: dict | None = None):
        super().__init__(input_size=input_size, margin=margin, batch_size=batch_size, thresholds=thresholds)
        self.model_paths = [str(p) for p in (model_paths or []) if p]
        self.threshold_source = threshold_source

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def default_thresholds(self) -> dict[str, float]:
        return load_thresholds(self.threshold_source, self.name)

    def _load(self) -> None:
        from insightface.model_zoo import get_model

        path = first_existing(self.name, self.model_paths)
        model = get_model(str(path), providers=["CPUExecutionProvider"])
        if model is None or getattr(model, "taskname", None) != "recognition":
            raise BenchError(f"{self.name}: insightface does not load {path.name} as a recognition model")
        if tuple(model.input_size) != (self.input_size, self.input_size):
            raise BenchError(f"{self.name}: {path.name} takes {model.input_size}, config declares {self.input_size}")
        model.prepare(ctx_id=-1)
        self._model = model

    def _embed(self, crops: np.ndarray) -> np.ndarray:
        bgr = [np.ascontiguousarray(c[:, :, ::-1]) for c in crops]  # get_feat takes BGR, as cv2 reads
        return np.asarray(self._model.get_feat(bgr), dtype=np.float32).reshape(len(crops), -1)
