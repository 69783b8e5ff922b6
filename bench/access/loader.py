"""Reading a platform from a YAML or JSON file (conf/platform/), refusing bad ones with a
message that names the line.

Format (conf/platform/example.yaml is a complete one):

    users:        - {id: alice, rule: friends}            # rule: one of RULES
                  - {id: dave, rule: allow_list, allow: [bob]}
                  - {id: erin, rule: everyone, enrol: [t1-4]}   # faces that enrol the user
    friends:      - [alice, bob]                          # undirected
    photos:       - id: t1.jpg
                    uploader: alice
                    image: t1.jpg                          # relative to the image root given
                    faces:
                      - {id: t1-0, box: [x1, y1, x2, y2], owner: alice,
                         landmarks: [x, y, ... 10 numbers]}   # landmarks optional
                      - {id: t1-5, box: [...], owner: null}    # no account
    tags:         - {face: t1-0, user: alice, consent: true}

Refused, naming the line: an unknown user (friend, uploader, owner, allow-list, tag), a
self-friendship, a duplicate id (user, photo, face), a tag on a missing face, an unknown
rule, a malformed box.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from bench.access.platform import RULES, Photo, Platform, PlatformFace, User
from bench.errors import BenchError


class PlatformFileError(BenchError, ValueError):
    """A platform file that cannot be used; the message names the file and the line."""


class _Dict(dict):
    line = 0


class _List(list):
    line = 0


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings and sequences remember the line they start on."""


def _mapping(loader, node):
    out = _Dict(loader.construct_mapping(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


def _sequence(loader, node):
    out = _List(loader.construct_sequence(node, deep=True))
    out.line = node.start_mark.line + 1
    return out


_LineLoader.add_constructor("tag:yaml.org,2002:map", _mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _sequence)


@dataclass(frozen=True)
class Tag:
    """A tag in a platform file: face -> user, consented or pending; `line` in the file."""

    face_id: str
    user: str
    consent: bool
    line: int = 0


@dataclass
class PlatformFile:
    """A loaded platform, its tags and each user's enrolment faces ({user: [face ids]})."""

    platform: Platform
    tags: list[Tag]
    enrol: dict[str, list[str]]
    path: Path


def load_platform(path: str | Path, image_root: str | Path | None = None) -> PlatformFile:
    """Reads and validates a platform file.

    Args:
        path: a .yaml, .yml or .json file.
        image_root: the folder photo `image` paths are relative to (default: the file's).

    Raises:
        PlatformFileError: the file is missing, unreadable, or invalid (message names the line).
    """
    path = Path(path)
    if not path.is_file():
        raise PlatformFileError(f"platform file {path} not found")
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as err:
        raise PlatformFileError(f"{path}: not valid YAML/JSON: {err}") from err
    root = Path(image_root) if image_root is not None else path.parent

    def fail(node, message: str):
        raise PlatformFileError(f"{path} line {getattr(node, 'line', '?')}: {message}")

    def unique_id(node, kind: str, seen: set) -> str:
        """The node's id, refused when it has none or repeats one of `seen` (then added)."""
        if not isinstance(node, dict) or "id" not in node:
            fail(node, f"a {kind} needs an id")
        value = str(node["id"])
        if value in seen:
            fail(node, f"duplicate {kind} id {value!r}")
        seen.add(value)
        return value

    if not isinstance(doc, dict):
        raise PlatformFileError(f"{path}: expected a mapping with users, friends, photos, tags")
    users, seen_users = [], set()
    enrol: dict[str, list[str]] = {}
    for node in doc.get("users") or []:
        uid = unique_id(node, "user", seen_users)
        rule = str(node.get("rule", "friends"))
        if rule not in RULES:
            fail(node, f"user {uid!r}: unknown rule {rule!r}; known: {', '.join(RULES)}")
        users.append(User(uid, rule, frozenset(str(a) for a in node.get("allow") or [])))
        enrol[uid] = [str(f) for f in node.get("enrol") or []]
        users[-1]._line = node.line  # for the allow-list check below
    for user in users:
        for other in user.allow:
            if other not in seen_users:
                raise PlatformFileError(f"{path} line {user._line}: user {user.user_id!r} allows unknown user {other!r}")
    friendships, seen_pairs = [], set()
    for node in doc.get("friends") or []:
        if not isinstance(node, list) or len(node) != 2:
            fail(node, "a friendship is a pair [user, user]")
        a, b = str(node[0]), str(node[1])
        for u in (a, b):
            if u not in seen_users:
                fail(node, f"friendship names unknown user {u!r}")
        if a == b:
            fail(node, f"user {a!r} cannot be their own friend")
        if frozenset((a, b)) in seen_pairs:
            fail(node, f"duplicate friendship {a}-{b}")
        seen_pairs.add(frozenset((a, b)))
        friendships.append((a, b))
    photos, photo_ids, face_ids = [], set(), set()
    for node in doc.get("photos") or []:
        pid = unique_id(node, "photo", photo_ids)
        uploader = str(node.get("uploader"))
        if uploader not in seen_users:
            fail(node, f"photo {pid!r}: unknown uploader {uploader!r}")
        faces = []
        for fnode in node.get("faces") or []:
            fid = unique_id(fnode, "face", face_ids)
            box = fnode.get("box")
            if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box) \
                    or box[2] <= box[0] or box[3] <= box[1]:
                fail(fnode, f"face {fid!r}: box must be [x1, y1, x2, y2] with x2 > x1, y2 > y1")
            owner = fnode.get("owner")
            if owner is not None and str(owner) not in seen_users:
                fail(fnode, f"face {fid!r}: unknown owner {owner!r} (null: a person without an account)")
            lms = fnode.get("landmarks")
            if lms is not None and (not isinstance(lms, list) or len(lms) != 10):
                fail(fnode, f"face {fid!r}: landmarks must be 10 numbers (five x, y points)")
            faces.append(PlatformFace(fid, pid, tuple(float(v) for v in box), None if owner is None else str(owner),
                                      None if lms is None else np.asarray(lms, np.float32).reshape(5, 2)))
        image = node.get("image")
        photos.append(Photo(pid, uploader, faces, path=str(root / str(image)) if image else None,
                            note=str(node.get("note", ""))))
    for uid, faces in enrol.items():
        for fid in faces:
            if fid not in face_ids:
                line = next(u._line for u in users if u.user_id == uid)
                raise PlatformFileError(f"{path} line {line}: user {uid!r} enrols with missing face {fid!r}")
    tags = []
    for node in doc.get("tags") or []:
        if not isinstance(node, dict):
            fail(node, "a tag is {face, user, consent}")
        fid, uid = str(node.get("face")), str(node.get("user"))
        if fid not in face_ids:
            fail(node, f"tag on a missing face {fid!r}")
        if uid not in seen_users:
            fail(node, f"tag names unknown user {uid!r}")
        tags.append(Tag(fid, uid, bool(node.get("consent", False)), node.line))
    try:
        platform = Platform(users, friendships, photos)
    except ValueError as err:  # every case above is caught first; kept as a last guard
        raise PlatformFileError(f"{path}: {err}") from err
    return PlatformFile(platform, tags, enrol, path)
