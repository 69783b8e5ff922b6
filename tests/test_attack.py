"""The attacks (bench/attacks/, bench/stages/attack.py): the math on small synthetic embeddings
with known answers, the per-person query draw, the stage without an identities set (n/a
tables, as `dvc repro` runs it on a machine without ../shared) and one small real run on
../shared's identities set."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.attacks.distributions import separation_auc, summary
from bench.attacks.identification import chance_rate, identify, rank_k_rate, true_identity_ranks
from bench.attacks.kanonymity import control_vs_k, distance_vs_k, distinct_targets, mean_embedding
from bench.attacks.linkability import linkability, shared_target_share
from bench.attacks.pairs import cross_distances, labelled_pairs
from bench.attacks.split import GALLERY, PROBE, UNUSED, split_identities
from bench.verification import pair_distances


def people(n_people=8, photos_each=4, dim=32, noise=0.1, seed=0):
    """(embeddings, identities): each person a random direction plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_people, dim))
    ids = np.repeat([f"p{k}" for k in range(n_people)], photos_each)
    return centres.repeat(photos_each, axis=0) + noise * rng.normal(size=(len(ids), dim)), ids


# ---- pairs -----------------------------------------------------------------------------------

def test_cross_distances_are_deepfaces_pairwise_distances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(4, 8))
    d = cross_distances(a, b, "cosine")
    assert d.shape == (3, 4)
    assert d[2, 1] == pytest.approx(pair_distances(a[2:3], b[1:2], "cosine")[0])
    assert cross_distances(a[:0], b, "cosine").shape == (0, 4)


def test_labelled_pairs():
    i, j, same = labelled_pairs(["a", "a", "b"])
    assert list(zip(i, j, same)) == [(0, 1, True), (0, 2, False), (1, 2, False)]


# ---- identification ------------------------------------------------------------------------

def test_probes_equal_to_the_gallery_are_all_identified_at_rank_1():
    emb, ids = people(photos_each=1)
    got = identify(emb, ids, emb, ids, "cosine", ranks=(1, 5))
    assert got.rates == {1: 1.0, 5: 1.0} and got.identities == 8 and got.probes == 8
    assert got.chance == {1: 1 / 8, 5: 5 / 8}


def test_noisy_probes_of_well_separated_people_are_identified():
    emb, ids = people(photos_each=3, noise=0.1)
    gallery, probes = emb[0::3], np.delete(emb, np.s_[0::3], axis=0)
    got = identify(probes, np.delete(ids, np.s_[0::3]), gallery, ids[0::3], "euclidean_l2", ranks=(1,))
    assert got.rates[1] == 1.0


def test_random_probes_are_identified_at_chance_level():
    rng = np.random.default_rng(3)
    n_people, n_probes = 20, 4000
    gallery = rng.normal(size=(n_people, 16))
    gallery_ids = [f"p{k}" for k in range(n_people)]
    probe_ids = rng.choice(gallery_ids, size=n_probes)
    got = identify(rng.normal(size=(n_probes, 16)), probe_ids, gallery, gallery_ids, "cosine", ranks=(1, 5))
    assert got.rates[1] == pytest.approx(1 / 20, abs=0.015)
    assert got.rates[5] == pytest.approx(5 / 20, abs=0.03)


def test_identical_embeddings_everywhere_give_chance_not_zero_or_one():
    """Ties are broken at random in expectation: an anonymization that maps everyone to one
    face leaves the attacker at chance."""
    gallery_ids = ["a", "b", "c", "d"]
    got = identify(np.ones((4, 3)), gallery_ids, np.ones((4, 3)), gallery_ids, "cosine", ranks=(1, 2, 4))
    assert got.rates == {1: pytest.approx(0.25), 2: pytest.approx(0.5), 4: 1.0}


def test_an_identity_with_several_gallery_entries_counts_once_at_its_nearest():
    gallery = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [-1.0, 0.1]])
    less, ties, n = true_identity_ranks(np.array([[0.1, 1.0]]), ["x"], gallery, ["x", "y", "y", "x"], "cosine")
    assert n == 2 and less.tolist() == [1] and ties.tolist() == [0]  # y is nearer: rank 2
    assert rank_k_rate(less, ties, 1) == 0.0 and rank_k_rate(less, ties, 2) == 1.0


def test_closed_set_identification_needs_every_probe_enrolled():
    with pytest.raises(ValueError, match="without a gallery entry: z"):
        identify(np.ones((1, 2)), ["z"], np.ones((1, 2)), ["a"], "cosine")


def test_chance_rate():
    assert chance_rate(1, 13) == pytest.approx(1 / 13) and chance_rate(5, 3) == 1.0 and np.isnan(chance_rate(1, 0))


def test_parrot_attacker_wins_where_one_person_always_gets_one_fake():
    """Fakes that carry a fixed per-person identity (the per-person draw) and nothing of the
    source: the naive attacker (real gallery) is at chance, the parrot (anonymized gallery)
    identifies everyone."""
    rng = np.random.default_rng(5)
    real, ids = people(n_people=10, photos_each=2, noise=0.05)
    fake_of = {p: rng.normal(size=real.shape[1]) for p in sorted(set(ids))}
    fakes = np.stack([fake_of[p] + 0.05 * rng.normal(size=real.shape[1]) for p in ids])
    gallery, probes = slice(0, None, 2), slice(1, None, 2)
    naive = identify(fakes[probes], ids[probes], real[gallery], ids[gallery], "cosine", ranks=(1,))
    parrot = identify(fakes[probes], ids[probes], fakes[gallery], ids[gallery], "cosine", ranks=(1,))
    assert parrot.rates[1] == 1.0 and naive.rates[1] < 0.5


# ---- linkability ---------------------------------------------------------------------------

def test_fakes_of_one_fixed_identity_per_person_are_perfectly_linkable():
    emb, ids = people(noise=0.05)
    got = linkability(emb, ids, "cosine", far=1e-2)
    assert got.roc_auc == 1.0 and got.tar == 1.0 and got.far == 0.0
    assert (got.faces, got.identities, got.genuine_pairs, got.impostor_pairs) == (32, 8, 48, 448)


def test_fakes_independent_of_the_person_are_unlinkable():
    rng = np.random.default_rng(7)
    ids = np.repeat([f"p{k}" for k in range(40)], 5)
    got = linkability(rng.normal(size=(len(ids), 16)), ids, "cosine", far=1e-2)
    assert got.roc_auc == pytest.approx(0.5, abs=0.04)
    assert got.tar < 0.05


def test_linkability_without_pairs_of_one_person_is_nan():
    got = linkability(np.eye(3), ["a", "b", "c"], "cosine")
    assert got.genuine_pairs == 0 and np.isnan(got.roc_auc) and np.isnan(got.tar)


def test_shared_target_share():
    assert shared_target_share(["t1", "t1", "t2", "t2"], ["a", "a", "b", "b"]) == 1.0
    assert shared_target_share(["t1", "t2", "t1", "t3"], ["a", "a", "b", "b"]) == 0.0
    assert shared_target_share(["", ""], ["a", "a"]) == 0.0  # no target (an obfuscation) never matches
    assert np.isnan(shared_target_share(["t1", "t2"], ["a", "b"]))


# ---- the threshold-free view ---------------------------------------------------------------

def test_separation_auc_of_identical_distributions_is_one_half():
    rng = np.random.default_rng(11)
    x = rng.normal(size=3000)
    assert separation_auc(x, rng.normal(size=3000)) == pytest.approx(0.5, abs=0.02)
    assert separation_auc([1.0, 1.0], [1.0, 1.0]) == 0.5  # ties count half
    assert separation_auc([0.1, 0.2], [0.5, 0.6]) == 1.0 and separation_auc([0.5], [0.1]) == 0.0
    assert np.isnan(separation_auc([], [1.0]))


def test_summary():
    assert summary([1.0, 2.0, 3.0])["median"] == 2.0 and summary([])["n"] == 0


# ---- Supp. D: the mean of k fakes ----------------------------------------------------------

def test_mean_of_fakes_that_keep_the_source_moves_toward_it():
    """Fakes = source + independent noise: the noise averages out, the mean's distance to the
    source falls with k (roughly as 1/k for cosine at this noise)."""
    rng = np.random.default_rng(13)
    source = rng.normal(size=64)
    fakes = source + 2.0 * rng.normal(size=(16, 64))
    d = distance_vs_k(source, fakes, "cosine")
    assert d.shape == (16,) and d[-1] < d[0] / 4
    assert np.all(np.diff(d[::4]) < 0)


def test_mean_of_fakes_that_keep_nothing_stays_as_far_as_a_stranger():
    rng = np.random.default_rng(17)
    source = rng.normal(size=64)
    d = distance_vs_k(source, rng.normal(size=(16, 64)), "cosine")
    assert np.all(d > 0.6)  # cosine distance of unrelated 64-d vectors is ~1 +- 0.13


def test_control_separates_the_sources_identity_from_the_drift_toward_the_average_face():
    """Faces share an average face; fakes that keep nothing of the source still move toward
    everyone as k grows (the drift), so their distance to the source stays at the control;
    fakes that keep the source fall below it."""
    rng = np.random.default_rng(19)
    average = 3.0 * rng.normal(size=64)
    source, others = average + rng.normal(size=64), average + rng.normal(size=(30, 64))
    unrelated = average + 2.0 * rng.normal(size=(16, 64))
    d, control = distance_vs_k(source, unrelated, "cosine"), control_vs_k(others, unrelated, "cosine")
    assert d[-1] < d[0] and abs(d[-1] - control[-1]) < 0.03  # the drift alone: no gap
    keeping = unrelated + 0.7 * (source - average)
    d, control = distance_vs_k(source, keeping, "cosine"), control_vs_k(others, keeping, "cosine")
    assert d[-1] < control[-1] - 0.05


def test_mean_embedding_weighs_every_fake_alike():
    assert mean_embedding(np.array([[10.0, 0.0], [0.0, 1.0]])).tolist() == [0.5, 0.5]
    assert mean_embedding(np.array([[10.0, 0.0], [0.0, 1.0]]), normalize=False).tolist() == [5.0, 0.5]
    with pytest.raises(ValueError):
        mean_embedding(np.zeros((0, 3)))


def test_distinct_targets_are_different_pool_faces():
    from bench.queries.base import rng_for
    from bench.queries.strategies import Furthest, RandomFurthest

    distances = np.linspace(0.0, 1.0, 50)
    furthest = distinct_targets(Furthest(), distances, rng_for(0, "f"), 5)
    assert [s.index for s in furthest] == [49, 48, 47, 46, 45]
    drawn = distinct_targets(RandomFurthest(), distances, rng_for(0, "f"), 16)
    assert len({s.index for s in drawn}) == 16
    assert len(distinct_targets(Furthest(), distances[:3], rng_for(0, "f"), 16)) == 3  # the pool runs out


# ---- the split -----------------------------------------------------------------------------

def test_split_is_per_identity_deterministic_and_bounded():
    labels = pd.DataFrame({"path": [f"p{p}/{k}.jpg" for p in range(5) for k in range(p + 1)],
                           "identity": [f"p{p}" for p in range(5) for k in range(p + 1)]})
    split = split_identities(labels, gallery_per_identity=1, probes_per_identity=2, seed=0)
    assert split.equals(split_identities(labels, 1, 2, seed=0))
    counts = split.groupby(["identity", "role"]).size().unstack(fill_value=0)
    assert (counts[GALLERY] == 1).all()
    assert counts[PROBE].tolist() == [0, 1, 2, 2, 2] and counts[UNUSED].tolist() == [0, 0, 0, 1, 2]
    everything = split_identities(labels, 1, None, seed=0)
    assert (everything.role != UNUSED).all()
    assert not split.equals(split_identities(labels, 1, 2, seed=1))  # another seed, another split
    with pytest.raises(ValueError):
        split_identities(labels, 0, 2, seed=0)


# ---- the per-person draw -------------------------------------------------------------------

def test_person_distances_average_each_persons_faces():
    from bench.queries.base import person_distances

    d = np.array([[0.0, 1.0, np.nan], [1.0, 0.0, np.nan], [0.5, 0.5, 0.5], [np.nan, np.nan, np.nan]])
    out = person_distances(d, ["a", "a", "", "a"])
    assert out[0].tolist()[:2] == [0.5, 0.5] and np.isnan(out[0, 2])
    assert np.array_equal(out[0], out[1], equal_nan=True) and np.array_equal(out[3], out[0], equal_nan=True)
    assert out[2].tolist() == [0.5, 0.5, 0.5]  # an unlabelled face keeps its own row


def test_per_person_strategy_gives_one_person_one_target(cfg_factory, tmp_path):
    """The query stage's pick: the per-person strategy gives every labelled face of a person
    the same target, random_furthest draws per face."""
    from types import SimpleNamespace

    from bench.registry import QUERIES
    from bench.spaces.features import Features
    from bench.stages import query as query_stage

    cfg = cfg_factory("targets.distinct_per_photo=false")
    rng = np.random.default_rng(0)
    n_faces, n_pool = 12, 200
    faces = pd.DataFrame({"face_id": [f"f{k}" for k in range(n_faces)], "photo": [f"ph{k}.jpg" for k in range(n_faces)]})
    persons = [f"p{k // 4}" for k in range(n_faces)]  # three people, four photos each
    distances = rng.uniform(size=(n_faces, n_pool))
    pool_faces = pd.DataFrame({"face_id": [f"g{k}" for k in range(n_pool)], "photo": [f"g{k}.png" for k in range(n_pool)],
                               "landmarks": [[0.0] * 10] * n_pool, "x1": 0.0, "y1": 0.0, "x2": 1.0, "y2": 1.0})
    sources = Features(face_id=faces.face_id.to_numpy(), status={"embedding": np.array(["ok"] * n_faces)})
    space = SimpleNamespace(feature="embedding", name="embedding")
    picks = {}
    for name in ("random_furthest", "random_furthest_per_person"):
        query = QUERIES.build(name)
        rows, failures = query_stage.pick_targets(cfg, space, query, faces, sources, distances, pool_faces,
                                                  Features(face_id=pool_faces.face_id.to_numpy()), tmp_path, persons)
        assert not failures
        picks[name] = pd.DataFrame(rows).assign(person=persons)
    per_person = picks["random_furthest_per_person"].groupby("person").target.nunique()
    assert (per_person == 1).all()
    assert picks["random_furthest"].groupby("person").target.nunique().max() > 1
    # each row reports the face's own distance to its target, not the person's mean
    row = picks["random_furthest_per_person"].iloc[0]
    assert row.distance == pytest.approx(distances[0, int(row.target[1:])])


def test_per_person_strategy_without_labels_says_what_it_needs(cfg_factory):
    from bench.errors import BenchError
    from bench.registry import QUERIES
    from bench.stages.query import face_persons

    cfg = cfg_factory()  # dataset=sample: no labels
    with pytest.raises(BenchError, match="needs identity labels.*dataset=labelled"):
        face_persons(cfg, QUERIES.build("random_furthest_per_person"), pd.DataFrame({"face_id": ["a"]}))
    assert face_persons(cfg, QUERIES.build("random_furthest"), pd.DataFrame({"face_id": ["a"]})) == [""]


# ---- the stage -----------------------------------------------------------------------------

def test_attack_command_and_layout_agree_with_the_configs():
    from bench import layout
    from bench.cli import COMMANDS
    from bench.config import load_config

    assert COMMANDS["attack"][0] == "bench.stages.attack"
    cfg = load_config(["dataset=labelled"])
    assert cfg.dataset.name == layout.ATTACK_DATASET == load_config().attack.dataset


def test_missing_identities_set_gives_na_tables_and_succeeds(tmp_path):
    """A machine without ../shared: the stage (and so `dvc repro`) succeeds and every row says
    why it has no number; every file dvc.yaml declares is there."""
    from bench.cli import main
    from bench.layout import AttackOutputs

    results, absent = tmp_path / "results", tmp_path / "no_such_folder"
    assert main(["attack", f"identities.path={absent}", f"results_dir={results}", "recognizers=[dlib,deepid]",
                 "generator=pixelate"]) == 0
    out = AttackOutputs(results, "dcgan", "pixelate", "embedding", "random_furthest_ag")
    assert out.root == results / "attack" / "labelled" / "dcgan" / "pixelate" / "embedding-random_furthest_ag"
    reason = f"n/a: identities set not found at {absent} (set identities.path, or BENCH_SHARED for ../shared)"
    for name in AttackOutputs.TABLES:
        table = pd.read_csv(out.table(name, ".csv"), keep_default_na=False)
        assert set(table.recognizer) == {"dlib", "deepid"} and (table.status == reason).all(), name
        measured = [c for c in table.columns if c not in ("recognizer", "metric", "strategy", "status", "threshold")]
        assert (table[measured] == "").all().all(), f"{name}: no number without data"
        markdown = out.table(name, ".md").read_text()
        assert "n/a¹" in markdown and f"¹ {reason[len('n/a: '):]}" in markdown
    linkability_rows = pd.read_csv(out.table("linkability", ".csv"))
    assert len(linkability_rows) == 2 * 5  # real photos + the cell's + three linkability strategies
    for path in (out.distances_long, out.split, out.failures, out.provenance, out.kanonymity_figure,
                 out.distances_figure("dlib"), out.distances_figure("deepid")):
        assert path.is_file(), path
    assert out.data.root.is_dir() and not any(out.data.root.iterdir())
    written = [p for p in results.rglob("*") if p.is_file() and p.relative_to(results).parts[0] != "cache"]
    assert all(any(d == p or d in p.parents for d in out.files()) for p in written), written


@pytest.mark.slow
def test_attack_on_the_cells_own_dataset_needs_no_labels(cfg_factory):
    """attack.subjects=dataset on the embedded sample (6 faces, pixelate, Dlib): each face is its own
    identity; the fakes are ranked against the originals, the real baseline, linkability and
    the parrot say why they have no number; every file goes under attack/sample/."""
    from bench.stages import attack

    cfg = cfg_factory("attack.subjects=dataset", "dataset=sample", "generator=pixelate", "recognizers=[dlib]",
                      "anonymize.audit_detectors=[]", "anonymize.output_audit_rounds=0")
    out = attack.run(cfg)
    assert out.root == Path(cfg.results_dir) / "attack" / "sample" / "dcgan" / "pixelate" / "embedding-random_furthest_ag"
    ident = pd.read_csv(out.table("identification", ".csv")).iloc[0]
    assert ident.status == "ok" and ident.identities == 6 and ident.probes_anonymized == 6
    assert 0 <= ident.rank1_anonymized <= 1 and ident.rank1_chance == pytest.approx(1 / 6, abs=1e-6)
    assert "no identity labels" in ident.rank1_real
    assert pd.read_csv(out.table("linkability", ".csv")).status.str.contains("no identity labels").all()
    assert "takes no target" in pd.read_csv(out.table("parrot", ".csv")).status.iloc[0]
    distances = pd.read_csv(out.table("distances", ".csv")).iloc[0]
    assert distances.impostor_n == 15 and distances.genuine_n == 0 and distances.fakes_n == 6
    split = pd.read_csv(out.split)
    assert (split.identity == split.face_id).all() and len(split) == 6
    assert "each its own identity" in out.table("identification", ".md").read_text()
    with pytest.raises(Exception, match="attack.subjects='someone'"):
        attack.run(cfg_factory("attack.subjects=someone"))


@pytest.mark.shared
@pytest.mark.slow
def test_attack_on_the_identities_set(cfg_factory, shared):
    """One small real run on ../shared's identities set (pixelate, Dlib, one probe per person,
    no audits): every table has numbers, real probes are identified, the files are declared."""
    from bench.layout import AttackOutputs
    from bench.stages import attack

    shared_path = shared("data", "identities", "labels.csv").parent
    cfg = cfg_factory(f"identities.path={shared_path}", "generator=pixelate", "recognizers=[dlib]",
                      "attack.probes_per_identity=1", "anonymize.audit_detectors=[]", "anonymize.output_audit_rounds=0",
                      "detector=scrfd")
    out = attack.run(cfg)
    assert isinstance(out, AttackOutputs)
    ident = pd.read_csv(out.table("identification", ".csv"))
    row = ident.iloc[0]
    assert row.status == "ok" and row.identities == 13 and row.probes_real >= 12
    assert row.rank1_real > 0.8 and row.rank1_chance == pytest.approx(1 / 13)
    link = pd.read_csv(out.table("linkability", ".csv"))
    assert link.strategy.tolist()[0] == attack.REAL and link.roc_auc.iloc[0] > 0.9
    assert "takes no target" in link.status.iloc[-1]
    distances = pd.read_csv(out.table("distances", ".csv")).iloc[0]
    assert distances.genuine_median < distances.impostor_median and distances.fakes_n >= 20
    assert distances.status == "ok" or distances.status.startswith("n/a: Source-vs-Result")
    kanon = pd.read_csv(out.table("kanonymity", ".csv"))
    assert "takes no target" in kanon.status.iloc[0]
    split = pd.read_csv(out.split, keep_default_na=False)
    assert (split.role == "gallery").sum() == 13 and (split.role == "probe").sum() == 13
    assert Path(out.distances_figure("dlib")).stat().st_size > 5_000


def test_dataset_people_are_every_face_given_a_target_swapped_or_covered(tmp_path):
    """attack.subjects=dataset: the gallery is the people in the photos, so a face the closed
    loop (or the anonymize fallback) covered stays in it and is attacked in its published form;
    unaligned faces (never given a target) are not people of the attack."""
    from bench.layout import Cell
    from bench.stages.attack import CellEvidence, dataset_people

    faces = pd.DataFrame({"face_id": ["p-000", "p-001", "p-002", "q-000"], "photo": ["p.jpg", "p.jpg", "p.jpg", "q.jpg"],
                          "aligned": [True, True, False, True]})
    pairs = pd.DataFrame({"source_face": ["p-000", "p-001", "q-000"],
                          "status": ["swapped", "fallback", "swapped"],
                          "guard_stop": ["passed", "guard fallback", "passed"]})
    evidence = CellEvidence(Cell(results_dir=tmp_path, dataset="d", pool="p", generator="g", metric="m", query="q"),
                            pairs, pd.DataFrame())
    people = dataset_people(faces, evidence)
    assert people.ids() == ["p-000", "p-001", "q-000"]
    assert people.photo == {"p-000": "p.jpg", "p-001": "p.jpg", "q-000": "q.jpg"}
