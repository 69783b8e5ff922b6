"""InsightFace SCRFD through insightface's own model_zoo (the loader its users call)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.detectors.base import Detection, Detector, first_existing
from bench.detectors.onnx_cpu import cpu_options


class ScrfdDetector(Detector):
    def __init__(self, model_paths, input_size=(640, 640), score_threshold: float = 0.5, nms_threshold: float = 0.4):
        super().__init__()
        self.model_paths = list(model_paths)
        self.input_size = tuple(int(v) for v in input_size)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def _load(self) -> None:
        from insightface.model_zoo import get_model

        path = first_existing("SCRFD", self.model_paths)
        # no memory arena: it would keep a 1280 px input's activations for good (onnx_cpu)
        self._model = get_model(str(path), providers=["CPUExecutionProvider"], sess_options=cpu_options())
        self._model.prepare(ctx_id=-1, input_size=self.input_size, det_thresh=self.score_threshold)
        self._model.nms_thresh = self.nms_threshold

    def native_scale(self, height: int, width: int) -> bool:
        return False  # every photo and window is resized to input_size

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        boxes, kps = self._model.detect(bgr, input_size=self.input_size, max_num=0)
        return [
            Detection(box=b[:4].astype(np.float32), score=float(b[4]), landmarks=k.astype(np.float32))
            for b, k in zip(boxes, kps)
        ]
