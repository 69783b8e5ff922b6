"""The closed loop (bench.guard.replace_guarded): retries with the next targets while a guard
verifies the fake as its owner, the guard fallback after the last try, and the open loop."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from bench import guard as guard_mod
from bench.guard import (
    STOP_FALLBACK, STOP_NOT_SWAPPED, STOP_OPEN, STOP_PASSED, STOP_STILL_VERIFIED, GuardOutcome, GuardSettings,
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
