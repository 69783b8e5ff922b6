"""Query strategies: Eq. 1's candidate set, seeded draws, each strategy on toy distances, and
the age/gender constraint (band, widening, failures)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.queries.base import AgeGender, NoCandidate, rng_for
from bench.queries.strategies import Closest, Furthest, RandomFurthest, eq1_candidates
from bench.registry import QUERIES

D = np.array([0.10, 0.50, 0.90, 0.95, 1.00, 0.20])


def test_eq1_candidates_are_beyond_max_minus_std():
    threshold = D.max() - D.std()  # 1.0 - 0.3633 = 0.6367 (population std)
    assert threshold == pytest.approx(0.6367, abs=1e-4)
    assert eq1_candidates(D).tolist() == [2, 3, 4]


def test_eq1_with_zero_spread_keeps_the_maximum():
    assert eq1_candidates(np.array([0.3, 0.3, 0.3])).tolist() == [0, 1, 2]
    assert eq1_candidates(np.array([0.7])).tolist() == [0]


def test_eq1_ignores_minus_inf_in_the_spread():
    # PSNR space: an identical crop has distance -inf; it must not make std infinite.
    d = np.array([-np.inf, -30.0, -20.0, -10.0])
    assert eq1_candidates(d).tolist() == [3]


def test_random_furthest_draws_only_candidates_and_is_seeded():
    query = RandomFurthest()
    picks = {query.select(D, rng_for(seed, "photo.jpg-000")).index for seed in range(40)}
    assert picks == {2, 3, 4}  # every candidate drawn, nothing else
    a = query.select(D, rng_for(7, "photo.jpg-000"))
    b = query.select(D, rng_for(7, "photo.jpg-000"))
    assert (a.index, a.distance) == (b.index, b.distance)
    assert a.n_candidates == 3 and a.n_eligible == len(D)


def test_draw_depends_on_seed_and_face_id_only():
    first = [rng_for(3, f"p-{i:03d}").integers(1 << 30) for i in range(5)]
    again = [rng_for(3, f"p-{i:03d}").integers(1 << 30) for i in reversed(range(5))][::-1]
    assert first == again
    assert rng_for(3, "p-000").integers(1 << 30) != rng_for(4, "p-000").integers(1 << 30)


@pytest.mark.parametrize("strategy,expected", [(Closest(), 0), (Furthest(), 4)])
def test_closest_and_furthest(strategy, expected):
    sel = strategy.select(D, rng_for(0, "x"))
    assert sel.index == expected
    assert sel.distance == D[expected]
    assert sel.n_candidates == 1


def test_nan_distances_are_never_picked():
    d = D.copy()
    d[4] = np.nan  # the furthest pool face lacks the feature
    assert Furthest().select(d, rng_for(0, "x")).index == 3
    assert Closest().select(np.array([np.nan, 0.4, 0.2]), rng_for(0, "x")).index == 2
    with pytest.raises(NoCandidate, match="no pool face has"):
        Furthest().select(np.full(3, np.nan), rng_for(0, "x"))


AGES = np.array([20.0, 25.0, 40.0, 60.0, 22.0, np.nan])
GENDERS = np.array([0, 1, 0, 0, 0, -1], dtype=np.int8)  # female, male, ..., no estimate


def test_age_gender_filter_restricts_before_the_pick():
    query = Furthest(same_age_gender=True, band=5, max_band=5)
    sel = query.select(D, rng_for(0, "x"), AgeGender(21.0, 0), AGES, GENDERS)
    # female within 16..26: indices 0 (20) and 4 (22); furthest of D[0]=0.1, D[4]=1.0 -> 4
    assert sel.index == 4 and sel.n_eligible == 2 and sel.age_band == 5


def test_eq1_statistics_over_the_restricted_pool():
    query = RandomFurthest(same_age_gender=True, band=50, max_band=50)
    sel = query.select(D, rng_for(0, "x"), AgeGender(40.0, 0), AGES, GENDERS)
    # eligible: females 0, 2, 3, 4 with D 0.1, 0.9, 0.95, 1.0 -> max - std = 0.630
    assert sel.n_eligible == 4 and sel.n_candidates == 3 and sel.index in (2, 3, 4)


def test_band_widens_by_doubling_up_to_max_band():
    query = Closest(same_age_gender=True, band=3, max_band=40)
    sel = query.select(D, rng_for(0, "x"), AgeGender(50.0, 0), AGES, GENDERS)
    # no female within 3 or 6 years of 50; 40 and 60 within 12 (band 3 -> 6 -> 12)
    assert sel.age_band == 12 and sel.index == 2 and sel.n_eligible == 2


def test_no_candidate_in_band_is_a_failure():
    query = Closest(same_age_gender=True, band=5, max_band=10)
    with pytest.raises(NoCandidate, match="within ±10 years"):
        query.select(D, rng_for(0, "x"), AgeGender(80.0, 0), AGES, GENDERS)
    with pytest.raises(NoCandidate, match="gender male"):
        Closest(same_age_gender=True).select(D[:1], rng_for(0, "x"), AgeGender(25.0, 1), AGES[:1], GENDERS[:1])
    with pytest.raises(NoCandidate, match="no age/gender estimate"):
        query.select(D, rng_for(0, "x"), None, AGES, GENDERS)


def test_pool_faces_without_estimate_never_match():
    query = Closest(same_age_gender=True, band=100, max_band=100)
    sel = query.select(np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.0]), rng_for(0, "x"), AgeGender(30.0, 0), AGES, GENDERS)
    assert sel.index != 5


def test_query_configs():
    names = set(QUERIES.names())
    assert names == {"closest", "furthest", "random_furthest", "closest_ag", "furthest_ag", "random_furthest_ag",
                     "random_furthest_per_person"}
    for name in names:
        query = QUERIES.build(name)
        assert query.same_age_gender == name.endswith("_ag")
        assert query.random == name.startswith("random")
        assert query.per_person == name.endswith("_per_person")


def test_age_gender_estimators(cfg_factory, tmp_path):
    from bench.agegender import AgeAndGenderPackage, InsightfaceGenderAge, build_estimator
    from bench.errors import WeightsNotFound

    assert isinstance(build_estimator(cfg_factory()), AgeAndGenderPackage)
    other = build_estimator(cfg_factory("age_gender.estimator=insightface",
                                        f"age_gender.insightface_models=[{tmp_path}/genderage.onnx]"))
    assert isinstance(other, InsightfaceGenderAge)
    with pytest.raises(WeightsNotFound, match="genderage.onnx"):
        other.prepare()


# ---- the closed loop's next candidate targets (Selection.alternates, bench.guard) ----------

@pytest.mark.parametrize("strategy", [Closest(), Furthest(), RandomFurthest()])
def test_asking_for_alternates_never_changes_the_pick(strategy):
    for seed in range(20):
        plain = strategy.select(D, rng_for(seed, "photo.jpg-000"))
        more = strategy.select(D, rng_for(seed, "photo.jpg-000"), alternates=3)
        assert (more.index, more.distance) == (plain.index, plain.distance)
        assert len(more.alternates) == 3 and plain.alternates == ()
        assert more.index not in more.alternates and len(set(more.alternates)) == 3


def test_furthest_and_closest_alternates_are_the_next_in_order():
    assert Furthest().select(D, rng_for(0, "x"), alternates=3).alternates == (3, 2, 1)
    assert Closest().select(D, rng_for(0, "x"), alternates=2).alternates == (5, 1)


def test_random_furthest_alternates_are_eq1_candidates_first_then_next_furthest():
    sel = RandomFurthest().select(D, rng_for(1, "photo.jpg-000"), alternates=4)
    candidates = {2, 3, 4}
    assert set(sel.alternates[:2]) == candidates - {sel.index}  # the rest of Eq. 1's set, shuffled
    assert sel.alternates[2:] == (1, 5)  # then the faces outside it, next furthest first


def test_alternates_respect_the_excluded_and_missing_pool_faces():
    d = D.copy()
    d[3] = np.nan
    exclude = np.zeros(len(D), bool)
    exclude[2] = True
    sel = Furthest().select(d, rng_for(0, "x"), exclude=exclude, alternates=5)
    assert sel.index == 4
    assert sel.alternates == (1, 5, 0)  # 2 excluded, 3 has no feature
