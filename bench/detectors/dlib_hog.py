"""dlib's HOG frontal face detector (inside dlib itself), with the five ArcFace landmarks
taken from dlib's 68-point shape predictor."""
from __future__ import annotations

import functools
import threading
from pathlib import Path

import numpy as np

from bench.cores import resolve_count
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


# dlib's frontal face detector per thread (dlib's object_detector is not safe to share between
# threads; building one takes ~0.3 s, so each thread keeps its own for every DlibHogDetector).
_SCANNERS = threading.local()


def frontal_face_scanner():
    """This thread's dlib.get_frontal_face_detector() (the same model, whatever the settings:
    upsampling and threshold are arguments of its run())."""
    scanner = getattr(_SCANNERS, "scanner", None)
    if scanner is None:
        import dlib

        scanner = _SCANNERS.scanner = dlib.get_frontal_face_detector()
    return scanner


@functools.lru_cache(maxsize=4)
def shape_predictor(path: str):
    """(dlib.shape_predictor(path), the lock its calls run under): loaded once per process
    (~0.5 s for the 68-point model) for every DlibHogDetector that reads `path`."""
    import dlib

    return dlib.shape_predictor(path), threading.Lock()


class DlibHogDetector(Detector):
    def __init__(self, upsample: int = 1, score_threshold: float = 0.0, landmarks_model: str | None = None,
                 threads: int | str = 1):
        """
        Args:
            upsample: 2x upsamplings of the photo before the scan (1: faces down to ~40 px).
            score_threshold: SVM margin a detection needs (dlib's default 0.0).
            landmarks_model: dlib 68-point shape predictor (.dat); None: face_recognition_models'.
            threads: photos (or turns of a photo) detect_many scans at once, one thread each
                ("auto": bench.cores.usable_cores()). dlib's scan uses one core and releases
                the GIL; each thread has its own dlib detector (frontal_face_scanner), the
                shape predictor runs under a lock.
        """
        super().__init__()
        self.upsample = int(upsample)
        self.score_threshold = float(score_threshold)
        self.landmarks_model = landmarks_model
        self.parallel = resolve_count(threads, "threads")

    def weights(self) -> list[Path]:
        path = self.landmarks_model or default_landmarks_model()
        return [Path(path)] if path else []

    def _load(self) -> None:
        path = first_existing("dlib shape_predictor_68", self.weights() or [
            "<pip install face_recognition_models>/shape_predictor_68_face_landmarks.dat"])
        self._predictor, self._predictor_lock = shape_predictor(str(path.resolve()))

    def _detect(self, bgr: np.ndarray) -> list[Detection]:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        rects, scores, _ = frontal_face_scanner().run(rgb, self.upsample, self.score_threshold)
        faces = []
        with self._predictor_lock:
            shapes = [self._predictor(rgb, rect) for rect in rects]
        for rect, score, shape in zip(rects, scores, shapes):
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            box = np.array([rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1], dtype=np.float32)
            faces.append(Detection(box=box, score=float(score), landmarks=five_from_68(points)))
        return faces
