"""Figures of the access models: Fig. 1 (what an uploader, two friends, a friend of a friend
and an outsider each see of one photo, per access model), Fig. 2 (the three-user workflow of
the access-rules model), and the threshold curve of recognizer-driven models. Each face is
outlined green where the viewer received it real, red where a fake."""
from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench import resultsio
from bench.access.authorization import AuthorizationModel  # noqa: E402
from bench.access.fakers import EmbeddingMatcher, PerfectMatcher  # noqa: E402
from bench.access.generate import compose  # noqa: E402
from bench.access.platform import Photo, Platform, PlatformFace, User  # noqa: E402
from bench.access.proxy import ProxyModel  # noqa: E402
from bench.access.rules import RulesModel  # noqa: E402
from bench.access.storage import Storage  # noqa: E402

log = logging.getLogger(__name__)
GREEN, RED = (40, 200, 60), (230, 40, 40)


def outline(image: np.ndarray, photo: Photo, view) -> np.ndarray:
    import cv2

    out = image.copy()
    t = max(2, image.shape[1] // 300)
    for face, o in zip(photo.faces, view.faces):
        x1, y1, x2, y2 = face.int_box(image.shape[1], image.shape[0])
        cv2.rectangle(out, (x1, y1), (x2 - 1, y2 - 1), GREEN if o.real else RED, t)
    return out


def pick_photo(cfg, platform: Platform) -> Photo:
    wanted = cfg.platform.figure_photo
    if wanted:
        return platform.photos[str(wanted)]
    real = [p for p in platform.photos.values() if "dataset's own" in p.note] or list(platform.photos.values())
    return max(real, key=lambda p: (sum(f.owner is not None for f in p.faces), len(p.faces), p.photo_id))


def fig1(cfg, platform: Platform, faker, read_photo, out: Path) -> None:
    """Fig. 1: one photo seen by five viewers under each model. The figure's own small
    platform: the photo's people (rules cycled through friends, friends_of_friends, nobody,
    everyone, allow_list so each occurs) plus a friend of a friend and an outsider account."""
    photo = pick_photo(cfg, platform)
    owners = [f.owner for f in photo.faces if f.owner]
    uploader = photo.uploader
    others = [o for o in dict.fromkeys(owners) if o != uploader]
    friend1 = others[0] if others else "friend 1"
    friend2 = others[1] if len(others) > 1 else "friend 2"
    cycle = ["friends", "friends_of_friends", "nobody", "everyone", "allow_list"]
    names = list(dict.fromkeys([uploader, friend1, friend2, *others, "friend of friend", "outsider"]))
    users = [User(n, cycle[i % len(cycle)], frozenset([uploader])) for i, n in enumerate(names)]
    edges = [(uploader, friend1), (uploader, friend2), (friend1, "friend of friend")]
    faces = [PlatformFace(f.face_id, photo.photo_id, f.box, f.owner if f.owner in names else None, f.landmarks,
                          f.embedding) for f in photo.faces]
    image = read_photo(photo)
    fig_platform = Platform(users, edges, [Photo(photo.photo_id, uploader, faces, image=image)])
    viewers = [(uploader, "uploader"), (friend1, "friend 1"), (friend2, "friend 2"),
               ("friend of friend", "friend of a friend"), ("outsider", "outsider")]
    models = [ProxyModel("public"), AuthorizationModel(), RulesModel()]
    fig, axes = plt.subplots(len(models), len(viewers), figsize=(3.2 * len(viewers), 2.6 * len(models) + 0.8))
    for r, model in enumerate(models):
        model.open(fig_platform, Storage(None), faker, PerfectMatcher(), lambda p: p.image.copy())
        model.setup()
        model.upload(photo.photo_id)
        for f in faces:
            if f.owner:
                model.tag(f.face_id, f.owner)
                model.consent(f.face_id)
        for c, (viewer, role) in enumerate(viewers):
            view = model.view(photo.photo_id, viewer)
            ax = axes[r, c]
            ax.imshow(outline(view.image, fig_platform.photos[photo.photo_id], view))
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{role}\n({viewer})", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{model.name} {model.section}", fontsize=9)
    rules = ", ".join(f"{u.user_id}: {u.rule}" for u in users[:len(set(owners)) + 1])
    fig.suptitle(f"Fig. 1 - {photo.photo_id} as each viewer receives it (green: real, red: fake). "
                 f"Rules set for the figure: {rules}; everyone tagged and consenting; allow-lists = the uploader",
                 fontsize=8, wrap=True)
    fig.tight_layout()
    resultsio.write_figure(fig, out, dpi=110)
    plt.close(fig)


def fig2(cfg, platform: Platform, faker, recognizer, threshold, read_photo, out: Path) -> None:
    """Fig. 2: access rules with three users. Alice uploads a photo of Alice, Bob (her friend)
    and Carol (not her friend); her device recognises Alice and Bob among the embeddings it
    holds and fakes Carol; the server renders Alice's, Bob's and Carol's views from the rules."""
    photo = pick_photo(cfg, platform)
    people = [f for f in photo.faces if f.owner][:3]
    if len(people) < 3:
        log.warning("Fig. 2 needs a photo with three users; %s has %d", photo.photo_id, len(people))
        return
    image = read_photo(photo)
    from bench.access.generate import FaceSample
    from bench.access.sources import tile_of
    from bench.detectors.base import Detection

    samples = []
    for f in people:
        det = Detection(np.asarray(f.box, np.float32), 1.0, np.asarray(f.landmarks if f.landmarks is not None else np.zeros((5, 2))))
        tile, box, lms = tile_of(image, det, 0.5)
        samples.append(FaceSample(f.owner, tile, box, lms, f.embedding))
    composed, placed = compose(samples, 200)
    names = ["Alice", "Bob", "Carol"]
    enrol = {n: platform.users[f.owner].enrolment for n, f in zip(names, people)}
    users = [User("Alice", "friends", enrolment=enrol["Alice"]), User("Bob", "friends", enrolment=enrol["Bob"]),
             User("Carol", "everyone", enrolment=enrol["Carol"])]
    faces = [PlatformFace(f"fig2-{n}", "fig2", tuple(b), n, l, s.embedding)
             for n, (b, l), s in zip(names, placed, samples)]
    fig_platform = Platform(users, [("Alice", "Bob")], [Photo("fig2", "Alice", faces, image=composed)])
    matcher = (EmbeddingMatcher(threshold, recognizer.name)
               if threshold is not None and all(f.embedding.size for f in faces) else PerfectMatcher())
    model = RulesModel().open(fig_platform, Storage(None), faker, matcher, lambda p: p.image.copy())
    model.setup()
    model.upload("fig2")
    server = model.storage.server
    stored = server.photo("fig2")[0]
    views = {n: model.view("fig2", n) for n in names}
    panels = [("Alice's device: the photo as taken", composed, None),
              ("sent to the server: unknown faces faked on the device", stored, None)]
    panels += [(f"{n} sees", v.image, v) for n, v in views.items()]
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.2))
    for ax, (title, img, view) in zip(axes.flat, panels):
        shown = outline(img, fig_platform.photos["fig2"], view) if view is not None else img
        ax.imshow(shown)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    held = {"server": server.usage(), **{f"{n}'s device": model.storage.client(n).usage() for n in names}}
    tags = {f.face_id.split("-")[1]: server.face(f.face_id)[0] for f in faces}
    text = ["Storage after the upload (bytes):"]
    text += [f"{k}: photos {v['original']}, fakes {v['fakes']}, embeddings {v['embeddings']}" for k, v in held.items()]
    text += ["", f"matcher: {matcher.name}" + (f" (cosine <= {threshold:.3f})" if hasattr(matcher, "threshold") else ""),
             "recognised tags: " + ", ".join(f"{k} -> {v}" for k, v in tags.items()),
             "rules: Alice friends, Bob friends, Carol everyone", "friends: Alice - Bob"]
    axes.flat[-1].axis("off")
    axes.flat[-1].text(0, 1, "\n".join(text), va="top", fontsize=8, family="monospace")
    fig.suptitle("Fig. 2 - access rules (§3.3.3) with three users (green: real, red: fake). Carol is no friend of "
                 "Alice: her device cannot recognise Carol, so Carol's face is faked before upload, even for Carol.",
                 fontsize=9)
    fig.tight_layout()
    resultsio.write_figure(fig, out, dpi=100)
    plt.close(fig)


def plot_threshold(curve: pd.DataFrame, threshold, recognizer: str, metric: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for access, group in curve[curve.recognizer != "perfect"].groupby("access"):
        ax.plot(group.threshold, group.leak_rate, "o-", color="tab:red", label=f"{access}: leak rate")
        ax.plot(group.threshold, group.over_fake_rate, "s-", color="tab:blue", label=f"{access}: over-fake rate")
        perfect = curve[(curve.access == access) & (curve.recognizer == "perfect")]
        if len(perfect):
            ax.axhline(float(perfect.over_fake_rate.iloc[0]), color="tab:blue", ls=":",
                       label=f"{access}, perfect recognizer: over-fake rate")
    if threshold is not None:
        ax.axvline(threshold, color="gray", ls="--", label=f"{recognizer} threshold {threshold:.3f}")
    ax.set_xlabel(f"{recognizer} {metric} distance threshold (match when <=)")
    ax.set_ylabel("rate")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Access rules: recognizer errors become leaks and over-fakes", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    resultsio.write_figure(fig, out, dpi=110)
    plt.close(fig)
