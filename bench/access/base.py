"""The access-model protocol (conf/access/): how a platform decides, stores and renders
which faces each viewer sees real (MFMC §3.3).

A model is constructed from config without touching anything, then `open()`ed on a
Platform with its Storage (SQLite: server + one database per client), a Faker and a
Matcher. It then takes the workload's events in order:

    setup()                      once: e.g. enrolled embeddings synced to the devices
    upload(photo_id)             the uploader's client sends the photo
    tag(face_id, user)           the uploader tags a face (a user with an account)
    consent(face_id)             the tagged user approves
    untag(face_id)               the owner removes the tag / declines: nobody sees it real
    view(photo_id, viewer)       what one viewer receives -> View

Every face of every View is either shown real or covered by a fake (or the fallback
obfuscation); a fake is made once per (face, key) and reused from the fakes table, the key
being "*" unless `per_viewer_fakes` asks for one fake per viewer. `swaps` counts the faker
calls per phase (upload, view, untag). Models learn who a face is only through tags or their
matcher, never from the ground truth (bench.access.platform.Platform.allows), which is what
they are measured against (bench.access.simulate).
"""
from __future__ import annotations

import abc
from collections import Counter
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench.access.fakers import Faker, Matcher
from bench.access.platform import Photo, Platform, PlatformFace
from bench.access.storage import SHARED_FAKE, Database, Patch, Storage
from bench.errors import BenchError
from bench.status import is_left_real


class AccessError(BenchError):
    """An event the model cannot take (unknown photo or face, a view before the upload)."""


@dataclass(frozen=True)
class FaceOutcome:
    """How one face reached one viewer: `real` (its true pixels) or not; `how` says why
    (e.g. "rule friends permits", "fake: unknown face", "fake failed: NOT ANONYMIZED")."""

    face_id: str
    real: bool
    how: str


@dataclass
class View:
    """What one viewer receives of one photo: the pixels (None when not rendered) and one
    outcome per face, in the photo's face order."""

    photo_id: str
    viewer: str
    faces: list[FaceOutcome]
    image: np.ndarray | None = None


def patch_from(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int], status: str) -> Patch:
    """The region a faker changed, grown to cover the whole face box: the fake's footprint."""
    changed = np.any(before != after, axis=2)
    x1, y1, x2, y2 = box
    if changed.any():
        ys, xs = np.nonzero(changed)
        x1, y1 = min(x1, int(xs.min())), min(y1, int(ys.min()))
        x2, y2 = max(x2, int(xs.max()) + 1), max(y2, int(ys.max()) + 1)
    return Patch(x1, y1, np.ascontiguousarray(after[y1:y2, x1:x2]), status)


def render(base: np.ndarray, real: list[tuple[int, int, int, int]],
           fakes: list[tuple[tuple[int, int, int, int], Patch]]) -> np.ndarray:
    """The viewer's image: `base` with each fake pasted, real boxes restored from `base`
    where a neighbour's fake spilled over them, and each faked box pasted last, so that a
    faked face never shows a real pixel even where two boxes overlap."""
    out = base.copy()
    for _, patch in fakes:
        patch.paste(out)
    for x1, y1, x2, y2 in real:
        out[y1:y2, x1:x2] = base[y1:y2, x1:x2]
    for box, patch in fakes:
        patch.paste(out, clip=box)
    return out


class AccessModel(abc.ABC):
    """Attributes:
        name: the config stem (conf/access/<name>.yaml); the `access` column of results.
        section: where the paper describes the model.
        per_viewer_fakes: one fake per (face, viewer) instead of one per face.
    """

    name: str = "access"
    section: str = "§3.3"
    # True when the model's matcher is a face recognizer on a device (rules, §3.3.3): its
    # errors are measured over thresholds; False when a person recognises (proxy) or tags do.
    uses_recognizer: bool = False

    def __init__(self, per_viewer_fakes: bool = False):
        self.per_viewer_fakes = bool(per_viewer_fakes)
        self.swaps: Counter = Counter()
        self.platform: Platform | None = None

    def open(self, platform: Platform, storage: Storage, faker: Faker, matcher: Matcher,
             read_photo: Callable[[Photo], np.ndarray]) -> "AccessModel":
        """Attaches the model to a platform; returns self."""
        self.platform, self.storage, self.faker, self.matcher = platform, storage, faker, matcher
        self.read_photo = read_photo
        self.swaps = Counter()
        self.uploaded: set[str] = set()
        return self

    # ---- events
    def setup(self) -> None:
        """Before the first upload (default: nothing)."""

    @abc.abstractmethod
    def upload(self, photo_id: str) -> None: ...

    def tag(self, face_id: str, user: str) -> None:
        """Default: tags are not what this model decides by."""

    def consent(self, face_id: str) -> None:
        """Default: consent is not what this model decides by."""

    @abc.abstractmethod
    def untag(self, face_id: str) -> None: ...

    @abc.abstractmethod
    def view(self, photo_id: str, viewer: str, render_image: bool = True) -> View: ...

    # ---- shared machinery

    def untag_on_server(self, face_id: str) -> None:
        """The server forgets who a face is (models that keep tags there): the next view
        renders it as a face of nobody, i.e. fake."""
        if self.storage.server.face(face_id) is not None:
            self.storage.server.set_tag(face_id, None, "untagged")
    def photo(self, photo_id: str) -> Photo:
        if photo_id not in self.platform.photos:
            raise AccessError(f"unknown photo {photo_id!r}")
        return self.platform.photos[photo_id]

    def face(self, face_id: str) -> PlatformFace:
        if face_id not in self.platform.faces:
            raise AccessError(f"unknown face {face_id!r}")
        return self.platform.faces[face_id]

    def require_uploaded(self, photo_id: str) -> Photo:
        photo = self.photo(photo_id)
        if photo_id not in self.uploaded:
            raise AccessError(f"photo {photo_id!r} has not been uploaded yet")
        return photo

    def fake_key(self, viewer: str | None) -> str:
        return viewer if (self.per_viewer_fakes and viewer is not None) else SHARED_FAKE

    def make_fake(self, db: Database, image: np.ndarray, face: PlatformFace, key: str, phase: str) -> Patch:
        """The fake of `face` under `key` from `db`'s fakes table, else made from `image`
        by the faker (counted in swaps[phase]) and stored there."""
        patch = db.fake(face.face_id, key)
        if patch is None:
            after, status = self.faker.fake(image, face, key)
            self.swaps[phase] += 1
            box = face.int_box(image.shape[1], image.shape[0])
            patch = patch_from(image, after, box, status)
            db.put_fake(face.face_id, key, patch)
        return patch

    def apply_fake(self, image: np.ndarray, face: PlatformFace, key: str, phase: str) -> tuple[np.ndarray, str]:
        """`image` with `face` faked now (no cache: a fake made on a client and sent with the
        photo); counted in swaps[phase]."""
        after, status = self.faker.fake(image, face, key)
        self.swaps[phase] += 1
        return after, status

    @staticmethod
    def fake_outcome(face_id: str, patch_status: str, why: str) -> FaceOutcome:
        if is_left_real(patch_status):
            return FaceOutcome(face_id, True, f"fake failed ({why}): {patch_status}")
        return FaceOutcome(face_id, False, f"fake ({why}): {patch_status}")

    def server_view(self, photo: Photo, viewer: str, decide, render_image: bool) -> View:
        """The view the server renders from its stored photo: each face real when
        `decide(face, viewer)` gives (True, why), else covered by its fake (made from the
        stored photo on first need). Faces already faked inside the stored photo (not in its
        real_faces) stay as they are."""
        server = self.storage.server
        real_faces = set(server.real_faces(photo.photo_id))
        base = server.photo(photo.photo_id)[0] if render_image else None
        outcomes, real_boxes, fakes = [], [], []
        for face in photo.faces:
            if face.face_id not in real_faces:
                outcomes.append(FaceOutcome(face.face_id, False, "fake: faked before it reached the server"))
                continue
            show, why = decide(face, viewer)
            if show:
                outcomes.append(FaceOutcome(face.face_id, True, why))
                if render_image:
                    real_boxes.append(face.int_box(base.shape[1], base.shape[0]))
                continue
            if not render_image:  # decisions only (threshold curves): no pixels, no fake made
                outcomes.append(FaceOutcome(face.face_id, False, f"fake ({why})"))
                continue
            box = face.int_box(base.shape[1], base.shape[0])
            patch = self.make_fake(server, base, face, self.fake_key(viewer), "view")
            outcomes.append(self.fake_outcome(face.face_id, patch.status, why))
            fakes.append((box, patch))
        image = render(base, real_boxes, fakes) if render_image else None
        return View(photo.photo_id, viewer, outcomes, image)
