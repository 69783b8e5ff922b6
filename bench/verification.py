"""Face verification math: distances exactly as deepface computes them, the default-threshold
decision, best-threshold accuracy by k-fold cross-validation (insightface's protocol), ROC AUC
and TAR at a fixed FAR.

Conventions (deepface's): a pair is verified as the same person when its distance is
<= the recognizer's threshold for that metric; distances come from
`deepface.modules.verification.find_distance` (which L2-normalizes for euclidean_l2 and rounds
to 6 decimals). Everything here is pure numpy/scikit-learn on arrays: no files, no models.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from deepface.modules.verification import find_distance

from bench.embeddings import na
from bench.errors import BenchError

# The metrics of the paper's tables, in the order the tables show them (Tables 1 and 3).
METRICS = ("cosine", "euclidean_l2", "euclidean")


def distance(a, b, metric: str) -> float:
    """The distance deepface.verify would report between two embeddings.

    deepface's represent() returns embeddings as lists of Python floats, so float32 vectors
    are widened to float64 first: the same arithmetic as deepface's own verify().
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"distance() takes two 1-D embeddings, got {a.shape} and {b.shape}")
    return float(find_distance(a, b, metric))


def pair_distances(left: np.ndarray, right: np.ndarray, metric: str) -> np.ndarray:
    """Row-wise distances between two (N, D) embedding matrices, one deepface call per pair.

    deepface's batch mode returns the full (M, N) matrix and normalizes with an epsilon
    that its single-pair path (the one verify() uses) does not; calling the single-pair path
    keeps every number identical to deepface.verify's.
    """
    left = np.asarray(left, dtype=np.float64)
    right = np.asarray(right, dtype=np.float64)
    if left.shape != right.shape or left.ndim != 2:
        raise ValueError(f"pair_distances() takes two (N, D) matrices of one shape, got {left.shape} and {right.shape}")
    return np.array([float(find_distance(a, b, metric)) for a, b in zip(left, right)], dtype=np.float64)


def is_verified(distances, threshold: float) -> np.ndarray:
    """deepface's decision: the same person when distance <= threshold."""
    return np.asarray(distances, dtype=np.float64) <= float(threshold)


def threshold_of(recognizer, metric: str) -> tuple[float, str | None]:
    """(threshold, None), or (nan, "n/a: why") when the recognizer has none for `metric`
    (e.g. a stand-in whose calibration has not been run)."""
    try:
        return float(recognizer.threshold(metric)), None
    except (BenchError, KeyError) as err:
        return float("nan"), na(f"no {metric} threshold: {err}")


@dataclass(frozen=True)
class Rates:
    """Outcome of one threshold on labelled pairs."""

    accuracy: float  # (true accepts + true rejects) / pairs
    tar: float  # genuine pairs verified / genuine pairs (nan without genuine pairs)
    far: float  # impostor pairs verified / impostor pairs (nan without impostor pairs)


def rates_at(distances, same, threshold: float) -> Rates:
    """Accuracy, TAR and FAR of the decision `distance <= threshold`."""
    same = np.asarray(same, dtype=bool)
    accepted = is_verified(distances, threshold)
    if accepted.shape != same.shape or same.size == 0:
        raise ValueError("distances and labels must be non-empty and of one length")
    genuine, impostor = same.sum(), (~same).sum()
    return Rates(
        accuracy=float((accepted == same).mean()),
        tar=float((accepted & same).sum() / genuine) if genuine else float("nan"),
        far=float((accepted & ~same).sum() / impostor) if impostor else float("nan"),
    )


def best_threshold(distances, same) -> float:
    """The threshold of highest accuracy on these pairs (the smallest one on ties).

    Candidates are exhaustive rather than insightface's fixed grid (np.arange(0, 4, 0.01),
    made for squared L2 of unit vectors), because deepface's euclidean distances run to ~100:
    below every distance, each midpoint between consecutive distinct distances, and the
    largest distance. Any threshold between two candidates classifies these pairs alike.
    """
    d = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    values = np.unique(d)
    candidates = np.concatenate([[np.nextafter(values[0], -np.inf)], (values[:-1] + values[1:]) / 2, [values[-1]]])
    genuine = np.sort(d[same])
    impostor = np.sort(d[~same])
    true_accepts = np.searchsorted(genuine, candidates, side="right")
    true_rejects = len(impostor) - np.searchsorted(impostor, candidates, side="right")
    accuracy = (true_accepts + true_rejects) / len(d)
    return float(candidates[int(np.argmax(accuracy))])


@dataclass(frozen=True)
class CrossValidated:
    """Best-threshold accuracy, estimated by k-fold cross-validation."""

    accuracy: float  # mean over folds of the test-fold accuracy
    accuracy_std: float
    threshold: float  # mean over folds of the threshold chosen on the training folds
    folds: int


def cross_validated_accuracy(distances, same, folds: int = 10, seed: int = 0) -> CrossValidated:
    """insightface's verification protocol (recognition/eval/verification.py, calculate_roc):
    for each of `folds` sklearn KFold splits, pick the best threshold on the training pairs
    and score it on the held-out pairs; report the mean and std of the held-out accuracies.

    insightface splits its pair list unshuffled because LFW's list is already arranged in
    balanced folds; ours is ordered by identity, so the split is shuffled with `seed`
    (deterministic) to keep genuine pairs spread over the folds.
    """
    from sklearn.model_selection import KFold  # here: sklearn takes 1.5 s to import, and most stages never need it

    d = np.asarray(distances, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    if len(d) < folds:
        raise ValueError(f"{len(d)} pairs are too few for {folds}-fold cross-validation")
    accuracies, thresholds = [], []
    for train, test in KFold(n_splits=folds, shuffle=True, random_state=seed).split(d):
        threshold = best_threshold(d[train], same[train])
        thresholds.append(threshold)
        accuracies.append(rates_at(d[test], same[test], threshold).accuracy)
    return CrossValidated(float(np.mean(accuracies)), float(np.std(accuracies)), float(np.mean(thresholds)), folds)


def roc(distances, same) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(far, tar, threshold) over every distinct threshold, the decision being distance <= threshold.

    The first point accepts nothing (threshold -inf), the last accepts every pair.
    """
    from sklearn.metrics import roc_curve

    far, tar, scores = roc_curve(np.asarray(same, dtype=bool), -np.asarray(distances, dtype=np.float64),
                                 drop_intermediate=False)
    return far, tar, -scores


def roc_auc(distances, same) -> float:
    """Area under the ROC curve (smaller distance = more likely the same person)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(np.asarray(same, dtype=bool), -np.asarray(distances, dtype=np.float64)))


@dataclass(frozen=True)
class TarAtFar:
    tar: float  # the highest TAR of any threshold whose FAR is <= the target
    far: float  # that threshold's FAR (<= the target; 0 when impostors are too few to resolve it)
    threshold: float


def tar_at_far(distances, same, far_target: float = 1e-2) -> TarAtFar:
    """TAR at FAR <= far_target, without interpolating between ROC points.

    With n impostor pairs the attainable FARs are multiples of 1/n: when 1/n > far_target
    only FAR = 0 qualifies, and `far` in the result says so.
    """
    far, tar, thresholds = roc(distances, same)
    ok = np.flatnonzero(far <= far_target)
    best = ok[np.argmax(tar[ok])]  # the first (smallest FAR) among equal TARs
    return TarAtFar(float(tar[best]), float(far[best]), float(thresholds[best]))


def has_both_classes(same) -> bool:
    same = np.asarray(same, dtype=bool)
    return bool(same.any() and (~same).any())
