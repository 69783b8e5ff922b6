"""The closed loop: every fake checked against its owner before it is published (issue 24;
beyond MFMC, whose Eq. 1 checks the target, never the result).

After a face is swapped, the guard recognizers (`guard.recognizers`, conf/guard/) embed the
result and the source, aligned at the source's five landmarks (the swap keeps the pose, so
the same points cut the same spot out of both, as in the leak check). When any guard
verifies the pair, i.e. its `guard.metric` distance is <= its threshold x `guard.margin`,
the face is swapped again from the photo as it was before this face, with the next candidate
target of the same strategy (bench.queries: Eq. 1's other candidates, next-furthest, ...;
the query stage writes them, `alternates` of the targets table), up to `guard.tries` swaps
in all; a face still verified after the last try is covered by `guard.fallback` (a stronger
obfuscation than the anonymize fallback) and checked once more.

Besides verification, a guard can check identification (`guard.max_owner_rank`, r): the fake
is also identified by a guard when its owner ranks within the top r of the gallery (Guard.enrol:
every aligned face of the dataset that has a target, embedded by that guard from the original
photo at its landmarks, as the attack stage's `attack.subjects=dataset` gallery of originals),
ranked by the guard's `guard.metric` distance, each face its own identity
(bench.attacks.identification: the owner's rank is 1 + the faces strictly closer, so a tie
counts for the attacker). An identified fake is retried and covered like a verified one.
When every face of the photo is done, each face that passed is checked again on the finished photo (recheck_photo: a
neighbour's swap or cover can reach into its crop) and covered if a guard now verifies it; then, on the photo as it is
to be published, again at the landmarks of each face the leak check's detectors find over it (bench.leakscan; the
anonymize stage repeats this until no face changes), so the leak check's guards verify no fake it finds (at a margin
of 1 or more). Each face's record names its
tries, the targets tried, the last guard distances and owner ranks, why each check failed and
why the loop stopped (GuardOutcome); a face still verified (or identified) after the fallback is
counted (`guard_still_verified`, `guard_still_identified`), never silent.

`guard=open` (conf/guard/open.yaml): tries 1 and no guard recognizer, the paper's open loop.
Guards are judges too: tables report the recognizers that did not guard apart (transfer).

This module is the one reader of the `guard` config group.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
from omegaconf import DictConfig

from bench.embeddings import OK
from bench.errors import BenchError
from bench.layout import DEFAULT_GUARD

log = logging.getLogger(__name__)

# Why a face's loop stopped (GuardOutcome.stop; pairs.parquet `guard_stop`).
STOP_OPEN = "open loop"                       # no guard recognizer ran (guard=open, or none available)
STOP_PASSED = "passed"                        # no guard verified the last swap
STOP_NOT_SWAPPED = "not swapped"              # the swap failed: the anonymize fallback covered it
STOP_FALLBACK = "guard fallback"              # every try was verified: covered by guard.fallback
STOP_STILL_VERIFIED = "STILL VERIFIED after the guard fallback"
STOP_STILL_IDENTIFIED = "STILL IDENTIFIED after the guard fallback"  # ranked within max_owner_rank, not verified
STOP_UNCHECKED = "unchecked"                  # no guard could embed the source or the result


@dataclass(frozen=True)
class GuardSettings:
    """conf/guard/<name>.yaml, read once (`settings`).

    Attributes:
        name: the config choice (closed, open, ...).
        recognizers: conf/recognizer/ names that guard (those without weights are skipped).
        metric: deepface distance the guards compare (cosine, euclidean, euclidean_l2).
        margin: a pair is verified when distance <= threshold x margin (> 1: stricter guard).
        tries: swaps per face at most, the first target included (1: the open loop).
        fallback: conf/generator/ name covering a face every try left verified; None: the
            last try is kept and the face counted as still verified.
        max_owner_rank: a fake whose owner ranks within this many of the gallery's faces is
            identified (retried like a verified one); None: identification is not checked.
        min_gallery: identification is checked only when the gallery holds at least this many
            faces: among G faces a fake with nothing of its owner is at rank 1 by chance with
            probability 1/G, so in a small gallery rank 1 says little (with 6 faces and three
            guards, about 4 in 10 of such fakes would be retried at each try); None: any size.
    """

    name: str
    recognizers: tuple[str, ...]
    metric: str
    margin: float
    tries: int
    fallback: str | None
    max_owner_rank: int | None = None
    min_gallery: int | None = None

    @property
    def closed(self) -> bool:
        return bool(self.recognizers)


def settings(cfg: DictConfig) -> GuardSettings:
    """The run's guard settings (cfg.guard; the choice name from Hydra's choices).

    Raises:
        BenchError: tries < 1, margin <= 0, max_owner_rank < 0 or min_gallery < 0.
    """
    g = cfg.guard
    tries, margin = int(g.tries), float(g.margin)
    max_rank = int(g.get("max_owner_rank") or 0)
    if max_rank < 0:
        raise BenchError(f"guard.max_owner_rank must be >= 0 (0 or null: no identification check), got {max_rank}")
    min_gallery = int(g.get("min_gallery") or 0)
    if min_gallery < 0:
        raise BenchError(f"guard.min_gallery must be >= 0 (0 or null: a gallery of any size), got {min_gallery}")
    if tries < 1:
        raise BenchError(f"guard.tries must be >= 1 (1: the open loop), got {tries}")
    if margin <= 0:
        raise BenchError(f"guard.margin must be > 0, got {margin}")
    return GuardSettings(name=str(cfg.choices.get("guard") or DEFAULT_GUARD), recognizers=tuple(str(r) for r in g.recognizers or ()),
                         metric=str(g.metric), margin=margin, tries=tries,
                         fallback=str(g.fallback) if g.get("fallback") else None, max_owner_rank=max_rank or None,
                         min_gallery=min_gallery or None)


def recorded_guard(cell) -> dict:
    """The guard entry of a cell's anonymize provenance (Guard.describe(): recognizers, metric,
    margin, tries, ...), read by the stages that report guards apart; {} for a cell written
    without one (not anonymized yet, or an older cell)."""
    if not cell.provenance.is_file():
        return {}
    return json.loads(cell.provenance.read_text(encoding="utf-8")).get("guard") or {}


def cell_guards(cell) -> list[str]:
    """The recognizers that guarded a cell's fakes; [] for the open loop or an older cell."""
    return [str(r) for r in recorded_guard(cell).get("recognizers") or []]


@dataclass(frozen=True)
class Verdict:
    """One check of a fake by the guards.

    Attributes:
        distances: {guard: `guard.metric` distance of the fake to its source}.
        verified_by: guards with distance <= threshold x margin.
        owner_ranks: {guard: the owner's rank among the gallery, 1 = nearest}; {} when
            identification is not checked (`guard.max_owner_rank` off).
        identified_by: guards whose owner rank is <= `guard.max_owner_rank`.
    """

    distances: dict[str, float]
    verified_by: list[str]
    owner_ranks: dict[str, int] = field(default_factory=dict)
    identified_by: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        """Whether a guard verified or identified the fake (it must not be published)."""
        return bool(self.verified_by or self.identified_by)

    def why(self) -> str:
        """"verified by a; identified by b at rank 1" (empty when not flagged)."""
        parts = [f"verified by {', '.join(self.verified_by)}"] if self.verified_by else []
        if self.identified_by:
            parts.append(f"{IDENTIFIED} " + ", ".join(f"{g} at rank {self.owner_ranks[g]}" for g in self.identified_by))
        return "; ".join(parts)


IDENTIFIED = "identified by"  # Verdict.why()'s words for a failed identification check


def was_identified(guard_why: str | None) -> bool:
    """Whether a pairs.parquet `guard_why` (JSON list of Verdict.why()) has an identified check."""
    return isinstance(guard_why, str) and any(IDENTIFIED in entry for entry in json.loads(guard_why or "[]"))


@dataclass
class GuardOutcome:
    """One face's loop: tries (swaps made), targets tried (pool face ids, in order), the last
    check's distances, owner ranks and verdicts per guard, why each flagged check failed (one
    entry per check that led to a retry or a cover, in order), and why it stopped (STOP_*)."""

    tries: int = 0
    targets: list[str] = field(default_factory=list)
    distances: dict[str, float] = field(default_factory=dict)
    verified_by: list[str] = field(default_factory=list)
    owner_ranks: dict[str, int] = field(default_factory=dict)
    identified_by: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    stop: str = STOP_OPEN

    def note(self, verdict: Verdict) -> None:
        """Takes one check's verdict as the last one; a flagged check is added to `why`."""
        self.distances, self.verified_by = verdict.distances, verdict.verified_by
        self.owner_ranks, self.identified_by = verdict.owner_ranks, verdict.identified_by
        if verdict.flagged:
            self.why.append(verdict.why())

    @property
    def flagged(self) -> bool:
        """Whether the last check's guards verified or identified the fake."""
        return bool(self.verified_by or self.identified_by)

    def still_stop(self) -> str:
        """The stop of a face the guard fallback did not save: verified wins over identified."""
        return STOP_STILL_VERIFIED if self.verified_by else STOP_STILL_IDENTIFIED

    def columns(self) -> dict:
        """pairs.parquet's guard columns (the last check's; `guard_why`: every flagged check)."""
        return {"tries": int(self.tries), "targets_tried": json.dumps(self.targets),
                "guard_distances": json.dumps({k: round(float(v), 6) for k, v in self.distances.items()}),
                "guard_verified_by": ",".join(self.verified_by),
                "guard_owner_ranks": json.dumps({k: int(v) for k, v in self.owner_ranks.items()}),
                "guard_identified_by": ",".join(self.identified_by),
                "guard_why": json.dumps(self.why), "guard_stop": self.stop}


class Guard:
    """The guard recognizers of one run, loaded once; embeddings cached per crop content
    (bench.embedding_runner's cache, shared with every other stage)."""

    def __init__(self, cfg: DictConfig):
        from bench.embedding_runner import used_weights
        from bench.recognizers import build_recognizer
        from bench.verification import threshold_of

        self.cfg = cfg
        self.settings = settings(cfg)
        self.recognizers, self.thresholds, self.unavailable = [], {}, {}
        for name in self.settings.recognizers:
            recognizer = build_recognizer(name, cfg)
            threshold, why_not = threshold_of(recognizer, self.settings.metric)
            if why_not is None:
                try:
                    used_weights(recognizer)
                except Exception as err:  # noqa: BLE001 - missing weights: this guard is n/a
                    why_not = f"n/a: {err}"
            if why_not is not None:
                self.unavailable[name] = why_not
                log.warning("guard %s is not available: %s", name, why_not)
                continue
            self.recognizers.append(recognizer)
            self.thresholds[name] = threshold
        if self.settings.recognizers and not self.recognizers:
            log.warning("no guard recognizer is available: the loop is open (every face tried once)")
        self._cover = None
        self._caches: dict = {}  # {guard: its EmbeddingCache (or None: embed_crops says why)}
        # {guard: (face ids (G,), (G, D) embeddings)}: the originals an attacker ranks (enrol)
        self.gallery: dict[str, tuple[list[str], np.ndarray]] | None = None
        # whether enrol() lets identify() rank: "off", "checked" or "not checked: <why>"
        self.identification = "off" if not self.settings.max_owner_rank else "checked"

    def enrol(self, faces, photo_root) -> None:
        """Embeds the identification gallery once per run, batched, through the embedding
        cache (bench.embedding_runner.embed_many: each photo decoded once, each face aligned at
        its landmarks at each guard's input size and margin, as the guard aligns a source).
        Nothing to do when `guard.max_owner_rank` is off or no guard is available; a gallery of
        fewer aligned faces than `guard.min_gallery` is not embedded and identification is not
        checked in this run (`identification` says why; it goes into the provenance).

        Args:
            faces: faces.parquet rows (face_id, photo relative to photo_root, landmarks,
                aligned): the faces an attacker holds originals of; unaligned rows and faces
                a guard cannot embed are left out of that guard's gallery.
            photo_root: the dataset's photo folder.
        """
        if not self.settings.max_owner_rank or not self.active:
            return
        size = int(faces.aligned.astype(bool).sum()) if "aligned" in faces.columns else len(faces)
        least = self.settings.min_gallery
        if least and size < least:
            self.gallery = {}
            self.identification = (f"not checked: a gallery of {size} faces, fewer than guard.min_gallery ({least}): "
                                   f"rank 1 comes by chance for 1 in {max(size, 1)} fakes")
            log.warning("guard: identification %s", self.identification)
            return
        from bench.embedding_runner import embed_many

        tables = embed_many(self.recognizers, faces.reset_index(drop=True), photo_root, self.cfg)
        self.gallery = {}
        for name, table in tables.items():
            ok = (table.status == OK).to_numpy()
            ids = table.face_id.astype(str)[ok].tolist()
            matrix = np.stack(table.embedding[ok].to_numpy()) if ok.any() else np.zeros((0, 0), np.float32)
            self.gallery[name] = (ids, matrix)
            log.info("guard %s: identification gallery of %d of %d faces (owner within rank %d: identified)",
                     name, len(ids), len(table), self.settings.max_owner_rank)

    def gallery_key(self) -> str:
        """A digest of the gallery (ids and embeddings): a photo's result depends on the other
        photos' faces through it, so it is part of the photo's resume key ("" when off)."""
        if not self.gallery:
            return ""
        import hashlib

        h = hashlib.sha256()
        for name in sorted(self.gallery):
            ids, matrix = self.gallery[name]
            h.update(json.dumps([name, ids]).encode())
            h.update(np.ascontiguousarray(matrix, np.float32).tobytes())
        return h.hexdigest()

    def cover(self):
        """guard.fallback's generator, built and prepared on first use; None when unset."""
        if self._cover is None and self.settings.fallback:
            from bench.generators import build_generator

            self._cover = build_generator(self.settings.fallback, self.cfg)
            self._cover.prepare()
        return self._cover

    def components(self) -> list:
        """What decides a guarded result besides the settings (for cache keys): the guards."""
        return list(self.recognizers)

    @property
    def active(self) -> bool:
        return bool(self.recognizers)

    def describe(self) -> dict:
        """The provenance entry: settings, guards used with thresholds, guards left out."""
        s = self.settings
        return {"name": s.name, "recognizers": [r.name for r in self.recognizers], "metric": s.metric,
                "margin": s.margin, "tries": s.tries, "fallback": s.fallback, "max_owner_rank": s.max_owner_rank,
                "min_gallery": s.min_gallery, "identification": self.identification,
                "gallery": {k: len(ids) for k, (ids, _) in (self.gallery or {}).items()},
                "thresholds": dict(self.thresholds), "unavailable": dict(self.unavailable)}

    def embed(self, rgb: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray | None]:
        """{guard: (D,) embedding of the face at `landmarks` (5, 2) in the RGB `rgb`, or None
        where it cannot be aligned or embedded}."""
        from bench.align import align_face
        from bench.embedding_runner import EmbeddingCache, cache_folder, embed_crops

        out = {}
        for recognizer in self.recognizers:
            try:
                crop = align_face(rgb, landmarks, size=recognizer.input_size, margin=recognizer.margin)
            except ValueError:
                out[recognizer.name] = None
                continue
            if recognizer.name not in self._caches:  # its key composes the recognizer's config: once
                try:
                    self._caches[recognizer.name] = EmbeddingCache(cache_folder(recognizer, self.cfg))
                except BenchError:
                    self._caches[recognizer.name] = None  # embed_crops says why
            status, vector = embed_crops(recognizer, [crop], self.cfg, self._caches[recognizer.name])[0]
            out[recognizer.name] = vector if status == OK else None
        return out

    def check(self, source: dict, result: dict) -> tuple[dict[str, float], list[str]]:
        """({guard: distance}, guards that verify the pair) for two embed() outputs."""
        from bench.verification import pair_distances

        distances, verified = {}, []
        for name, threshold in self.thresholds.items():
            a, b = source.get(name), result.get(name)
            if a is None or b is None:
                continue
            d = float(pair_distances(np.asarray(a)[None], np.asarray(b)[None], self.settings.metric)[0])
            distances[name] = d
            if d <= threshold * self.settings.margin:
                verified.append(name)
        return distances, verified

    def identify(self, source: dict, result: dict, owner: str) -> tuple[dict[str, int], list[str]]:
        """({guard: the owner's rank among the gallery}, guards whose rank <= max_owner_rank).

        The fake `result` (embed() output) is ranked against every gallery face by the guard's
        `guard.metric` distance (bench.attacks.pairs.cross_distances, deepface's numbers); the
        owner's rank is 1 + the other faces strictly closer than the owner (a tie goes to the
        attacker). The owner's entry is its gallery row, or `source` when the gallery lacks it.

        Raises:
            BenchError: max_owner_rank is set and enrol() has not run.
        """
        limit = self.settings.max_owner_rank
        if not limit:
            return {}, []
        if self.gallery is None:
            raise BenchError("guard.max_owner_rank is set but the guard has no gallery: call Guard.enrol(faces) first")
        from bench.attacks.pairs import cross_distances

        ranks, identified = {}, []
        for name, (ids, matrix) in self.gallery.items():
            probe, own = result.get(name), source.get(name)
            if probe is None or (own is None and owner not in ids):
                continue
            others = np.array([i != owner for i in ids], bool)
            d = cross_distances(np.asarray(probe)[None], matrix, self.settings.metric)[0] if len(ids) else np.zeros(0)
            d_owner = (d[~others].min() if (~others).any()
                       else cross_distances(np.asarray(probe)[None], np.asarray(own)[None], self.settings.metric)[0, 0])
            ranks[name] = 1 + int((d[others] < d_owner).sum())
            if ranks[name] <= limit:
                identified.append(name)
        return ranks, identified

    def judge(self, source: dict, result: dict, owner: str) -> Verdict:
        """check() and identify() of one fake as one Verdict."""
        distances, verified = self.check(source, result)
        ranks, identified = self.identify(source, result, owner)
        return Verdict(distances, verified, ranks, identified)


def alternates_json(rows: list[dict]) -> str:
    """The targets table's `alternates` cell: the next targets as a JSON list of
    {target, target_image, target_box, target_landmarks, distance}."""
    return json.dumps(rows)


def candidate_targets(target, limit: int) -> list:
    """The face's target followed by its alternates (at most `limit` in all): each a mapping
    with target, target_image, target_box, target_landmarks, distance (bench.anonymizer)."""
    if target is None:
        return [None]
    out = [target]
    raw = target.get("alternates") if hasattr(target, "get") else None
    if isinstance(raw, str) and raw:
        out += json.loads(raw)
    return out[:max(1, limit)]


def replace_guarded(image: np.ndarray, original: np.ndarray, row, target, generator, fallback,
                    guard: "Guard | None") -> tuple[np.ndarray, str, GuardOutcome]:
    """One face replaced under the closed loop: (image, status, outcome). Never raises.

    Args:
        image: (H, W, 3) uint8 RGB, the photo with the faces before this one already replaced.
        original: the photo as read (the source face's embeddings come from it).
        row: the inventory face (x1, y1, x2, y2, landmarks: 10 floats).
        target: its targets-table row (with `alternates`), or None.
        generator, fallback: as bench.anonymizer.replace_face.
        guard: the run's Guard; None, or one without an available recognizer, or a generator
            that takes no target (an obfuscation: nothing to retry): one swap, STOP_OPEN.
    """
    from bench.anonymizer import replace_face
    from bench.status import SWAPPED, fallback_status

    outcome = GuardOutcome()
    if guard is None or not guard.active or not generator.uses_target:
        out, status = replace_face(image, row, target, generator, fallback)
        if target is not None:
            outcome.targets, outcome.tries = [str(target["target"])], 1
        return out, status, outcome
    landmarks = np.asarray(row.landmarks, np.float32).reshape(5, 2)
    owner = str(getattr(row, "face_id", ""))
    source = guard.embed(original, landmarks)
    out, status = image, ""
    for candidate in candidate_targets(target, guard.settings.tries):
        out, status = replace_face(image, row, candidate, generator, fallback)
        if status != SWAPPED:  # no target, or the swap failed: the anonymize fallback covered it
            outcome.stop = STOP_NOT_SWAPPED
            return out, status, outcome
        outcome.tries += 1
        outcome.targets.append(str(candidate["target"]))
        outcome.note(guard.judge(source, guard.embed(out, landmarks), owner))
        if not outcome.distances:
            outcome.stop = STOP_UNCHECKED
            return out, status, outcome
        if not outcome.flagged:
            outcome.stop = STOP_PASSED
            return out, status, outcome
    why = f"guard: {outcome.why[-1]} after {outcome.tries} tries"
    cover = guard.cover()
    if cover is None:
        outcome.stop = outcome.still_stop()
        return out, status, outcome
    face = _face(row)
    try:
        covered = cover.swap(out, face, out, face)  # the last fake obfuscated: less of the owner than the real face
    except Exception as err:  # noqa: BLE001 - keep the last fake, counted as still verified
        log.warning("guard fallback %s failed on %s: %s", cover.name, getattr(row, "face_id", "a face"), err)
        outcome.stop = outcome.still_stop()
        return out, status, outcome
    outcome.note(guard.judge(source, guard.embed(covered, landmarks), owner))
    outcome.stop = outcome.still_stop() if outcome.flagged else STOP_FALLBACK
    return covered, fallback_status(cover.name, why), outcome


def _face(row):
    """An inventory row as a generator's Face."""
    return _as_face(SimpleNamespace(box=[row.x1, row.y1, row.x2, row.y2], landmarks=row.landmarks))


def recheck_photo(image: np.ndarray, original: np.ndarray, rows: list, outcomes: list[GuardOutcome],
                  statuses: list[str], guard: "Guard | None", found: list[list] | None = None,
                  cover: bool = True) -> tuple[np.ndarray, list[int]]:
    """The last check, on the finished photo: a neighbour's swap or cover can reach into a face's
    crop after its own check, so each face that passed is checked again on `image` (every face
    replaced); one a guard now verifies or identifies is covered by `guard.fallback`
    (STOP_FALLBACK, or STOP_STILL_VERIFIED / STOP_STILL_IDENTIFIED when the cover still is, or
    there is none).

    With `found`, each face is also checked at the landmarks of the faces the leak check finds
    over it on `image` (bench.leakscan; the leak check aligns the fake and the original at the
    landmarks it finds, which can differ from the source's): the crops the leak check's guards
    will judge. Where a guard flags the face there, it is covered at its own box and, if that
    is not enough (a box drawn around the mosaic takes in hair and background that no cover
    touched), at the box the leak check found; a face the guard fallback had covered is
    covered there too.

    Args:
        image, original: (H, W, 3) uint8 RGB, the finished and the original photo.
        rows, outcomes, statuses: per face of the photo, its inventory row, its GuardOutcome
            (updated in place) and status (replaced in place when covered).
        guard: the run's Guard (None or inactive: nothing to do).
        found: per face, the leak check's faces over it (each with `box` (4,) and `landmarks`
            (5, 2)), checked besides its own landmarks; None: its own only.
        cover: False: a flagged face is not covered, only counted (STOP_STILL_*): the last
            pass, when the caller will look no more.

    Returns:
        (the photo, indices of the faces whose status or outcome changed).
    """
    from bench.status import fallback_status

    changed: list[int] = []
    if guard is None or not guard.active:
        return image, changed
    for i, (row, outcome) in enumerate(zip(rows, outcomes)):
        own = _face(row)
        extra = [_as_face(d) for d in (found[i] if found is not None else [])]
        if outcome.stop == STOP_PASSED:
            places = [own, *extra]
        elif outcome.stop == STOP_FALLBACK:
            places = extra
        else:
            continue
        owner = str(getattr(row, "face_id", ""))
        verdict, place = None, None
        for place in places:
            verdict = guard.judge(guard.embed(original, place.landmarks), guard.embed(image, place.landmarks), owner)
            if verdict.flagged:
                break
        if verdict is None or not verdict.flagged:
            continue
        changed.append(i)
        outcome.note(verdict)
        where = "on the finished photo" if place is own else "on the finished photo, at the landmarks the leak check finds"
        why = f"guard: {verdict.why()} {where}"
        fallback = guard.cover() if cover else None
        if fallback is None:
            outcome.stop = outcome.still_stop()
            continue
        # the face's own box first (a face that passed), then the box the leak check drew
        for box in ([own] if outcome.stop == STOP_PASSED else []) + ([place] if place is not own else []):
            try:
                image = fallback.swap(image, box, image, box)
            except Exception as err:  # noqa: BLE001 - keep what there is, counted as still flagged
                log.warning("guard fallback %s failed on %s: %s", fallback.name, getattr(row, "face_id", "a face"), err)
                break
            if outcome.stop == STOP_PASSED:
                statuses[i] = fallback_status(fallback.name, why)
            outcome.stop = STOP_FALLBACK
            outcome.note(guard.judge(guard.embed(original, place.landmarks), guard.embed(image, place.landmarks), owner))
            if not outcome.flagged:
                break
        if outcome.flagged:
            outcome.stop = outcome.still_stop()
    return image, changed


def _as_face(det):
    """Anything with `box` (4,) and `landmarks` (10 or (5, 2)) as a generator's Face."""
    from bench.generators.base import Face

    return Face(box=np.asarray(det.box, np.float32), landmarks=np.asarray(det.landmarks, np.float32).reshape(5, 2))
