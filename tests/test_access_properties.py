"""Property tests of the access models (bench.access) over random platforms and workloads:
a trivial faker (paints the box) and a perfect recognizer, so thousands of examples run in
seconds. Every view is checked at the pixel level against the photo's original pixels."""
from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.access.authorization import AuthorizationModel
from bench.access.fakers import PaintFaker, PerfectMatcher
from bench.access.generate import FaceSample, generate_platform, generate_workload
from bench.access.platform import RULES
from bench.access.proxy import ProxyModel
from bench.access.rules import RulesModel
from bench.access.simulate import run_workload
from bench.access.storage import Storage, decode_png

TILE = 8  # each face is an 8x8 tile of noise: a fake (one flat colour) never equals it
EXAMPLES = 1000  # `make test-full`; `make test` draws FAST_EXAMPLES of the same property
FAST_EXAMPLES = 150


def make_platform(seed: int, n_people: int, n_users: int, graph: str, n_uploads: int, max_faces: int):
    rng = np.random.default_rng(seed)
    people = [f"u{i}" for i in range(n_people)]
    samples = {p: [FaceSample(p, rng.integers(0, 256, (TILE, TILE, 3), dtype=np.uint8), (0, 0, TILE, TILE), None,
                              np.zeros(0, np.float32))] for p in people}
    users = {p: rng.normal(size=(1, 4)).astype(np.float32) for p in people[:n_users]}
    weights = {r: 1.0 for r in RULES}
    return generate_platform(seed, users, samples, {"kind": graph, "k": 2, "p": 0.3}, {**weights, "allow_list_size": 2},
                             {"n": n_uploads, "max_faces": max_faces, "p_self": 0.5, "p_friend": 0.5,
                              "p_stranger": 0.2, "tile_height": TILE})


def originals(platform):
    return {pid: p.image for pid, p in platform.photos.items()}


def check_view(platform, model, orig):
    """Every face of the view is real-and-allowed or a fake: real pixels only if the truth
    allows; a face of no account is never real; outcomes agree with the pixels."""
    def check(view, withdrawn):
        photo = platform.photos[view.photo_id]
        image = view.image
        assert image is not None and image.shape == orig[view.photo_id].shape
        for face, outcome in zip(photo.faces, view.faces):
            x1, y1, x2, y2 = face.int_box(image.shape[1], image.shape[0])
            is_real = np.array_equal(image[y1:y2, x1:x2], orig[view.photo_id][y1:y2, x1:x2])
            assert is_real == outcome.real, (model.name, outcome)
            if is_real:
                assert platform.allows(face.face_id, view.viewer, withdrawn), (model.name, view.viewer, outcome)
                assert face.owner is not None
            else:  # a fake: the painted colour of this face (shared or the viewer's)
                patch = image[y1:y2, x1:x2].reshape(-1, 3)
                assert (patch == patch[0]).all(), (model.name, outcome)
            if face.face_id in withdrawn:
                assert not outcome.real, "untag must take effect at the next view"
    return check


def run_model(model, platform, events, folder):
    model.open(platform, Storage(folder), PaintFaker(), PerfectMatcher(), lambda p: p.image)
    result = run_workload(model, platform, events, check=check_view(platform, model, originals(platform)))
    assert result.leaks == 0
    return result


platforms = st.fixed_dictionaries({
    "seed": st.integers(0, 2**31 - 1),
    "n_people": st.integers(1, 9),
    "graph": st.sampled_from(["watts_strogatz", "barabasi_albert", "erdos_renyi"]),
    "n_uploads": st.integers(1, 6),
    "max_faces": st.integers(1, 4),
    "n_views": st.integers(0, 25),
    "p_tag": st.floats(0, 1), "p_consent": st.floats(0, 1), "p_untag": st.floats(0, 1),
    "per_viewer": st.booleans(),
})


def no_viewer_receives_a_forbidden_real_face(spec, data):
    n_users = data.draw(st.integers(1, spec["n_people"]))
    platform = make_platform(spec["seed"], spec["n_people"], n_users, spec["graph"], spec["n_uploads"], spec["max_faces"])
    events = generate_workload(platform, spec["seed"], spec["n_views"], spec["p_tag"], spec["p_consent"], spec["p_untag"])
    with tempfile.TemporaryDirectory() as tmp:
        for i, model in enumerate([ProxyModel("public", spec["per_viewer"]), AuthorizationModel(spec["per_viewer"]),
                                   RulesModel(spec["per_viewer"])]):
            run_model(model, platform, events, Path(tmp) / str(i))
        proxy_server_holds_nothing_forbidden(platform, events, Path(tmp) / "0" / "server.sqlite")



def _property(examples: int):
    return settings(max_examples=examples, deadline=None, suppress_health_check=[HealthCheck.too_slow])(
        given(platforms, st.data())(no_viewer_receives_a_forbidden_real_face))


test_no_viewer_receives_a_forbidden_real_face = _property(FAST_EXAMPLES)
test_no_viewer_receives_a_forbidden_real_face_1000 = pytest.mark.slow(_property(EXAMPLES))

def proxy_server_holds_nothing_forbidden(platform, events, server_file):
    """Proxy: no original photo and no embedding on the server; every face it holds real
    (checked by pixels) belongs to someone who allows everyone and never withdrew it."""
    withdrawn = {e.face_id for e in events if e.kind == "untag"}
    con = sqlite3.connect(server_file)
    try:
        assert con.execute("SELECT COUNT(*) FROM photos WHERE kind='original'").fetchone()[0] == 0
        assert con.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
        for photo_id, data in con.execute("SELECT photo_id, data FROM photos"):
            stored = decode_png(data)
            photo = platform.photos[photo_id]
            for face in photo.faces:
                x1, y1, x2, y2 = face.int_box(stored.shape[1], stored.shape[0])
                if np.array_equal(stored[y1:y2, x1:x2], photo.image[y1:y2, x1:x2]):
                    assert face.owner is not None and platform.users[face.owner].rule == "everyone"
                    assert face.face_id not in withdrawn
    finally:
        con.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 8))
def test_untag_takes_effect_at_the_next_view(seed, n_people):
    """Every model: a face real for its owner before the untag is fake right after it."""
    platform = make_platform(seed, n_people, n_people, "erdos_renyi", 3, 3)
    rng = np.random.default_rng(seed)
    for user in platform.users.values():
        user.rule = "everyone"
    face = rng.choice(sorted(platform.faces))
    photo_id = platform.faces[face].photo_id
    owner = platform.faces[face].owner
    if owner is None:
        return
    for model in (ProxyModel("public"), AuthorizationModel(), RulesModel()):
        model.open(platform, Storage(None), PaintFaker(), PerfectMatcher(), lambda p: p.image)
        model.setup()
        for pid in platform.photos:
            model.upload(pid)
        model.tag(face, owner)
        model.consent(face)
        before = {o.face_id: o.real for o in model.view(photo_id, owner).faces}
        if model.name == "authorization" or owner in {platform.photos[photo_id].uploader, *platform.friends(platform.photos[photo_id].uploader)}:
            assert before[face], model.name
        model.untag(face)
        after = {o.face_id: o.real for o in model.view(photo_id, owner).faces}
        assert not after[face], model.name


def test_a_face_of_no_account_is_always_fake():
    platform = make_platform(3, 6, 3, "watts_strogatz", 8, 4)
    strangers = [f for f in platform.faces.values() if f.owner is None]
    assert strangers
    events = generate_workload(platform, 3, 60, 1.0, 1.0, 0.0)
    for model in (ProxyModel("friends"), ProxyModel("public"), AuthorizationModel(), RulesModel()):
        model.open(platform, Storage(None), PaintFaker(), PerfectMatcher(), lambda p: p.image)
        result = run_workload(model, platform, events, keep_views=True)
        seen = [o for v in result.views for o in v.faces if platform.faces[o.face_id].owner is None]
        assert seen and not any(o.real for o in seen), model.name


def test_proxy_friends_leaks_and_the_others_do_not():
    """The proxy model as uploaders use it leaks: one published photo serves everyone."""
    platform = make_platform(5, 9, 9, "watts_strogatz", 12, 4)
    for user in platform.users.values():
        user.rule = "friends"
    events = generate_workload(platform, 5, 200, 1.0, 1.0, 0.0)
    leaks = {}
    for model in (ProxyModel("friends"), AuthorizationModel(), RulesModel()):
        model.open(platform, Storage(None), PaintFaker(), PerfectMatcher(), lambda p: p.image)
        leaks[model.name + getattr(model, "keep", "")] = run_workload(model, platform, events).leaks
    assert leaks["proxyfriends"] > 0 and leaks["authorization"] == 0 and leaks["rules"] == 0


def test_fakes_are_made_once_and_reused_per_viewer_when_asked(tmp_path):
    platform = make_platform(7, 5, 5, "erdos_renyi", 4, 3)
    for user in platform.users.values():
        user.rule = "nobody"
    events = generate_workload(platform, 7, 80, 1.0, 1.0, 0.0)
    counts = {}
    for per_viewer in (False, True):
        model = AuthorizationModel(per_viewer_fakes=per_viewer)
        model.open(platform, Storage(tmp_path / str(per_viewer)), PaintFaker(), PerfectMatcher(), lambda p: p.image)
        result = run_workload(model, platform, events)
        con = sqlite3.connect(tmp_path / str(per_viewer) / "server.sqlite")
        stored = con.execute("SELECT COUNT(*) FROM fakes").fetchone()[0]
        con.close()
        assert result.swaps.get("view", 0) == stored  # each fake made once
        counts[per_viewer] = stored
    assert counts[True] > counts[False] > 0
