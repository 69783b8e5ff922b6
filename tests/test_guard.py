"""The closed loop (bench.guard.replace_guarded): retries with the next targets while a guard
verifies the fake as its owner or ranks the owner within guard.max_owner_rank of the gallery,
the guard fallback after the last try, and the open loop."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from bench import guard as guard_mod
from bench.guard import (
    STOP_FALLBACK, STOP_NOT_SWAPPED, STOP_OPEN, STOP_PASSED, STOP_STILL_IDENTIFIED, STOP_STILL_VERIFIED, GuardOutcome,
    GuardSettings,
    candidate_targets, replace_guarded,
)
from bench.generators.base import SwapFailed
from bench.status import SWAPPED, is_fallback

ROW = SimpleNamespace(face_id="p.jpg-000", x1=10.0, y1=10.0, x2=50.0, y2=50.0,
                      landmarks=[20, 25, 40, 25, 30, 35, 22, 44, 38, 44])


class PaintSwap:
    """A generator whose fake paints the box with the target's number (from its image path)."""

    name, uses_target = "paint", True

    def __init__(self, fail=False):
        self.fail, self.calls = fail, []

    def swap(self, photo, face, target, target_face):
        if self.fail:
            raise SwapFailed("no luck")
        self.calls.append(int(target[0, 0, 0]))
        out = photo.copy()
        out[10:50, 10:50] = target[0, 0, 0]
        return out


class Mosaic:
    name, uses_target = "mosaic", False

    def swap(self, photo, face, target, target_face):
        out = photo.copy()
        out[10:50, 10:50] = 255
        return out


class FakeGuard:
    """Verifies a result whose painted value is in `owner_like` (the source is 0)."""

    def __init__(self, owner_like, tries=3, cover=True):
        self.settings = GuardSettings("closed", ("g1", "g2"), "cosine", 1.0, tries, "mosaic" if cover else None)
        self.owner_like, self._cover, self.active = set(owner_like), Mosaic() if cover else None, True

    def embed(self, rgb, landmarks):
        return {"g1": int(rgb[30, 30, 0]), "g2": int(rgb[30, 30, 0])}

    def check(self, source, result):
        verified = ["g1"] if result["g1"] in self.owner_like else []
        return {"g1": 0.1 if verified else 0.9, "g2": 0.8}, verified

    def judge(self, source, result, owner):
        return guard_mod.Verdict(*self.check(source, result))  # no identification check

    def cover(self):
        return self._cover


@pytest.fixture
def targets(monkeypatch):
    """A target row with two alternates; load_target gives an image painted with the number."""
    def load(target):
        value = int(str(target["target_image"]).split("_")[1])
        return np.full((8, 8, 3), value, np.uint8), SimpleNamespace()
    monkeypatch.setattr("bench.anonymizer.load_target", load)
    alternates = [{"target": f"t{v}", "target_image": f"img_{v}", "target_box": [0, 0, 8, 8],
                   "target_landmarks": [0] * 10, "distance": 0.5 - v / 100} for v in (20, 30)]
    return {"target": "t10", "target_image": "img_10", "target_box": [0, 0, 8, 8], "target_landmarks": [0] * 10,
            "distance": 0.5, "alternates": json.dumps(alternates)}


PHOTO = np.zeros((64, 64, 3), np.uint8)


def test_a_fake_no_guard_verifies_is_published_at_the_first_try(targets):
    gen = PaintSwap()
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, gen, None, FakeGuard(owner_like={99}))
    assert status == SWAPPED and outcome.stop == STOP_PASSED
    assert outcome.tries == 1 and outcome.targets == ["t10"] and gen.calls == [10]
    assert out[30, 30, 0] == 10


def test_a_verified_fake_is_swapped_again_with_the_next_target(targets):
    gen = PaintSwap()
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, gen, None, FakeGuard(owner_like={10}))
    assert status == SWAPPED and outcome.stop == STOP_PASSED
    assert outcome.targets == ["t10", "t20"] and outcome.tries == 2
    assert out[30, 30, 0] == 20  # made from the photo before this face, not on top of the first fake
    assert json.loads(outcome.columns()["targets_tried"]) == ["t10", "t20"]


def test_every_try_verified_ends_in_the_guard_fallback(targets):
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None,
                                           FakeGuard(owner_like={10, 20, 30}))
    assert outcome.tries == 3 and outcome.targets == ["t10", "t20", "t30"]
    assert is_fallback(status) and "mosaic" in status and "guard" in status
    assert outcome.stop == STOP_FALLBACK and out[30, 30, 0] == 255


def test_a_face_still_verified_after_the_fallback_is_reported(targets):
    _, _, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None,
                                    FakeGuard(owner_like={10, 20, 30, 255}))
    assert outcome.stop == STOP_STILL_VERIFIED and outcome.verified_by == ["g1"]
    _, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None,
                                         FakeGuard(owner_like={10, 20, 30}, cover=False))
    assert status == SWAPPED and outcome.stop == STOP_STILL_VERIFIED  # no fallback: the last try, counted


def test_tries_limit_the_targets_used(targets):
    _, _, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None,
                                    FakeGuard(owner_like={10, 20, 30}, tries=2))
    assert outcome.targets == ["t10", "t20"]


def test_the_open_loop_swaps_once_and_a_failed_swap_stops_the_loop(targets):
    gen = PaintSwap()
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, gen, None, None)
    assert status == SWAPPED and outcome.stop == STOP_OPEN and outcome.tries == 1 and gen.calls == [10]
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(fail=True), Mosaic(),
                                           FakeGuard(owner_like={10}))
    assert is_fallback(status) and outcome.stop == STOP_NOT_SWAPPED and outcome.tries == 0


def test_candidate_targets_reads_the_alternates_column(targets):
    assert [c["target"] for c in candidate_targets(targets, 5)] == ["t10", "t20", "t30"]
    assert [c["target"] for c in candidate_targets(targets, 1)] == ["t10"]
    assert candidate_targets(None, 3) == [None]


def test_settings_refuse_nonsense():
    from omegaconf import OmegaConf

    from bench.errors import BenchError

    cfg = OmegaConf.create({"guard": {"recognizers": [], "metric": "cosine", "margin": 1.0, "tries": 0,
                                      "fallback": None}, "choices": {"guard": "open"}})
    with pytest.raises(BenchError, match="tries"):
        guard_mod.settings(cfg)
    cfg.guard.tries, cfg.guard.margin = 1, 0
    with pytest.raises(BenchError, match="margin"):
        guard_mod.settings(cfg)


def test_the_finished_photo_is_checked_again_and_a_face_now_verified_is_covered():
    """A neighbour's swap can bring the owner back into a face's crop after its own check."""
    from bench.guard import recheck_photo

    finished = PHOTO.copy()
    finished[10:50, 10:50] = 7  # what the face's crop shows once every face is done
    passed = GuardOutcome(tries=1, targets=["t10"], stop=STOP_PASSED)
    other = GuardOutcome(tries=0, stop=STOP_NOT_SWAPPED)
    statuses = [SWAPPED, "fallback blur: no target"]
    out, changed = recheck_photo(finished, PHOTO, [ROW, ROW], [passed, other], statuses, FakeGuard(owner_like={7}))
    assert changed == [0] and passed.stop == STOP_FALLBACK and out[30, 30, 0] == 255
    assert is_fallback(statuses[0]) and "finished photo" in statuses[0] and statuses[1] == "fallback blur: no target"
    again = GuardOutcome(tries=1, targets=["t10"], stop=STOP_PASSED)
    out, changed = recheck_photo(finished, PHOTO, [ROW], [again], [SWAPPED], FakeGuard(owner_like={99}))
    assert changed == [] and again.stop == STOP_PASSED and out is finished
    assert recheck_photo(finished, PHOTO, [ROW], [again], [SWAPPED], None) == (finished, [])


class SpotGuard(FakeGuard):
    """Embeds the pixel under the nose landmark, so where a face is aligned decides the verdict."""

    def embed(self, rgb, landmarks):
        x, y = np.asarray(landmarks, np.float32).reshape(5, 2)[2].round().astype(int)
        return {"g1": int(rgb[y, x, 0]), "g2": int(rgb[y, x, 0])}


def test_the_finished_photo_is_checked_at_the_landmarks_the_leak_check_finds():
    """The leak check aligns a fake at the landmarks its detectors find on the published photo,
    not at the source's: a fake the guards pass at the source's landmarks but verify there is
    covered; a covered face still verified there is covered again at the leak check's box, and
    counted when that is not enough, or when the caller's last pass covers nothing."""
    from bench.guard import recheck_photo

    finished = PHOTO.copy()
    finished[10:50, 10:50] = 5
    finished[44:47, 44:47] = 7  # the owner shows under the leak check's nose point only
    leak = SimpleNamespace(box=np.array([25, 25, 60, 60], np.float32),
                           landmarks=np.array([[25, 30], [45, 30], [45, 45], [27, 47], [43, 47]], np.float32))
    passed = GuardOutcome(tries=1, targets=["t10"], stop=STOP_PASSED)
    statuses = [SWAPPED]
    out, changed = recheck_photo(finished, PHOTO, [ROW], [passed], statuses, SpotGuard(owner_like={7}), [[]])
    assert changed == [] and passed.stop == STOP_PASSED and out is finished  # its own landmarks: passed
    out, changed = recheck_photo(finished, PHOTO, [ROW], [passed], statuses, SpotGuard(owner_like={7}), [[leak]])
    assert changed == [0] and passed.stop == STOP_FALLBACK and out[45, 45, 0] == 255
    assert is_fallback(statuses[0]) and "landmarks the leak check finds" in statuses[0]

    # the owner shows outside the face's own box, under the leak check's nose point
    beyond = finished.copy()
    beyond[10:50, 10:50] = 255  # the guard fallback's mosaic over the face's own box
    leak_out = SimpleNamespace(box=np.array([40, 40, 62, 62], np.float32),
                               landmarks=np.array([[42, 45], [58, 45], [55, 55], [44, 58], [56, 58]], np.float32))
    beyond[54:57, 54:57] = 7
    covered = GuardOutcome(tries=3, targets=["t10", "t20", "t30"], stop=STOP_FALLBACK)
    statuses = ["fallback mosaic: guard: verified by g1 after 3 tries"]
    big = BoxMosaic()
    guard = SpotGuard(owner_like={7})
    guard._cover = big
    out, changed = recheck_photo(beyond, PHOTO, [ROW], [covered], statuses, guard, [[leak_out]])
    assert changed == [0] and covered.stop == STOP_FALLBACK and out[55, 55, 0] == 255 and big.boxes == [[40, 40, 62, 62]]
    assert statuses[0].startswith("fallback mosaic") and covered.why[-1] == "verified by g1"
    # nothing to cover with (or the caller's last pass): counted, never silent, and only once
    again = GuardOutcome(tries=3, targets=["t10", "t20", "t30"], stop=STOP_FALLBACK)
    out, changed = recheck_photo(beyond, PHOTO, [ROW], [again], statuses, guard, [[leak_out]], cover=False)
    assert changed == [0] and again.stop == STOP_STILL_VERIFIED and out is beyond
    assert recheck_photo(beyond, PHOTO, [ROW], [again], statuses, guard, [[leak_out]], cover=False)[1] == []


class BoxMosaic:
    """A cover that paints whatever box it is given (the guard fallback at the leak check's box)."""

    name, uses_target = "mosaic", False

    def __init__(self):
        self.boxes = []

    def swap(self, photo, face, target, target_face):
        x1, y1, x2, y2 = (int(v) for v in face.box)
        self.boxes.append([x1, y1, x2, y2])
        out = photo.copy()
        out[y1:y2, x1:x2] = 255
        return out


# ---- the identification check (guard.max_owner_rank) -----------------------------------------

OWNER = ROW.face_id
# 2-D embeddings: the owner's original is (1, 0); the gallery's other faces (0, 1) and (-1, 0).
GALLERY = (["p.jpg-000", "q.jpg-000", "q.jpg-001"], np.array([[1, 0], [0, 1], [-1, 0]], np.float32))
# What the guard embeds for a crop painted with each value (0: the original). Cosine distances
# to the owner / to q.jpg-000: 10: 0.168 / 0.445 (not verified at 0.05, rank 1);
# 20: 0.713 / 0.042 (rank 2); 30: 1.196 / 0.019 (rank 3); 255 (the cover): 0.200 / 0.400 (rank 1).
VECTORS = {0: [1.0, 0.0], 10: [0.9, 0.6], 20: [0.3, 1.0], 30: [-0.2, 1.0], 255: [0.8, 0.6]}


def rank_guard(max_owner_rank, tries=3, vectors=VECTORS, gallery=GALLERY):
    """The real Guard's check/identify/judge over a made-up embedder and gallery (one guard g1,
    cosine threshold 0.05: no fake here is verified, so only ranks decide)."""
    g = guard_mod.Guard.__new__(guard_mod.Guard)
    g.settings = GuardSettings("closed", ("g1",), "cosine", 1.0, tries, "mosaic", max_owner_rank=max_owner_rank)
    g.recognizers, g.thresholds, g.unavailable = [SimpleNamespace(name="g1")], {"g1": 0.05}, {}
    g._cover, g.gallery = Mosaic(), {"g1": gallery}
    g.identification = "checked" if max_owner_rank else "off"
    g.embed = lambda rgb, landmarks: {"g1": np.array(vectors[int(rgb[30, 30, 0])], np.float32)}
    return g


def test_a_fake_whose_owner_ranks_first_is_retried_though_no_guard_verifies_it(targets):
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None, rank_guard(1))
    assert status == SWAPPED and outcome.stop == STOP_PASSED and out[30, 30, 0] == 20
    assert outcome.targets == ["t10", "t20"] and outcome.verified_by == [] and outcome.identified_by == []
    assert outcome.owner_ranks == {"g1": 2} and outcome.why == ["identified by g1 at rank 1"]
    columns = outcome.columns()
    assert json.loads(columns["guard_owner_ranks"]) == {"g1": 2} and columns["guard_identified_by"] == ""
    assert json.loads(columns["guard_why"]) == ["identified by g1 at rank 1"]


def test_without_max_owner_rank_the_same_fake_is_published_at_the_first_try(targets):
    _, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None, rank_guard(None))
    assert status == SWAPPED and outcome.targets == ["t10"] and outcome.owner_ranks == {} and outcome.why == []


def test_max_owner_rank_counts_the_faces_ranked_above_the_owner(targets):
    _, _, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None, rank_guard(2))
    assert outcome.targets == ["t10", "t20", "t30"] and outcome.owner_ranks == {"g1": 3}
    assert outcome.why == ["identified by g1 at rank 1", "identified by g1 at rank 2"]


def test_a_cover_that_still_ranks_the_owner_first_is_still_identified(targets):
    out, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None, rank_guard(1, tries=1))
    assert is_fallback(status) and "identified by g1 at rank 1" in status and out[30, 30, 0] == 255
    assert outcome.stop == STOP_STILL_IDENTIFIED and outcome.identified_by == ["g1"]
    assert outcome.why == ["identified by g1 at rank 1", "identified by g1 at rank 1"]  # the try, then the cover
    better = {**VECTORS, 255: [0.0, 1.0]}  # a cover at (0, 1): q.jpg-000 itself, the owner ranks 2nd
    _, _, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None,
                                    rank_guard(1, tries=1, vectors=better))
    assert outcome.stop == STOP_FALLBACK and outcome.owner_ranks == {"g1": 2}


def test_a_tie_with_the_owner_goes_to_the_attacker():
    """identify ranks as bench.attacks.identification: only faces strictly closer count."""
    twin = (["p.jpg-000", "q.jpg-000"], np.array([[1, 0], [0, 1]], np.float32))
    g = rank_guard(1, gallery=twin)
    source, fake = {"g1": np.array([1, 0], np.float32)}, {"g1": np.array([1, 1], np.float32)}
    assert g.identify(source, fake, OWNER) == ({"g1": 1}, ["g1"])  # q is exactly as close
    fake = {"g1": np.array([0.9, 1.0], np.float32)}
    assert g.identify(source, fake, OWNER) == ({"g1": 2}, [])
    # an owner missing from the gallery is ranked by its source embedding
    assert rank_guard(1, gallery=(twin[0][1:], twin[1][1:])).identify(source, fake, OWNER) == ({"g1": 2}, [])


def test_the_identification_rank_matches_the_attack_stage():
    """The guard's owner rank <= 1 exactly when the attack's rank-1 rate of that probe is > 0."""
    from bench.attacks.identification import true_identity_ranks

    rng = np.random.default_rng(0)
    ids = [f"f{i}" for i in range(12)]
    gallery = rng.normal(size=(12, 8)).astype(np.float32)
    fakes = gallery + rng.normal(scale=1.2, size=gallery.shape).astype(np.float32)
    g = rank_guard(1, gallery=(ids, gallery))
    less, _, n = true_identity_ranks(fakes, ids, gallery, ids, "cosine")
    ranks = [g.identify({"g1": gallery[i]}, {"g1": fakes[i]}, ids[i])[0]["g1"] for i in range(12)]
    assert n == 12 and ranks == (less + 1).tolist() and len(set(ranks)) > 1


def test_the_finished_photo_check_covers_a_face_now_identified():
    from bench.guard import recheck_photo

    finished = PHOTO.copy()
    finished[10:50, 10:50] = 10  # rank 1 on the finished photo
    passed = GuardOutcome(tries=1, targets=["t20"], stop=STOP_PASSED)
    statuses = [SWAPPED]
    out, changed = recheck_photo(finished, PHOTO, [ROW], [passed], statuses,
                                 rank_guard(1, vectors={**VECTORS, 255: [0.0, 1.0]}))
    assert changed == [0] and passed.stop == STOP_FALLBACK and out[30, 30, 0] == 255
    assert "identified by g1 at rank 1 on the finished photo" in statuses[0]


def test_identify_needs_the_gallery_and_enrol_embeds_it_once(monkeypatch):
    import pandas as pd

    from bench.errors import BenchError

    g = rank_guard(1)
    g.gallery = None
    with pytest.raises(BenchError, match="enrol"):
        g.identify({"g1": np.zeros(2)}, {"g1": np.zeros(2)}, OWNER)
    calls = []

    def embed_many(recognizers, faces, root, cfg):
        calls.append(faces.face_id.tolist())
        return {"g1": pd.DataFrame({"face_id": faces.face_id, "status": ["ok", "n/a: not aligned"],
                                    "embedding": [np.ones(2, np.float32), np.zeros(0, np.float32)]})}

    monkeypatch.setattr("bench.embedding_runner.embed_many", embed_many)
    g.cfg = None
    g.enrol(pd.DataFrame({"face_id": ["a", "b"]}), "root")
    assert calls == [["a", "b"]] and g.gallery["g1"][0] == ["a"] and g.gallery["g1"][1].shape == (1, 2)
    key = g.gallery_key()
    g.gallery["g1"] = (["a"], np.full((1, 2), 2, np.float32))
    assert key and g.gallery_key() != key and g.describe()["gallery"] == {"g1": 1}
    off = rank_guard(None)
    off.gallery = None
    off.enrol(pd.DataFrame({"face_id": ["a"]}), "root")
    assert calls == [["a", "b"]] and off.gallery is None and off.gallery_key() == ""


def test_a_gallery_under_min_gallery_is_not_ranked(monkeypatch, targets):
    """Among G faces rank 1 comes by chance for 1 in G fakes: below guard.min_gallery the
    identification check is off for the run, and the provenance says why."""
    import dataclasses

    import pandas as pd

    monkeypatch.setattr("bench.embedding_runner.embed_many", lambda *a, **k: pytest.fail("a small gallery is not embedded"))
    g = rank_guard(1)
    g.settings, g.gallery, g.cfg = dataclasses.replace(g.settings, min_gallery=3), None, None
    g.enrol(pd.DataFrame({"face_id": ["a", "b"], "aligned": [True, True]}), "root")
    assert g.gallery == {} and g.gallery_key() == ""
    assert g.identification.startswith("not checked: a gallery of 2 faces") and "min_gallery (3)" in g.identification
    assert g.describe()["identification"] == g.identification
    # the fake that rank_guard(1) retries for its rank is published at the first try
    _, status, outcome = replace_guarded(PHOTO, PHOTO, ROW, targets, PaintSwap(), None, g)
    assert status == SWAPPED and outcome.stop == STOP_PASSED and outcome.targets == ["t10"] and outcome.owner_ranks == {}


def test_max_owner_rank_settings_and_configs():
    from omegaconf import OmegaConf

    from bench.errors import BenchError

    base = {"recognizers": ["g1"], "metric": "cosine", "margin": 1.0, "tries": 3, "fallback": None, "min_gallery": None}
    for value, expected in ((None, None), (0, None), (1, 1), (3, 3)):
        cfg = OmegaConf.create({"guard": {**base, "max_owner_rank": value}, "choices": {"guard": "closed"}})
        assert guard_mod.settings(cfg).max_owner_rank == expected
    assert guard_mod.settings(OmegaConf.create({"guard": base, "choices": {}})).max_owner_rank is None
    with pytest.raises(BenchError, match="max_owner_rank"):
        guard_mod.settings(OmegaConf.create({"guard": {**base, "max_owner_rank": -1}, "choices": {}}))
    with pytest.raises(BenchError, match="min_gallery"):
        guard_mod.settings(OmegaConf.create({"guard": {**base, "min_gallery": -1}, "choices": {}}))
    conf = Path(__file__).resolve().parents[1] / "conf" / "guard"
    assert "max_owner_rank" in OmegaConf.load(conf / "closed.yaml")
    assert not OmegaConf.load(conf / "open.yaml").max_owner_rank  # the paper's open loop checks nothing


def test_cell_counts_count_identified_faces():
    import pandas as pd

    from bench.stages.anonymize import PAIR_COLUMNS, cell_counts

    outcomes = [GuardOutcome(tries=2, why=["identified by g1 at rank 1"], stop=STOP_PASSED),
                GuardOutcome(tries=3, why=["verified by g1"] * 3 + ["identified by g1 at rank 1"],
                             identified_by=["g1"], owner_ranks={"g1": 1}, stop=STOP_STILL_IDENTIFIED),
                GuardOutcome(tries=1, why=[], stop=STOP_PASSED)]
    pairs = pd.DataFrame([{**{c: "" for c in PAIR_COLUMNS}, "status": SWAPPED, "redetected": False, **o.columns()}
                          for o in outcomes], columns=PAIR_COLUMNS)
    photos = pd.DataFrame([{"result": "x", "left_real": 0, "audit_found": 0, "audit_covered": 0}])
    counts = cell_counts(pairs, photos)
    assert counts["guard_identified"] == 2 and counts["guard_still_identified"] == 1
    assert counts["guard_still_verified"] == 0 and counts["guard_retried"] == 2


def test_guards_leave_two_judges_unseen_and_have_targets_for_every_try():
    """Issue 24: the default closed loop and guard=verify each leave at least two recognizers
    that run from installed packages out of their guards (they judge the fakes unseen), and the
    query writes enough alternates for every try; only the default checks identification, and
    only in a gallery of guard.min_gallery faces or more."""
    from bench.config import load_config

    for choice, rank, least in (("closed", 1, 20), ("verify", None, None)):
        cfg = load_config([f"guard={choice}"])
        s = guard_mod.settings(cfg)
        assert s.name == choice and s.closed and s.max_owner_rank == rank and s.min_gallery == least
        assert {"facenet", "dlib"} <= set(cfg.recognizers) - set(s.recognizers)
        assert s.tries <= 1 + int(cfg.targets.alternates)
    assert guard_mod.settings(load_config([])).name == "closed"
