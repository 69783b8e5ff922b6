"""dlib's HOG frontal face detector (inside dlib itself), with the five ArcFace landmarks
taken from dlib's 68-point shape predictor."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.detectors.base import Detection, Detector, first_existing

# iBUG 68-point indices -> the ArcFace five (image-left eye first).
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
NOSE_TIP = 30
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


def five_from_68(points: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG landmarks -> (5, 2) eye centres, nose tip, mouth corners."""
    return np.stack([
        points[LEFT_EYE].mean(axis=0),
        points[RIGHT_EYE].mean(axis=0),
        points[NOSE_TIP],
        points[MOUTH_LEFT],
        points[MOUTH_RIGHT],
    ]).astype(np.float32)


def default_landmarks_model() -> Path | None:
    try:
        import face_recognition_models
    except ImportError:
        return None
    return Path(face_recognition_models.pose_predictor_model_location())


class DlibHogDetector(Detector):
    def __init__(self, upsample: int = 1, score_threshold: float = 0.0, landmarks_model: str | None = None):
        super().__init__()
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self.landmarks_model = landmarks_model

    def weights(self) -> list[Path]:
        path = self.landmarks_model or default_landmarks_model()
        return [Path(path)] if path else []

    def _load(self) -> None:
        import dlib

        path = first_existing("dlib shape_predictor_68", self.weights() or [
            "<pip install face_recognition_models>/shape_predictor_68_face_landmarks.dat"])
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        rects, scores, _ = self._detector.run(rgb, self.upsample, self.score_threshold)
        faces = []
        for rect, score in zip(rects, scores):
            shape = self._predictor(rgb, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float32)
            faces.append(Detection(box=box, score=float(score), landmarks=five_from_68(points)))
        return faces
