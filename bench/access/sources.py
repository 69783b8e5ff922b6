"""Building the platform the `platform` stage measures, from real photos.

`platform.users` chooses who the users are:
    identities  each identity of the identity-labelled set (`identities`: labels.csv with
                path,identity) is a person; a share `platform.non_user_fraction` of them has
                no account. A user's first photos (up to `platform.enrol_per_user`, at most
                half of them) enrol the user; the others are cut into face tiles, and group
                uploads are composed side by side from several identities' tiles (no
                identity-labelled group photos exist): each such photo's note says so.
    faces       each face of the dataset's photos is a person (the embedded sample: the six
                faces of t1.jpg); a share has no account. A user's enrolment is the embedding
                of `platform.enrol_per_user` jittered and mirrored crops of their own face
                (no other photo of them exists). The real photos are uploaded as they are,
                by one of the people on them, beside collages of their faces.
    auto        identities when the labels file exists, else faces.
    `platform.file` (a conf/platform/ file) replaces all of this with a hand-written platform.
Faces are found with `platform.detector` (detections cached per photo content) and embedded
with `platform.recognizer` through bench.embedding_runner (embeddings cached per crop).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from bench.datasets import dataset_root
from bench import resultsio
from bench.access.generate import FaceSample, generate_platform
from bench.access.layout import PlatformLayout
from bench.access.loader import Tag, load_platform
from bench.access.platform import Photo, Platform, PlatformFace
from bench.boxes import iou_matrix
from bench.datasets import list_photos
from bench.detectors import PHOTOS_AT_ONCE, build_detector
from bench.detectors.base import Detection
from bench.embeddings import OK
from bench.errors import BenchError, ImageLoadError
from bench.facetable import DetectionCache, detector_key, slug
from bench.identities import identities_config
from bench.images import load_photo
from bench.inventory import detect_max_side
from bench.layout import cache_dir
from bench.progress import chunks, progress
from bench.registry import component_config

log = logging.getLogger(__name__)
FLIP = [1, 0, 2, 4, 3]  # landmark order after a horizontal mirror


@dataclass
class Built:
    """The platform, the tags a file gave, how it was made (`mode`, `note`)."""

    platform: Platform
    tags: list[Tag] = field(default_factory=list)
    mode: str = ""
    note: str = ""


class Sources:
    """Detection and embedding for the platform, both cached under results_dir/cache/."""

    def __init__(self, cfg: DictConfig, recognizer):
        self.cfg = cfg
        self.layout = PlatformLayout.from_config(cfg)
        name = str(cfg.platform.detector)
        self.detector = build_detector(name, cfg)
        self.detector.prepare()
        self.node = OmegaConf.create(component_config("detector", name, cfg))
        self.recognizer = recognizer
        self.max_pixels = int(cfg.faces.max_image_pixels)

    def read(self, path: Path) -> np.ndarray:
        return load_photo(path, self.max_pixels).rgb

    def detect(self, path: Path, rgb: np.ndarray) -> list[Detection]:
        """The faces of one photo (its file `path`, its pixels `rgb`) of at least faces.min_face_size."""
        return self.detect_many([(path, rgb)])[0]

    def detect_many(self, items: list[tuple[Path, np.ndarray]], max_side: int | None = None) -> list[list[Detection]]:
        """detect() of each (path, rgb); the photos not in the cache go to the detector in one
        detect_many call (a detector with `parallel` > 1 scans several at once), scaled down
        to `max_side` (the dataset's detect_max_side, bench.inventory)."""
        key = detector_key(self.node, self.detector, max_side=max_side)
        cache = DetectionCache(cache_dir(self.cfg.results_dir, "detections") / key)
        found = cache.detect_many(self.detector, [resultsio.sha256_file(path) for path, _ in items],
                                  [np.ascontiguousarray(rgb[:, :, ::-1]) for _, rgb in items], max_side)
        return [[d for d in faces if d.size >= float(self.cfg.faces.min_face_size)] for faces in found]

    def embed(self, items: list[tuple[Path, np.ndarray]]) -> list[np.ndarray]:
        """One (D,) embedding per (photo path, (5, 2) landmarks); empty where it fails."""
        from bench.embedding_runner import embed_with

        if not items:
            return []
        faces = pd.DataFrame({
            "face_id": [str(i) for i in range(len(items))],
            "photo": [str(Path(p).resolve()).lstrip("/") for p, _ in items],
            "landmarks": [np.asarray(l, np.float32).reshape(-1).tolist() for _, l in items],
            "aligned": True,
        })
        table = embed_with(self.recognizer, faces, Path("/"), self.cfg)
        return [np.asarray(e, np.float32) if s == OK else np.zeros(0, np.float32)
                for s, e in zip(table.status, table.embedding)]


def tile_of(rgb: np.ndarray, det: Detection, margin: float) -> tuple[np.ndarray, tuple, np.ndarray]:
    """The face with `margin` x its size of context on each side: (tile, box, landmarks)."""
    x1, y1, x2, y2 = [float(v) for v in det.box]
    m = margin * max(x2 - x1, y2 - y1)
    h, w = rgb.shape[:2]
    cx1, cy1 = max(0, int(x1 - m)), max(0, int(y1 - m))
    cx2, cy2 = min(w, int(np.ceil(x2 + m))), min(h, int(np.ceil(y2 + m)))
    tile = np.ascontiguousarray(rgb[cy1:cy2, cx1:cx2])
    lms = np.asarray(det.landmarks, np.float32).reshape(5, 2) - [cx1, cy1]
    return tile, (x1 - cx1, y1 - cy1, x2 - cx1, y2 - cy1), lms.astype(np.float32)


def jitter(tile: np.ndarray, lms: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Variant k of a face tile: even k mirrored, each shifted and scaled a little."""
    h, w = tile.shape[:2]
    out, pts = tile, lms.copy()
    if k % 2 == 0:
        out = np.ascontiguousarray(tile[:, ::-1])
        pts = pts[FLIP].copy()
        pts[:, 0] = w - 1 - pts[:, 0]
    scale = 1.0 + rng.uniform(-0.05, 0.05)
    dx, dy = rng.uniform(-0.03, 0.03, 2) * [w, h]
    matrix = np.array([[scale, 0, dx + (1 - scale) * w / 2], [0, scale, dy + (1 - scale) * h / 2]], np.float32)
    warped = cv2.warpAffine(out, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
    pts = (pts @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)
    return warped, pts


def build(cfg: DictConfig, recognizer) -> Built:
    """The platform for this run (see the module docstring)."""
    p = cfg.platform
    sources = Sources(cfg, recognizer)
    if p.file:
        return from_file(cfg, sources)
    mode = str(p.users)
    labels = Path(str(cfg.identities.path)).expanduser() / str(cfg.identities.labels)
    if mode == "auto":
        mode = "identities" if labels.is_file() else "faces"
    if mode == "identities":
        return from_identities(cfg, sources, labels)
    if mode == "faces":
        return from_faces(cfg, sources)
    raise BenchError(f"platform.users={mode!r}: use identities, faces or auto")


def finish(cfg: DictConfig, sources: Sources, users: dict, samples: dict, extra: list[Photo], mode: str, note: str) -> Built:
    p = cfg.platform
    platform = generate_platform(int(p.seed), users, samples, OmegaConf.to_container(p.graph),
                                 OmegaConf.to_container(p.rules), OmegaConf.to_container(p.uploads), extra)
    items, faces = [], []
    for photo in platform.photos.values():
        if photo.path is None:
            photo.path = str(sources.layout.photos / f"{slug(photo.photo_id)}.png")
            resultsio.write_png(photo.image, photo.path)
            photo.image = None  # read back from the file on upload: the device's copy
        for face in photo.faces:
            if face.landmarks is not None:
                items.append((Path(photo.path), face.landmarks))
                faces.append(face)
    for face, emb in zip(faces, sources.embed(items)):
        face.embedding = emb
    log.info("platform (%s): %d users, %d friendships, %d photos, %d faces (%d of people without an account)",
             mode, len(platform.users), platform.graph.number_of_edges(), len(platform.photos), len(platform.faces),
             sum(f.owner is None for f in platform.faces.values()))
    return Built(platform, [], mode, note)


def enrolment_from_tiles(cfg, sources: Sources, who: str, tile, lms, rng) -> np.ndarray:
    items = []
    for k in range(int(cfg.platform.enrol_per_user)):
        img, pts = jitter(tile, lms, k, rng)
        path = sources.layout.enrol / f"{slug(who)}_{k}.png"
        resultsio.write_png(img, path)
        items.append((path, pts))
    vectors = [v for v in sources.embed(items) if v.size]
    return np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)


def non_users(cfg, people: list[str]) -> set[str]:
    rng = np.random.default_rng([int(cfg.platform.seed), 1])
    n = int(round(float(cfg.platform.non_user_fraction) * len(people)))
    n = min(n, max(0, len(people) - 2))  # keep at least two users
    return set(str(x) for x in rng.choice(sorted(people), size=n, replace=False)) if n else set()


def from_faces(cfg: DictConfig, sources: Sources) -> Built:
    photos, _ = list_photos(cfg.dataset, cfg.faces.image_extensions)
    rng = np.random.default_rng([int(cfg.platform.seed), 2])
    samples, tiles, extra_faces = {}, {}, []
    for ref in progress(photos, "platform: detect faces", unit="photo"):
        try:
            rgb = sources.read(ref.path)
        except ImageLoadError as err:
            log.warning("platform: %s unreadable (%s): left out", ref.photo, err)
            continue
        dets = sources.detect(ref.path, rgb)
        stem = Path(ref.photo).stem
        for i, det in enumerate(dets):
            who = f"{stem}-{i}"
            tile, box, lms = tile_of(rgb, det, float(cfg.platform.tile_margin))
            samples[who] = [FaceSample(who, tile, box, lms, np.zeros(0, np.float32), ref.photo)]
            tiles[who] = (tile, lms)
        extra_faces.append((ref, rgb, dets, stem))
    if len(samples) < 2:
        raise BenchError(f"platform: the dataset's photos hold {len(samples)} face(s); a platform needs two people")
    outsiders = non_users(cfg, list(samples))
    users = {who: enrolment_from_tiles(cfg, sources, who, *tiles[who], rng) for who in sorted(samples) if who not in outsiders}
    extra = []
    for ref, rgb, dets, stem in extra_faces:
        owners = [f"{stem}-{i}" for i in range(len(dets))]
        on_it = [o for o in owners if o in users]
        if not on_it:
            continue
        uploader = on_it[int(rng.integers(len(on_it)))]
        faces = [PlatformFace(f"{ref.photo}#{i}", ref.photo, tuple(float(v) for v in d.box),
                              o if o in users else None, np.asarray(d.landmarks, np.float32).reshape(5, 2))
                 for i, (d, o) in enumerate(zip(dets, owners))]
        extra.append(Photo(ref.photo, uploader, faces, path=str(ref.path), note="the dataset's own photo"))
    note = (f"users = the {len(samples)} faces of the dataset's photos ({len(outsiders)} without an account); "
            f"enrolment = {cfg.platform.enrol_per_user} jittered/mirrored crops of each user's own face; "
            "uploads = the real photos plus collages of their faces side by side")
    return finish(cfg, sources, users, samples, extra, "faces", note)


def from_identities(cfg: DictConfig, sources: Sources, labels_path: Path) -> Built:
    labels = pd.read_csv(labels_path, dtype=str, keep_default_na=False)
    if not {"path", "identity"} <= set(labels.columns):
        raise BenchError(f"{labels_path} needs the columns path,identity")
    root = labels_path.parent
    max_side = detect_max_side(identities_config(cfg, labels).dataset)  # as the baseline stage detects them
    found: dict[str, list[tuple]] = {}
    rows = list(labels.sort_values(["identity", "path"]).itertuples())
    for batch in chunks(rows, PHOTOS_AT_ONCE, "platform: detect faces", unit="photo"):
        read = []
        for row in batch:
            path = root / row.path
            try:
                read.append((row, path, sources.read(path)))
            except ImageLoadError as err:
                log.warning("platform: %s unreadable (%s): left out", row.path, err)
        for (row, path, rgb), dets in zip(read, sources.detect_many([(path, rgb) for _, path, rgb in read], max_side)):
            if not dets:
                continue
            largest = max(dets, key=lambda d: d.size)
            found.setdefault(str(row.identity), []).append((path, rgb, largest, row.path))
    people = sorted(i for i, v in found.items() if v)
    if len(people) < 2:
        raise BenchError(f"platform: {labels_path} gives {len(people)} identity with a face; a platform needs two")
    outsiders = non_users(cfg, people)
    users, samples = {}, {}
    margin = float(cfg.platform.tile_margin)
    for who in progress(people, "platform: enrol users", unit="person"):
        shots = found[who]
        n_enrol = 0 if who in outsiders else max(1, min(int(cfg.platform.enrol_per_user), len(shots) // 2))
        enrol, upload = shots[:n_enrol], shots[n_enrol:] or shots[:1]
        if who not in outsiders:
            vectors = [v for v in sources.embed([(p, d.landmarks) for p, _, d, _ in enrol]) if v.size]
            users[who] = np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)
        samples[who] = []
        for path, rgb, det, rel in upload:
            tile, box, lms = tile_of(rgb, det, margin)
            samples[who].append(FaceSample(who, tile, box, lms, np.zeros(0, np.float32), rel))
    note = (f"users = {len(users)} identities of {labels_path} ({len(outsiders)} more without an account); "
            "enrolment = each user's first photos, uploads = their other photos composed side by side "
            "(no identity-labelled group photos exist)")
    return finish(cfg, sources, users, samples, [], "identities", note)


def from_file(cfg: DictConfig, sources: Sources) -> Built:
    pf = load_platform(Path(str(cfg.platform.file)).expanduser(), image_root=dataset_root(cfg.dataset))
    platform = pf.platform
    rng = np.random.default_rng([int(cfg.platform.seed), 4])
    items, targets = [], []
    for photo in platform.photos.values():
        if photo.path is None:
            raise BenchError(f"{pf.path}: photo {photo.photo_id!r} has no image")
        rgb = sources.read(Path(photo.path))
        dets = sources.detect(Path(photo.path), rgb)
        boxes = np.array([d.box for d in dets], np.float32).reshape(-1, 4)
        for face in photo.faces:
            if face.landmarks is None and len(boxes):
                iou = iou_matrix(np.asarray(face.box, np.float32)[None], boxes)[0]
                if iou.max() >= 0.3:
                    face.landmarks = np.asarray(dets[int(iou.argmax())].landmarks, np.float32).reshape(5, 2)
            if face.landmarks is not None:
                items.append((Path(photo.path), face.landmarks))
                targets.append(face)
        for uid, fids in pf.enrol.items():
            vectors = []
            for fid in fids:
                face = platform.faces[fid]
                if face.photo_id != photo.photo_id or face.landmarks is None:
                    continue
                det = Detection(np.asarray(face.box, np.float32), 1.0, face.landmarks)
                tile, _, lms = tile_of(rgb, det, float(cfg.platform.tile_margin))
                e = enrolment_from_tiles(cfg, sources, uid, tile, lms, rng)
                if e.size:
                    vectors.append(e)
            if vectors:
                platform.users[uid].enrolment = np.concatenate(vectors)
    for face, emb in zip(targets, sources.embed(items)):
        face.embedding = emb
    return Built(platform, pf.tags, "file", f"hand-written platform {pf.path}")
