"""OpenCV Zoo YuNet through cv2.FaceDetectorYN."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.detectors.base import Detection, Detector, first_existing


class YunetDetector(Detector):
    def __init__(self, model_paths, score_threshold: float = 0.6, nms_threshold: float = 0.3, top_k: int = 5000):
        super().__init__()
        self.model_paths = list(model_paths)
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)

    def weights(self) -> list[Path]:
        return [Path(p).expanduser() for p in self.model_paths]

    def _load(self) -> None:
        self._path = first_existing("YuNet", self.model_paths)
        self._net()  # an unreadable model fails here, not on the first photo

    def _net(self):
        import cv2

        return cv2.FaceDetectorYN.create(
            str(self._path), "", (320, 320), self.score_threshold, self.nms_threshold, self.top_k
        )

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        height, width = bgr.shape[:2]
        # A fresh net per photo (~5 ms): a net keeps its buffers, sized for the last photo it
        # saw, for as long as it lives (~550 MB after a 14 MP photo), while the detectors that
        # run after it on the same photo need theirs.
        model = self._net()
        model.setInputSize((width, height))
        _, rows = model.detect(bgr)
        faces = []
        for row in rows if rows is not None else []:
            x, y, w, h = row[:4]
            # YuNet: right eye, left eye (the person's), nose, right and left mouth corner:
            # the person's right is the image's left, so this is already template order.
            faces.append(Detection(
                box=np.array([x, y, x + w, y + h], dtype=np.float32),
                score=float(row[14]),
                landmarks=row[4:14].reshape(5, 2).astype(np.float32),
            ))
        return faces
