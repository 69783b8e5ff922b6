"""Stage `attack`: attack one cell's anonymization the way an adversary would.

Tables 1-3 ask whether a recognizer verifies a face and its fake as the same person at one
threshold. Here the identities set's photos (conf/config.yaml `identities`) are split per
person into the attacker's gallery (enrolment photos) and probes (bench.attacks.split),
anonymized with the cell's generator, metric, query and pool as dataset `labelled`
(conf/dataset/labelled.yaml) through the faces, query, anonymize and evaluate stages, and
attacked with every recognizer in `recognizers` (bench.attacks):

  1. identification  rank-k of the anonymized probes against the real gallery (the naive
                     attacker), beside the real probes (the baseline) and chance (k / N)
  2. linkability     ROC AUC and TAR at FAR of the distances between one person's fakes vs
                     two people's, per query strategy (the cell's and attack.linkability_queries),
                     beside the real photos
  3. parrot          the gallery anonymized by the same cell: anonymized vs anonymized, beside
                     the naive attacker, per strategy
  4. distances       every Source-vs-Result distance of the cell beside the genuine and
                     impostor distances of the real photos (one figure per recognizer)
  5. kanonymity      MFMC Supp. D: k fakes of one face (k different targets), their mean's
                     distance to the source for k = 1..attack.kanonymity.k_max

Without the identities set (a machine without ../shared) the stage still succeeds: every row
of every table says "n/a: identities set not found at <path>", as the baseline stage does.
A recognizer without weights, a generator that cannot run, a table with too few faces: n/a
rows with the reason. No number is made up.

Reads:  <identities.path>/<identities.labels> and its photos; the pool's manifold (the
        manifold stage; built first only where it is missing).
Writes: <results_dir>/labelled/                      faces, targets, cells (the chained stages)
        <results_dir>/attack/<pool>/<generator>/<metric>-<query>/   (bench.layout.AttackOutputs)
            identification, linkability, parrot, distances, kanonymity .csv and .md
            distances_all.csv          every distance behind distances.csv (long format)
            distances_<recognizer>.png, kanonymity.png
            kanonymity_fakes/          the k fakes (face crops) and fakes.parquet
            split.csv, failures.csv, provenance.json
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from bench import resultsio
from bench.anonymizer import load_target
from bench.attacks.distributions import plot_distributions, separation_auc, summary
from bench.attacks.identification import chance_rate, identify
from bench.attacks.kanonymity import control_vs_k, distance_vs_k, distinct_targets
from bench.attacks.linkability import linkability, shared_target_share
from bench.attacks.pairs import within_distances
from bench.attacks.split import GALLERY, PROBE, UNUSED, split_identities
from bench.embedding_runner import embed_with
from bench.embeddings import OK, Embeddings, read_embeddings, write_embeddings
from bench.errors import BenchError
from bench.facetable import failure, slug
from bench.footnotes import markdown_with_footnotes
from bench.generators.base import Face
from bench.identities import missing_identities, one_face_per_photo, read_labels
from bench.images import load_photo
from bench.layout import ATTACK_DATASET, AttackOutputs, Cell, pool_outputs
# The pipeline chains the stages whose files this one attacks (faces, query, anonymize,
# evaluate: each through its entry function and files, as `python -m bench run` does); no
# other stage's internals are used here.
from bench.config import with_choice
from bench.pipeline import run_through_evaluate
from bench.pools.base import build_pool
from bench.provenance import record
from bench.queries.base import AgeGender, rng_for
from bench.recognizers import build_recognizer, selected_recognizers
from bench.registry import GENERATORS, QUERIES, SPACES
from bench.spaces.features import Features, all_distances, compute_features
from bench.verification import pair_distances, threshold_of

log = logging.getLogger(__name__)

REAL = "real photos (no anonymization)"
DISTANCE_COLUMNS = ["recognizer", "metric", "kind", "face_a", "face_b", "distance"]
SPLIT_COLUMNS = ["path", "identity", "role", "face_id"]
FAKE_COLUMNS = ["face_id", "photo", "source_face", "identity", "k", "target", "target_distance", "landmarks",
                "aligned", "key"]


def outputs(cfg: DictConfig) -> AttackOutputs:
    return AttackOutputs.from_config(cfg)


# ---- table layouts -----------------------------------------------------------------------

def identification_columns(ranks) -> list[str]:
    cols = ["recognizer", "metric", "strategy", "status", "identities", "probes_real", "probes_anonymized"]
    for k in ranks:
        cols += [f"rank{k}_real", f"rank{k}_anonymized", f"rank{k}_chance"]
    return cols


def parrot_columns(ranks) -> list[str]:
    cols = ["recognizer", "metric", "strategy", "status", "identities", "probes"]
    for k in ranks:
        cols += [f"rank{k}_naive", f"rank{k}_parrot", f"rank{k}_chance"]
    return cols


def linkability_columns(far: float) -> list[str]:
    return ["recognizer", "metric", "strategy", "status", "faces", "identities", "genuine_pairs", "impostor_pairs",
            "same_target_share", "roc_auc", f"tar_at_far_{far:g}", "far_achieved"]


DISTANCES_COLUMNS = ["recognizer", "metric", "status", "threshold", "genuine_n", "genuine_median", "impostor_n",
                     "impostor_median", "results_n", "results_median", "results_verified",
                     "auc_results_vs_impostor", "auc_genuine_vs_results", "fakes_n", "fakes_median", "fakes_verified",
                     "auc_fakes_vs_impostor", "auc_genuine_vs_fakes"]
KANONYMITY_COLUMNS = ["recognizer", "metric", "k", "status", "faces", "mean_distance", "std_distance",
                      "control_distance", "verified_share", "threshold", "genuine_median", "impostor_median"]
COUNT_COLUMNS = ("identities", "probes_real", "probes_anonymized", "probes", "faces", "genuine_pairs",
                 "impostor_pairs", "genuine_n", "impostor_n", "results_n", "fakes_n", "k")


# ---- the stage ---------------------------------------------------------------------------

def run(cfg: DictConfig) -> AttackOutputs:
    """Anonymizes the identities set's gallery and probe photos for this cell (and the
    strategies linkability compares), then writes the five attack tables; without the
    identities set, n/a tables (module docstring)."""
    started = time.perf_counter()
    out = outputs(cfg)
    names = selected_recognizers(cfg)
    if out.dataset != ATTACK_DATASET:
        return run_on_dataset(cfg, out, names, started)
    folder = Path(str(cfg.identities.path)).expanduser()
    labels_path = folder / str(cfg.identities.labels)
    reason = missing_identities(folder, labels_path)
    if reason is not None:
        return write_unavailable(cfg, out, names, reason, labels_path)

    opts = cfg.attack
    labels = read_labels(labels_path)
    split = split_identities(labels, int(opts.gallery_per_identity), opts.probes_per_identity, int(cfg.seed))
    used = split[split.role != UNUSED]
    base = labelled_config(cfg, used.path.tolist())
    generator = GENERATORS.build(cfg.generator, name=cfg.choices.generator)
    strategies = attacked_strategies(cfg, generator.uses_target)
    seconds: dict[str, float] = {}
    for query in strategies:
        t0 = time.perf_counter()
        run_through_evaluate(base if query == cfg.choices.query else with_choice(base, "query", query))
        seconds[f"anonymize_{query}"] = round(time.perf_counter() - t0, 1)

    # From here on: the chained stages' files only.
    faces = pd.read_parquet(out.data.faces)
    chosen, no_face = one_face_per_photo(used[["path", "identity"]], faces)
    failures = [{**f, "stage": "attack"} for f in no_face]
    split_table = split.merge(chosen[["path", "face_id"]], on="path", how="left").fillna({"face_id": ""})
    people = Faces.of(split_table)
    evidence = {q: CellEvidence.read(out.cell(q)) for q in strategies}
    main = cfg.choices.query

    t0 = time.perf_counter()
    rows: dict[str, list[dict]] = {name: [] for name in AttackOutputs.TABLES}
    distances_long = []
    for name in names:
        recognizer = build_recognizer(name, cfg)
        sources = read_embeddings(evidence[main].cell.embeddings / "sources", name)
        results = {q: fake_embeddings(cfg, out, e, faces, people, recognizer) for q, e in evidence.items()}
        rows["identification"] += identification_rows(name, opts, main, people, sources, results[main],
                                                      evidence[main])
        rows["parrot"] += [parrot_row(name, opts, q, people, sources, results[q], evidence[q])
                           for q in strategies] + not_run_rows(name, opts, cfg, strategies, parrot_columns(opts.ranks))
        rows["linkability"] += linkability_rows(name, opts, cfg, strategies, people, sources, results, evidence)
        row, long, _ = distances_entry(name, recognizer, opts, people, sources, results[main], evidence[main], out)
        rows["distances"].append(row)
        distances_long.append(long)
    seconds["attacks"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    kanon_rows, kanon_failures, kanon_info = kanonymity(cfg, out, generator, people, evidence[main], names,
                                                        {r["recognizer"]: r for r in rows["distances"]}, folder)
    rows["kanonymity"] = kanon_rows
    failures += kanon_failures
    seconds["kanonymity"] = round(time.perf_counter() - t0, 1)

    data_line = describe_data(cfg, labels, split_table, strategies)
    write_tables(cfg, out, rows, data_line)
    resultsio.write_csv(pd.concat(distances_long, ignore_index=True) if distances_long
                        else pd.DataFrame(columns=DISTANCE_COLUMNS), out.distances_long)
    plot_kanonymity(out.kanonymity_figure, kanon_rows, cfg)
    resultsio.write_csv(split_table[SPLIT_COLUMNS], out.split)
    resultsio.write_failures(failures, out.failures)
    seconds["total"] = round(time.perf_counter() - started, 1)
    resultsio.write_json(record(
        cfg, "attack",
        data_manifest={"labels": str(labels_path), "labels_sha256": resultsio.sha256_file(labels_path),
                       "photos": str(out.data.photos), "photos_sha256": resultsio.sha256_file(out.data.photos)},
        cells={q: {"root": str(e.cell.root), "pairs_sha256": resultsio.sha256_file(e.cell.pairs),
                   "unavailable": e.unavailable, "labelled_faces": len(people.identity),
                   "labelled_faces_found_again": int(e.pairs[e.pairs.source_face.isin(list(people.identity))]
                                                     .redetected.astype(bool).sum())}
               for q, e in evidence.items()},
        anonymize=OmegaConf.to_container(base.anonymize, resolve=True),
        weights=evidence[main].weights,
        protocol={"metric": str(opts.metric), "ranks": list(opts.ranks), "far": float(opts.far),
                  "gallery_per_identity": int(opts.gallery_per_identity),
                  "probes_per_identity": opts.probes_per_identity, "strategies": strategies,
                  "one_face_per_photo": "largest aligned face", "kanonymity": kanon_info},
        counts={"photos": len(labels), "gallery_photos": int((split.role == GALLERY).sum()),
                "probe_photos": int((split.role == PROBE).sum()), "identities": int(labels.identity.nunique()),
                "failures": len(failures)},
        seconds=seconds,
    ), out.provenance)
    log.info("attack: %d gallery and %d probe photos of %d people, strategies %s, %.0f s -> %s",
             int((split.role == GALLERY).sum()), int((split.role == PROBE).sum()), labels.identity.nunique(),
             ", ".join(strategies), seconds["total"], out.root)
    print(out.table("identification", ".md").read_text(encoding="utf-8"))  # a benchmark prints its table
    return out


# ---- attack.subjects=dataset: the cell's own dataset, no identity labels ------------------------------

NO_LABELS = ("n/a: dataset {dataset} has no identity labels: each face is its own identity, seen in one "
             "photo only")


def run_on_dataset(cfg: DictConfig, out: AttackOutputs, names: list[str], started: float) -> AttackOutputs:
    """attack.subjects=dataset: the attacks on the cell's own dataset (conf/config.yaml `attack.subjects`).

    Each face of the cell given a target, swapped or covered (every aligned face for an
    obfuscation), is its own identity. 1. identification: the attacker holds the original photos (gallery =
    the real faces, N = faces) and ranks each fake against them; there is no second real photo
    to probe with, so rank-k real reads n/a. 2. linkability: n/a (one photo per person).
    3. parrot: the attacker re-anonymizes the originals with the cell's generator and strategy
    under its own seed (attack.parrot_seed) and ranks each fake against those. 4. distances:
    Source-vs-Result and source-vs-fake against impostor pairs (every two faces; no person is
    assumed to appear twice); no genuine pairs. 5. Supp. D as on the identities set.

    The cell's files come from `python -m bench run` (or dvc repro's stages); where they are
    missing the stage chains faces -> ... -> evaluate first."""
    opts, strategy = cfg.attack, str(cfg.choices.query)
    generator = GENERATORS.build(cfg.generator, name=cfg.choices.generator)
    cell = out.cell(strategy)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    if not all(p.is_file() for p in (cell.pairs, cell.outcomes, cell.provenance, cell.evaluate_provenance)):
        run_through_evaluate(cfg)
    seconds["cell"] = round(time.perf_counter() - t0, 1)
    evidence = CellEvidence.read(cell)
    faces = pd.read_parquet(out.data.faces)
    people = dataset_people(faces, evidence)
    photo_root = Path(str(cfg.dataset.path)).expanduser()
    no_labels = NO_LABELS.format(dataset=cfg.dataset.name)

    t0 = time.perf_counter()
    parrot_fakes, failures, no_parrot = parrot_gallery(cfg, out, generator, faces, people, evidence, photo_root)
    seconds["parrot_fakes"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    rows: dict[str, list[dict]] = {name: [] for name in AttackOutputs.TABLES}
    distances_long = []
    for name in names:
        recognizer = build_recognizer(name, cfg)
        sources = read_embeddings(cell.embeddings / "sources", name)
        results = fake_embeddings(cfg, out, evidence, faces, people, recognizer)
        parrot = (embedded_fakes(recognizer, parrot_fakes, out.parrot_fakes, cfg) if no_parrot is None
                  else Embeddings.missing(no_parrot))
        rows["identification"].append(own_identification_row(name, opts, strategy, people, sources, results,
                                                              evidence, no_labels))
        rows["parrot"].append(own_parrot_row(name, opts, strategy, people, sources, results, parrot, evidence))
        rows["linkability"] += [{"recognizer": name, "metric": str(opts.metric), "strategy": q, "status": no_labels}
                                for q in (REAL, strategy)]
        row, long, _ = distances_entry(name, recognizer, opts, people, sources, results, evidence, out)
        rows["distances"].append(row)
        distances_long.append(long)
    seconds["attacks"] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    rows["kanonymity"], kanon_failures, kanon_info = kanonymity(
        cfg, out, generator, people, evidence, names, {r["recognizer"]: r for r in rows["distances"]}, photo_root)
    failures += kanon_failures
    seconds["kanonymity"] = round(time.perf_counter() - t0, 1)

    n_photos = len(set(people.photo.values()))
    data_line = (f"Data: dataset {cfg.dataset.name} ({photo_root}), cell {cell.root}: {len(people.identity)} faces "
                 f"in {n_photos} photos, each its own identity ("
                 + ("every face given a target, swapped or covered" if generator.uses_target else "every aligned face")
                 + f"); distance {opts.metric}; parrot seed {int(opts.parrot_seed)} (the cell's seed "
                 f"{int(cfg.seed)}); no identity labels, so linkability and the real-probe baseline are n/a and "
                 "every two faces count as an impostor pair.")
    write_tables(cfg, out, rows, data_line, notes={**NOTES, **DATASET_NOTES})
    resultsio.write_csv(pd.concat(distances_long, ignore_index=True) if distances_long
                        else pd.DataFrame(columns=DISTANCE_COLUMNS), out.distances_long)
    plot_kanonymity(out.kanonymity_figure, rows["kanonymity"], cfg)
    split = pd.DataFrame({"path": [people.photo[f] for f in people.ids()], "identity": people.ids(),
                          "role": PROBE, "face_id": people.ids()}, columns=SPLIT_COLUMNS)
    resultsio.write_csv(split, out.split)
    resultsio.write_failures(failures, out.failures)
    seconds["total"] = round(time.perf_counter() - started, 1)
    resultsio.write_json(record(
        cfg, "attack",
        data_manifest={"dataset": str(cfg.dataset.name), "faces": str(out.data.faces),
                       "faces_sha256": resultsio.sha256_file(out.data.faces)},
        cells={strategy: {"root": str(cell.root), "pairs_sha256": resultsio.sha256_file(cell.pairs),
                          "unavailable": evidence.unavailable, "faces_attacked": len(people.identity)}},
        weights=evidence.weights,
        protocol={"on": "dataset", "metric": str(opts.metric), "ranks": list(opts.ranks),
                  "identity": "each face its own", "parrot_seed": int(opts.parrot_seed),
                  "parrot": no_parrot or f"{len(parrot_fakes)} fakes (parrot_fakes/)", "kanonymity": kanon_info},
        counts={"faces": len(people.identity), "photos": n_photos, "failures": len(failures)},
        seconds=seconds,
    ), out.provenance)
    log.info("attack: %d faces of dataset %s (each its own identity), %.0f s -> %s", len(people.identity),
             cfg.dataset.name, seconds["total"], out.root)
    print(out.table("identification", ".md").read_text(encoding="utf-8"))
    return out


def dataset_people(faces: pd.DataFrame, evidence: CellEvidence) -> Faces:
    """Every aligned face of the cell's pairs table, each its own identity (role probe): for a
    generator that takes a target, every face given one, whether it was swapped or covered (by
    the anonymize fallback or the closed loop's, bench.guard); for an obfuscation, every
    aligned face. So the gallery is the people in the photos, the same in a cell's guarded and
    open runs, and a face the anonymizer covered is attacked in its published form too."""
    aligned = faces[faces.aligned.astype(bool)]
    rows = aligned[aligned.face_id.astype(str).isin(set(evidence.pairs.source_face))]
    ids = rows.face_id.astype(str).tolist()
    return Faces(dict(zip(ids, ids)), dict.fromkeys(ids, PROBE), dict(zip(ids, rows.photo.astype(str))))


def parrot_gallery(cfg: DictConfig, out: AttackOutputs, generator, faces: pd.DataFrame, people: Faces,
                   evidence: CellEvidence, photo_root: Path) -> tuple[pd.DataFrame, list[dict], str | None]:
    """(the parrot's fake of each face (make_fakes with attack.parrot_seed, one target each),
    failure rows, why there is none or None)."""
    if not generator.uses_target:
        return pd.DataFrame(columns=FAKE_COLUMNS), [], (
            f"n/a: generator {cfg.choices.generator} takes no target: re-anonymizing the original gives the "
            "probe's own image, whatever the seed")
    if evidence.unavailable:
        return pd.DataFrame(columns=FAKE_COLUMNS), [], evidence.unavailable
    try:
        generator.prepare()
    except BenchError as err:
        return pd.DataFrame(columns=FAKE_COLUMNS), [], f"n/a: {err}"
    chosen = faces[faces.face_id.astype(str).isin(list(people.identity))].reset_index(drop=True)
    fakes, failures = make_fakes(cfg, out.parrot_fakes, generator, chosen, 1, out.data.root, photo_root,
                                 int(cfg.attack.parrot_seed), "parrot")
    return fakes, failures, None if len(fakes) else "n/a: no parrot fake could be made (see failures.csv)"


def embedded_fakes(recognizer, fakes: pd.DataFrame, folder: Path, cfg: DictConfig) -> Embeddings:
    """One recognizer's embeddings of fakes made by make_fakes, keyed by their source face."""
    if not len(fakes):
        return Embeddings.missing("n/a: no fake")
    table = embed_with(recognizer, fakes, folder, cfg)
    ok = (table.status == OK).to_numpy()
    if not ok.any():
        reasons = sorted(set(table.status))
        return Embeddings.missing(reasons[0] if len(reasons) == 1 else "n/a: no fake has an embedding")
    return Embeddings.of(fakes.source_face.astype(str)[ok].tolist(), np.stack(table.embedding[ok].to_numpy()))


def own_identification_row(name, opts, strategy, people: Faces, sources, results, evidence, no_labels) -> dict:
    """attack.subjects=dataset, table 1's row: each face's fake ranked against every real face."""
    metric, ranks = str(opts.metric), [int(k) for k in opts.ranks]
    row = {"recognizer": name, "metric": metric, "strategy": strategy}
    gallery_ids, gallery = vectors(sources, people.ids())
    if not gallery_ids:
        return {**row, "status": why_none(sources, "face")}
    probe_ids, probes = vectors(results, gallery_ids)
    row.update(status=OK, identities=len(gallery_ids), probes_anonymized=len(probe_ids))
    for k in ranks:
        row[f"rank{k}_chance"] = chance_rate(k, len(gallery_ids))
        row[f"rank{k}_real"] = no_labels
    if not probe_ids:
        return round_row({**row, "status": why_none(results, "result face", evidence)})
    got = identify(probes, probe_ids, gallery, gallery_ids, metric, ranks)
    row.update({f"rank{k}_anonymized": got.rates[k] for k in ranks})
    return round_row(row)


def own_parrot_row(name, opts, strategy, people: Faces, sources, results, parrot, evidence) -> dict:
    """attack.subjects=dataset, table 3's row: each fake ranked against the real faces (naive) and
    against the parrot's own fakes of them (parrot), over the faces all three exist for."""
    metric, ranks = str(opts.metric), [int(k) for k in opts.ranks]
    row = {"recognizer": name, "metric": metric, "strategy": strategy}
    real_ids, _ = vectors(sources, people.ids())
    if not real_ids:
        return {**row, "status": why_none(sources, "face")}
    probe_ids, _ = vectors(results, real_ids)
    if not probe_ids:
        return {**row, "status": why_none(results, "result face", evidence)}
    both, _ = vectors(parrot, probe_ids)
    if not both:
        return {**row, "status": why_none(parrot, "parrot fake")}
    _, real = vectors(sources, both)
    _, probes = vectors(results, both)
    _, gallery = vectors(parrot, both)
    naive, parroted = identify(probes, both, real, both, metric, ranks), identify(probes, both, gallery, both,
                                                                                   metric, ranks)
    row.update(status=OK, identities=naive.identities, probes=naive.probes)
    for k in ranks:
        row.update({f"rank{k}_naive": naive.rates[k], f"rank{k}_parrot": parroted.rates[k],
                    f"rank{k}_chance": naive.chance[k]})
    return round_row(row)


def labelled_config(cfg: DictConfig, files: list[str]) -> DictConfig:
    """`cfg` with the identities set as its dataset (conf/dataset/<attack.dataset>.yaml),
    restricted to `files` (the gallery and probe photos), and attack.anonymize merged over
    its anonymize settings."""
    derived = with_choice(cfg, "dataset", str(cfg.attack.dataset))
    with open_dict(derived):
        derived.dataset.files = list(files)
        derived.anonymize = OmegaConf.merge(derived.anonymize, cfg.attack.get("anonymize") or {})
    if str(derived.dataset.name) != ATTACK_DATASET:
        raise BenchError(f"conf/dataset/{cfg.attack.dataset}.yaml names its results folder {derived.dataset.name!r}, "
                         f"but bench.layout.ATTACK_DATASET (what dvc.yaml declares) is {ATTACK_DATASET!r}")
    return derived


def attacked_strategies(cfg: DictConfig, uses_target: bool) -> list[str]:
    """The cell's query strategy first, then attack.linkability_queries (once each); only the
    cell's for a generator that takes no target (every strategy gives the same photos)."""
    main = str(cfg.choices.query)
    if not uses_target:
        return [main]
    return list(dict.fromkeys([main, *[str(q) for q in cfg.attack.linkability_queries]]))


# ---- reading what the chained stages wrote ------------------------------------------------

@dataclass(frozen=True)
class Faces:
    """The labelled face of every gallery and probe photo: face_id -> identity, role, photo."""

    identity: dict
    role: dict
    photo: dict

    @classmethod
    def of(cls, split_table: pd.DataFrame) -> "Faces":
        rows = split_table[(split_table.face_id != "") & (split_table.role != UNUSED)]
        return cls(dict(zip(rows.face_id, rows.identity)), dict(zip(rows.face_id, rows.role)),
                   dict(zip(rows.face_id, rows.path)))

    def ids(self, role: str | None = None) -> list[str]:
        """Face ids of one role (None: all), in sorted order."""
        return sorted(f for f, r in self.role.items() if role is None or r == role)


@dataclass(frozen=True)
class CellEvidence:
    """One anonymized cell of the labelled dataset: its pairs (source face -> target, result
    face), its outcomes, and why it has no fakes when its generator could not run."""

    cell: Cell
    pairs: pd.DataFrame
    outcomes: pd.DataFrame
    unavailable: str | None = None
    weights: dict = field(default_factory=dict)

    @classmethod
    def read(cls, cell: Cell) -> "CellEvidence":
        for path in (cell.pairs, cell.outcomes, cell.provenance):
            if not path.is_file():
                raise BenchError(f"{path} not found: the anonymize and evaluate stages did not run for {cell.root}")
        provenance = json.loads(cell.provenance.read_text(encoding="utf-8"))
        evaluated = {}
        if cell.evaluate_provenance.is_file():
            evaluated = json.loads(cell.evaluate_provenance.read_text(encoding="utf-8")).get("recognizers", {})
        pairs = pd.read_parquet(cell.pairs)
        pairs["source_face"] = pairs.source_face.astype(str)
        return cls(cell, pairs, pd.read_parquet(cell.outcomes), provenance.get("unavailable"), evaluated)

    def target_of(self) -> dict:
        return dict(zip(self.pairs.source_face, self.pairs.target.fillna("").astype(str)))


def vectors(embeddings: Embeddings, face_ids) -> tuple[list[str], np.ndarray]:
    """(the ids among face_ids with an "ok" embedding, their (n, D) matrix)."""
    if embeddings.unavailable is not None:
        return [], np.zeros((0, 0))
    index = embeddings.index()
    keep = [f for f in face_ids if f in index and embeddings.status[index[f]] == OK]
    rows = [index[f] for f in keep]
    return keep, (embeddings.matrix[rows] if rows else np.zeros((0, embeddings.matrix.shape[1] if
                                                                   embeddings.matrix is not None else 0)))


def fake_embeddings(cfg: DictConfig, out: AttackOutputs, evidence: CellEvidence, faces: pd.DataFrame,
                    people: Faces, recognizer) -> Embeddings:
    """One recognizer's embeddings of the fakes of the labelled faces in one cell: each
    anonymized photo aligned at its source face's landmarks (the attacker knows where the face
    was, the worst case of Hanisch et al.; whether the detector finds the fake again does not
    matter), written to <attack>/embeddings/<query>/<recognizer>.parquet. Face ids are the
    source faces'."""
    if evidence.unavailable:
        return Embeddings.missing(evidence.unavailable)
    mine = faces[faces.face_id.astype(str).isin(list(people.identity))].copy()
    mine["photo"] = [f"photos/{slug(str(p))}.png" for p in mine.photo]
    table = embed_with(recognizer, mine.reset_index(drop=True), evidence.cell.root, cfg)
    folder = out.embeddings(evidence.cell.query)
    write_embeddings(table, folder / f"{recognizer.name}.parquet")
    return read_embeddings(folder, recognizer.name)


def why_none(embeddings: Embeddings, what: str, evidence: CellEvidence | None = None) -> str:
    """The n/a reason when `embeddings` has no usable face: the generator's, the recognizer's."""
    if evidence is not None and evidence.unavailable:
        return evidence.unavailable
    if embeddings.unavailable is not None:
        return embeddings.unavailable
    return f"n/a: no {what} has an embedding"


# ---- 1. identification, 3. parrot ------------------------------------------------------------

def identification_rows(name, opts, strategy, people: Faces, sources, results, evidence) -> list[dict]:
    """Table 1's row for one recognizer: real and anonymized probes vs the real gallery."""
    metric, ranks = str(opts.metric), [int(k) for k in opts.ranks]
    row = {"recognizer": name, "metric": metric, "strategy": strategy}
    gallery_ids, gallery = vectors(sources, people.ids(GALLERY))
    if not gallery_ids:
        return [{**row, "status": why_none(sources, "gallery face")}]
    enrolled = {people.identity[f] for f in gallery_ids}
    probe_ids = [f for f in people.ids(PROBE) if people.identity[f] in enrolled]
    real_ids, real = vectors(sources, probe_ids)
    anon_ids, anon = vectors(results, probe_ids)
    n = len(enrolled)
    row.update(status=OK, identities=n, probes_real=len(real_ids), probes_anonymized=len(anon_ids))
    for k in ranks:
        row[f"rank{k}_chance"] = chance_rate(k, n)
    who = [people.identity[f] for f in gallery_ids]
    if real_ids:
        got = identify(real, [people.identity[f] for f in real_ids], gallery, who, metric, ranks)
        row.update({f"rank{k}_real": got.rates[k] for k in ranks})
    if anon_ids:
        got = identify(anon, [people.identity[f] for f in anon_ids], gallery, who, metric, ranks)
        row.update({f"rank{k}_anonymized": got.rates[k] for k in ranks})
    else:
        row["status"] = why_none(results, "probe's result face", evidence)
    if not real_ids:
        row["status"] = "n/a: no probe face has an embedding"
    return [round_row(row)]


def parrot_row(name, opts, strategy, people: Faces, sources, results, evidence) -> dict:
    """Table 3's row for one recognizer and strategy: the anonymized probes against the real
    gallery (naive) and against the gallery anonymized by the same cell (parrot), over the
    probes and identities both attackers can use (so N and chance are the same)."""
    metric, ranks = str(opts.metric), [int(k) for k in opts.ranks]
    row = {"recognizer": name, "metric": metric, "strategy": strategy}
    real_gallery_ids, real_gallery = vectors(sources, people.ids(GALLERY))
    anon_gallery_ids, anon_gallery = vectors(results, people.ids(GALLERY))
    if not real_gallery_ids:
        return {**row, "status": why_none(sources, "gallery face")}
    if not anon_gallery_ids:
        return {**row, "status": why_none(results, "gallery photo's result face", evidence)}
    both = {people.identity[f] for f in real_gallery_ids} & {people.identity[f] for f in anon_gallery_ids}
    probe_ids, probes = vectors(results, [f for f in people.ids(PROBE) if people.identity[f] in both])
    if not probe_ids:
        return {**row, "status": why_none(results, "probe's result face", evidence)}
    keep_real = [i for i, f in enumerate(real_gallery_ids) if people.identity[f] in both]
    keep_anon = [i for i, f in enumerate(anon_gallery_ids) if people.identity[f] in both]
    probe_who = [people.identity[f] for f in probe_ids]
    naive = identify(probes, probe_who, real_gallery[keep_real],
                     [people.identity[real_gallery_ids[i]] for i in keep_real], metric, ranks)
    parrot = identify(probes, probe_who, anon_gallery[keep_anon],
                      [people.identity[anon_gallery_ids[i]] for i in keep_anon], metric, ranks)
    row.update(status=OK, identities=naive.identities, probes=naive.probes)
    for k in ranks:
        row.update({f"rank{k}_naive": naive.rates[k], f"rank{k}_parrot": parrot.rates[k],
                    f"rank{k}_chance": naive.chance[k]})
    return round_row(row)


def not_run_rows(name, opts, cfg, strategies, columns) -> list[dict]:
    """n/a rows for the linkability strategies a target-less generator did not run."""
    wanted = list(dict.fromkeys([str(cfg.choices.query), *[str(q) for q in opts.linkability_queries]]))
    return [{"recognizer": name, "metric": str(opts.metric), "strategy": q,
             "status": f"n/a: generator {cfg.choices.generator} takes no target, so every query strategy "
                       f"gives the same photos: see the {strategies[0]} row"}
            for q in wanted if q not in strategies]


# ---- 2. linkability ----------------------------------------------------------------------------

def linkability_rows(name, opts, cfg, strategies, people: Faces, sources, results, evidence) -> list[dict]:
    """Table 2's rows for one recognizer: the real photos, then each strategy's fakes."""
    metric, far = str(opts.metric), float(opts.far)
    all_faces = people.ids()
    rows = [link_row(name, metric, far, REAL, people, sources, all_faces, None, why_none(sources, "face"))]
    for q in strategies:
        rows.append(link_row(name, metric, far, q, people, results[q], all_faces, evidence[q].target_of(),
                             why_none(results[q], "result face", evidence[q])))
    return rows + not_run_rows(name, opts, cfg, strategies, linkability_columns(far))


def link_row(name, metric, far, strategy, people: Faces, embeddings, face_ids, targets, reason) -> dict:
    row = {"recognizer": name, "metric": metric, "strategy": strategy}
    ids, matrix = vectors(embeddings, face_ids)
    if not ids:
        return {**row, "status": reason}
    who = [people.identity[f] for f in ids]
    got = linkability(matrix, who, metric, far)
    row.update(status=OK, faces=got.faces, identities=got.identities, genuine_pairs=got.genuine_pairs,
               impostor_pairs=got.impostor_pairs, roc_auc=got.roc_auc, far_achieved=got.far)
    row[f"tar_at_far_{far:g}"] = got.tar
    if targets is not None:
        row["same_target_share"] = shared_target_share([targets.get(f, "") for f in ids], who)
    if not np.isfinite(got.roc_auc):
        row["status"] = "n/a: needs pairs of one person's fakes and of two people's"
    return round_row(row)


# ---- 4. the threshold-free view ------------------------------------------------------------------

def distances_entry(name, recognizer, opts, people: Faces, sources, fakes, evidence: CellEvidence,
                    out: AttackOutputs):
    """(Table 4's row, its distances in long form, the figure's path) for one recognizer: the
    genuine and impostor pairs of the real photos, the cell's Source-vs-Result pairs (evaluate
    stage) and each labelled face against its fake at the source's landmarks."""
    metric = str(opts.metric)
    threshold, why_not = threshold_of(recognizer, metric)
    row = {"recognizer": name, "metric": metric, "threshold": threshold}
    ids, matrix = vectors(sources, people.ids())
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0, bool), np.zeros(0))
    i, j, same, d = within_distances(matrix, [people.identity[f] for f in ids], metric) if ids else empty
    o = evidence.outcomes
    mine = o[(o.recognizer == name) & (o.metric == metric) & (o.comparison == "source_vs_result")]
    sr = mine[mine.status == OK]
    fake_ids, fake_matrix = vectors(fakes, ids)
    position = {f: k for k, f in enumerate(ids)}
    sf = pair_distances(matrix[[position[f] for f in fake_ids]], fake_matrix, metric) if fake_ids else np.zeros(0)
    kinds = {"genuine": d[same], "impostor": d[~same], "source_vs_result": sr.distance.to_numpy(np.float64),
             "source_vs_fake": sf}
    long = pd.DataFrame({
        "recognizer": name, "metric": metric,
        "kind": np.concatenate([np.where(same, "genuine", "impostor"), np.full(len(sr), "source_vs_result"),
                                np.full(len(sf), "source_vs_fake")]),
        "face_a": [ids[a] for a in i] + sr.source_face.astype(str).tolist() + fake_ids,
        "face_b": [ids[b] for b in j] + sr.other_face.astype(str).tolist() + fake_ids,
        "distance": np.concatenate([d, kinds["source_vs_result"], sf]),
    }, columns=DISTANCE_COLUMNS)
    long["distance"] = long.distance.astype(float).round(6)
    stats = {kind: summary(values) for kind, values in kinds.items()}
    row.update(genuine_n=stats["genuine"]["n"], genuine_median=stats["genuine"]["median"],
               impostor_n=stats["impostor"]["n"], impostor_median=stats["impostor"]["median"],
               results_n=stats["source_vs_result"]["n"], results_median=stats["source_vs_result"]["median"],
               auc_results_vs_impostor=separation_auc(kinds["source_vs_result"], kinds["impostor"]),
               auc_genuine_vs_results=separation_auc(kinds["genuine"], kinds["source_vs_result"]),
               fakes_n=stats["source_vs_fake"]["n"], fakes_median=stats["source_vs_fake"]["median"],
               auc_fakes_vs_impostor=separation_auc(sf, kinds["impostor"]),
               auc_genuine_vs_fakes=separation_auc(kinds["genuine"], sf))
    if why_not is None:
        if len(sr):
            row["results_verified"] = float((kinds["source_vs_result"] <= threshold).mean())
        if len(sf):
            row["fakes_verified"] = float((sf <= threshold).mean())
    # One status: the first thing missing (the numbers that exist are kept, as in the baseline).
    status = OK
    if not ids:
        status = why_none(sources, "face")
    elif not len(sr):
        reasons = mine.status.value_counts()
        detail = (evidence.unavailable or (f"{reasons.index[0]} ({reasons.iloc[0]} of {len(mine)} pairs)"
                                           if len(reasons) else "no Source-vs-Result pair").removeprefix("n/a: "))
        status = f"n/a: Source-vs-Result: {detail}; the source-vs-fake columns have numbers"
        if not len(sf):
            status = f"n/a: Source-vs-Result: {detail}; {why_none(fakes, 'fake', evidence).removeprefix('n/a: ')}"
    elif why_not is not None:
        status = why_not
    row["status"] = status
    title = f"{name} ({metric}): {evidence.cell.generator}, {evidence.cell.metric}-{evidence.cell.query}"
    figure = plot_distributions(out.distances_figure(name), title, kinds,
                                threshold if why_not is None else None, empty=None if ids else status)
    return round_row(row), long, figure


# ---- 5. Supp. D: k fakes of one face ---------------------------------------------------------------

def kanonymity(cfg: DictConfig, out: AttackOutputs, generator, people: Faces, evidence: CellEvidence, names,
               reference: dict, photo_root: Path) -> tuple[list[dict], list[dict], dict]:
    """Makes attack.kanonymity.k_max fakes (k different targets) of a few probe faces (of the
    photos under `photo_root`) and measures, per recognizer and k, the distance of the mean of
    the first k to the source.

    Returns:
        (Table 5's rows, failure rows, what the provenance records)."""
    opts, metric = cfg.attack.kanonymity, str(cfg.attack.metric)
    k_max = int(opts.k_max)
    if not generator.uses_target:
        reason = (f"n/a: generator {cfg.choices.generator} takes no target: its fakes of one face are one and "
                  "the same image, so there is nothing to average")
        return [kanon_na(name, metric, reason) for name in names], [], {"status": reason}
    if evidence.unavailable:
        return [kanon_na(name, metric, evidence.unavailable) for name in names], [], {"status": evidence.unavailable}
    try:
        generator.prepare()
    except BenchError as err:
        reason = f"n/a: {err}"
        return [kanon_na(name, metric, reason) for name in names], [], {"status": reason}
    faces = pd.read_parquet(out.data.faces)
    chosen = kanon_faces(faces, people, int(opts.faces), int(cfg.seed))
    fakes, failures = make_fakes(cfg, out.kanonymity_fakes, generator, chosen, k_max, out.data.root, photo_root,
                                 int(cfg.seed), "kanonymity")
    info = {"faces": chosen.face_id.tolist(), "k_max": k_max, "fakes": len(fakes),
            "targets_per_face": fakes.groupby("source_face").size().to_dict() if len(fakes) else {},
            "mean": "of L2-normalized embeddings", "landmarks": "the source face's (the swap keeps the pose)"}
    rows = []
    for name in names:
        recognizer = build_recognizer(name, cfg)
        sources = read_embeddings(evidence.cell.embeddings / "sources", name)
        embedded = embed_with(recognizer, fakes, out.kanonymity_fakes, cfg) if len(fakes) else None
        rows += kanon_rows(name, recognizer, metric, k_max, chosen, fakes, embedded, sources, people,
                           reference.get(name, {}))
    return rows, failures, info


def kanon_na(name: str, metric: str, reason: str) -> dict:
    return {"recognizer": name, "metric": metric, "status": reason}


def kanon_faces(faces: pd.DataFrame, people: Faces, n: int, seed: int) -> pd.DataFrame:
    """Up to n probe faces, one per identity: identities in an order drawn with the seed,
    each one's first probe face (sorted ids)."""
    probes = people.ids(PROBE)
    by_identity: dict[str, str] = {}
    for f in probes:
        by_identity.setdefault(people.identity[f], f)
    identities = sorted(by_identity)
    order = rng_for(seed, "kanonymity").permutation(len(identities))
    rank = {by_identity[identities[i]]: r for r, i in enumerate(order[:n])}
    rows = faces[faces.face_id.astype(str).isin(rank) & faces.aligned.astype(bool)]
    return rows.assign(_rank=rows.face_id.astype(str).map(rank)).sort_values("_rank").drop(columns="_rank") \
        .reset_index(drop=True)


def make_fakes(cfg: DictConfig, folder: Path, generator, chosen: pd.DataFrame, k_max: int, data_root: Path,
               photo_root: Path, seed: int, purpose: str):
    """(fakes table for embed_with: face_id (<source face>#k<k>), photo (a crop PNG under
    `folder`), landmarks, aligned, ...; failure rows): k_max fakes of each chosen face (a row of
    the faces table under `data_root`) of the photos under `photo_root`, their targets picked in turn by the cell's strategy with
    rng_for(seed, "<purpose>:<face id>"). A crop whose key (photo, face, target, generator
    config) is unchanged is reused from an earlier run."""
    folder.mkdir(parents=True, exist_ok=True)
    earlier = {}
    if (folder / "fakes.parquet").is_file():
        before = pd.read_parquet(folder / "fakes.parquet")
        earlier = dict(zip(before.face_id.astype(str), before.key.astype(str)))
    space = SPACES.build(cfg.metric, name=cfg.choices.metric)
    query = QUERIES.build(cfg.query, name=cfg.choices.query)
    pool = build_pool(cfg)
    pool_out = pool_outputs(cfg)
    pool_faces = pd.read_parquet(pool_out.faces)
    pool_feats = Features.load(pool_out.arrays)
    kinds = [space.feature] + (["agegender"] if query.same_age_gender else [])
    sources = compute_features(chosen, data_root, photo_root, kinds, cfg)
    distances = all_distances(space, sources, pool_feats, pool_faces.aligned.to_numpy(bool))
    generator_key = json.dumps(OmegaConf.to_container(cfg.generator, resolve=True), sort_keys=True)
    rows, failures = [], []
    for i, face in enumerate(chosen.itertuples(index=False)):
        source = None
        if query.same_age_gender and str(sources.status["agegender"][i]) == OK:
            source = AgeGender(float(sources.arrays["age"][i]), int(sources.arrays["gender"][i]))
        picks = distinct_targets(query, distances[i], rng_for(int(seed), f"{purpose}:{face.face_id}"), k_max,
                                 source, pool_feats.arrays.get("age"), pool_feats.arrays.get("gender"))
        if len(picks) < k_max:
            failures.append(failure(face.photo, face.face_id, "attack",
                                    f"{purpose}: {len(picks)} of {k_max} distinct targets in the pool"))
        photo = load_photo(photo_root / str(face.photo), int(cfg.faces.max_image_pixels)).rgb
        src = Face(box=np.array([face.x1, face.y1, face.x2, face.y2], np.float32),
                   landmarks=np.asarray(face.landmarks, np.float32).reshape(5, 2))
        for k, sel in enumerate(picks, start=1):
            target = pool_faces.iloc[sel.index]
            entry = {"target": str(target.face_id), "target_image": str(pool.path / str(target.photo)),
                     "target_box": [float(target.x1), float(target.y1), float(target.x2), float(target.y2)],
                     "target_landmarks": [float(v) for v in target.landmarks]}
            fake_id = f"{face.face_id}#k{k:02d}"
            file = f"{slug(str(face.face_id))}-k{k:02d}.png"
            key = hashlib.sha256("\n".join([str(face.photo), str(face.face_id), json.dumps(entry, sort_keys=True),
                                            generator_key, str(opts_margin(cfg))]).encode()).hexdigest()
            landmarks = crop_fake(photo, src, entry, generator, folder / file, opts_margin(cfg),
                                  reuse=earlier.get(fake_id) == key)
            if isinstance(landmarks, str):
                failures.append(failure(face.photo, face.face_id, "attack", f"{purpose}: fake {k}: {landmarks}"))
                continue
            rows.append({"face_id": fake_id, "photo": file, "source_face": str(face.face_id), "identity": "",
                         "k": k, "target": entry["target"], "target_distance": float(sel.distance),
                         "landmarks": landmarks, "aligned": True, "key": key})
    fakes = pd.DataFrame(rows, columns=FAKE_COLUMNS)
    resultsio.write_parquet(fakes, folder / "fakes.parquet")
    return fakes, failures


def opts_margin(cfg: DictConfig) -> float:
    return float(cfg.attack.kanonymity.crop_margin)


def crop_fake(photo: np.ndarray, face: Face, target: dict, generator, path: Path, margin: float, reuse: bool):
    """Swaps `face` of `photo` with `target`, writes the face with `margin` x its size around
    it to `path`; returns the five landmarks in the crop's pixels (a list of 10 floats), or
    why not (str). With `reuse`, an existing crop is kept (same key as the run that wrote it)."""
    x1, y1, x2, y2 = face.box
    w, h = x2 - x1, y2 - y1
    left, top = int(max(0, np.floor(x1 - margin * w))), int(max(0, np.floor(y1 - margin * h)))
    right = int(min(photo.shape[1], np.ceil(x2 + margin * w)))
    bottom = int(min(photo.shape[0], np.ceil(y2 + margin * h)))
    landmarks = (face.landmarks - np.array([left, top], np.float32)).reshape(-1)
    if not (reuse and path.is_file()):
        try:
            target_image, target_face = load_target(target)
            swapped = generator.swap(photo, face, target_image, target_face)
        except Exception as err:  # noqa: BLE001 - one failed fake is a failure row, not a crash
            return f"{type(err).__name__}: {err}"
        resultsio.write_png(np.ascontiguousarray(swapped[top:bottom, left:right]), path)
    return [float(v) for v in landmarks]


def kanon_rows(name, recognizer, metric, k_max, chosen, fakes, embedded, sources, people: Faces,
               reference) -> list[dict]:
    """Table 5's rows for one recognizer: per k, the distance of the mean of the first k fakes
    to the source over the faces with all k fakes embedded, and the control: the same mean's
    mean distance to the real gallery and probe faces of the other people."""
    threshold, why_not = threshold_of(recognizer, metric)
    base = {"recognizer": name, "metric": metric, "threshold": threshold,
            "genuine_median": reference.get("genuine_median"), "impostor_median": reference.get("impostor_median")}
    if embedded is None:
        return [{**base, "status": "n/a: no fake could be made (see failures.csv)"}]
    source_ids, source_matrix = vectors(sources, chosen.face_id.astype(str).tolist())
    if not source_ids:
        return [{**base, "status": why_none(sources, "source face")}]
    table = fakes.assign(status=embedded.status.to_numpy(), embedding=embedded.embedding.to_numpy())
    if not (table.status == OK).any():
        reasons = table.status.unique()
        return [{**base, "status": reasons[0] if len(reasons) == 1 else "n/a: no fake has an embedding"}]
    everyone_ids, everyone = vectors(sources, people.ids())
    curves, controls = {}, {}
    for face_id, vector in zip(source_ids, source_matrix):
        mine = table[(table.source_face == face_id)].sort_values("k")
        ok = mine[mine.status == OK]
        # a fake that could not be embedded ends the face's curve there: k counts fakes made
        upto = len(ok) if len(ok) == len(mine) else int(np.argmin((mine.status == OK).to_numpy()))
        if upto:
            made = np.stack(ok.embedding.to_numpy()[:upto])
            curves[face_id] = distance_vs_k(vector, made, metric)
            others = [k for k, f in enumerate(everyone_ids) if people.identity[f] != people.identity[face_id]]
            if others:
                controls[face_id] = control_vs_k(everyone[others], made, metric)
    rows = []
    for k in range(1, k_max + 1):
        values = np.array([c[k - 1] for c in curves.values() if len(c) >= k])
        control = np.array([c[k - 1] for c in controls.values() if len(c) >= k])
        row = {**base, "k": k, "faces": len(values)}
        if not len(values):
            rows.append({**row, "status": f"n/a: no face has {k} fakes embedded"})
            continue
        row.update(status=OK if why_not is None else why_not, mean_distance=float(values.mean()),
                   std_distance=float(values.std()))
        if len(control):
            row["control_distance"] = float(control.mean())
        if why_not is None:
            row["verified_share"] = float((values <= threshold).mean())
        rows.append(round_row(row))
    return rows


def plot_kanonymity(path: Path, rows: list[dict], cfg: DictConfig) -> Path:
    """One panel per recognizer with numbers (three to a row): distance of the mean of k fakes
    to the source and to other people (the control) vs k, with the genuine and impostor
    medians and the threshold as horizontal lines; recognizers without numbers are named
    under the panels (their reasons are in kanonymity.md); one panel with the reason when no
    recognizer has a number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = pd.DataFrame(rows, columns=KANONYMITY_COLUMNS)
    numbers = table[pd.to_numeric(table.mean_distance, errors="coerce").notna()]
    shown = list(dict.fromkeys(numbers.recognizer))
    missing = [n for n in dict.fromkeys(table.recognizer) if n not in shown]
    columns = max(1, min(3, len(shown)))
    lines = max(1, -(-len(shown) // columns))
    fig, axes = plt.subplots(lines, columns, figsize=(4.0 * columns, 3.2 * lines + 0.4), squeeze=False)
    for ax in axes.ravel()[len(shown):]:
        ax.set_axis_off()
    if not shown:
        reasons = sorted(set(table.status.astype(str))) or ["no rows"]
        axes[0, 0].text(0.5, 0.5, "\n".join(line for r in reasons for line in wrap(r, 60)), ha="center",
                        va="center", fontsize=8, transform=axes[0, 0].transAxes)
    for ax, name in zip(axes.ravel(), shown):
        mine = numbers[numbers.recognizer == name]
        k, mean, std = mine.k.astype(int), mine.mean_distance.astype(float), mine.std_distance.astype(float)
        ax.errorbar(k, mean, yerr=std, marker="o", markersize=3, linewidth=1, capsize=2, label="to the source")
        control = pd.to_numeric(mine.control_distance, errors="coerce")
        if control.notna().any():
            ax.plot(k, control, marker="s", markersize=3, linewidth=1, color="tab:red",
                    label="to other people (control)")
        first = mine.iloc[0]
        for column, style, label in (("genuine_median", ":", "genuine median"),
                                     ("impostor_median", "--", "impostor median"),
                                     ("threshold", "-", "threshold")):
            value = pd.to_numeric(pd.Series([first[column]]), errors="coerce").iloc[0]
            if pd.notna(value):
                ax.axhline(float(value), color="grey", linestyle=style, linewidth=0.8, label=label)
        ax.set(xlabel="k (fakes averaged)", ylabel=f"{cfg.attack.metric} distance of the mean of k fakes")
        ax.set_title(f"{name} ({int(mine.faces.max())} faces)", fontsize=9)
        ax.legend(fontsize=6)
    fig.suptitle(f"Supp. D: the mean of k fakes ({cfg.choices.generator}, "
                 f"{cfg.choices.metric}-{cfg.choices.query})", fontsize=9)
    if missing and shown:
        fig.text(0.5, 0.01, f"n/a (see kanonymity.md): {', '.join(missing)}", ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.04 if missing and shown else 0, 1, 1))
    resultsio.write_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


# ---- writing ---------------------------------------------------------------------------------

TABLE_COLUMNS = {
    "identification": lambda opts: identification_columns([int(k) for k in opts.ranks]),
    "linkability": lambda opts: linkability_columns(float(opts.far)),
    "parrot": lambda opts: parrot_columns([int(k) for k in opts.ranks]),
    "distances": lambda opts: DISTANCES_COLUMNS,
    "kanonymity": lambda opts: KANONYMITY_COLUMNS,
}

NOTES = {
    "identification": (
        "Closed-set identification: each probe's identities ranked by their nearest gallery entry "
        "(ties broken at random, in expectation). rank{k}_real: real probes (the baseline); "
        "rank{k}_anonymized: the probes' fakes from the cell (the naive attacker, a real gallery), each "
        "embedded at its source face's landmarks in the anonymized photo (the attacker knows where the "
        "face is: the worst case), found again by the detector or not; "
        "rank{k}_chance: k / N. probes_*: the n behind each rate."),
    "linkability": (
        "Every unordered pair of the gallery and probe photos' fakes (one per strategy's cell), labelled "
        "one person (genuine) or two (impostor); the distance is the score. roc_auc 0.5 = unlinkable, "
        "1 = perfectly linkable; tar_at_far: share of one person's fake pairs linked at that FAR "
        "(far_achieved: the FAR reached; with few impostor pairs FAR moves in steps of 1/n). "
        "same_target_share: of one person's pairs, the share whose fakes carry the same synthetic target."),
    "parrot": (
        "The naive attacker compares the fakes of the probes with a real gallery; the parrot attacker "
        "anonymizes its gallery with the same cell first (Hanisch et al., arXiv:2304.01635; SEBA, "
        "arXiv:2407.06648) and compares fake with fake. Without retraining the recognizer on anonymized "
        "data (theirs does), this is a lower bound on their parrot. Both over the same probes and "
        "identities, so chance is the same."),
    "distances": (
        "genuine / impostor: every pair of the real gallery and probe photos (the baseline stage's "
        "protocol); results: every Source-vs-Result pair of the cell as the evaluate stage judges it (the "
        "result face found again by the detector, as in Tables 1-3); fakes: each gallery and probe face "
        "against its fake embedded at the source's landmarks (what attacks 1-3 see). *_verified: share at "
        "or below the threshold. auc_*_vs_impostor: P(a fake is closer to its source than an impostor "
        "pair is) (0.5: as far as a stranger); auc_genuine_vs_*: P(a genuine pair is closer than a fake "
        "to its source) (1: no fake as close as another photo of the person). A status n/a names what "
        "is missing; the other columns keep their numbers. "
        "Figures: distances_<recognizer>.png; every distance: distances_all.csv."),
    "kanonymity": (
        "k fakes of each face, k different targets picked by the cell's strategy; the mean of the first "
        "k (L2-normalized embeddings), its distance to the source, mean and std over the faces. "
        "control_distance: the same mean's mean distance to the real faces of the other people: a mean of "
        "many faces drifts toward the average face and so toward everyone; only mean_distance falling "
        "below the control says averaging brings the source's identity back. "
        "genuine_median / impostor_median: the real photos' medians (Table 4). verified_share: means "
        "at or below the threshold. Fakes are embedded at the source face's landmarks "
        "(kanonymity_fakes/)."),
}

# attack.subjects=dataset: what the identification, parrot and distances tables mean there.
DATASET_NOTES = {
    "identification": (
        "Closed-set identification with each face its own identity: the attacker holds the original photos "
        "(gallery: every real face of the cell, N of them) and ranks them for each fake, embedded at its "
        "source face's landmarks in the anonymized photo (the worst case), ties broken at random in "
        "expectation. rank{k}_anonymized: the share of fakes whose own original is among the k closest; "
        "rank{k}_real: n/a, there is no second real photo of a face; rank{k}_chance: k / N."),
    "parrot": (
        "naive: each fake ranked against the real faces (as in table 1); parrot: against the attacker's own "
        "fakes of the same originals, made with the cell's generator and strategy under the attacker's seed "
        "(attack.parrot_seed; parrot_fakes/). A deterministic strategy (furthest) gives the parrot the very "
        "target the publisher used; a parrot that also knows the publisher's seed reproduces every fake "
        "exactly (the pipeline is deterministic), so that case is not measured. Without retraining the "
        "recognizer (Hanisch et al., arXiv:2304.01635; SEBA, arXiv:2407.06648 do), a lower bound."),
    "distances": (
        "impostor: every pair of two real faces of the cell (no identity labels: no person is assumed to "
        "appear twice); genuine: none without labels (the identities set's attack has them); results: every "
        "Source-vs-Result pair of the cell as the evaluate stage judges it; fakes: each face against its fake "
        "embedded at the source's landmarks. *_verified: share at or below the threshold. "
        "auc_*_vs_impostor: P(a fake is closer to its source than an impostor pair is) (0.5: as far as a "
        "stranger). Figures: distances_<recognizer>.png; every distance: distances_all.csv."),
}


def write_tables(cfg: DictConfig, out: AttackOutputs, rows: dict, data_line: str, notes: dict = NOTES) -> None:
    """Each table as CSV (full n/a reasons) and Markdown (n/a footnotes, bench.footnotes), each
    followed by the data line and its note (`notes`: table name -> text)."""
    opts = cfg.attack
    if GENERATORS.build(cfg.generator, name=cfg.choices.generator).uses_target:
        cell = (f"{cfg.choices.generator}, targets in {cfg.choices.metric} space by {cfg.choices.query}, "
                f"pool {cfg.pool.name}")
    else:
        cell = f"{cfg.choices.generator}, an obfuscation: no target, no pool"
    for name, title in AttackOutputs.TABLES.items():
        columns = TABLE_COLUMNS[name](opts)
        table = pd.DataFrame(rows.get(name, []), columns=columns)
        for column in set(COUNT_COLUMNS) & set(columns):
            table[column] = table[column].astype("Int64")
        resultsio.write_csv(table, out.table(name, ".csv"))
        note = notes[name].replace("{k}", "K")
        text = "\n".join([f"**Attack {title}** ({cell})", "", markdown(table), "", data_line, note]) + "\n"
        resultsio.write_text(text, out.table(name, ".md"))


def markdown(table: pd.DataFrame) -> str:
    shown = table.copy().astype(object)
    for column in shown.columns:
        shown[column] = [f"{v:.4f}" if isinstance(v, float) and np.isfinite(v) else v for v in shown[column]]
    shown = shown.where(table.notna(), "")
    return markdown_with_footnotes(shown, index=False, tablefmt="pipe", disable_numparse=True)


def describe_data(cfg: DictConfig, labels: pd.DataFrame, split_table: pd.DataFrame, strategies) -> str:
    opts = cfg.attack
    faces = split_table[(split_table.role != UNUSED) & (split_table.face_id != "")]
    return (f"Data: {len(labels)} photos of {labels.identity.nunique()} people ({cfg.identities.path}/"
            f"{cfg.identities.labels}); per person {int(opts.gallery_per_identity)} gallery photo(s) and at most "
            f"{opts.probes_per_identity if opts.probes_per_identity is not None else 'all other'} probe photo(s), "
            f"drawn with seed {int(cfg.seed)}: {int((split_table.role == GALLERY).sum())} gallery and "
            f"{int((split_table.role == PROBE).sum())} probe photos, {len(faces)} with a face "
            f"(the largest aligned face by {cfg.choices.detector}); distance {opts.metric}; "
            f"strategies anonymized: {', '.join(strategies)}; anonymize settings merged for these photos: "
            f"attack.anonymize = {json.dumps(OmegaConf.to_container(opts.get('anonymize') or {}, resolve=True))}.")


def round_row(row: dict) -> dict:
    """Floats rounded to 6 decimals (the same seed gives the same bytes)."""
    return {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) and np.isfinite(v) else v)
            for k, v in row.items()}


def write_unavailable(cfg: DictConfig, out: AttackOutputs, names: list[str], reason: str,
                      labels_path: Path) -> AttackOutputs:
    """Every file of the stage, saying `reason` instead of a number: n/a rows per recognizer
    (and strategy), the long CSVs' headers, figures that say why."""
    opts = cfg.attack
    strategies = list(dict.fromkeys([str(cfg.choices.query), *[str(q) for q in opts.linkability_queries]]))
    metric = str(opts.metric)
    rows = {"identification": [], "linkability": [], "parrot": [], "distances": [], "kanonymity": []}
    for name in names:
        na = {"recognizer": name, "metric": metric, "status": reason}
        rows["identification"].append({**na, "strategy": str(cfg.choices.query)})
        rows["linkability"] += [{**na, "strategy": q} for q in [REAL, *strategies]]
        rows["parrot"] += [{**na, "strategy": q} for q in strategies]
        rows["distances"].append({**na, "threshold": threshold_of(build_recognizer(name, cfg), metric)[0]})
        rows["kanonymity"].append(na)
        plot_distributions(out.distances_figure(name), f"{name}, {metric} distance", {}, empty=reason)
    write_tables(cfg, out, rows, f"Data: none ({reason}); no face was attacked.")
    resultsio.write_csv(pd.DataFrame(columns=DISTANCE_COLUMNS), out.distances_long)
    plot_kanonymity(out.kanonymity_figure, rows["kanonymity"], cfg)
    resultsio.write_csv(pd.DataFrame(columns=SPLIT_COLUMNS), out.split)
    resultsio.write_failures([], out.failures)
    out.data.root.mkdir(parents=True, exist_ok=True)  # dvc.yaml declares it: present, and empty
    resultsio.write_json(record(cfg, "attack", data_manifest={"labels": str(labels_path), "status": reason},
                                counts={"photos": 0, "failures": 0}), out.provenance)
    log.warning("attack: %s; wrote n/a tables -> %s", reason, out.root)
    print(out.table("identification", ".md").read_text(encoding="utf-8"))
    return out
