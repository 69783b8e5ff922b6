"""Verification math: deepface's distances and threshold rule, k-fold best-threshold
accuracy, ROC AUC and TAR@FAR on cases whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest
from deepface.modules.verification import find_distance

from bench import verification as v

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean", "euclidean_l2"])
def test_distances_are_deepfaces_single_pair_distances(metric):
    a, b = RNG.normal(size=(2, 7, 128)).astype(np.float32)
    got = v.pair_distances(a, b, metric)
    # deepface.verify compares embeddings that represent() returned as lists of floats.
    want = [float(find_distance(x.tolist(), y.tolist(), metric)) for x, y in zip(a, b)]
    assert got.tolist() == want
    assert v.distance(a[0], b[0], metric) == want[0]


def test_known_distances():
    a, b = np.array([3.0, 4.0]), np.array([6.0, 8.0])
    assert v.distance(a, b, "cosine") == 0.0
    assert v.distance(a, b, "euclidean") == 5.0
    assert v.distance(a, b, "euclidean_l2") == 0.0
    c = np.array([-4.0, 3.0])  # orthogonal to a
    assert v.distance(a, c, "cosine") == 1.0
    assert v.distance(a, c, "euclidean_l2") == pytest.approx(np.sqrt(2), abs=1e-6)


@pytest.mark.parametrize("metric, threshold", [("cosine", 0.07), ("euclidean", 0.6), ("euclidean_l2", 0.4)])
def test_verified_iff_distance_at_most_threshold(metric, threshold):
    distances = np.array([threshold - 1e-6, threshold, threshold + 1e-6, 0.0])
    assert v.is_verified(distances, threshold).tolist() == [True, True, False, True]


def test_threshold_rule_on_real_distances_matches_deepface_rounding():
    # Two vectors whose cosine distance is exactly at Dlib's 0.07 after deepface's rounding.
    angle = np.arccos(1 - 0.07)
    a, b = np.array([1.0, 0.0]), np.array([np.cos(angle), np.sin(angle)])
    d = v.distance(a, b, "cosine")
    assert d == 0.07 and v.is_verified([d], 0.07)[0]


def test_rates_at_threshold():
    d = np.array([0.1, 0.2, 0.5, 0.6, 0.3])
    same = np.array([True, True, False, False, False])
    r = v.rates_at(d, same, 0.3)
    assert (r.accuracy, r.tar, r.far) == (0.8, 1.0, 1 / 3)


def test_best_threshold_separates_separable_distances():
    d = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    t = v.best_threshold(d, same)
    assert t == pytest.approx(0.5)
    assert v.rates_at(d, same, t).accuracy == 1.0


def test_cross_validated_accuracy_separable_is_one():
    genuine = RNG.uniform(0.0, 0.4, 100)
    impostor = RNG.uniform(0.6, 1.0, 200)
    d = np.concatenate([genuine, impostor])
    same = np.arange(300) < 100
    cv = v.cross_validated_accuracy(d, same, folds=10, seed=0)
    assert cv.accuracy == 1.0 and cv.accuracy_std == 0.0 and 0.4 <= cv.threshold <= 0.6 and cv.folds == 10


def test_cross_validated_accuracy_inseparable_is_chance_level():
    # Same distribution for both classes, balanced: no threshold beats ~0.5 on held-out pairs.
    d = RNG.uniform(0, 1, 2000)
    same = RNG.permutation(np.arange(2000) < 1000)
    cv = v.cross_validated_accuracy(d, same, folds=10, seed=0)
    assert 0.45 <= cv.accuracy <= 0.56


def test_cross_validated_accuracy_is_deterministic_and_depends_on_seed():
    d = RNG.uniform(0, 1, 300)
    same = d + RNG.normal(0, 0.3, 300) < 0.5
    first = v.cross_validated_accuracy(d, same, seed=1)
    assert v.cross_validated_accuracy(d, same, seed=1) == first
    assert v.cross_validated_accuracy(d, same, seed=2) != first


def test_cross_validation_needs_enough_pairs():
    with pytest.raises(ValueError, match="too few"):
        v.cross_validated_accuracy([0.1, 0.2], [True, False], folds=10)


def test_roc_auc_known_cases():
    same = np.array([1, 1, 0, 0], dtype=bool)
    assert v.roc_auc([0.1, 0.2, 0.3, 0.4], same) == 1.0  # genuine closer: perfect
    assert v.roc_auc([0.3, 0.4, 0.1, 0.2], same) == 0.0  # reversed
    assert v.roc_auc([0.1, 0.3, 0.2, 0.4], same) == 0.75  # one of four genuine/impostor orderings wrong
    assert v.roc_auc([0.5, 0.5, 0.5, 0.5], same) == 0.5  # ties count half


def test_roc_points_use_the_distance_threshold_rule():
    d = np.array([0.1, 0.2, 0.3, 0.4])
    same = np.array([1, 0, 1, 0], dtype=bool)
    far, tar, thresholds = v.roc(d, same)
    for f, t, th in zip(far, tar, thresholds):
        r = v.rates_at(d, same, th)
        assert (r.far, r.tar) == (f, t)


def test_tar_at_far_known_cases():
    # 100 impostors: FAR 1e-2 allows exactly one false accept.
    impostor = np.linspace(0.5, 1.0, 100)
    impostor[0] = 0.05  # one impostor closer than every genuine pair
    genuine = np.array([0.1, 0.2, 0.3, 0.6])
    d = np.concatenate([genuine, impostor])
    same = np.arange(len(d)) < 4
    r = v.tar_at_far(d, same, 1e-2)
    assert (r.tar, r.far) == (0.75, 0.01)
    assert r.threshold == 0.3
    # A stricter FAR than 1/impostors can only be met at FAR 0.
    strict = v.tar_at_far(d, same, 1e-3)
    assert (strict.tar, strict.far) == (0.0, 0.0)


def test_has_both_classes():
    assert v.has_both_classes([True, False])
    assert not v.has_both_classes([True, True])
