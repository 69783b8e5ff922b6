"""An ArcFace ONNX through insightface's own `model_zoo.get_model` (its ArcFaceONNX class,
with insightface's own input normalisation), e.g. buffalo_l's w600k_r50.onnx."""
from __future__ import annotations


import numpy as np

from bench.detectors.base import first_existing
from bench.errors import BenchError
from bench.recognizers.base import ModelFileRecognizer


class InsightfaceRecognizer(ModelFileRecognizer):

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
