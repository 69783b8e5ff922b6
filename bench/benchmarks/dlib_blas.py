"""Dlib's face descriptor with and without BLAS: the installed dlib
(scripts/install.sh builds it from source against OpenBLAS, or installs the prebuilt dlib-bin
wheel where it cannot) against the dlib-bin wheel, on the same face chips: milliseconds per
face for each, and the largest difference between their descriptors.

    python -m bench.benchmarks.dlib_blas [OVERRIDES...]     # or the perf suite's `dlib` part:
    python -m bench perf 'perf.suite.parts=[dlib]'

writes <results_dir>/benchmarks/dlib_blas.{json,md} and prints the table. Overrides are the
usual config's (e.g. results_dir=..., paths.shared=...) plus, optional,
+perf.dlib.chips=N (24), +perf.dlib.passes=N (3), +perf.dlib.wheel=REQUIREMENT
(dlib-bin==20.0.1.post1).

Chips: dlib's own pipeline, the one its ResNet was trained on: the HOG frontal detector, the
68-point shape predictor of face_recognition_models and get_face_chip (150 px, padding 0.25),
on the largest face of each of the first `chips` photos of the identities set (cfg.identities,
labels order) that has one. The same chips (uint8 arrays) go to both builds.

Each build runs in its own Python process (both install a module named `dlib`); the wheel is
installed by pip (`--target`, from pip's cache after the first time) into a scratch folder
put first on that process's path. Timing: face_recognition_model_v1.compute_face_descriptor
on one chip at a time (as deepface's Dlib client calls it), one warm-up pass, then `passes`
passes over every chip; ms per face is the median pass's time over the number of chips.
Timings on shared cores are noisy: the report records the load average beside them.

Targets: the installed build <= 20 ms per face, descriptors within 1e-4 of the wheel's.

Raises (run):
    BenchError: no identities photos (set BENCH_SHARED), no face found, or the installed
        build cannot run; the wheel's side alone missing (no registry) is reported "n/a".
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.benchmarks import config_main, write_report
from bench.errors import BenchError
from bench.layout import benchmarks_dir

log = logging.getLogger(__name__)

DEFAULTS = {"chips": 24, "passes": 3, "wheel": "dlib-bin==20.0.1.post1"}
TARGETS = {"ms_per_face": 20.0, "max_abs_diff": 1e-4}
CHIP_SIZE, CHIP_PADDING = 150, 0.25  # dlib's get_face_chip defaults: what the ResNet was trained on


def settings(cfg: DictConfig) -> dict:
    """perf.dlib's settings over DEFAULTS (the config need not declare perf.dlib)."""
    given = OmegaConf.select(cfg, "perf.dlib", default=None)
    return {**DEFAULTS, **(OmegaConf.to_container(given, resolve=True) if given is not None else {})}


def files(results_dir: Path | str) -> dict[str, Path]:
    out = benchmarks_dir(results_dir)
    return {"json": out / "dlib_blas.json", "md": out / "dlib_blas.md"}


def identity_photos(cfg: DictConfig) -> list[Path]:
    """The identities set's photos in its labels order.

    Raises:
        BenchError: the folder or its labels file is missing (BENCH_SHARED unset or wrong).
    """
    root = Path(str(cfg.identities.path))
    labels = root / str(cfg.identities.labels)
    if not labels.is_file():
        raise BenchError(f"no identities photos: {cfg.identities.labels} not found in the identities folder "
                         "(set BENCH_SHARED or paths.shared)")
    import pandas as pd

    return [root / p for p in pd.read_csv(labels)["path"]]


# ---- in the measured process: one dlib build ---------------------------------------------

def _build_info() -> dict:
    import dlib
    from importlib import metadata

    dists = {}
    for name in ("dlib", "dlib-bin"):
        try:
            dists[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    where = Path(dlib.__file__).resolve().parent.parent
    # the distribution whose files these are: the one found where this dlib was imported from
    found = sorted(name for name in dists
                   if (where / f"{name.replace('-', '_')}-{dists[name]}.dist-info").is_dir())
    return {"distribution": found[0] if found else "unknown", "version": dists[found[0]] if found else dlib.__version__,
            "blas": bool(dlib.DLIB_USE_BLAS), "lapack": bool(dlib.DLIB_USE_LAPACK),
            "avx": bool(getattr(dlib, "USE_AVX_INSTRUCTIONS", False))}


def make_chips(photos: list[Path], count: int) -> np.ndarray:
    """(N, 150, 150, 3) uint8 RGB chips, N <= count (module docstring)."""
    import dlib
    import face_recognition_models as models

    from bench.images import ImageLoadError, load_photo

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(models.pose_predictor_model_location())
    chips = []
    for path in photos:
        if len(chips) == count:
            break
        try:
            rgb = load_photo(path).rgb
        except ImageLoadError as err:
            log.warning("dlib_blas: skipped %s: %s", path.name, err)
            continue
        boxes = detector(rgb, 1)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: b.width() * b.height())
        chips.append(dlib.get_face_chip(rgb, predictor(rgb, box), size=CHIP_SIZE, padding=CHIP_PADDING))
    return np.stack(chips).astype(np.uint8) if chips else np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)


def measure(chips: np.ndarray, passes: int) -> tuple[np.ndarray, list[float]]:
    """(N, 128) float64 descriptors of `chips` and the seconds of each timed pass."""
    import time

    import dlib
    import face_recognition_models as models

    model = dlib.face_recognition_model_v1(models.face_recognition_model_location())
    descriptors = np.array([np.asarray(model.compute_face_descriptor(c)) for c in chips])  # warm-up pass
    seconds = []
    for _ in range(passes):
        start = time.perf_counter()
        for chip in chips:
            model.compute_face_descriptor(chip)
        seconds.append(time.perf_counter() - start)
    return descriptors, seconds


def _child(argv: list[str]) -> None:
    """`python -m bench.benchmarks.dlib_blas --child WORK PASSES [PHOTO_LIST COUNT]`: makes the
    chips first when given the photos, then measures this process's dlib; WORK/<name> files."""
    work, passes = Path(argv[0]), int(argv[1])
    info = _build_info()
    if len(argv) > 2:
        photos = [Path(p) for p in Path(argv[2]).read_text(encoding="utf-8").splitlines() if p]
        np.save(work / "chips.npy", make_chips(photos, int(argv[3])))
    chips = np.load(work / "chips.npy")
    descriptors, seconds = measure(chips, passes) if len(chips) else (np.zeros((0, 128)), [])
    tag = "wheel" if len(argv) == 2 else "installed"
    np.save(work / f"{tag}_descriptors.npy", descriptors)
    info.update(seconds=seconds, threads=os.environ.get("OPENBLAS_NUM_THREADS", "default"))
    (work / f"{tag}.json").write_text(json.dumps(info), encoding="utf-8")


def _run_child(args: list[str], work: Path, tag: str, pythonpath: Path | None = None) -> tuple[dict, np.ndarray]:
    """Runs _child in a fresh interpreter (fork+exec: nothing is forked without exec)."""
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run([sys.executable, "-m", "bench.benchmarks.dlib_blas", "--child", str(work), *args],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        raise BenchError(f"dlib_blas: measuring the {tag} dlib failed: {last}")
    return json.loads((work / f"{tag}.json").read_text(encoding="utf-8")), np.load(work / f"{tag}_descriptors.npy")


def install_wheel(requirement: str, target: Path) -> str | None:
    """pip install --no-deps --target `target` `requirement`; None when done, else why not."""
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           "--no-deps", "--target", str(target), requirement], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return f"pip could not install {requirement}: {(lines or ['exit ' + str(done.returncode)])[-1]}"
    return None


def _ms_per_face(info: dict, n: int) -> float | None:
    seconds = sorted(info.get("seconds") or [])
    return None if not seconds or not n else 1000.0 * seconds[len(seconds) // 2] / n


# ---- the command -------------------------------------------------------------------------

def run(cfg: DictConfig, command: str | None = None) -> dict[str, Path]:
    """Measures both builds (module docstring); writes and returns dlib_blas.{json,md}.
    `command`: the command line the report names (default: `python -m bench` and this
    process's arguments, as the perf suite runs it)."""
    opts = settings(cfg)
    photos = identity_photos(cfg)
    with tempfile.TemporaryDirectory(prefix="bench_dlib_blas_") as scratch:
        work = Path(scratch)
        (work / "photos.txt").write_text("\n".join(map(str, photos)), encoding="utf-8")
        installed, mine = _run_child([str(opts["passes"]), str(work / "photos.txt"), str(opts["chips"])],
                                     work, "installed")
        n = len(np.load(work / "chips.npy"))
        if n == 0:
            raise BenchError("dlib_blas: dlib's detector found no face in the identities photos")
        why_not = install_wheel(str(opts["wheel"]), work / "wheel")
        wheel, theirs = ({"status": f"n/a: {why_not}"}, None) if why_not else \
            _run_child([str(opts["passes"])], work, "wheel", pythonpath=work / "wheel")
    for info in (installed, wheel):
        if "seconds" in info:
            info["ms_per_face"] = _ms_per_face(info, n)
            info["status"] = "ok"
    diff = None if theirs is None else float(np.abs(mine - theirs).max())
    ms = installed["ms_per_face"]
    report = {
        "command": command or " ".join(["python -m bench", *sys.argv[1:]]),
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
                    "python": sys.version.split()[0]},
        "chips": {"count": n, "size": CHIP_SIZE, "padding": CHIP_PADDING,
                  "source": f"identities set ({cfg.identities.name}): the largest face of each of the first photos "
                            "with one, dlib HOG + 68-point shape predictor + get_face_chip"},
        "passes": int(opts["passes"]), "wheel_requirement": str(opts["wheel"]),
        "builds": {"installed": installed, "wheel": wheel},
        "max_abs_diff": diff,
        "speedup": None if diff is None else wheel["ms_per_face"] / ms,
        "targets": TARGETS,
        "met": {"ms_per_face": ms <= TARGETS["ms_per_face"],
                "max_abs_diff": None if diff is None else diff <= TARGETS["max_abs_diff"]},
    }
    return write_report(report, files(cfg.results_dir), render_markdown)


def render_markdown(report: dict) -> str:
    def build(tag: str) -> str:
        info = report["builds"][tag]
        if info.get("status") != "ok":
            return f"| {tag} | {info.get('status')} | | | |"
        passes = ", ".join(f"{1000 * s / report['chips']['count']:.1f}" for s in info["seconds"])
        return (f"| {tag} | {info['distribution']} {info['version']} | {'yes' if info['blas'] else 'no'} | "
                f"{info['ms_per_face']:.1f} | {passes} |")

    m, diff = report["machine"], report["max_abs_diff"]
    return "\n".join([
        "# Dlib's face descriptor: installed build vs the dlib-bin wheel", "",
        f"{report['chips']['count']} chips of the {report['chips']['source']}; {report['passes']} timed passes after a "
        f"warm-up, one chip per call. {m['cpus']} CPUs, load average {m['load_average']}; {report['when']}; "
        f"`{report['command']}`.", "",
        "| build | distribution | BLAS | ms per face (median pass) | each pass (ms per face) |", "|---|---|---|---|---|",
        build("installed"), build("wheel"), "",
        f"Largest difference between the two builds' descriptors: {'n/a' if diff is None else f'{diff:.2e}'} "
        f"(target <= {TARGETS['max_abs_diff']:g}); installed build {report['builds']['installed']['ms_per_face']:.1f} ms "
        f"per face (target <= {TARGETS['ms_per_face']:g})"
        + ("" if report["speedup"] is None else f", {report['speedup']:.1f}x the wheel's speed") + ".", ""])


def summary_rows(report: dict) -> list[dict]:
    """The perf suite's headline rows (bench.benchmarks.suite.row's fields)."""
    installed, diff = report["builds"]["installed"], report["max_abs_diff"]
    wheel = report["builds"]["wheel"]
    note = f"{installed['distribution']} {installed['version']}, BLAS {'on' if installed['blas'] else 'off'}; " + (
        f"wheel {wheel['ms_per_face']:.1f} ms" if wheel.get("status") == "ok" else f"wheel {wheel.get('status')}")
    return [
        {"part": "dlib", "figure": "Dlib descriptor, installed build: ms per face", "value": round(installed["ms_per_face"], 1),
         "target": f"<= {TARGETS['ms_per_face']:g}", "met": report["met"]["ms_per_face"], "note": note},
        {"part": "dlib", "figure": "Dlib descriptor: largest difference from the dlib-bin wheel's",
         "value": None if diff is None else float(f"{diff:.2e}"), "target": f"<= {TARGETS['max_abs_diff']:g}",
         "met": report["met"]["max_abs_diff"], "note": f"{report['chips']['count']} chips"},
    ]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        _child(argv[1:])
        return 0
    return config_main("bench.benchmarks.dlib_blas", __doc__.split("\n\n")[0], run, argv,
                       "config overrides, e.g. results_dir=... +perf.dlib.chips=12")


if __name__ == "__main__":
    sys.exit(main())
