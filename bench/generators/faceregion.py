"""Per-vertex facts about the Basel Face Model subset that the 3DMM swap needs, derived
once from the mean face (model space: x to the face's left in the image, y up, z toward
the camera): where the blend mask may reach, which vertices are the inner face, which are
the reference skin, where hair may intrude, and mesh-neighbourhood smoothing."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.generators.mesh3d import MorphableModel

# iBUG 68-point index groups.
JAW = slice(0, 17)
BROWS = slice(17, 27)
EYES = slice(36, 48)
INNER_MOUTH = slice(60, 68)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def vertex_normals(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals (area-weighted) of a mesh whose x, y, z are right-handed."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    face_normals = np.cross(b - a, c - a)
    corners = triangles.T.ravel()  # each triangle's normal goes to its three corners
    normals = np.stack([np.bincount(corners, np.tile(face_normals[:, d], 3), minlength=len(vertices))
                        for d in range(3)], axis=1)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class FaceRegion:
    """Per-vertex facts derived once from the mean face.

    Attributes:
        weight: (N,) blend weight in [0, 1]: 1 on the face, fading to 0 at the mesh's rim
            and above the lower forehead (where hair begins on many people).
        inner: (N,) bool, the (widened) brows-eyes-nose-mouth hull: not skin, but face.
        cheeks: (N,) bool, the cheeks under the eyes: the reference skin colour.
        hair_prone: (N,) in [0, 1]: where the skin test applies: 1 from the eyes up and on
            the sides beyond the eyes' outer corners down to the mouth; 0 on the lower
            middle (beards and shadows there are the target's to replace).
        outward_sign: +1 or -1 so that the triangles' winding gives outward normals.
        smoothing: (N, N) sparse row-stochastic matrix averaging each vertex with its
            mesh neighbours.
    """

    weight: np.ndarray
    inner: np.ndarray
    cheeks: np.ndarray
    hair_prone: np.ndarray
    outward_sign: float
    smoothing: object

    def smooth(self, values: np.ndarray, iterations: int = 4) -> np.ndarray:
        """Per-vertex values averaged over mesh neighbourhoods (removes the speckle that
        per-vertex tests leave at silhouettes)."""
        out = np.asarray(values, dtype=np.float32)
        for _ in range(iterations):
            out = self.smoothing @ out
        return out.astype(np.float32)


def face_region(model: MorphableModel, forehead: float, rim: float) -> FaceRegion:
    """Derives the per-vertex regions from the mean face.

    Args:
        forehead: how far above the brows the blend weight reaches, in brow-to-eye distances.
        rim: width of the fade at the mesh's outer edge, as a fraction of the face width.
    """
    points = model.shape(np.zeros(40, np.float32), np.zeros(10, np.float32)).T.astype(np.float64)
    keys = points[model.keypoints]
    inner = _inner(points, keys)
    weight = _rim_weight(points, keys, model.triangles, inner, rim) * _forehead_weight(points, keys, forehead)
    normal_z = vertex_normals(points, model.triangles)[model.keypoints[30], 2]  # at the nose tip
    return FaceRegion(
        weight=weight.astype(np.float32),
        inner=inner,
        cheeks=_cheeks(points, keys),
        hair_prone=_hair_prone(points, keys).astype(np.float32),
        outward_sign=1.0 if normal_z > 0 else -1.0,
        smoothing=_neighbour_average(model.triangles, len(points)),
    )


def _inner(points: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The brows-eyes-nose-mouth hull, widened by 12% so that eye corners and brow ends
    (dark, and often past the fitted landmarks) count as face, not as hair."""
    from scipy.spatial import Delaunay

    features = keys[17:, :2]
    centre = features.mean(axis=0)
    return Delaunay(centre + 1.12 * (features - centre)).find_simplex(points[:, :2]) >= 0


def _rim_weight(points, keys, triangles, inner, rim: float) -> np.ndarray:
    """Fades to 0 toward the mesh's outer boundary (edges used by one triangle; the mouth
    slit's edges lie inside the inner hull and do not count)."""
    from scipy.spatial import cKDTree

    edges = np.sort(triangles[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    boundary = np.unique(unique[counts == 1])
    outer = boundary[~inner[boundary]]
    distance, _ = cKDTree(points[outer, :2]).query(points[:, :2])
    return smoothstep(distance / (rim * np.ptp(keys[JAW, 0])))


def _forehead_weight(points, keys, forehead: float) -> np.ndarray:
    brow_y, eye_y = keys[BROWS, 1].mean(), keys[EYES, 1].mean()
    top = brow_y + forehead * (brow_y - eye_y)
    return smoothstep((top - points[:, 1]) / (0.5 * (brow_y - eye_y)))


def _cheeks(points, keys) -> np.ndarray:
    """Below the eyes, above the nostrils, between the nose wings and the eye corners."""
    offset = np.abs(points[:, 0] - keys[30, 0])
    return ((points[:, 1] < keys[[40, 41, 46, 47], 1].min()) & (points[:, 1] > keys[33, 1])
            & (offset > 0.6 * np.abs(keys[35, 0] - keys[31, 0]))
            & (offset < 0.5 * np.abs(keys[45, 0] - keys[36, 0])))


def _hair_prone(points, keys) -> np.ndarray:
    """Hair and hats reach in from above, and from the sides down to about the mouth."""
    eye_y = keys[EYES, 1].mean()
    above_eyes = smoothstep((points[:, 1] - keys[30, 1]) / (eye_y - keys[30, 1]))
    half_eyes = 0.5 * np.abs(keys[45, 0] - keys[36, 0])
    lateral = smoothstep((np.abs(points[:, 0] - keys[30, 0]) - 0.9 * half_eyes) / (0.2 * half_eyes))
    above_mouth = smoothstep((points[:, 1] - keys[54, 1]) / (keys[33, 1] - keys[54, 1]))
    return np.maximum(above_eyes, lateral * above_mouth)


def _neighbour_average(triangles: np.ndarray, n: int):
    from scipy import sparse

    rows = np.concatenate([triangles[:, [0, 1, 2]].ravel(), triangles[:, [1, 2, 0]].ravel(), np.arange(n)])
    cols = np.concatenate([triangles[:, [1, 2, 0]].ravel(), triangles[:, [0, 1, 2]].ravel(), np.arange(n)])
    adjacency = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    adjacency.data[:] = 1.0  # an edge shared by two triangles was summed twice
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    return sparse.diags(1.0 / degree) @ adjacency
