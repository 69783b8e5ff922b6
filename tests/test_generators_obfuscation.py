"""Blur and pixelate: they change the face region (strongly enough to remove detail), leave
every pixel outside it bit-identical, and refuse faces they cannot cover."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from bench.generators.base import Face, SwapFailed
from bench.generators.blur import GaussianBlur
from bench.generators.obfuscation import Region
from bench.generators.pixelate import Pixelate
from bench.registry import GENERATORS

BOX = np.array([150.0, 100.0, 250.0, 200.0], dtype=np.float32)  # a 100-pixel face
NO_TARGET = np.zeros((4, 4, 3), np.uint8)


def textured(height: int = 300, width: int = 400, seed: int = 0) -> np.ndarray:
    """A photo full of fine detail (seeded noise), so any smoothing is measurable."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def face(box=BOX) -> Face:
    box = np.asarray(box, dtype=np.float32)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return Face(box=box, landmarks=np.tile([cx, cy], (5, 1)).astype(np.float32))


def apply(generator, photo, box=BOX):
    return generator.swap(photo, face(box), NO_TARGET, face(box))


def core(image, box=BOX, keep=0.6):
    """The middle `keep` fraction of the face box."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * (1 - keep) / 2, (y2 - y1) * (1 - keep) / 2
    return image[int(y1 + my):int(y2 - my), int(x1 + mx):int(x2 - mx)]


def detail(image) -> float:
    """High-frequency energy: variance of the Laplacian."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def outside(image, box, expand):
    """All pixels outside the face box scaled by `expand`, flattened."""
    x1, y1, x2, y2 = box
    cx, cy, a, b = (x1 + x2) / 2, (y1 + y2) / 2, expand * (x2 - x1) / 2, expand * (y2 - y1) / 2
    keep = np.ones(image.shape[:2], bool)
    keep[max(int(cy - b) - 1, 0):int(cy + b) + 2, max(int(cx - a) - 1, 0):int(cx + a) + 2] = False
    return image[keep]


@pytest.mark.parametrize("generator", [GaussianBlur(), Pixelate()], ids=["blur", "pixelate"])
def test_only_the_face_region_changes(generator):
    photo = textured()
    result = apply(generator, photo)
    assert result.shape == photo.shape and result.dtype == np.uint8
    np.testing.assert_array_equal(outside(result, BOX, generator.expand), outside(photo, BOX, generator.expand))
    assert detail(core(result)) < 0.05 * detail(core(photo))  # the face's detail is gone
    assert generator.uses_target is False


def test_the_photo_itself_is_not_modified():
    photo = textured()
    before = photo.copy()
    apply(GaussianBlur(), photo)
    np.testing.assert_array_equal(photo, before)


def test_stronger_blur_removes_more_detail():
    photo = textured()
    weak, strong = apply(GaussianBlur(sigma=0.02), photo), apply(GaussianBlur(sigma=0.2), photo)
    assert detail(core(strong)) < detail(core(weak)) < detail(core(photo))


def test_blur_is_deterministic():
    photo = textured()
    np.testing.assert_array_equal(apply(GaussianBlur(), photo), apply(GaussianBlur(), photo))


@pytest.mark.parametrize("shape", ["ellipse", "box"])
def test_the_mask_fades_out_smoothly_over_the_feather(shape):
    region = Region.from_box(BOX, expand=1.3)
    bounds = region.bounds(0, (300, 400))
    soft, hard = region.alpha(bounds, shape, 0.3), region.alpha(bounds, shape, 0.0)
    row = soft[int(region.cy) - bounds[1], :]  # a row through the centre, left to right
    middle = len(row) // 2
    assert row[middle] == 1.0 and row[0] == 0.0 and row[-1] == 0.0
    assert np.all(np.diff(row[: middle + 1]) >= 0)  # rises monotonically towards the centre
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 100  # a real ramp, not a hard step
    assert set(np.unique(hard)) <= {0.0, 1.0}


def test_large_face_blurs_quickly_and_fully():
    photo = textured(1600, 1600)
    box = np.array([200.0, 200.0, 1400.0, 1400.0], np.float32)
    start = time.perf_counter()
    result = apply(GaussianBlur(), photo, box)
    assert time.perf_counter() - start < 3.0  # a 1200-pixel face, sigma 120 px
    assert detail(core(result, box)) < 0.01 * detail(core(photo, box))


def test_pixelate_makes_uniform_blocks_on_a_grid_of_the_face():
    photo = textured()
    generator = Pixelate(blocks=5, expand=1.0)
    result = apply(generator, photo)
    # 5 blocks across a 100-pixel region: 20-pixel blocks starting at the box's corner.
    for by in range(5):
        for bx in range(5):
            block = result[102 + 20 * by:118 + 20 * by, 152 + 20 * bx:168 + 20 * bx]
            assert (block == block[0, 0]).all(), (by, bx)
            # each block is the mean colour of what it covers
            source = photo[101 + 20 * by:120 + 20 * by, 151 + 20 * bx:170 + 20 * bx]
            assert np.abs(block[0, 0].astype(float) - source.reshape(-1, 3).mean(0)).max() < 8
    assert len(np.unique(core(result, keep=0.9).reshape(-1, 3), axis=0)) <= 36


def test_fewer_blocks_is_coarser():
    photo = textured()
    coarse, fine = apply(Pixelate(blocks=4), photo), apply(Pixelate(blocks=16), photo)
    colours = lambda img: len(np.unique(core(img).reshape(-1, 3), axis=0))
    assert colours(coarse) < colours(fine)


@pytest.mark.parametrize("generator", [GaussianBlur(), Pixelate()], ids=["blur", "pixelate"])
def test_a_face_cut_by_the_border_is_still_covered(generator):
    photo = textured()
    box = np.array([-40.0, 230.0, 60.0, 330.0], np.float32)  # off the left and bottom edges
    result = apply(generator, photo, box)
    visible = (slice(240, 300), slice(0, 50))
    assert detail(result[visible]) < 0.1 * detail(photo[visible])


@pytest.mark.parametrize("generator", [GaussianBlur(), Pixelate()], ids=["blur", "pixelate"])
@pytest.mark.parametrize(
    "box",
    [[500, 500, 600, 600], [150, 100, 150, 200], [np.nan, 0, 10, 10]],
    ids=["outside", "empty", "nan"],
)
def test_uncoverable_face_raises_swap_failed(generator, box):
    with pytest.raises(SwapFailed):
        apply(generator, textured(), np.asarray(box, np.float32))


@pytest.mark.parametrize("kwargs", [{"expand": 0}, {"shape": "star"}, {"feather": 1.5}, {"sigma": 0}])
def test_bad_settings_fail_at_construction(kwargs):
    with pytest.raises(ValueError):
        GaussianBlur(**kwargs)
    with pytest.raises(ValueError):
        Pixelate(blocks=0)


@pytest.mark.parametrize("name", ["blur", "pixelate"])
def test_configs_build_obfuscations(name):
    generator = GENERATORS.build(name)
    assert generator.uses_target is False
    result = generator.swap(textured(), face(), NO_TARGET, face())
    assert detail(core(result)) < 0.05 * detail(core(textured()))
