"""Alignment geometry: a face moved by a known similarity lands back on the template."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from bench.align import ARCFACE_TEMPLATE, align_face, similarity_transform, template


def similarity(angle_deg: float, scale: float, shift) -> np.ndarray:
    m = cv2.getRotationMatrix2D((0, 0), angle_deg, scale)
    m[:, 2] = shift
    return m


def apply(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("size", [112, 160, 224])
@pytest.mark.parametrize("angle,scale,shift", [(0, 1, (0, 0)), (25, 2.5, (300, 40)), (-40, 0.6, (50, 90))])
def test_transform_recovers_a_known_similarity(size, angle, scale, shift):
    landmarks = apply(similarity(angle, scale, shift), template(size))
    m = similarity_transform(landmarks, size)
    np.testing.assert_allclose(apply(m, landmarks), template(size), atol=0.05)


def test_template_112_is_insightfaces():
    np.testing.assert_allclose(template(112), ARCFACE_TEMPLATE, atol=1e-4)


def test_margin_zooms_out_about_the_centre():
    tight, loose = template(224), template(224, margin=0.5)
    centre = np.array([112, 112])
    ratio = np.linalg.norm(loose - centre, axis=1) / np.linalg.norm(tight - centre, axis=1)
    np.testing.assert_allclose(ratio, 1 / 1.5, rtol=1e-5)


def test_aligned_crop_puts_marked_eyes_on_the_template():
    # Paint five dots at known landmark positions in a rotated, scaled face; after alignment
    # the dots must sit on the template points.
    m = similarity(30, 3.0, (400, 100))
    landmarks = apply(m, ARCFACE_TEMPLATE.astype(np.float64))
    image = np.zeros((800, 800, 3), np.uint8)
    for x, y in landmarks:
        cv2.circle(image, (int(round(x)), int(round(y))), 6, (255, 255, 255), -1)
    crop = align_face(image, landmarks, size=112)
    assert crop.shape == (112, 112, 3)
    for x, y in ARCFACE_TEMPLATE:
        assert crop[int(round(y)), int(round(x))].mean() > 200


@pytest.mark.parametrize("size", [112, 160])
@pytest.mark.parametrize("bad", [np.full((5, 2), np.nan), np.zeros((5, 2))])
def test_degenerate_landmarks_raise_value_error(bad, size):
    with pytest.raises(ValueError):
        align_face(np.zeros((50, 50, 3), np.uint8), bad, size=size)
