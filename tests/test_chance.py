"""Leaks against chance (bench.chance) on made-up embeddings and verification matrices: size
bands, the owner-vs-impostor verdicts, the n/a paths, who a found face is; and the shrink stage on a
tiny labelled folder and without the identities set."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bench import chance
from bench.status import AUDIT, TREATMENT_FALLBACK, TREATMENT_LEFT_REAL, TREATMENT_UNCHANGED, fallback_status

OPTIONS = chance.ChanceOptions(chance.SizeBands.of([20, 30, 40, 60, 100]), alpha=0.05, min_impostor_pairs=20)


def test_bands_label_the_shorter_side_and_shrink_to_the_middle():
    bands = chance.SizeBands.of([20, 30, 40, 60, 100])
    assert [bands.label(s) for s in (5, 19.9, 20, 29.99, 30, 59, 60, 99.9, 100, 4000)] == [
        "<20", "<20", "20-30", "20-30", "30-40", "40-60", "60-100", "60-100", "100+", "100+"]
    assert bands.labels() == ["<20", "20-30", "30-40", "40-60", "60-100", "100+"]
    assert bands.sizes() == {"20-30": 25, "30-40": 35, "40-60": 50, "60-100": 80, "100+": 100}
    assert bands.label(float("nan")) == ""


@pytest.mark.parametrize("edges", [[], [30, 20], [0, 10], [20, 20]])
def test_bands_refuse_edges_that_are_not_ascending(edges):
    with pytest.raises(ValueError, match="size_bands"):
        chance.SizeBands.of(edges)


def faces(n: int, band="100+", treatment="swapped", people=None) -> pd.DataFrame:
    return pd.DataFrame({"band": [band] * n, "treatment": [treatment] * n,
                         "person": people if people is not None else [f"p{i}" for i in range(n)]})


def matrix(owner: list[int], impostor_rate: float, seed=0) -> np.ndarray:
    """A cross-verification matrix: the diagonal is `owner`, off-diagonal entries verified
    with probability impostor_rate (exactly, in reading order)."""
    n = len(owner)
    off = ~np.eye(n, dtype=bool)
    values = np.zeros(off.sum())
    values[: int(round(impostor_rate * off.sum()))] = 1
    np.random.default_rng(seed).shuffle(values)
    m = np.zeros((n, n))
    m[off] = values
    m[np.diag_indices(n)] = owner
    return m


def test_owner_verified_far_above_chance_is_a_leak():
    table = chance.chance_table(faces(6), {"r": matrix([1, 1, 1, 1, 0, 0], 0.0)}, {}, chance.OK, OPTIONS)
    row = table.iloc[0]
    assert (row.faces_compared, row.owner_verified, row.impostor_pairs, row.impostor_verified) == (6, 4, 30, 0)
    assert row.chance_rate == 0 and row.verdict == chance.ABOVE_CHANCE and row.leaks == 4 and not row.flagged


def test_owner_verified_at_the_impostor_rate_is_not_a_leak():
    owner = [1, 1, 0, 0, 0, 0, 0, 0]  # 2 of 8, while 40% of impostor pairs verify
    table = chance.chance_table(faces(8), {"r": matrix(owner, 0.4)}, {}, chance.OK, OPTIONS)
    row = table.iloc[0]
    assert row.impostor_pairs == 56 and row.chance_rate == pytest.approx(22 / 56)
    assert row.p_value == pytest.approx(stats.fisher_exact([[2, 6], [22, 34]], alternative="greater").pvalue)
    assert row.p_value > 0.5 and row.verdict == chance.AT_CHANCE and row.leaks == 0
    verdicts = chance.face_verdicts(faces(8), {"r": matrix(owner, 0.4)}, table)
    assert verdicts.verified.sum() == 2 and not verdicts.leak.any()
    assert chance.face_outcome(False, True, verdicts[verdicts.face == 0]) == "verified at chance"
    assert chance.face_outcome(False, True, verdicts[verdicts.face == 5]) == "no leak"


def test_too_few_impostor_pairs_count_the_old_way_and_flag():
    table = chance.chance_table(faces(3), {"r": matrix([1, 0, 1], 0.0)}, {}, chance.OK, OPTIONS)
    row = table.iloc[0]
    assert row.impostor_pairs == 6 and np.isnan(row.p_value)
    assert row.verdict.startswith("n/a: too few impostor pairs (6 < leaks.min_impostor_pairs=20)")
    assert row.leaks == 2 and row.flagged
    verdicts = chance.face_verdicts(faces(3), {"r": matrix([1, 0, 1], 0.0)}, table)
    assert verdicts.leak.tolist() == [True, False, True] and verdicts.flagged.tolist() == [True, False, True]


def test_a_band_the_recognizer_cannot_separate_is_too_small_to_tell():
    shrink = {("r", "20-30"): (chance.INDISTINGUISHABLE, 0.4)}
    table = chance.chance_table(faces(6, band="20-30"), {"r": matrix([1] * 6, 0.0)}, shrink, chance.OK, OPTIONS)
    row = table.iloc[0]
    assert row.verdict == chance.TOO_SMALL and row.leaks == 0 and row.shrink == chance.INDISTINGUISHABLE
    assert row.p_value < 0.05  # the owner test is still shown; the band's verdict wins
    verdicts = chance.face_verdicts(faces(6, band="20-30"), {"r": matrix([1] * 6, 0.0)}, table)
    assert chance.face_outcome(False, True, verdicts[verdicts.face == 0]) == chance.TOO_SMALL


def test_unchanged_faces_leak_whatever_chance_and_na_recognizers_count_nothing():
    info = faces(6, treatment=TREATMENT_UNCHANGED)
    table = chance.chance_table(info, {"r": matrix([0] * 6, 1.0), "gone": "n/a: weights not found"},
                                {("r", "100+"): (chance.INDISTINGUISHABLE, 1.0)}, chance.OK, OPTIONS)
    r, gone = table.set_index("recognizer").loc["r"], table.set_index("recognizer").loc["gone"]
    assert r.verdict == chance.UNCHANGED_LEAK and r.leaks == 6
    assert gone.verdict == "n/a: weights not found" and gone.leaks == 0 and gone.faces == 6
    assert chance.face_verdicts(info, {"r": matrix([0] * 6, 1.0)}, table).leak.all()


def test_impostor_pairs_skip_the_same_person_and_other_bands_and_uncompared_faces():
    info = pd.DataFrame({"band": ["100+"] * 5 + ["20-30"], "treatment": ["swapped"] * 4 + [TREATMENT_FALLBACK, "swapped"],
                         "person": ["a", "a", "b", "c", "d", "e"]})
    m = np.ones((6, 6))
    m[3, :] = m[:, 3] = np.nan  # face 3 was not compared
    table = chance.chance_table(info, {"r": m}, {}, "n/a: no shrink table", OPTIONS).set_index(["band", "treatment"])
    swapped = table.loc[("100+", "swapped")]
    # fakes 0, 1, 2 against originals 0, 1, 2, 4 of another person: 0->2,4; 1->2,4; 2->0,1,4
    assert swapped.faces == 4 and swapped.faces_compared == 3 and swapped.impostor_pairs == 7
    assert swapped.shrink == "n/a: no shrink table"
    assert table.loc[("100+", TREATMENT_FALLBACK)].impostor_pairs == 3  # 4 -> 0, 1, 2
    assert table.loc[("20-30", "swapped")].impostor_pairs == 0
    assert list(table.index) == [("20-30", "swapped"), ("100+", "swapped"), ("100+", TREATMENT_FALLBACK)]


def test_cross_verified_compares_every_fake_with_every_original():
    a = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    o = np.array([[1, 0.05], [1, 0], [0, 0]], np.float32)
    v = chance.cross_verified(a, o, np.array([True, True, False]), "cosine", 0.1)
    assert v[0, 0] == 1 and v[0, 1] == 1 and v[1, 1] == 0 and v[1, 0] == 0
    assert np.isnan(v[2]).all() and np.isnan(v[:, 2]).all()


def test_separable_is_a_one_sided_fisher_test():
    assert chance.separable(90, 100, 5, 1000, 0.05)[1] == chance.SEPARABLE
    p, verdict = chance.separable(10, 100, 100, 1000, 0.05)  # the same rate
    assert verdict == chance.INDISTINGUISHABLE and p > 0.4
    assert chance.separable(0, 0, 5, 10, 0.05)[1].startswith("n/a")


def test_shrink_crop_removes_detail_and_keeps_the_size():
    crop = np.zeros((112, 112, 3), np.uint8)
    crop[::2, ::2] = 255  # one-pixel checkerboard: gone at any downscale
    small = chance.shrink_crop(crop, box_in_crop=80, size=25)
    assert small.shape == crop.shape and small.std() < crop.std() / 10
    assert chance.shrink_crop(crop, box_in_crop=20, size=25) is crop  # already that small


def test_read_shrink_paths(tmp_path):
    found, status = chance.read_shrink(tmp_path / "shrink.csv")
    assert found == {} and status.startswith("n/a: shrink.csv not found")
    pd.DataFrame([{"recognizer": "r", "band": "20-30", "status": "n/a: identities set not found at X",
                   "verdict": "n/a: identities set not found at X", "p_value": None}]).to_csv(tmp_path / "na.csv", index=False)
    assert chance.read_shrink(tmp_path / "na.csv") == ({}, "n/a: identities set not found at X")
    pd.DataFrame([{"recognizer": "r", "band": "20-30", "status": "ok", "verdict": chance.INDISTINGUISHABLE, "p_value": 0.3},
                  {"recognizer": "q", "band": "20-30", "status": "n/a: weights", "verdict": "n/a: weights", "p_value": None}]
                 ).to_csv(tmp_path / "ok.csv", index=False)
    found, status = chance.read_shrink(tmp_path / "ok.csv")
    assert status == "ok" and found[("r", "20-30")] == (chance.INDISTINGUISHABLE, 0.3)
    assert found[("q", "20-30")][0] == "n/a: weights"


def test_attribute_matches_found_faces_to_their_source_and_status():
    found = pd.DataFrame({"photo": ["a.jpg"] * 4, "face": [f"a#{i}" for i in range(4)],
                          "x1": [0, 100, 200, 400], "y1": [0] * 4, "x2": [50, 150, 250, 450], "y2": [50] * 4,
                          "unchanged": [False, False, True, False]})
    inventory = pd.DataFrame({"photo": ["a.jpg"] * 3, "face_id": ["a-0", "a-1", "a-2"],
                              "x1": [2, 102, 202], "y1": [0] * 3, "x2": [52, 152, 252], "y2": [50] * 3})
    pairs = pd.DataFrame({"source_face": ["a-0", "a-1", "a-2"],
                          "status": ["swapped", fallback_status("blur", "turned"), "NOT ANONYMIZED: no cover"]})
    out = chance.attribute(found, inventory, pairs, {"a-0": "alice"}, 0.3)
    assert out.source_face.tolist() == ["a-0", "a-1", "a-2", ""]
    assert out.treatment.tolist() == ["swapped", TREATMENT_FALLBACK, TREATMENT_UNCHANGED, AUDIT]
    assert out.person.tolist() == ["alice", "a-1", "a-2", "found:a#3"]
    pairs.loc[2, "status"] = "NOT ANONYMIZED: no cover"
    found.loc[2, "unchanged"] = False
    assert chance.attribute(found, inventory, pairs, {}, 0.3).treatment[2] == TREATMENT_LEFT_REAL


# ---- the shrink stage ---------------------------------------------------------------------

def test_shrink_without_the_identities_set_writes_na_rows(cfg_factory, tmp_path):
    from bench.cli import main
    from bench.layout import shrink_files

    results = tmp_path / "results"
    code = main(["shrink", f"identities.path={tmp_path / 'absent'}", f"results_dir={results}", "recognizers=[dlib]"])
    assert code == 0
    table = pd.read_csv(shrink_files(results)["csv"], keep_default_na=False)
    assert table.band.tolist() == ["full", "100+", "60-100", "40-60", "30-40", "20-30"]
    assert table.status.str.startswith("n/a: identities set not found").all() and (table.genuine_pairs == "").all()
    found, status = chance.read_shrink(shrink_files(results)["csv"])
    assert found == {} and status.startswith("n/a: identities set not found")


def test_shrink_on_a_tiny_labelled_folder(cfg_factory, tmp_path, warm_caches):
    from test_baseline import tiny_identities

    from bench.config import load_config
    from bench.layout import shrink_files
    from bench.stages import baseline, shrink

    folder = tiny_identities(tmp_path / "ids", load_config().dataset.path + "/t1.jpg")
    cfg = cfg_factory(f"identities.path={folder}", "++recognizers=[dlib]", "baseline.folds=2",
                      "leaks.size_bands=[4,60]")
    baseline.run(cfg)
    shrink.run(cfg)
    table = pd.read_csv(shrink_files(cfg.results_dir)["csv"]).set_index("band")
    assert list(table.index) == ["full", "60+", "4-60"] and (table.status == "ok").all()
    assert (table.genuine_pairs == 3).all() and (table.impostor_pairs == 12).all()
    assert table.loc["full", "genuine_rate"] == 1.0 and table.loc["full", "impostor_rate"] == 0.0
    assert table.loc["4-60", "size_px"] == 32  # the band's middle
    # Fisher on 3 genuine vs 12 impostor pairs: even perfect separation gives p = 1/C(15,3)
    assert table.loc["full", "p_value"] == pytest.approx(1 / 455, abs=1e-6)
    assert shrink_files(cfg.results_dir)["markdown"].is_file() and shrink_files(cfg.results_dir)["provenance"].is_file()


def test_a_lone_verified_owner_against_an_estimated_zero_chance_rate_is_not_a_leak():
    """0 of 20 impostor pairs verified does not mean a chance rate of 0: one verified owner of
    5 is within what an estimated chance rate allows (Fisher's exact test, p = 0.2)."""
    owner = [1, 0, 0, 0, 0]
    table = chance.chance_table(faces(5), {"r": matrix(owner, 0.0)}, {}, chance.OK, OPTIONS)
    row = table.iloc[0]
    assert (row.owner_verified, row.impostor_pairs, row.impostor_verified) == (1, 20, 0)
    assert row.p_value == pytest.approx(0.2) and row.verdict == chance.AT_CHANCE and row.leaks == 0
