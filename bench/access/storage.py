"""Explicit storage of an access model: one SQLite database for the server and one per
client device (stdlib sqlite3), so that what is stored where can be queried afterwards,
e.g. `sqlite3 server.sqlite "select kind, count(*) from photos group by kind"`.

Every database has the same four tables (a table a model does not use stays empty):

    photos(photo_id, uploader, kind, width, height, real_faces, data)
        kind "original": the photo as taken (its faces real, as far as `real_faces` says);
        kind "published": a photo whose faces were faked before it was stored (proxy).
        real_faces: JSON list of the face ids whose real pixels `data` holds.
        data: the PNG bytes (lossless, so stored pixels can be compared with the originals).
    faces(face_id, photo_id, x1, y1, x2, y2, tag, state)
        what this party knows of a face: `tag` the user id it is tagged with (NULL: none),
        `state` pending / consented / recognized / kept / untagged.
    fakes(face_id, viewer, x, y, width, height, status, data)
        a fake made once and reused: the patch (PNG) that covers the face, at (x, y);
        viewer "*" for a fake every viewer shares, else the viewer it was made for.
    embeddings(user_id, idx, dim, data)
        enrolled face embeddings (float32 bytes), one row per embedding.

The simulation does not need durability: synchronous writes are off.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from bench.errors import BenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS photos (photo_id TEXT PRIMARY KEY, uploader TEXT NOT NULL, kind TEXT NOT NULL,
    width INTEGER, height INTEGER, real_faces TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS faces (face_id TEXT PRIMARY KEY, photo_id TEXT NOT NULL, x1 INTEGER, y1 INTEGER,
    x2 INTEGER, y2 INTEGER, tag TEXT, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fakes (face_id TEXT NOT NULL, viewer TEXT NOT NULL, x INTEGER, y INTEGER,
    width INTEGER, height INTEGER, status TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (face_id, viewer));
CREATE TABLE IF NOT EXISTS embeddings (user_id TEXT NOT NULL, idx INTEGER NOT NULL, dim INTEGER NOT NULL,
    data BLOB NOT NULL, PRIMARY KEY (user_id, idx));
"""
KINDS = ("original", "published")
SHARED_FAKE = "*"


class StorageError(BenchError):
    """A database could not be opened or holds something it should not."""


def encode_png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise StorageError(f"could not encode a {rgb.shape} image as PNG")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise StorageError("a stored image could not be decoded")
    return np.ascontiguousarray(bgr[:, :, ::-1])


@dataclass(frozen=True)
class Patch:
    """Pixels that cover one face: `pixels` (h, w, 3) uint8 placed at column x, row y."""

    x: int
    y: int
    pixels: np.ndarray
    status: str

    def paste(self, image: np.ndarray, clip: tuple[int, int, int, int] | None = None) -> None:
        """Writes the patch into `image` in place; only inside `clip` (x1, y1, x2, y2) if given."""
        h, w = self.pixels.shape[:2]
        x1, y1, x2, y2 = self.x, self.y, self.x + w, self.y + h
        if clip is not None:
            x1, y1, x2, y2 = max(x1, clip[0]), max(y1, clip[1]), min(x2, clip[2]), min(y2, clip[3])
            if x1 >= x2 or y1 >= y2:
                return
        image[y1:y2, x1:x2] = self.pixels[y1 - self.y:y2 - self.y, x1 - self.x:x2 - self.x]


class Database:
    """One party's SQLite file (or an in-memory database when `path` is None)."""

    def __init__(self, path: Path | None, party: str):
        self.path = Path(path) if path is not None else None
        self.party = party
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(self.path) if self.path else ":memory:")
        except sqlite3.Error as err:
            raise StorageError(f"cannot open {self.path}: {err}") from err
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA journal_mode=MEMORY")
        self.conn.executescript(SCHEMA)

    # photos
    def put_photo(self, photo_id: str, uploader: str, kind: str, rgb: np.ndarray, real_faces) -> int:
        """Stores a photo (replacing one of the same id); returns its size in bytes."""
        if kind not in KINDS:
            raise StorageError(f"unknown photo kind {kind!r}")
        data = encode_png(rgb)
        self.conn.execute("INSERT OR REPLACE INTO photos VALUES (?,?,?,?,?,?,?)",
                          (photo_id, uploader, kind, rgb.shape[1], rgb.shape[0],
                           json.dumps(sorted(real_faces)), data))
        return len(data)

    def photo(self, photo_id: str) -> tuple[np.ndarray, str, list[str]]:
        """(pixels, kind, real face ids) of a stored photo."""
        row = self.conn.execute("SELECT data, kind, real_faces FROM photos WHERE photo_id=?", (photo_id,)).fetchone()
        if row is None:
            raise StorageError(f"{self.party} holds no photo {photo_id!r}")
        return decode_png(row[0]), row[1], json.loads(row[2])

    def real_faces(self, photo_id: str) -> list[str]:
        """The face ids whose real pixels the stored photo holds (nothing is decoded)."""
        row = self.conn.execute("SELECT real_faces FROM photos WHERE photo_id=?", (photo_id,)).fetchone()
        if row is None:
            raise StorageError(f"{self.party} holds no photo {photo_id!r}")
        return json.loads(row[0])

    def delete_photo(self, photo_id: str) -> None:
        self.conn.execute("DELETE FROM photos WHERE photo_id=?", (photo_id,))

    # faces
    def put_face(self, face_id: str, photo_id: str, box, tag: str | None, state: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO faces VALUES (?,?,?,?,?,?,?,?)",
                          (face_id, photo_id, *[int(v) for v in box], tag, state))

    def face(self, face_id: str) -> tuple[str | None, str] | None:
        """(tag, state) of a face this party knows, else None."""
        row = self.conn.execute("SELECT tag, state FROM faces WHERE face_id=?", (face_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def set_tag(self, face_id: str, tag: str | None, state: str) -> None:
        self.conn.execute("UPDATE faces SET tag=?, state=? WHERE face_id=?", (tag, state, face_id))

    # fakes
    def fake(self, face_id: str, viewer: str) -> Patch | None:
        row = self.conn.execute("SELECT x, y, status, data FROM fakes WHERE face_id=? AND viewer=?",
                                (face_id, viewer)).fetchone()
        return None if row is None else Patch(row[0], row[1], decode_png(row[3]), row[2])

    def put_fake(self, face_id: str, viewer: str, patch: Patch) -> None:
        h, w = patch.pixels.shape[:2]
        self.conn.execute("INSERT OR REPLACE INTO fakes VALUES (?,?,?,?,?,?,?,?)",
                          (face_id, viewer, patch.x, patch.y, w, h, patch.status, encode_png(patch.pixels)))

    # embeddings
    def put_embeddings(self, user_id: str, vectors: np.ndarray) -> None:
        self.conn.execute("DELETE FROM embeddings WHERE user_id=?", (user_id,))
        vectors = np.asarray(vectors, np.float32)
        self.conn.executemany("INSERT INTO embeddings VALUES (?,?,?,?)",
                              [(user_id, i, int(v.shape[0]), v.tobytes()) for i, v in enumerate(vectors)])

    def embeddings(self) -> dict[str, np.ndarray]:
        """{user id: (E, D) float32} of every user whose embeddings this party holds."""
        out: dict[str, list[np.ndarray]] = {}
        for user, _, data in self.conn.execute("SELECT user_id, idx, data FROM embeddings ORDER BY user_id, idx"):
            out.setdefault(user, []).append(np.frombuffer(data, np.float32))
        return {u: np.stack(v) for u, v in out.items()}

    # accounting
    def usage(self) -> dict[str, int]:
        """Bytes held: photos by kind ("original", "published"), "fakes", "embeddings"."""
        out = {k: 0 for k in (*KINDS, "fakes", "embeddings")}
        for kind, size in self.conn.execute("SELECT kind, COALESCE(SUM(LENGTH(data)),0) FROM photos GROUP BY kind"):
            out[kind] = int(size)
        out["fakes"] = int(self.conn.execute("SELECT COALESCE(SUM(LENGTH(data)),0) FROM fakes").fetchone()[0])
        out["embeddings"] = int(self.conn.execute("SELECT COALESCE(SUM(LENGTH(data)),0) FROM embeddings").fetchone()[0])
        return out

    def commit(self) -> None:
        self.conn.commit()

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


class Storage:
    """The server database and one client database per device, under `folder`
    (server.sqlite, clients/<user>.sqlite); in memory when `folder` is None."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None
        if self.folder is not None:
            for old in [self.folder / "server.sqlite", *self.folder.glob("clients/*.sqlite")]:
                old.unlink(missing_ok=True)  # a fresh simulation: never report bytes of an earlier run
        self.server = Database(self.folder / "server.sqlite" if self.folder else None, "server")
        self.clients: dict[str, Database] = {}

    def client(self, user: str) -> Database:
        """The device of `user`, created on first use."""
        if user not in self.clients:
            path = self.folder / "clients" / f"{_safe(user)}.sqlite" if self.folder else None
            self.clients[user] = Database(path, f"client {user}")
        return self.clients[user]

    def usage(self) -> dict[str, int]:
        """Bytes per place and table: server_<table>, client_<table> (all devices), and
        client_max_<table> (the fullest device)."""
        out = {f"server_{k}": v for k, v in self.server.usage().items()}
        per_client = [c.usage() for c in self.clients.values()]
        for key in self.server.usage():
            out[f"client_{key}"] = sum(u[key] for u in per_client)
            out[f"client_max_{key}"] = max((u[key] for u in per_client), default=0)
        out["clients"] = len(per_client)
        return out

    def commit(self) -> None:
        self.server.commit()
        for c in self.clients.values():
            c.commit()

    def close(self) -> None:
        self.server.close()
        for c in self.clients.values():
            c.close()


def _safe(user: str) -> str:
    from bench.facetable import slug

    return slug(user)
