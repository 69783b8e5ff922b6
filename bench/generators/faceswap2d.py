"""`faceswap2d`: the classic 2D landmark face swap, a baseline beside the 3DMM `faceswap`.

dlib's 68-point shape predictor (face_recognition_models) locates both faces; the target
face is warped onto the photo face piecewise-affinely over a Delaunay triangulation of the
photo face's landmarks; then the shared colour transfer and blending (bench.generators.
blending). It keeps the photo face's outline and cannot rotate the target out of plane,
so turned faces change less (and noses fold) compared with the 3DMM swap.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bench.detectors.base import first_existing
from bench.detectors.dlib_hog import default_landmarks_model, five_from_68
from bench.generators import blending
from bench.generators.base import Face, Generator, SwapFailed
from bench.generators.raster import rasterize
from bench.generators.swapinput import check_agreement, checked

INNER_MOUTH = slice(60, 68)


def predictor_box(five: np.ndarray) -> tuple[int, int, int, int]:
    """The box dlib's HOG detector would draw for a face with these five landmarks, which is
    what its shape predictor was trained on; other detectors' boxes (SCRFD's include the
    forehead) throw it off. Measured on dlib's own detections in t1.jpg and ../shared's group
    photos (91 faces): a square of 2.52 eye-to-mouth distances (sd 0.28) centred on the
    eye-mouth midpoint (offset 0.05, sd 0.13)."""
    eyes, mouth = five[:2].mean(axis=0), five[3:5].mean(axis=0)
    span = float(np.linalg.norm(eyes - mouth))
    centre = (eyes + mouth) / 2 + 0.05 * (eyes - mouth)
    half = 1.26 * span
    return (int(round(centre[0] - half)), int(round(centre[1] - half)),
            int(round(centre[0] + half)), int(round(centre[1] + half)))


def piecewise_affine_map(src_points: np.ndarray, dst_points: np.ndarray, shape) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of an image of `shape` inside the Delaunay triangulation of
    `dst_points`, the corresponding position in the image of `src_points` (same order).

    Returns:
        (map_xy (H, W, 2) float32 for cv2.remap, inside (H, W) bool).

    Raises:
        SwapFailed: the landmarks are degenerate (collinear, or a triangulation fails).
    """
    from scipy.spatial import Delaunay, QhullError

    try:
        simplices = Delaunay(dst_points).simplices
    except (QhullError, ValueError) as exc:
        raise SwapFailed(f"degenerate landmarks, no triangulation: {str(exc).splitlines()[0]}") from exc
    flat = np.column_stack([dst_points, np.zeros(len(dst_points))])  # one plane: no occlusion
    raster = rasterize(flat, simplices, shape[:2])
    return raster.interpolate(simplices, src_points), raster.mask


class FaceSwap2D(Generator):
    """Delaunay-warp face swap on dlib's 68 landmarks.

    Args:
        landmarks_model: shape_predictor_68_face_landmarks.dat; None: face_recognition_models'.
        min_face_size: photo faces whose box is smaller (shorter side, pixels) are refused.
        max_landmark_error: dlib's five points must lie within this many eye distances (mean)
            of the face's own five landmarks, else the landmarks are taken as wrong.
        poisson: blend with cv2.seamlessClone (True) or the feathered mask alone.
        seam_reach: see bench.generators.blending.edge_weighted (fraction of the mask size).
        fallback_to_feather: if Poisson blending fails, paste with the feathered mask
            instead of refusing the face.
    """

    uses_target = True

    def __init__(self, landmarks_model: str | None = None, min_face_size: float = 16.0,
                 max_landmark_error: float = 0.5, poisson: bool = True, seam_reach: float = 0.15,
                 fallback_to_feather: bool = True):
        super().__init__()
        self.landmarks_model = landmarks_model
        self.min_face_size = float(min_face_size)
        self.max_landmark_error = float(max_landmark_error)
        self.poisson = bool(poisson)
        self.seam_reach = float(seam_reach)
        self.fallback_to_feather = bool(fallback_to_feather)

    def weights(self) -> list[Path]:
        path = self.landmarks_model or default_landmarks_model()
        return [Path(path).expanduser()] if path else []

    def _load(self) -> None:
        import dlib

        path = first_existing("dlib shape_predictor_68", self.weights() or [
            "<pip install face_recognition_models>/shape_predictor_68_face_landmarks.dat"])
        self._predictor = dlib.shape_predictor(str(path))

    def landmarks(self, rgb: np.ndarray, face: Face, what: str, min_size: float = 0.0) -> np.ndarray:
        """(68, 2) dlib landmarks of `face` (in the box dlib expects, derived from its five
        landmarks), checked against those five."""
        import dlib

        _, given, eye_distance = checked(face, what, min_size)
        left, top, right, bottom = predictor_box(given)
        shape = self._predictor(rgb, dlib.rectangle(left, top, right - 1, bottom - 1))
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
        check_agreement(five_from_68(points), given, eye_distance, self.max_landmark_error, what, "dlib's 68 landmarks")
        return points

    def _swap(self, photo: np.ndarray, face: Face, target: np.ndarray, target_face: Face) -> np.ndarray:
        src = self.landmarks(photo, face, "photo face", self.min_face_size)
        dst = self.landmarks(target, target_face, "target face")
        hull = cv2.convexHull(src.astype(np.float32)).reshape(-1, 2)
        area = float(cv2.contourArea(hull))
        if area < 64:
            raise SwapFailed(f"photo face: landmark hull of {area:.0f} px^2 is too small to warp")

        # Work in the face's neighbourhood only.
        height, width = photo.shape[:2]
        margin = 0.15 * float(np.ptp(src, axis=0).max())
        x1, y1 = (max(int(np.floor(v - margin)), 0) for v in src.min(axis=0))
        x2 = min(int(np.ceil(src[:, 0].max() + margin)) + 1, width)
        y2 = min(int(np.ceil(src[:, 1].max() + margin)) + 1, height)
        if x2 - x1 < 8 or y2 - y1 < 8:
            raise SwapFailed(f"the face lies outside the photo (crop {x1},{y1},{x2},{y2})")
        patch = photo[y1:y2, x1:x2]
        local = src - [x1, y1]
        map_xy, inside = piecewise_affine_map(dst, local, patch.shape)
        warped = cv2.remap(target, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

        mask = np.zeros(patch.shape[:2], dtype=np.uint8)
        cv2.fillConvexPoly(mask, np.rint(cv2.convexHull(local.astype(np.float32))).astype(np.int32), 1)
        mouth = np.zeros_like(mask)
        cv2.fillPoly(mouth, [np.rint(local[INNER_MOUTH]).astype(np.int32)], 1)
        mask = mask.astype(bool) & inside & ~mouth.astype(bool)
        size = np.sqrt(max(mask.sum(), 1))
        mask = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8),
                         iterations=max(1, int(0.03 * size))).astype(bool)
        if mask.sum() < 64:
            raise SwapFailed(f"the blend mask covers only {int(mask.sum())} pixels")

        recoloured = blending.transfer_colour(warped, patch, mask)
        blended = self._blend(recoloured, patch, mask)
        alpha = blending.feather(mask, radius=max(1.5, 0.05 * size))
        out = photo.copy()
        out[y1:y2, x1:x2] = blending.composite(patch, blended, alpha)
        return out

    def _blend(self, rendered: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if not self.poisson:
            return rendered
        return blending.harmonise_or_refuse(rendered, background, mask, self.seam_reach, self.fallback_to_feather)
