"""InsightFace SCRFD through insightface's own model_zoo (the loader its users call)."""
from __future__ import annotations

import threading
from pathlib import Path

import cv2
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
        path = first_existing("SCRFD", self.model_paths)
        self._model = self._session(path, static_shape_sessions=True)
        self._windows = None  # the model for windows of view(), made on first use
        self._windows_lock = threading.Lock()  # made by one thread where several ask at once

    def _session(self, path, static_shape_sessions: bool):
        """insightface's SCRFD for `path`, on the CPU without a memory arena (it would keep a
        1280 px input's activations for good; onnx_cpu). `static_shape_sessions`: insightface's
        default, True, builds a session of its own for each input size (the whole scan's one
        size); False runs every size on the one dynamic session (windows come in many sizes,
        and a session per size costs ~60 ms to build and is kept)."""
        from insightface.model_zoo import get_model

        options = {"providers": ["CPUExecutionProvider"], "sess_options": cpu_options()}
        try:
            model = get_model(str(path), static_shape_sessions=static_shape_sessions, **options)
        except TypeError:  # insightface before the option: one dynamic session for every size
            model = get_model(str(path), **options)
        model.prepare(ctx_id=-1, input_size=self.input_size, det_thresh=self.score_threshold)
        model.nms_thresh = self.nms_threshold
        return model

    def native_scale(self, height: int, width: int) -> bool:
        return False  # every photo is resized to input_size (a window scan cuts the view instead)

    def view(self, bgr: np.ndarray) -> tuple[np.ndarray, float] | None:
        """The photo as insightface's SCRFD.detect resizes it into input_size (aspect kept,
        cv2.resize; the rest of the input is zeros, right and bottom), and the factor it maps
        faces back by (new height / height). None for a model of one fixed input size
        (buffalo_sc's det_500m, scrfd_500m_bnkps: 640 x 640), which takes no windows."""
        self.prepare()
        shape = self._model.session.get_inputs()[0].shape
        if all(isinstance(v, int) for v in shape[2:4]):
            return None
        height, width = bgr.shape[:2]
        im_ratio, model_ratio = height / width, self.input_size[1] / self.input_size[0]
        if im_ratio > model_ratio:  # the same arithmetic as insightface's SCRFD._detect_candidates
            new_height = self.input_size[1]
            new_width = int(new_height / im_ratio)
        else:
            new_width = self.input_size[0]
            new_height = int(new_width * im_ratio)
        return cv2.resize(bgr, (new_width, new_height)), float(new_height) / height

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        boxes, kps = self._model.detect(bgr, input_size=self.input_size, max_num=0)
        return _detections(boxes, kps)

    def _detect_as_is(self, bgr: np.ndarray) -> list[Detection]:
        """SCRFD.detect on a window of view(): the network runs on it as it is, padded with zeros
        (right and bottom, as insightface pads its input) to its stride, 32 px; candidates
        sorted by score and suppressed by the model's own NMS, as SCRFD.detect does them."""
        height, width = bgr.shape[:2]
        canvas = np.zeros((-(-height // STRIDE) * STRIDE, -(-width // STRIDE) * STRIDE, 3), np.uint8)
        canvas[:height, :width] = bgr
        with self._windows_lock:
            if self._windows is None:
                self._windows = self._session(self._model.model_file, static_shape_sessions=False)
        scores, boxes, kpss = self._windows.forward(canvas, self.score_threshold)
        if not sum(s.size for s in scores):
            return []
        scores = np.vstack(scores)
        order = np.argsort(-scores.ravel(), kind="stable")
        candidates = np.hstack((np.vstack(boxes), scores)).astype(np.float32, copy=False)[order]
        kpss = np.vstack(kpss)[order]
        keep = self._windows.nms(candidates)
        return _detections(candidates[keep], kpss[keep])


# The coarsest feature stride of SCRFD's FPN (8, 16, 32): an input is a multiple of it.
STRIDE = 32


def _detections(boxes: np.ndarray, kps: np.ndarray) -> list[Detection]:
    return [Detection(box=b[:4].astype(np.float32), score=float(b[4]), landmarks=k.astype(np.float32))
            for b, k in zip(boxes, kps)]
