"""Command `view`: what one viewer receives of one photo under one access model.

`python -m bench view photo=t1.jpg viewer=t1-2 access=rules [dataset=… platform.file=…]`

Builds the same seeded platform and workload as the platform stage (bench.access.sources;
detections and embeddings come from the cache), plays the workload on the model (views
as decisions only), then renders the one view.
Writes: <results_dir>/platform/views/<access>/<photo>__<viewer>.png   the viewer's image,
        faces outlined (green real, red fake)
        … .json  per face: real or fake and why, the owner's rule, the model's storage
        <results_dir>/platform/views/<access>/store/   the model's SQLite files
"""
from __future__ import annotations

import logging

from omegaconf import DictConfig

from bench import resultsio
from bench.access import sources
from bench.access.figures import outline
from bench.access.layout import PlatformLayout
from bench.access.simulate import run_workload
from bench.access.storage import Storage
from bench.access.targets import build_faker
from bench.errors import BenchError
from bench.recognizers import build_recognizer
from bench.access.session import build_access, matcher_for, photo_reader, workload

log = logging.getLogger(__name__)


def run(cfg: DictConfig):
    """Writes one viewer's view of one photo; returns the PNG's path."""
    if not cfg.get("photo") or not cfg.get("viewer") or not cfg.choices.get("access"):
        raise BenchError("`view` needs photo=ID viewer=USER access=NAME (conf/access/), e.g. "
                         "`python -m bench view photo=t1.jpg viewer=t1-2 access=rules`")
    photo_id, viewer, access = str(cfg.photo), str(cfg.viewer), str(cfg.choices.access)
    layout = PlatformLayout.from_config(cfg)
    p = cfg.platform
    recognizer = build_recognizer(str(p.recognizer), cfg)
    try:
        threshold = float(recognizer.threshold(str(p.metric)))
    except (BenchError, KeyError):
        threshold = None
    built = sources.build(cfg, recognizer)
    platform = built.platform
    if photo_id not in platform.photos:
        raise BenchError(f"no photo {photo_id!r} on this platform; photos: {', '.join(sorted(platform.photos)[:12])}")
    if viewer not in platform.users:
        raise BenchError(f"no user {viewer!r} on this platform; users: {', '.join(sorted(platform.users))}")
    model = build_access(access, cfg)
    matcher = matcher_for(model, recognizer, threshold)
    if matcher is None:
        raise BenchError(f"{access} needs a {p.metric} threshold for {recognizer.name}")
    faker, faker_note = build_faker(cfg)
    storage = Storage(layout.view(access, "store", "", "").parent / "store")
    model.open(platform, storage, faker, matcher, photo_reader())
    events = workload(cfg, built)
    run_workload(model, platform, events, render=False)
    withdrawn = {e.face_id for e in events if e.kind == "untag"}
    view = model.view(photo_id, viewer)
    storage.close()
    photo = platform.photos[photo_id]
    png = layout.view(access, photo_id, viewer, ".png")
    resultsio.write_png(outline(view.image, photo, view), png)
    faces = []
    for face, o in zip(photo.faces, view.faces):
        owner = face.owner
        faces.append({"face": face.face_id, "shown": "real" if o.real else "fake", "how": o.how,
                      "owner (ground truth)": owner, "owner rule": platform.users[owner].rule if owner else None,
                      "allowed (ground truth, after the workload)": platform.allows(face.face_id, viewer, withdrawn)})
    resultsio.write_json({"photo": photo_id, "viewer": viewer, "access": access, "section": model.section,
                          "state": "after the platform's whole seeded workload", "faker": faker_note,
                          "matcher": matcher.name, "faces": faces, "storage": str(storage.folder)},
                         layout.view(access, photo_id, viewer, ".json"))
    log.info("%s sees %s under %s: %d real, %d fake -> %s", viewer, photo_id, access,
             sum(o.real for o in view.faces), sum(not o.real for o in view.faces), png)
    return png
