"""A small vectorised z-buffer triangle rasteriser in numpy (no OpenGL on these machines).

Pixel centres sit at integer coordinates (x = column, y = row), the convention of
cv2.remap, so attributes interpolated here can be used as remap coordinates directly.
Larger z is nearer the camera (3DDFA's convention after its similar transform).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A pixel centre on a shared edge belongs to both triangles; this tolerance keeps it from
# belonging to neither through rounding (which would leave pinholes in the mesh).
_INSIDE_EPS = 1e-5


@dataclass(frozen=True)
class Raster:
    """What a mesh covers in an image of `shape` (H, W).

    Attributes:
        triangle: (H, W) int32 index of the nearest triangle at each pixel, -1 where empty.
        bary: (H, W, 3) float32 barycentric weights of that triangle's three vertices.
        depth: (H, W) float32 depth of the nearest surface, -inf where empty.
    """

    triangle: np.ndarray
    bary: np.ndarray
    depth: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(H, W) bool: pixels the mesh covers."""
        return self.triangle >= 0

    def interpolate(self, triangles: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per-vertex `values` (N, C) interpolated at every covered pixel: (H, W, C) float32,
        zero where the mesh does not reach."""
        values = np.asarray(values, dtype=np.float32).reshape(len(values), -1)
        out = np.zeros(self.triangle.shape + (values.shape[1],), dtype=np.float32)
        rows, cols = np.nonzero(self.mask)
        corners = triangles[self.triangle[rows, cols]]  # (P, 3) vertex ids
        weights = self.bary[rows, cols]  # (P, 3)
        out[rows, cols] = np.einsum("pk,pkc->pc", weights, values[corners])
        return out


def rasterize(vertices: np.ndarray, triangles: np.ndarray, shape: tuple[int, int]) -> Raster:
    """Renders the nearest triangle at every pixel centre of an image of `shape`.

    Args:
        vertices: (N, 3) x, y in pixels and z (larger = nearer).
        triangles: (T, 3) vertex indices.
        shape: (H, W) of the image.

    Returns:
        The per-pixel triangle index, barycentric weights and depth.
    """
    height, width = int(shape[0]), int(shape[1])
    tri = np.asarray(triangles, dtype=np.int64)
    corners = np.asarray(vertices, dtype=np.float64)[tri]  # (T, 3, 3)
    xs, ys = corners[:, :, 0], corners[:, :, 1]

    # Integer pixel span of each triangle's bounding box, clipped to the image (element-wise
    # min/max over the three corners: much faster than reducing along a length-3 axis).
    x0 = np.maximum(np.ceil(np.minimum(np.minimum(xs[:, 0], xs[:, 1]), xs[:, 2])), 0).astype(np.int64)
    x1 = np.minimum(np.floor(np.maximum(np.maximum(xs[:, 0], xs[:, 1]), xs[:, 2])), width - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(np.minimum(np.minimum(ys[:, 0], ys[:, 1]), ys[:, 2])), 0).astype(np.int64)
    y1 = np.minimum(np.floor(np.maximum(np.maximum(ys[:, 0], ys[:, 1]), ys[:, 2])), height - 1).astype(np.int64)
    span_w, span_h = x1 - x0 + 1, y1 - y0 + 1
    # Twice the signed area; ~0 for degenerate (edge-on) triangles, which cover nothing.
    area = (xs[:, 1] - xs[:, 0]) * (ys[:, 2] - ys[:, 0]) - (xs[:, 2] - xs[:, 0]) * (ys[:, 1] - ys[:, 0])
    keep = np.flatnonzero((span_w > 0) & (span_h > 0) & (np.abs(area) > 1e-9))

    triangle = np.full((height, width), -1, dtype=np.int32)
    bary = np.zeros((height, width, 3), dtype=np.float32)
    depth = np.full((height, width), -np.inf, dtype=np.float32)
    if keep.size == 0:
        return Raster(triangle, bary, depth)

    # One fragment per (triangle, pixel of its bounding box).
    counts = span_w[keep] * span_h[keep]
    frag_tri = np.repeat(keep, counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    offset = np.arange(frag_tri.size, dtype=np.int64) - starts
    fw = span_w[frag_tri]
    px = x0[frag_tri] + offset % fw
    py = y0[frag_tri] + offset // fw

    # Barycentric weights from edge functions.
    cx, cy = xs[frag_tri], ys[frag_tri]
    inv = 1.0 / area[frag_tri]
    b1 = ((px - cx[:, 0]) * (cy[:, 2] - cy[:, 0]) - (cx[:, 2] - cx[:, 0]) * (py - cy[:, 0])) * inv
    b2 = ((cx[:, 1] - cx[:, 0]) * (py - cy[:, 0]) - (px - cx[:, 0]) * (cy[:, 1] - cy[:, 0])) * inv
    b0 = 1.0 - b1 - b2
    inside = (b0 >= -_INSIDE_EPS) & (b1 >= -_INSIDE_EPS) & (b2 >= -_INSIDE_EPS)
    frag_tri, px, py = frag_tri[inside], px[inside], py[inside]
    weights = np.stack([b0[inside], b1[inside], b2[inside]], axis=1)
    z = np.einsum("fk,fk->f", weights, corners[frag_tri, :, 2])

    # z-buffer: per pixel keep the nearest fragment (ties: the lower triangle index, so the
    # result does not depend on sort stability).
    pixel = py * width + px
    order = np.lexsort((frag_tri, -z, pixel))
    first = np.ones(order.size, dtype=bool)
    first[1:] = pixel[order[1:]] != pixel[order[:-1]]
    win = order[first]
    triangle.reshape(-1)[pixel[win]] = frag_tri[win]
    bary.reshape(-1, 3)[pixel[win]] = np.clip(weights[win], 0.0, 1.0)
    depth.reshape(-1)[pixel[win]] = z[win]
    return Raster(triangle, bary, depth)


def vertex_visibility(vertices: np.ndarray, raster: Raster, tolerance) -> np.ndarray:
    """(N,) bool: vertices inside the image that no other part of the mesh hides, i.e.
    within `tolerance` (depth units; a scalar or one per vertex) of the z-buffer at their
    nearest pixel centre. On a steep surface the buffer there differs from the vertex's own
    depth by the slope times up to half a pixel: give such vertices a larger tolerance."""
    height, width = raster.depth.shape
    col = np.rint(vertices[:, 0]).astype(np.int64)
    row = np.rint(vertices[:, 1]).astype(np.int64)
    inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float32), (len(vertices),))
    visible = np.zeros(len(vertices), dtype=bool)
    front = raster.depth[row[inside], col[inside]]
    visible[inside] = vertices[inside, 2] >= front - tolerance[inside]
    return visible
