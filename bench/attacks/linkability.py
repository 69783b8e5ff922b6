"""Linkability: can an observer tell that two anonymized photos show the same person?

Every unordered pair of fakes is labelled genuine (one person) or impostor (two people), and
a recognizer's distance is the score: ROC AUC (0.5 = unlinkable, 1 = perfectly linkable) and
the TAR at a fixed FAR (the share of one person's fake pairs linked while at most FAR of the
different-person pairs are). This is the unlinkability notion of ISO/IEC 24745 measured with
the verification metrics of bench.verification; the query strategy decides it: `furthest`
tends to give one person the same target in every photo, `random_furthest` a fresh one.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.attacks.pairs import within_distances
from bench.verification import has_both_classes, roc_auc, tar_at_far


@dataclass(frozen=True)
class Linkability:
    """Attributes:
        faces: fakes compared; identities: people among them.
        genuine_pairs, impostor_pairs: pairs of one person / of two people.
        roc_auc: area under the ROC of the distances (smaller = same person); nan when a
            class has no pair.
        tar: the highest TAR at FAR <= the target; far: that point's FAR (nan, nan without
            both classes).
    """

    faces: int
    identities: int
    genuine_pairs: int
    impostor_pairs: int
    roc_auc: float
    tar: float
    far: float


def linkability(embeddings: np.ndarray, identities, metric: str, far: float = 1e-2) -> Linkability:
    """Linkability of a set of fakes.

    Args:
        embeddings: (N, D) one recognizer's embeddings of N fakes.
        identities: (N,) whose face each fake replaced.
        metric: deepface's distance name.
        far: the FAR at which TAR is read.
    """
    _, _, same, d = within_distances(embeddings, identities, metric)
    n_people = len(set(np.asarray(identities, dtype=object).tolist()))
    nan = float("nan")
    if not has_both_classes(same):
        return Linkability(len(embeddings), n_people, int(same.sum()), int((~same).sum()), nan, nan, nan)
    at = tar_at_far(d, same, float(far))
    return Linkability(len(embeddings), n_people, int(same.sum()), int((~same).sum()),
                       roc_auc(d, same), at.tar, at.far)


def shared_target_share(targets, identities) -> float:
    """Of the pairs of one person's fakes, the share whose fakes carry the same synthetic
    target (what makes them linkable); nan without such pairs. Empty targets never match."""
    targets = np.asarray([str(t) if t else "" for t in targets], dtype=object)
    ids = np.asarray(identities, dtype=object)
    i, j = np.triu_indices(len(ids), k=1)
    genuine = ids[i] == ids[j]
    if not genuine.any():
        return float("nan")
    same_target = (targets[i] == targets[j]) & (targets[i] != "")
    return float(same_target[genuine].mean())
