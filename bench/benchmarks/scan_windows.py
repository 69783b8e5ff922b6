"""The leak check's look at a cell's anonymized photos two ways: every detector over the whole
photo (`leaks.scan_margin=null`) and only windows around the changed pixels (the configured
`leaks.scan_margin`, bench.detectors.changed): the faces each finds, those only one finds
(with their size and detectors), and the seconds each takes.

    python -m bench.benchmarks.scan_windows [OVERRIDES...]
    # e.g. dataset=devset pool=devpool generator=faceswap metric=embedding query=random_furthest_ag

runs on the cell the overrides name (its anonymize stage must have run) and writes
<results_dir>/benchmarks/scan_windows.{json,md}. Both looks use fresh caches in a scratch folder,
so both are timed cold; the originals are scanned first (both looks need them: the windows take
the original's faces where nothing changed) and timed apart. Two faces are the same when their
boxes overlap at IoU >= 0.5.

Raises (run):
    BenchError: the cell has no anonymized photo.
"""
from __future__ import annotations

import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from bench.boxes import iou_matrix
from bench.benchmarks import config_main, write_report
from bench.errors import BenchError
from bench.layout import Cell, benchmarks_dir

SAME_FACE_IOU = 0.5


def files(results_dir: Path | str) -> dict[str, Path]:
    root = benchmarks_dir(results_dir)
    return {"json": root / "scan_windows.json", "md": root / "scan_windows.md"}


def compare(whole: list, windows: list, min_iou: float = SAME_FACE_IOU) -> tuple[list, list]:
    """(faces of `whole` that `windows` lacks, faces of `windows` that `whole` lacks): two lists
    of bench.detectors.base.Detection on one photo, matched by box IoU >= `min_iou`."""
    a = np.array([d.box for d in whole], np.float32).reshape(-1, 4)
    b = np.array([d.box for d in windows], np.float32).reshape(-1, 4)
    overlap = iou_matrix(a, b) if len(a) and len(b) else np.zeros((len(a), len(b)))
    only_whole = [whole[i] for i in range(len(a)) if not (overlap.shape[1] and overlap[i].max() >= min_iou)]
    only_windows = [windows[j] for j in range(len(b)) if not (overlap.shape[0] and overlap[:, j].max() >= min_iou)]
    return only_whole, only_windows


def _face(photo: str, det) -> dict:
    return {"photo": photo, "box": [round(float(v), 1) for v in det.box], "size": round(det.size, 1),
            "found_by": list(det.found_by)}


def run(cfg: DictConfig, command: str | None = None) -> dict[str, Path]:
    """Both looks at the cell's photos (module docstring); writes and returns scan_windows.{json,md}."""
    from bench.datasets import dataset_root
    from bench.images import load_photo
    from bench.leakscan import LeakScan

    cell = Cell.from_config(cfg)
    pngs = sorted(cell.photos.glob("*.png")) if cell.photos.is_dir() else []
    if not pngs:
        raise BenchError(f"{cell.photos} holds no anonymized photo: run `python -m bench anonymize` for this cell first")
    margin = cfg.leaks.scan_margin
    root = dataset_root(cfg.dataset)
    with tempfile.TemporaryDirectory(prefix="bench_scan_windows_") as scratch:
        def scanner(value, prepared=None):
            scoped = OmegaConf.merge(cfg, {"results_dir": scratch, "leaks": {"scan_margin": value}})
            return LeakScan.from_config(scoped, prepared)
        whole = scanner(None)
        windows = scanner(margin, whole.detectors)  # the same loaded models
        pairs = []
        for png in pngs:
            original_path = root / png.name[:-len(".png")]
            if not original_path.is_file():
                continue
            anonymized = load_photo(png, int(cfg.faces.max_image_pixels)).rgb
            original = load_photo(original_path, int(cfg.faces.max_image_pixels)).rgb
            if anonymized.shape == original.shape:
                pairs.append((png.name[:-len(".png")], anonymized, original))
        start = time.perf_counter()
        for _, _, original in pairs:  # both looks need the originals' scans: timed apart
            whole.faces(original, original)
        seconds = {"originals": time.perf_counter() - start, "whole": 0.0, "windows": 0.0}
        found = {"whole": 0, "windows": 0}
        only = {"whole": [], "windows": []}
        for photo, anonymized, original in pairs:
            faces = {}
            for name, scan in (("whole", whole), ("windows", windows)):
                start = time.perf_counter()
                faces[name] = scan.faces(anonymized, original)[0]
                seconds[name] += time.perf_counter() - start
                found[name] += len(faces[name])
            only_whole, only_windows = compare(faces["whole"], faces["windows"])
            only["whole"] += [_face(photo, d) for d in only_whole]
            only["windows"] += [_face(photo, d) for d in only_windows]
    min_size = float(cfg.faces.min_face_size)
    report = {
        "command": command or " ".join(["python -m bench.benchmarks.scan_windows", *sys.argv[1:]]),
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        # the cell as results_dir names it: no machine path in a report
        "cell": cell.root.relative_to(cell.results_dir).as_posix(), "photos": len(pairs), "scan_margin": margin,
        "detectors": sorted(whole.detectors), "rotations": whole.rotations,
        "faces_found": found, "only_whole": only["whole"], "only_windows": only["windows"],
        "aligned_size": min_size,
        "only_whole_aligned": sum(f["size"] >= min_size for f in only["whole"]),
        "only_windows_aligned": sum(f["size"] >= min_size for f in only["windows"]),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }
    return write_report(report, files(cfg.results_dir), render_markdown)


def render_markdown(report: dict) -> str:
    def listed(faces: list[dict]) -> str:
        return "; ".join(f"{f['photo']} {f['size']:.0f} px ({', '.join(f['found_by'])})" for f in faces) or "none"

    m, s, n = report["machine"], report["seconds"], report["faces_found"]
    return "\n".join([
        "# The leak check's look: whole photos against windows around the changes", "",
        f"{report['photos']} anonymized photos of the cell `<results_dir>/{report['cell']}`; detectors {', '.join(report['detectors'])}, "
        f"upright and turned {report['rotations']}; windows at scan_margin {report['scan_margin']}. "
        f"{m['cpus']} CPUs, load average {m['load_average']}; {report['when']}; `{report['command']}`.", "",
        "| | whole photos | windows |", "|---|---|---|",
        f"| faces found | {n['whole']} | {n['windows']} |",
        f"| found by this look only (of them >= {report['aligned_size']:g} px) | {len(report['only_whole'])} "
        f"({report['only_whole_aligned']}) | {len(report['only_windows'])} ({report['only_windows_aligned']}) |",
        f"| seconds, cold (the originals' own scans, which both need: {s['originals']}) | {s['whole']} | {s['windows']} |",
        "", f"Whole photos only: {listed(report['only_whole'])}.", "",
        f"Windows only: {listed(report['only_windows'])}.", ""])


def main(argv: list[str] | None = None) -> int:
    return config_main("bench.benchmarks.scan_windows",
                       __doc__.split("\n\n")[0], run, sys.argv[1:] if argv is None else argv,
                       "config overrides naming the cell, e.g. dataset=devset ...")


if __name__ == "__main__":
    sys.exit(main())
