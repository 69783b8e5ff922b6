"""Who makes a fake and who recognises a face: the two interfaces an access model is given.

Fakers (one face of one photo replaced):
    PaintFaker       paints the face box one colour derived from the face and the viewer
                     key: trivial, instant, and never equal to a real face (tests).
    AnonymizerFaker  bench.anonymizer.replace_face: the configured generator (conf/generator)
                     with its target, and `anonymize.fallback` where it fails: the fakes of
                     the anonymize stage, made the same way here.
    MemoFaker        another faker behind a memo keyed by content (faker, face, key, input
                     pixels): the platform stage's access models share one, so a fake they
                     would each make from the same pixels is computed once per run.
Matchers (the uploader's client recognising a face among the embeddings it holds, §3.3.3):
    PerfectMatcher   the ground-truth owner, if the client holds their embeddings (tests,
                     and a human uploader recognising their friends in the proxy model).
    EmbeddingMatcher the nearest enrolled user by distance, if within the threshold.
"""
from __future__ import annotations

import abc
import hashlib
import logging
from types import SimpleNamespace
from typing import Callable

import numpy as np

from bench.access.platform import PlatformFace
from bench.status import SWAPPED

log = logging.getLogger(__name__)


class Faker(abc.ABC):
    name: str = "faker"

    @abc.abstractmethod
    def fake(self, image: np.ndarray, face: PlatformFace, key: str) -> tuple[np.ndarray, str]:
        """(a copy of `image` with `face` replaced, status from bench.status).

        `key` names the fake ("*": shared by every viewer; else the viewer it is made for),
        so a faker may give each key a different synthetic person. Never raises: a face
        nothing could cover comes back unchanged with a NOT ANONYMIZED status.
        """


class PaintFaker(Faker):
    name = "paint"

    def fake(self, image, face, key):
        out = image.copy()
        x1, y1, x2, y2 = face.int_box(image.shape[1], image.shape[0])
        digest = hashlib.sha256(f"{face.face_id}|{key}".encode()).digest()
        out[y1:y2, x1:x2] = np.frombuffer(digest[:3], np.uint8)
        return out, SWAPPED


def landmarks_of(face: PlatformFace) -> np.ndarray:
    """The face's five landmarks, or ones placed on the ArcFace template inside its box
    (a hand-written platform file may give boxes only)."""
    if face.landmarks is not None and np.asarray(face.landmarks).size == 10:
        return np.asarray(face.landmarks, np.float32).reshape(5, 2)
    from bench.align import ARCFACE_TEMPLATE

    x1, y1, x2, y2 = face.box
    return (ARCFACE_TEMPLATE / 112.0 * [x2 - x1, y2 - y1] + [x1, y1]).astype(np.float32)


class AnonymizerFaker(Faker):
    """Faces replaced through bench.anonymizer (generator + fallback).

    Args:
        generator, fallback: prepared bench.generators components (fallback may be None).
        target_for: (face, key) -> a target row (target_image, target_box, target_landmarks)
            or None; only called when the generator takes a target.
    """

    def __init__(self, generator, fallback, target_for: Callable | None = None):
        self.generator, self.fallback, self.target_for = generator, fallback, target_for
        self.name = generator.name

    def fake(self, image, face, key):
        from bench.anonymizer import replace_face

        x1, y1, x2, y2 = face.box
        row = SimpleNamespace(x1=x1, y1=y1, x2=x2, y2=y2, landmarks=landmarks_of(face).reshape(-1))
        target = self.target_for(face, key) if (self.generator.uses_target and self.target_for) else None
        return replace_face(image, row, target, self.generator, self.fallback)


class MemoFaker(Faker):
    """`inner`'s fakes, each computed once: a call with the same faker, face (id, box,
    landmarks), key and input pixels (a BLAKE2b digest of their bytes, shape and dtype)
    returns the stored result, so a different input never returns a stale fake. Only the
    region the fake changed is kept (the rest is the input, which the key pins).

    The memo counts computations (`computed`) and calls answered from it (`reused`); an
    access model's swap counts are of the fakes it asks for, whichever answers them.
    Assumes `inner` is deterministic in (image, face, key), as bench.anonymizer is (a
    target is picked with a seed derived from face and key).

    Args:
        inner: the faker whose results are kept.
    """

    def __init__(self, inner: Faker):
        self.inner = inner
        self.name = inner.name
        self.computed = 0
        self.reused = 0
        self._memo: dict[tuple, tuple[tuple[int, int, int, int] | None, np.ndarray | None, str]] = {}

    def memo_key(self, image: np.ndarray, face: PlatformFace, key: str) -> tuple:
        pixels = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
        pixels.update(f"{image.shape}|{image.dtype}".encode())
        landmarks = b"" if face.landmarks is None else np.asarray(face.landmarks, np.float64).tobytes()
        return (self.inner.name, face.face_id, tuple(map(float, face.box)), landmarks, key,
                pixels.hexdigest())

    def fake(self, image, face, key):
        memo_key = self.memo_key(image, face, key)
        hit = self._memo.get(memo_key)
        if hit is None:
            after, status = self.inner.fake(image, face, key)
            box, patch = changed_region(image, after)
            self._memo[memo_key] = hit = (box, patch, status)
            self.computed += 1
        else:
            self.reused += 1
        box, patch, status = hit
        out = image.copy()
        if box is not None:
            x1, y1, x2, y2 = box
            out[y1:y2, x1:x2] = patch
        return out, status

    def stats(self) -> dict:
        """{"computed": fakes made by `inner`, "reused": calls answered from the memo}."""
        return {"computed": self.computed, "reused": self.reused}


def changed_region(before: np.ndarray, after: np.ndarray):
    """((x1, y1, x2, y2), after's pixels there) for the bounding box of the pixels that
    differ, x2/y2 exclusive; (None, None) when none do.

    Raises:
        ValueError: the two images differ in shape (a faker must keep the photo's size).
    """
    if before.shape != after.shape:
        raise ValueError(f"a fake changed the image's shape: {before.shape} -> {after.shape}")
    changed = before != after
    if changed.ndim == 3:
        changed = changed.any(axis=2)
    if not changed.any():
        return None, None
    ys, xs = np.nonzero(changed)
    x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return (x1, y1, x2, y2), after[y1:y2, x1:x2].copy()


class Matcher(abc.ABC):
    name: str = "matcher"

    @abc.abstractmethod
    def match(self, face: PlatformFace, candidates: dict[str, np.ndarray]) -> str | None:
        """The user among `candidates` ({user: (E, D) embeddings}) this face is, or None."""


class PerfectMatcher(Matcher):
    name = "perfect"

    def match(self, face, candidates):
        return face.owner if face.owner in candidates else None


def cosine_distances(vector: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """1 - cos between one (D,) vector and each row of (E, D): deepface's cosine distance."""
    v = np.asarray(vector, np.float64)
    m = np.asarray(matrix, np.float64)
    denom = np.linalg.norm(m, axis=1) * np.linalg.norm(v)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (m @ v) / denom


class EmbeddingMatcher(Matcher):
    """The enrolled user nearest to the face's embedding (min over their enrolment), when
    that distance is <= `threshold` (deepface's rule). A face without an embedding matches
    nobody (it is faked: unknown)."""

    def __init__(self, threshold: float, name: str = "embedding"):
        self.threshold = float(threshold)
        self.name = name

    def nearest(self, face: PlatformFace, candidates: dict[str, np.ndarray]) -> tuple[str | None, float]:
        if face.embedding is None or np.asarray(face.embedding).size == 0:
            return None, float("nan")
        best, best_d = None, float("inf")
        for user in sorted(candidates):
            emb = candidates[user]
            if emb.size == 0 or emb.shape[1] != face.embedding.shape[0]:
                continue
            d = float(np.nanmin(cosine_distances(face.embedding, emb)))
            if d < best_d:
                best, best_d = user, d
        return best, best_d

    def match(self, face, candidates):
        user, d = self.nearest(face, candidates)
        return user if user is not None and d <= self.threshold else None
