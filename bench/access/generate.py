"""A platform and a workload generated from a seed (pure Python + numpy + networkx).

The people come from face samples: {identity: [FaceSample, ...]}, one sample being one
face cut out of a real photo (a tile: the face with some context). Identities listed in
`users` get an account (their enrolment given by the caller); the others are people without
an account who appear in photos. A group upload is composed side by side from several
identities' tiles: no identity-labelled group photos exist for the identities set, so the
generated uploads are collages, and each photo's `note` says so.

Workload (`generate_workload`): every photo is uploaded once; right after, its uploader tags
the faces they know (their own, always consented; a friend's with probability `p_tag`); a
tagged owner later consents (`p_consent`) or declines/untags (`p_untag`), and a consented
tag may be withdrawn later (`p_untag`); views are spread over the whole run, each of a photo
already uploaded, by a viewer drawn so that owners, friends, friends of friends and
strangers all appear.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import networkx as nx
import numpy as np

from bench.access.platform import RULES, Photo, Platform, PlatformFace, User

GRAPHS = ("watts_strogatz", "barabasi_albert", "erdos_renyi")


@dataclass(frozen=True)
class FaceSample:
    """One face of one identity: `tile` (h, w, 3) uint8 RGB, `box` (x1, y1, x2, y2) and
    `landmarks` (5, 2) in tile pixels, `embedding` (D,) of this face (may be empty), and
    `source` (the photo it was cut from)."""

    identity: str
    tile: np.ndarray
    box: tuple[float, float, float, float]
    landmarks: np.ndarray | None
    embedding: np.ndarray
    source: str = ""


@dataclass(frozen=True)
class Event:
    """One step of a workload: kind in upload, tag, consent, untag, view."""

    kind: str
    photo_id: str = ""
    face_id: str = ""
    user: str = ""


def friendship_graph(users: list[str], kind: str, k: int, p: float, rng: np.random.Generator) -> nx.Graph:
    """A networkx graph over `users`: watts_strogatz (each joined to k nearest, rewired with
    probability p), barabasi_albert (k edges per new user, preferential attachment) or
    erdos_renyi (each pair with probability p). Degenerate sizes fall back to what fits."""
    n = len(users)
    seed = int(rng.integers(2**31))
    if n < 2:
        g = nx.empty_graph(n)
    elif kind == "watts_strogatz":
        g = nx.watts_strogatz_graph(n, max(1, min(k, n - 1)), p, seed=seed)
    elif kind == "barabasi_albert":
        g = nx.barabasi_albert_graph(n, max(1, min(k, n - 1)), seed=seed)
    elif kind == "erdos_renyi":
        g = nx.gnp_random_graph(n, p, seed=seed)
    else:
        raise ValueError(f"unknown graph kind {kind!r}; known: {', '.join(GRAPHS)}")
    return nx.relabel_nodes(g, dict(enumerate(users)))


def draw_rules(users: list[str], weights: dict[str, float], allow_list_size: int,
               rng: np.random.Generator) -> list[User]:
    """One rule per user, drawn with `weights` ({rule: weight}); an allow_list user allows
    up to `allow_list_size` other users drawn at random."""
    names = [r for r in RULES if weights.get(r, 0) > 0]
    if not names:
        raise ValueError("platform rule weights are all zero")
    prob = np.array([float(weights[r]) for r in names])
    prob /= prob.sum()
    out = []
    for user in users:
        rule = str(names[int(rng.choice(len(names), p=prob))])
        allow = frozenset()
        if rule == "allow_list":
            others = [u for u in users if u != user]
            size = min(allow_list_size, len(others))
            allow = frozenset(str(u) for u in rng.choice(others, size=size, replace=False)) if size else frozenset()
        out.append(User(user, rule, allow))
    return out


def compose(samples: list[FaceSample], height: int) -> tuple[np.ndarray, list[tuple]]:
    """Tiles side by side at one height: (image, [(box, landmarks), ...]) in image pixels."""
    parts, placed, x = [], [], 0
    for s in samples:
        h, w = s.tile.shape[:2]
        scale = height / h
        width = max(1, int(round(w * scale)))
        tile = s.tile if (h, w) == (height, width) else cv2.resize(s.tile, (width, height), interpolation=cv2.INTER_AREA)
        sx, sy = width / w, height / h
        box = (s.box[0] * sx + x, s.box[1] * sy, s.box[2] * sx + x, s.box[3] * sy)
        lms = None if s.landmarks is None else (np.asarray(s.landmarks, np.float32).reshape(5, 2) * [sx, sy] + [x, 0]).astype(np.float32)
        parts.append(tile)
        placed.append((box, lms))
        x += width
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), placed


def generate_platform(seed: int, users: dict[str, np.ndarray], samples: dict[str, list[FaceSample]],
                      graph: dict, rules: dict[str, float], uploads: dict,
                      extra_photos: list[Photo] = ()) -> Platform:
    """A seeded platform.

    Args:
        seed: everything drawn here depends on it alone.
        users: {identity: (E, D) enrolment} of the identities with an account.
        samples: {identity: faces} to compose uploads from (users and people without one).
        graph: {kind, k, p} (friendship_graph).
        rules: {rule: weight} and `allow_list_size`.
        uploads: {n, max_faces, p_self, p_friend, p_stranger, tile_height}: n group uploads,
            1..max_faces faces each; each face is the uploader's own (p_self, first face
            only), a friend's (p_friend), someone without an account (p_stranger), or any user.
        extra_photos: real photos added as they are (e.g. the sample's group photo).

    Returns:
        Platform whose photos carry their composed images (`Photo.image`).
    """
    rng = np.random.default_rng(seed)
    names = sorted(users)
    weights = {k: v for k, v in rules.items() if k in RULES}
    people = draw_rules(names, weights, int(rules["allow_list_size"]), rng)
    for person in people:
        person.enrolment = np.asarray(users[person.user_id], np.float32)
    g = friendship_graph(names, str(graph["kind"]), int(graph["k"]), float(graph["p"]), rng)
    platform = Platform(people, [(str(a), str(b)) for a, b in g.edges()], list(extra_photos))
    strangers = sorted(i for i in samples if i not in users and samples[i])
    with_faces = [u for u in names if samples.get(u)]
    for i in range(int(uploads["n"])):
        if not with_faces:
            break
        uploader = str(rng.choice(names))
        k = int(rng.integers(1, int(uploads["max_faces"]) + 1))
        owners: list[str | None] = []
        for j in range(k):
            friends = [f for f in sorted(platform.friends(uploader)) if samples.get(f)]
            r = rng.random()
            if j == 0 and samples.get(uploader) and r < float(uploads["p_self"]):
                who = uploader
            elif r < float(uploads["p_stranger"]) and strangers:
                who = str(rng.choice(strangers))
            elif friends and rng.random() < float(uploads["p_friend"]):
                who = str(rng.choice(friends))
            else:
                who = str(rng.choice(with_faces))
            if who in owners:
                continue  # one face per person per photo
            owners.append(who)
        chosen = [samples[o][int(rng.integers(len(samples[o])))] for o in owners]
        image, placed = compose(chosen, int(uploads["tile_height"]))
        photo_id = f"upload{i:04d}"
        faces = [PlatformFace(f"{photo_id}_f{j}", photo_id, tuple(float(v) for v in box),
                              o if o in users else None, lms, np.asarray(s.embedding, np.float32))
                 for j, ((box, lms), o, s) in enumerate(zip(placed, owners, chosen))]
        note = (f"composed side by side from {len(chosen)} identities' photos" if len(chosen) > 1
                else "one identity's photo")
        platform.add_photo(Photo(photo_id, uploader, faces, image=image, note=note))
    return platform


def pick_viewer(platform: Platform, photo: Photo, rng: np.random.Generator) -> str:
    """A viewer for `photo`: a person on it, a friend or friend of a friend of one, the
    uploader, or anyone, so that allowed and excluded viewers both occur."""
    names = sorted(platform.users)
    owners = sorted({f.owner for f in photo.faces if f.owner})
    r = rng.random()
    pool: list[str] = []
    if owners and r < 0.2:
        pool = owners
    elif owners and r < 0.45:
        pool = sorted(platform.friends(str(rng.choice(owners))))
    elif owners and r < 0.65:
        pool = sorted(platform.friends_of_friends(str(rng.choice(owners))))
    elif r < 0.75:
        pool = [photo.uploader]
    return str(rng.choice(pool or names))


def generate_workload(platform: Platform, seed: int, n_views: int, p_tag: float, p_consent: float,
                      p_untag: float) -> list[Event]:
    """The events of one run, in time order (see the module docstring)."""
    rng = np.random.default_rng(seed)
    timed: list[tuple[float, int, Event]] = []
    photos = list(platform.photos.values())
    horizon = len(photos) + 2.0
    order = 0

    def add(t: float, event: Event) -> None:
        nonlocal order
        timed.append((t, order, event))
        order += 1

    for i, photo in enumerate(photos):
        add(float(i), Event("upload", photo.photo_id))
        friends = platform.friends(photo.uploader)
        for face in photo.faces:
            if face.owner is None:
                continue
            if face.owner == photo.uploader:
                add(i + 0.1, Event("tag", photo.photo_id, face.face_id, face.owner))
                add(i + 0.1, Event("consent", photo.photo_id, face.face_id, face.owner))
            elif face.owner in friends and rng.random() < p_tag:
                add(i + 0.1, Event("tag", photo.photo_id, face.face_id, face.owner))
                if rng.random() < p_consent:
                    add(i + 0.2 + rng.exponential(2.0), Event("consent", photo.photo_id, face.face_id, face.owner))
            else:
                continue
            if rng.random() < p_untag:
                add(i + 0.3 + rng.exponential(4.0), Event("untag", photo.photo_id, face.face_id, face.owner))
    for _ in range(n_views if photos else 0):
        t = float(rng.uniform(0.05, horizon))
        uploaded = [p for j, p in enumerate(photos) if j < t]
        photo = uploaded[int(rng.integers(len(uploaded)))] if uploaded else photos[0]
        t = max(t, photos.index(photo) + 0.05)
        add(t, Event("view", photo.photo_id, user=pick_viewer(platform, photo, rng)))
    return [e for _, _, e in sorted(timed, key=lambda x: (x[0], x[1]))]
