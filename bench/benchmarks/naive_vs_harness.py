"""Benchmark `perf-naive`: the Source-vs-Result column of a verification table (Table 1 by
default) computed two ways on the same pairs of the column's cells, timed:

  naive    a loop of `DeepFace.verify(original_crop, anonymized_crop, model_name=...)` as a
           user writes it: per recognizer and pair, both photos decoded with cv2.imread, cut
           at the source face's box (grown by perf.naive.crop_margin), verified with
           deepface's defaults (its opencv detector re-detects and aligns inside each crop);
  harness  the evaluate stage (bench.stages.evaluate.run) on each cell in turn, in this
           process, in a scratch results_dir with empty caches (caches shared across the
           cells count, none from an earlier run), on the same recognizers. It does more
           than the column needs (Source-vs-Target too, three distance metrics).

The recognizers are the deepface models in `recognizers` whose weights plain deepface finds
(<DEEPFACE_HOME or ~>/.deepface/weights/, what `python -m bench weights provision` fills):
Dlib, and Facenet where provisioned. Both ways run in this process after the same imports
(timed apart) and after one read of each weight file (so neither pays a cold page cache);
the harness runs first, so it also pays torch's one-time start-up. `process_overhead_s` is
what each `python -m bench evaluate` process adds under `dvc repro` (start and imports,
measured in a fresh interpreter).

Verdicts are compared per pair and recognizer where both give one (the harness gives none
for a face it could not re-detect in the anonymized photo). They need not agree: the harness
aligns each face from its detector's five landmarks at the recognizer's template; deepface
re-detects a face inside each crop with OpenCV's Haar cascade (and, finding none, embeds the
whole crop) and aligns by its eyes only. The report counts the disagreements by whether
deepface found a face in each crop.

Writes <results_dir>/benchmarks/naive_vs_harness.{json,md}, one entry per perf.naive.label
(others kept). Run:
    python -m bench perf-naive                                # the embedded default's cells
    python -m bench perf-naive dataset=devset pool=devpool perf.naive.results_dir=/path/to/run
"""
from __future__ import annotations

import copy
import datetime as dt
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from bench import resultsio
from bench.datasets import dataset_root
from bench.errors import BenchError
from bench.layout import Cell, DatasetLayout, benchmarks_dir, cache_dir, pool_dir
from bench.config import with_choice
from bench.recognizers import build_recognizer, selected_recognizers

log = logging.getLogger(__name__)

COMPARISON = "source_vs_result"
# What a `python -m bench evaluate` process imports before its first model call.
STAGE_IMPORTS = ("bench.cli", "bench.stages.evaluate", "torch", "dlib", "deepface.modules.modeling",
                 "deepface.models.facial_recognition.pytorch.Facenet")
# What either way imports before its first model call (this process imports them up front).
NAIVE_IMPORTS = ("cv2", "torch", "dlib", "deepface.DeepFace", "bench.stages.evaluate")


# ---- which recognizers and cells ---------------------------------------------------------------

def deepface_weights_home() -> Path:
    """Where DeepFace.verify looks for weights: <DEEPFACE_HOME or ~>/.deepface/weights."""
    from deepface.commons.folder_utils import get_deepface_home

    from bench.recognizers.deepface_client import deepface_weights_dir

    return deepface_weights_dir(get_deepface_home())


def naive_recognizers(cfg: DictConfig, names=None) -> dict[str, str]:
    """{recognizer name: deepface model name} of the deepface models among `names` (default:
    the run's recognizers) whose weight file is where plain deepface finds it."""
    from bench.recognizers.deepface_client import DeepfaceRecognizer

    home = deepface_weights_home().resolve()
    out = {}
    for name in (list(names) if names else selected_recognizers(cfg)):
        recognizer = build_recognizer(str(name), cfg)
        if not isinstance(recognizer, DeepfaceRecognizer):
            continue
        files = [Path(p).expanduser().resolve() for p in recognizer.weights()]
        if files and files[0].is_file() and files[0].parent == home:
            out[str(name)] = recognizer.model_name
    return out


def column_cells(cfg: DictConfig, results_dir: Path, table: str) -> tuple[list[Cell], str]:
    """The cells of `table`'s Source-vs-Result column (one per tables.strategies query, in the
    table's first space, this config's generator) and the table's distance metric."""
    spec = cfg.tables.specs.get(table)
    if spec is None:
        raise BenchError(f"perf.naive.table={table!r}: not in tables.specs ({', '.join(cfg.tables.specs)})")
    space = str(list(spec.spaces)[0])
    queries = list(dict.fromkeys(str(q) for q in cfg.tables.strategies.values()))
    cells = [Cell(results_dir, str(cfg.dataset.name), str(cfg.pool.name), space, query, cfg.choices.generator)
             for query in queries]
    return cells, str(spec.metric)


# ---- the naive loop ---------------------------------------------------------------------------

def face_boxes(path: Path) -> dict[str, tuple[str, tuple[float, float, float, float]]]:
    """face_id -> (photo, (x1, y1, x2, y2)) of a faces table."""
    faces = pd.read_parquet(path, columns=["face_id", "photo", "x1", "y1", "x2", "y2"])
    return {str(r.face_id): (str(r.photo), (float(r.x1), float(r.y1), float(r.x2), float(r.y2)))
            for r in faces.itertuples(index=False)}


def crop_box(image: np.ndarray, box, margin: float) -> np.ndarray:
    """The box grown by `margin` x its size on each side, clipped to the image."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    height, width = image.shape[:2]
    left, top = max(int(np.floor(x1 - margin * w)), 0), max(int(np.floor(y1 - margin * h)), 0)
    right, bottom = min(int(np.ceil(x2 + margin * w)), width), min(int(np.ceil(y2 + margin * h)), height)
    if right <= left or bottom <= top:
        raise ValueError(f"empty crop for box {box} in a {width}x{height} image")
    return np.ascontiguousarray(image[top:bottom, left:right])


def face_found(area: dict | None, crop_shape) -> bool:
    """Whether deepface found a face in a crop: without one it reports the whole crop, less
    a pixel (deepface.modules.detection clips w, h to width - 1, height - 1)."""
    if not area or area.get("w") is None:
        return False
    height, width = crop_shape[:2]
    return not (area.get("x") == 0 and area.get("y") == 0 and area["w"] >= width - 1 and area["h"] >= height - 1)


def naive_loop(pairs: pd.DataFrame, photo_root: Path, cell_root: Path, results: dict[str, str], boxes: dict,
               model_name: str, metric: str, settings) -> tuple[list[dict], dict]:
    """The user's loop over one cell's pairs for one deepface model; (rows, timing).

    Args:
        pairs: the cell's pairs.parquet rows (source_face, photo).
        photo_root: the dataset's folder; cell_root: the cell's folder.
        results: dataset photo -> anonymized photo relative to cell_root.
        boxes: source face_id -> (photo, box) (face_boxes of the dataset's faces.parquet).
        model_name, metric: deepface's names.
        settings: perf.naive (detector_backend, enforce_detection, align, crop_margin).
    """
    import cv2
    from deepface import DeepFace

    rows, decode_s, verify_s = [], 0.0, 0.0
    start = time.perf_counter()
    for pair in pairs.itertuples(index=False):
        row = {"source_face": str(pair.source_face), "naive_verified": None, "naive_distance": None,
               "naive_faces_found": None, "naive_error": "", "naive_s": None}
        rows.append(row)
        photo, box = boxes[str(pair.source_face)]
        if photo not in results:
            row["naive_error"] = "no anonymized photo"
            continue
        t0 = time.perf_counter()
        original = cv2.imread(str(photo_root / photo))
        anonymized = cv2.imread(str(cell_root / results[photo]))
        decode_s += time.perf_counter() - t0
        if original is None or anonymized is None:
            row["naive_error"] = "photo unreadable"
            continue
        try:
            a, b = crop_box(original, box, float(settings.crop_margin)), crop_box(anonymized, box, float(settings.crop_margin))
            t1 = time.perf_counter()
            try:
                result = DeepFace.verify(a, b, model_name=model_name, distance_metric=metric,
                                         detector_backend=str(settings.detector_backend),
                                         enforce_detection=bool(settings.enforce_detection),
                                         align=bool(settings.align), silent=True)
            finally:
                row["naive_s"] = time.perf_counter() - t1
                verify_s += row["naive_s"]
        except Exception as err:  # noqa: BLE001 - deepface's "Face could not be detected", cv2 on a bad crop: the pair's error
            row["naive_error"] = str(err).splitlines()[0][:200]
            continue
        areas = result.get("facial_areas") or {}
        row.update(naive_verified=bool(result["verified"]), naive_distance=float(result["distance"]),
                   naive_faces_found=int(face_found(areas.get("img1"), a.shape)) + int(face_found(areas.get("img2"), b.shape)))
    return rows, {"seconds": time.perf_counter() - start, "decode_s": decode_s, "verify_s": verify_s, "pairs": len(rows)}


def spread_sample(pairs: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """At most `n` rows spread evenly over the table (pairs come sorted by photo: the first n
    would be one photo's faces); all rows when n is None or not smaller."""
    if not n or n >= len(pairs):
        return pairs
    return pairs.iloc[np.unique(np.linspace(0, len(pairs) - 1, n).round().astype(int))]


def anonymized_photos(cell: Cell) -> dict[str, str]:
    """dataset photo -> its anonymized photo relative to the cell (the cell's photos.csv)."""
    table = pd.read_csv(cell.photo_table, keep_default_na=False)
    return {str(r.photo): str(r.result) for r in table.itertuples(index=False) if str(r.result)}


# ---- the harness --------------------------------------------------------------------------------

def scratch_results(source: Path, scratch: Path, cells: list[Cell], dataset: str, pool: str) -> list[Cell]:
    """A results_dir in `scratch` where the evaluate stage finds the cells' inputs (links to
    `source`'s files) and writes its own files, with no cache: the cells' own folders are new,
    holding links to what the anonymize stage wrote."""
    out = []
    src_data, dst_data = DatasetLayout(source, dataset), DatasetLayout(scratch, dataset)
    dst_data.root.mkdir(parents=True, exist_ok=True)
    _link(src_data.faces, dst_data.faces)
    _link(pool_dir(source, pool).root, pool_dir(scratch, pool).root)
    for cell in cells:
        mine = Cell(scratch, cell.dataset, cell.pool, cell.metric, cell.query, cell.generator)
        mine.root.mkdir(parents=True, exist_ok=True)
        for name in ("pairs", "faces", "photos", "crops", "photo_table"):
            _link(getattr(cell, name), getattr(mine, name))
        out.append(mine)
    return out


def _link(src: Path, dst: Path) -> None:
    if src.exists() and not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def cell_config(cfg: DictConfig, cell: Cell, results_dir: Path, recognizers: list[str]) -> DictConfig:
    """`cfg` for one cell: its metric and query, `results_dir`, only `recognizers`."""
    one = with_choice(with_choice(copy.deepcopy(cfg), "metric", cell.metric), "query", cell.query)
    with open_dict(one):
        one.results_dir = str(results_dir)
        one.recognizers = list(recognizers)
    return one


def process_overhead_s() -> float | None:
    """Seconds a fresh `python` takes to start and import what an evaluate process imports."""
    code = f"import importlib; [importlib.import_module(m) for m in {list(STAGE_IMPORTS)!r}]"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "BENCH_PROGRESS": "0"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        log.warning("could not time a fresh interpreter's imports: %s", done.stderr.strip().splitlines()[-1:])
        return None
    return seconds


# ---- comparing ---------------------------------------------------------------------------

def compare_verdicts(naive: pd.DataFrame, harness: pd.DataFrame) -> dict:
    """Agreement of the two ways' verdicts on the pairs where both gave one.

    Args:
        naive: recognizer, cell, source_face, naive_verified (bool or None), naive_distance,
            naive_faces_found (0-2: in how many of the two crops deepface found a face).
        harness: recognizer, cell, source_face, verified (bool or NA), distance.
    """
    both = naive.merge(harness, on=["recognizer", "cell", "source_face"], how="outer")
    has_naive = both.naive_verified.notna()
    has_harness = both.verified.notna()
    judged = both[has_naive & has_harness].copy()
    judged["agree"] = judged.naive_verified.astype(bool) == judged.verified.astype(bool)
    summary = {
        "pairs": int(len(both)), "both_judged": int(len(judged)), "agree": int(judged.agree.sum()),
        "agreement": float(judged.agree.mean()) if len(judged) else None,
        "naive_only": int((has_naive & ~has_harness).sum()), "harness_only": int((~has_naive & has_harness).sum()),
        "neither": int((~has_naive & ~has_harness).sum()),
        "naive_verified": int(judged.naive_verified.astype(bool).sum()), "harness_verified": int(judged.verified.astype(bool).sum()),
    }
    if len(judged) >= 3 and judged.naive_distance.std() > 0 and judged.distance.std() > 0:
        summary["distance_pearson"] = float(np.corrcoef(judged.naive_distance.astype(float), judged.distance.astype(float))[0, 1])
    disagree = judged[~judged.agree]
    summary["disagreements_by_faces_found"] = {str(int(k)): int(v) for k, v in
                                               disagree.naive_faces_found.value_counts().sort_index().items()}
    summary["judged_by_faces_found"] = {str(int(k)): int(v) for k, v in
                                        judged.naive_faces_found.value_counts().sort_index().items()}
    return summary


# ---- the benchmark -------------------------------------------------------------------------------

def run(cfg: DictConfig) -> dict[str, Path]:
    """Times both ways on the column's cells and writes the report (module docstring)."""
    settings = cfg.perf.naive
    source = Path(str(settings.results_dir or cfg.results_dir)).expanduser().resolve()
    label = str(settings.label or f"{cfg.dataset.name}-{cfg.pool.name}")
    cells, metric = column_cells(cfg, source, str(settings.table))
    present = [cell for cell in cells if cell.pairs.is_file() and cell.faces.is_file()]
    missing = [f"{cell.metric}-{cell.query}" for cell in cells if cell not in present]
    if not present:
        raise BenchError(f"none of the column's cells exists under {source}: run the anonymize stage for "
                         f"{', '.join(missing)} first (python -m bench run +experiment={settings.table})")
    for name in missing:
        log.warning("cell %s not found under %s: measured without it", name, source)
    models = naive_recognizers(cfg, settings.recognizers)
    if not models:
        raise BenchError(f"no deepface recognizer has its weights in {deepface_weights_home()}: "
                         "run `python -m bench weights provision`")
    max_pairs = int(settings.max_pairs) if settings.max_pairs else None
    if str(settings.pairs) not in ("judged", "all"):
        raise BenchError(f"perf.naive.pairs={settings.pairs!r}: judged or all")
    pairs = {cell: pd.read_parquet(cell.pairs) for cell in present}
    boxes = face_boxes(DatasetLayout(source, str(cfg.dataset.name)).faces)

    imports_start = time.perf_counter()
    for module in NAIVE_IMPORTS:  # imported here, so that neither way's timing includes them
        importlib.import_module(module)
    from bench.stages import evaluate
    imports_s = time.perf_counter() - imports_start
    if settings.torch_threads:  # both ways: deepface's and the harness's torch models alike
        import torch

        torch.set_num_threads(int(settings.torch_threads))
    for name in models:  # one read of each weight file: both ways find it in the page cache
        for path in build_recognizer(name, cfg).weights():
            Path(path).read_bytes()

    scratch = Path(tempfile.mkdtemp(prefix="naive_vs_harness_", dir=settings.work_dir or None))
    try:
        mine = scratch_results(source, scratch, present, str(cfg.dataset.name), str(cfg.pool.name))
        from bench import resultsio

        resultsio.forget_file_hashes()  # the in-process weights hash cache: cold too
        harness_cells = {}
        for cell, scratch_cell in zip(present, mine):
            start = time.perf_counter()
            evaluate.run(cell_config(cfg, scratch_cell, scratch, list(models)))
            harness_cells[f"{cell.metric}-{cell.query}"] = time.perf_counter() - start
            log.info("harness: evaluate %s-%s in %.1f s", cell.metric, cell.query, harness_cells[f"{cell.metric}-{cell.query}"])
        outcomes = pd.concat([pd.read_parquet(c.outcomes).assign(cell=f"{c.metric}-{c.query}") for c in mine])
        embedded = faces_embedded(scratch, models)
    finally:
        if not settings.keep_work_dir:
            shutil.rmtree(scratch, ignore_errors=True)
    harness = outcomes[(outcomes.comparison == COMPARISON) & (outcomes.metric == metric)]
    harness = harness[["recognizer", "cell", "source_face", "verified", "distance", "status"]]

    naive_rows, naive_timing = [], {}
    photo_root = dataset_root(cfg.dataset)
    for name, model in models.items():
        for cell in present:
            key = f"{cell.metric}-{cell.query}"
            todo = pairs[cell]
            if str(settings.pairs) == "judged":  # the pairs behind the harness's column entries
                judged = harness[(harness.recognizer == name) & (harness.cell == key) & harness.verified.notna()]
                todo = todo[todo.source_face.astype(str).isin(set(judged.source_face))]
            todo = spread_sample(todo, max_pairs)
            rows, timing = naive_loop(todo, photo_root, cell.root, anonymized_photos(cell), boxes, model, metric, settings)
            naive_rows += [{"recognizer": name, "cell": key, **row} for row in rows]
            naive_timing[f"{name}/{key}"] = timing
            log.info("naive: %s on %s: %d pairs in %.1f s", model, key, timing["pairs"], timing["seconds"])
    naive = pd.DataFrame(naive_rows)

    # Per (pair x recognizer): the naive loop runs once per recognizer, the harness once for all.
    # With pairs=judged both count the column's entries (pairs the harness gave a verdict);
    # with pairs=all every pair, though the harness spends next to nothing on those it cannot judge.
    if str(settings.pairs) == "judged":
        harness_pairs = int(harness.verified.notna().sum())
    else:
        harness_pairs = sum(len(p) for p in pairs.values()) * len(models)
    harness_s = sum(harness_cells.values())
    naive_s = sum(t["seconds"] for t in naive_timing.values())
    naive_pairs = sum(t["pairs"] for t in naive_timing.values())
    overhead = process_overhead_s()
    naive_per = naive_s / naive_pairs if naive_pairs else None
    harness_per = harness_s / harness_pairs if harness_pairs else None
    dvc_per = (harness_s + overhead * len(present)) / harness_pairs if harness_pairs and overhead is not None else None
    # Verdicts are compared on the pairs the naive loop ran (max_pairs of them spread over each cell).
    ran = harness.merge(naive[["recognizer", "cell", "source_face"]], on=["recognizer", "cell", "source_face"])
    verdicts = compare_verdicts(naive, ran)
    per_recognizer = {name: compare_verdicts(naive[naive.recognizer == name], ran[ran.recognizer == name])
                      for name in models}
    # Model calls: DeepFace.verify embeds both crops of every pair; the harness each distinct
    # aligned crop once per recognizer (its cache is content-addressed), targets included. At
    # equal cost per face, naive calls / harness calls bounds the ratio the harness can reach.
    naive_faces = 2 * naive_pairs
    harness_faces = sum(embedded.values())
    calls = {"naive_faces_embedded": naive_faces, "harness_faces_embedded": harness_faces,
             "harness_faces_embedded_per_recognizer": embedded,
             "naive_per_pair": naive_faces / naive_pairs if naive_pairs else None,
             "harness_per_pair": harness_faces / harness_pairs if harness_pairs else None,
             "ratio_bound_at_equal_cost_per_face": 2 * harness_pairs / harness_faces if harness_faces else None}
    report = {
        "label": label, "results_dir": str(source), "model_calls": calls, "table": str(settings.table), "metric": metric,
        "comparison": COMPARISON, "cells": [f"{c.metric}-{c.query}" for c in present], "missing_cells": missing,
        "generator": cfg.choices.generator, "recognizers": models,
        "pairs_per_cell": {f"{c.metric}-{c.query}": int(len(p)) for c, p in pairs.items()},
        "naive": {"seconds": naive_s, "pairs_x_recognizers": naive_pairs, "s_per_pair": naive_per,
                  "decode_s": sum(t["decode_s"] for t in naive_timing.values()),
                  "verify_s": sum(t["verify_s"] for t in naive_timing.values()), "per_run": naive_timing,
                  "settings": {k: OmegaConf.to_container(settings, resolve=True)[k] for k in
                               ("detector_backend", "enforce_detection", "align", "crop_margin", "max_pairs",
                                "pairs", "torch_threads")}},
        "harness": {"seconds": harness_s, "pairs_x_recognizers": harness_pairs, "s_per_pair": harness_per,
                    "per_cell": harness_cells, "process_overhead_s": overhead,
                    "s_per_pair_as_dvc_runs_it": dvc_per},
        "ratio": naive_per / harness_per if naive_per and harness_per else None,
        "ratio_as_dvc_runs_it": naive_per / dvc_per if naive_per and dvc_per else None,
        "imports_s": imports_s,
        "verdicts": verdicts, "verdicts_per_recognizer": per_recognizer,
        "when": dt.datetime.now().astimezone().isoformat(timespec="seconds"), "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "pairs": json.loads(naive.merge(ran, on=["recognizer", "cell", "source_face"], how="left")
                            .to_json(orient="records")),
    }
    written = write_report(benchmarks_dir(cfg.results_dir), label, report)
    print(render_markdown({label: report}))
    return written


def faces_embedded(results_dir: Path, models) -> dict[str, int]:
    """{recognizer: crops it embedded} in a scratch run: the entries of its content-addressed
    embedding cache (bench.embedding_runner), one per distinct aligned crop."""
    root = cache_dir(results_dir, "embeddings")
    return {name: sum(1 for folder in root.glob(f"{name}-*") for _ in folder.glob("*.npz")) for name in models}


def write_report(out_dir: Path, label: str, report: dict) -> dict[str, Path]:
    """Merges `report` into naive_vs_harness.json under `label` (others kept); renders the .md."""
    json_path, md_path = out_dir / "naive_vs_harness.json", out_dir / "naive_vs_harness.md"
    try:
        runs = dict(json.loads(json_path.read_text(encoding="utf-8")).get("runs") or {})
    except (OSError, ValueError):
        runs = {}
    runs[label] = report
    resultsio.write_json({"runs": runs}, json_path)
    resultsio.write_text(render_markdown(runs), md_path)
    return {"json": json_path, "md": md_path}


def _f(value, fmt: str = ".3f") -> str:
    return "" if value is None else format(value, fmt)


def render_markdown(runs: dict) -> str:
    lines = ["# Naive DeepFace.verify loop vs the harness's evaluate stage", "",
             "Seconds per (pair x recognizer) on the Source-vs-Result pairs of a table's column (pairs=judged: "
             "the pairs the harness gives a verdict, i.e. the column's entries). Naive: "
             "DeepFace.verify on crops of the original and anonymized photos at the source face's box, per "
             "recognizer and pair, photos decoded per pair. Harness: bench.stages.evaluate.run on each cell "
             "in this process, empty caches, the same recognizers; 'as dvc runs it' adds one fresh process's "
             "start and imports per cell. Timings on shared cores are noisy.", ""]
    for label, r in runs.items():
        n, h, v = r["naive"], r["harness"], r["verdicts"]
        lines += [f"## {label}", "",
                  f"{r['table']} ({r['metric']}), generator {r['generator']}, cells {', '.join(r['cells'])}"
                  + (f" (missing: {', '.join(r['missing_cells'])})" if r["missing_cells"] else "")
                  + f"; pairs per cell {r['pairs_per_cell']}; recognizers {', '.join(r['recognizers'])}; "
                  f"results_dir `{r['results_dir']}`; {r['cpus']} CPUs, load average {r['load_average']}; {r['when']}."
                  + (f" Settings: {n['settings']}." if n.get("settings") else ""), "",
                  "| way | seconds | pairs x recognizers | s / pair |", "|---|---|---|---|",
                  f"| naive DeepFace.verify loop | {_f(n['seconds'], '.1f')} | {n['pairs_x_recognizers']} | {_f(n['s_per_pair'])} |",
                  f"| harness evaluate (in process) | {_f(h['seconds'], '.1f')} | {h['pairs_x_recognizers']} | {_f(h['s_per_pair'])} |",
                  f"| harness as dvc runs it (+{_f(h['process_overhead_s'], '.1f')} s per process) | "
                  f"{_f(None if h['process_overhead_s'] is None else h['seconds'] + h['process_overhead_s'] * len(r['cells']), '.1f')} | "
                  f"{h['pairs_x_recognizers']} | {_f(h['s_per_pair_as_dvc_runs_it'])} |", "",
                  f"Ratio naive / harness: **{_f(r['ratio'], '.2f')}x** in process, {_f(r['ratio_as_dvc_runs_it'], '.2f')}x as "
                  f"dvc runs it (target >= 10x). Naive: {_f(n['decode_s'], '.1f')} s decoding photos, "
                  f"{_f(n['verify_s'], '.1f')} s in DeepFace.verify. Harness per cell: "
                  + ", ".join(f"{k} {s:.1f} s" for k, s in h["per_cell"].items()) + ".", "",
                  *model_calls_lines(r.get("model_calls")),
                  f"Verdicts: {v['agree']} of {v['both_judged']} agree ({_f(v['agreement'], '.3f')}); verified "
                  f"naive {v['naive_verified']}, harness {v['harness_verified']}; distance Pearson r "
                  f"{_f(v.get('distance_pearson'), '.3f')}; judged by one way only: naive {v['naive_only']}, harness "
                  f"{v['harness_only']}. Disagreements by crops in which deepface found a face (0-2): "
                  f"{v['disagreements_by_faces_found']} (all judged pairs: {v['judged_by_faces_found']}).", ""]
        for name, pv in r["verdicts_per_recognizer"].items():
            lines.append(f"- {name}: {pv['agree']}/{pv['both_judged']} agree, verified naive {pv['naive_verified']} "
                         f"vs harness {pv['harness_verified']}, distance r {_f(pv.get('distance_pearson'), '.3f')}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def model_calls_lines(calls: dict | None) -> list[str]:
    """The model-call count behind the ratio (absent from reports written before it existed)."""
    if not calls:
        return []
    return [f"Faces embedded: naive {calls['naive_faces_embedded']} ({_f(calls['naive_per_pair'], '.2f')} per pair x "
            f"recognizer: both crops of every pair), harness {calls['harness_faces_embedded']} "
            f"({_f(calls['harness_per_pair'], '.2f')}: each distinct source, target and result crop once per "
            f"recognizer, {calls['harness_faces_embedded_per_recognizer']}). At equal model time per face the "
            f"harness can be at most {_f(calls['ratio_bound_at_equal_cost_per_face'], '.2f')}x faster; beyond "
            "that only a cheaper model call per face (batching) helps.", ""]
