"""The MFMC platform as data (§3.3): users, a friendship graph, each user's rule, enrolled
face embeddings, photos with an uploader and their faces, and tags with a consent state.

Nothing here renders, stores or fakes anything: the access models (bench.access.base) act
on a Platform; the ground truth of who may see whom (`Platform.allows`) lives here, once,
so that every model is measured against the same answer.

Vocabulary:
    owner     the person a face belongs to (ground truth); None for a face of someone
              without an account (a stranger on the photo). Models never read it: they
              know faces only through tags (authorization, proxy) or their recognizer (rules).
    rule      who may see a user's real face (RULES): nobody, friends, friends_of_friends,
              everyone, allow_list (the user's `allow` set). The owner always may, unless the
              face is withdrawn.
    withdrawn a face whose owner untagged it (or declined the tag): nobody may see it real.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

RULES = ("nobody", "friends", "friends_of_friends", "everyone", "allow_list")


@dataclass
class User:
    """One account. `allow` is the explicit allow-list (rule allow_list); `enrolment` is an
    (E, D) float32 array of the user's enrolled face embeddings (E may be 0)."""

    user_id: str
    rule: str = "friends"
    allow: frozenset = frozenset()
    enrolment: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"user {self.user_id}: unknown rule {self.rule!r}; known: {', '.join(RULES)}")


@dataclass
class PlatformFace:
    """One face of one photo: box (x1, y1, x2, y2) and five landmarks (5, 2) in photo
    pixels; `owner` is the ground-truth user id (None: no account); `embedding` is the
    recognizer's (D,) embedding of this face when one was computed (else empty)."""

    face_id: str
    photo_id: str
    box: tuple[float, float, float, float]
    owner: str | None
    landmarks: np.ndarray | None = None
    embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def int_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box rounded outwards and clipped to the photo: (x1, y1, x2, y2), x2/y2 exclusive."""
        x1, y1, x2, y2 = self.box
        return (max(0, int(np.floor(x1))), max(0, int(np.floor(y1))),
                min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2))))


@dataclass
class Photo:
    """One upload: its uploader, its faces in order, and where its pixels come from:
    `image` (an HxWx3 uint8 RGB array) or `path` (read on demand by the caller)."""

    photo_id: str
    uploader: str
    faces: list[PlatformFace]
    image: np.ndarray | None = None
    path: str | None = None
    note: str = ""  # e.g. "composed side by side from 3 identities' photos"


class Platform:
    """Users, friendships, photos and faces; the ground truth of `allows`.

    Args:
        users: the accounts.
        friendships: undirected pairs of user ids.
        photos: the uploads (faces inside).

    Raises:
        ValueError: a friendship names an unknown user or a user and themself, or ids repeat
            (bench.access.loader turns these into messages naming the line of a file).
    """

    def __init__(self, users: list[User], friendships: list[tuple[str, str]], photos: list[Photo]):
        self.users: dict[str, User] = {}
        for user in users:
            if user.user_id in self.users:
                raise ValueError(f"duplicate user id {user.user_id!r}")
            self.users[user.user_id] = user
        self.graph = nx.Graph()
        self.graph.add_nodes_from(self.users)
        for a, b in friendships:
            if a == b:
                raise ValueError(f"user {a!r} cannot be their own friend")
            for u in (a, b):
                if u not in self.users:
                    raise ValueError(f"friendship names unknown user {u!r}")
            self.graph.add_edge(a, b)
        self.photos: dict[str, Photo] = {}
        self.faces: dict[str, PlatformFace] = {}
        for photo in photos:
            self.add_photo(photo)
        self._fof: dict[str, frozenset] = {}

    def add_photo(self, photo: Photo) -> None:
        if photo.photo_id in self.photos:
            raise ValueError(f"duplicate photo id {photo.photo_id!r}")
        if photo.uploader not in self.users:
            raise ValueError(f"photo {photo.photo_id!r}: unknown uploader {photo.uploader!r}")
        for face in photo.faces:
            if face.face_id in self.faces:
                raise ValueError(f"duplicate face id {face.face_id!r}")
            if face.owner is not None and face.owner not in self.users:
                raise ValueError(f"face {face.face_id!r}: unknown owner {face.owner!r} (null: no account)")
        self.photos[photo.photo_id] = photo
        for face in photo.faces:
            self.faces[face.face_id] = face

    def friends(self, user: str) -> frozenset:
        return frozenset(self.graph.neighbors(user)) if user in self.graph else frozenset()

    def friends_of_friends(self, user: str) -> frozenset:
        """Friends and their friends (the user excluded); cached, the graph being fixed."""
        if user not in self._fof:
            near = set(self.friends(user))
            for f in list(near):
                near |= self.friends(f)
            near.discard(user)
            self._fof[user] = frozenset(near)
        return self._fof[user]

    def rule_permits(self, owner: str, viewer: str) -> bool:
        """Whether `owner`'s rule lets `viewer` see their real face (the owner always may)."""
        if viewer == owner:
            return True
        user = self.users[owner]
        if user.rule == "everyone":
            return viewer in self.users
        if user.rule == "friends":
            return self.graph.has_edge(owner, viewer)
        if user.rule == "friends_of_friends":
            return viewer in self.friends_of_friends(owner)
        if user.rule == "allow_list":
            return viewer in user.allow
        return False  # nobody

    def allows(self, face_id: str, viewer: str, withdrawn: frozenset | set = frozenset()) -> bool:
        """Ground truth: may `viewer` see face `face_id` real? Never for a face of no account
        or a withdrawn face; else the owner's rule decides."""
        face = self.faces[face_id]
        if face.owner is None or face_id in withdrawn:
            return False
        return self.rule_permits(face.owner, viewer)

    def embedding_dim(self) -> int:
        dims = {u.enrolment.shape[1] for u in self.users.values() if u.enrolment.size}
        return dims.pop() if len(dims) == 1 else 0
