"""Stage `query`: one target pool face for every source face of a dataset.

Reads:  <results_dir>/<dataset>/faces.parquet and crops/      (faces stage)
        <results_dir>/pools/<pool.name>/faces.parquet, manifold.parquet, manifold.npz
                                                               (manifold stage)
        the dataset's photos (age/gender), the query recognizer, InceptionV3 (source features)
Writes: <results_dir>/<dataset>/targets/<pool>/<metric>-<query>.parquet   one row per source
            face with a target: source_face, photo, target (pool face_id), target_image (path
            of the pool image), target_landmarks (10 floats, target image pixels),
            target_box (x1, y1, x2, y2), distance (bench.spaces.base: larger = less alike),
            space, strategy, pool, seed, n_candidates, n_eligible, age_band, source_age,
            source_gender, target_age, target_gender
        <results_dir>/<dataset>/targets/<pool>/<metric>-<query>.failures.csv   every source
            face without a target (not aligned, no feature, no age/gender, no pool face in
            the band) with the reason
        <results_dir>/<dataset>/targets/<pool>/<metric>-<query>.provenance.json

Source faces go through the same feature pipeline as pool faces (bench.spaces.features),
cached per face, so only the first query of a dataset pays for the models. Distances are
computed for all sources against the whole pool at once (bench.spaces); the pick follows
bench.queries.base (Eq. 1 draws from a per-face generator seeded by `seed` and the face id;
a per-person strategy draws once per person, from the dataset's identity labels).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench.datasets import dataset_root
from bench import resultsio
from bench.layout import Cell, DatasetLayout, PoolOutputs, pool_outputs, sidecar
from bench.errors import BenchError
from bench.facetable import failure
from bench.guard import alternates_json
from bench.identities import dataset_labels_path, face_identities, read_labels
from bench.pools.base import build_pool
from bench.progress import progress
from bench.provenance import record
from bench.queries.base import GENDERS, AgeGender, NoCandidate, Query, person_distances, person_key, rng_for
from bench.registry import QUERIES, SPACES
from bench.spaces.base import Space
from bench.spaces.features import Features, all_distances, compute_features

log = logging.getLogger(__name__)

TARGET_COLUMNS = [
    "source_face", "photo", "target", "target_image", "target_landmarks", "target_box", "distance",
    "space", "strategy", "pool", "seed", "n_candidates", "n_eligible", "age_band",
    "source_age", "source_gender", "target_age", "target_gender", "shared_in_photo", "alternates",
]


def targets_path(cfg: DictConfig) -> Path:
    """<results_dir>/<dataset>/targets/<pool>/<metric>-<query>.parquet (bench.layout)."""
    return Cell.from_config(cfg).targets


def run(cfg: DictConfig) -> Path:
    """Picks a target for every source face; returns the targets table's path."""
    started = time.perf_counter()
    space: Space = SPACES.build(cfg.metric, name=cfg.choices.metric)
    query: Query = QUERIES.build(cfg.query, name=cfg.choices.query)
    pool = build_pool(cfg)
    pool_faces, pool_feats = load_manifold(pool_outputs(cfg), space, cfg)
    dataset_faces = DatasetLayout.from_config(cfg).faces
    faces = read_faces(dataset_faces)

    kinds = [space.feature] + (["agegender"] if query.same_age_gender else [])
    sources = compute_features(faces, dataset_faces.parent, dataset_root(cfg.dataset), kinds, cfg)
    distances = all_distances(space, sources, pool_feats, pool_faces.aligned.to_numpy(bool))
    features_s = time.perf_counter() - started
    persons = face_persons(cfg, query, faces)

    rows, failures = pick_targets(cfg, space, query, faces, sources, distances, pool_faces, pool_feats, pool.path,
                                  persons)
    out = targets_path(cfg)
    resultsio.write_parquet(pd.DataFrame(rows, columns=TARGET_COLUMNS), out)
    resultsio.write_failures(failures, sidecar(out, ".failures.csv"))
    elapsed = time.perf_counter() - started
    resultsio.write_json(record(
        cfg, "query",
        space=space.describe(), strategy=query.name, pool=pool.name,
        inputs={"faces": _manifest(dataset_faces),
                "pool_manifold": _manifest(pool_outputs(cfg).arrays)},
        counts={"source_faces": len(faces), "targets": len(rows), "failures": len(failures),
                "pool_faces_with_feature": int(np.isfinite(distances).any(axis=0).sum()) if len(faces) else 0},
        concentration=concentration(rows),
        **({"per_person": {"labels": str(dataset_labels_path(cfg.dataset)),
                           "labelled_faces": int(sum(bool(p) for p in persons)),
                           "persons": len(set(persons) - {""})}} if query.per_person else {}),
        seconds={**{f"features_{k}": v for k, v in sources.seconds.items()},
                 "features_and_distances": round(features_s, 1), "total": round(elapsed, 1)},
    ), sidecar(out, ".provenance.json"))
    conc = concentration(rows)
    log.info("%s x %s, %s/%s: %d of %d source faces got a target (%d failure rows); %d distinct targets "
             "(%.2f per face), the most used is %.0f%% of them; %d face(s) share a target within a photo; %.1f s -> %s",
             cfg.dataset.name, pool.name, space.name, query.name, len(rows), len(faces), len(failures),
             conc["distinct_targets"], conc["distinct_per_face"], 100 * conc["top_target_share"],
             conc["faces_sharing_in_photo"], elapsed, out)
    return out


def read_faces(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise BenchError(f"{path} not found: run `python -m bench faces` for this dataset first")
    return pd.read_parquet(path)


def load_manifold(out: PoolOutputs, space: Space, cfg: DictConfig) -> tuple[pd.DataFrame, Features]:
    """The pool's faces table and features, checked to belong together and to this config."""
    hint = f"run `python -m bench manifold pool={cfg.choices.pool}` first"
    if not out.faces.is_file() or not out.arrays.is_file():
        raise BenchError(f"pool {cfg.pool.name}: {out.arrays} not found: {hint}")
    faces = pd.read_parquet(out.faces)
    feats = Features.load(out.arrays)
    if list(faces.face_id.astype(str)) != list(feats.face_id.astype(str)):
        raise BenchError(f"pool {cfg.pool.name}: {out.faces} and {out.arrays} disagree: {hint}")
    if space.feature not in feats.status:
        raise BenchError(f"pool {cfg.pool.name}'s manifold has no {space.feature} features (manifold.features "
                         f"left them out): run `python -m bench manifold pool={cfg.choices.pool}` with "
                         f"{space.feature} in manifold.features (null: every kind)")
    if space.feature == "embedding":
        used = feats.info.get("recognizer")
        wanted = str(cfg.query_recognizer)
        if getattr(space, "recognizer", wanted) != wanted:
            raise BenchError(f"metric.recognizer={space.recognizer} but query_recognizer={wanted}: set query_recognizer")
        if used != wanted:
            raise BenchError(f"pool {cfg.pool.name}'s embeddings are {used}'s, not {wanted}'s: "
                             f"run `python -m bench manifold pool={cfg.choices.pool} query_recognizer={wanted}`")
    return faces, feats


def face_persons(cfg: DictConfig, query: Query, faces: pd.DataFrame) -> list[str]:
    """Per face of `faces`, its person's identity ("" for none) when the strategy draws per
    person; every face "" otherwise.

    Raises:
        BenchError: a per-person strategy on a dataset without identity labels.
    """
    if not query.per_person:
        return [""] * len(faces)
    path = dataset_labels_path(cfg.dataset)
    if path is None or not path.is_file():
        raise BenchError(f"query {query.name} draws one target per person: it needs identity labels "
                         f"(dataset.labels, a CSV with columns path,identity in the dataset's folder); dataset "
                         f"{cfg.dataset.name} has {'none' if path is None else f'none at {path}'} "
                         "(e.g. dataset=labelled)")
    who = face_identities(read_labels(path), faces)
    return [who.get(str(f), "") for f in faces.face_id]


def pick_targets(cfg, space: Space, query: Query, faces: pd.DataFrame, sources: Features, distances: np.ndarray,
                 pool_faces: pd.DataFrame, pool_feats: Features, pool_root: Path,
                 persons: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """One target per source face (rows), or a failure row saying why not.

    `persons` (face_persons): with a per-person strategy, a labelled face's pick uses its
    person's mean distances and the person's generator, so one person's faces share a target.

    With `targets.distinct_per_photo`, the faces of one photo are served in face order and
    each later face's pick excludes the targets already given in that photo (an assignment
    without replacement: no twins in a group photo); only when no other pool face qualifies
    does a face share a target, and its row says so (`shared_in_photo`).
    """
    rows, failures = [], []
    seed = int(cfg.seed)
    distinct = bool(cfg.targets.distinct_per_photo)
    n_alternates = int(cfg.targets.alternates)
    pool_age = pool_feats.arrays.get("age")
    pool_gender = pool_feats.arrays.get("gender")
    if query.same_age_gender and (pool_age is None or pool_gender is None):
        raise BenchError(f"{query.name} needs the pool's age/gender estimates: the manifold has none "
                         "(manifold.features left agegender out; null: every kind)")
    taken: dict[str, np.ndarray] = {}
    persons = list(persons) if persons is not None else [""] * len(faces)
    own = distances  # each face's own distances: the `distance` column reports these
    if query.per_person:
        distances = person_distances(distances, persons)
    for i, face in enumerate(progress(faces.itertuples(index=False), f"{space.name}-{query.name}: pick targets",
                                      total=len(faces))):
        status = str(sources.status[space.feature][i])
        if status != "ok":
            failures.append(failure(face.photo, face.face_id, "query", f"no {space.feature} feature: {status}"))
            continue
        source = None
        if query.same_age_gender:
            if str(sources.status["agegender"][i]) != "ok":
                failures.append(failure(face.photo, face.face_id, "query",
                                        f"no age/gender estimate: {sources.status['agegender'][i]}"))
                continue
            source = AgeGender(float(sources.arrays["age"][i]), int(sources.arrays["gender"][i]))
        in_photo = taken.setdefault(str(face.photo), np.zeros(distances.shape[1], bool))
        key = person_key(persons[i]) if query.per_person and persons[i] else str(face.face_id)
        shared = False
        try:
            try:
                sel = query.select(distances[i], rng_for(seed, key), source, pool_age, pool_gender,
                                   exclude=in_photo if distinct else None, alternates=n_alternates)
            except NoCandidate:
                if not distinct or not in_photo.any():
                    raise
                sel = query.select(distances[i], rng_for(seed, key), source, pool_age, pool_gender,
                                   alternates=n_alternates)
                shared = True
        except NoCandidate as err:
            failures.append(failure(face.photo, face.face_id, "query", str(err)))
            continue
        if query.per_person:
            sel = dataclasses.replace(sel, distance=float(own[i, sel.index]))
        in_photo[sel.index] = True
        row = target_row(cfg, space, query, face, sel, source, pool_faces.iloc[sel.index], pool_feats, pool_root)
        alternates = [alternate(pool_faces.iloc[j], float(own[i, j]), pool_root) for j in sel.alternates]
        rows.append({**row, "shared_in_photo": shared, "alternates": alternates_json(alternates)})
    return rows, failures


def alternate(target, distance: float, pool_root: Path) -> dict:
    """One next candidate (the `alternates` column's entries; target_row's target columns)."""
    return {"target": str(target.face_id), "target_image": str(pool_root / str(target.photo)),
            "target_landmarks": [float(v) for v in target.landmarks],
            "target_box": [float(target.x1), float(target.y1), float(target.x2), float(target.y2)],
            "distance": distance}


def target_row(cfg, space: Space, query: Query, face, sel, source: AgeGender | None, target, pool_feats: Features,
               pool_root: Path) -> dict:
    age = pool_feats.arrays.get("age")
    gender = pool_feats.arrays.get("gender")
    return {
        "source_face": str(face.face_id), "photo": str(face.photo),
        "target": str(target.face_id), "target_image": str(pool_root / str(target.photo)),
        "target_landmarks": [float(v) for v in target.landmarks],
        "target_box": [float(target.x1), float(target.y1), float(target.x2), float(target.y2)],
        "distance": sel.distance, "space": space.name, "strategy": query.name, "pool": str(cfg.pool.name),
        "seed": int(cfg.seed), "n_candidates": sel.n_candidates, "n_eligible": sel.n_eligible,
        "age_band": sel.age_band,
        "source_age": source.age if source else float("nan"),
        "source_gender": GENDERS[source.gender] if source else "",
        "target_age": float(age[sel.index]) if age is not None else float("nan"),
        "target_gender": GENDERS[int(gender[sel.index])] if gender is not None and gender[sel.index] >= 0 else "",
    }


def concentration(rows: list[dict]) -> dict:
    """How concentrated the targets are: distinct targets, distinct per face, the most used
    target's share of the faces, and faces whose target another face of the same photo has."""
    if not rows:
        return {"faces": 0, "distinct_targets": 0, "distinct_per_face": float("nan"), "top_target": "",
                "top_target_share": float("nan"), "faces_sharing_in_photo": 0}
    table = pd.DataFrame(rows)
    counts = table.target.value_counts(sort=True)
    shared = int(table.duplicated(["photo", "target"], keep=False).sum())
    return {"faces": len(table), "distinct_targets": int(len(counts)),
            "distinct_per_face": round(len(counts) / len(table), 4),
            "top_target": str(sorted(counts[counts == counts.iloc[0]].index)[0]),
            "top_target_share": round(float(counts.iloc[0]) / len(table), 4),
            "faces_sharing_in_photo": shared}


def _manifest(path: Path) -> dict:
    return {"path": str(path), "sha256": resultsio.sha256_file(path) if path.is_file() else "absent"}
