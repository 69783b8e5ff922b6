"""Stage `baseline`: how well each recognizer verifies real people before any anonymization.

On an identity-labelled folder (conf/config.yaml `identities`; default
../shared/data/identities, 61 photos of 13 people) every pair of photos is compared:
genuine pairs (same identity) and impostor pairs (different identities). Per recognizer and
distance metric the table gives the accuracy, TAR and FAR at the recognizer's default
threshold (deepface's rule: same person when distance <= threshold), the best-threshold
accuracy by k-fold cross-validation (insightface's protocol), ROC AUC and TAR at a fixed FAR.

One face per photo: the largest aligned face the detector finds. Photos without one are
failure rows and take no part in any pair; the table says how many pairs were evaluated.

Without the identities set (no folder at identities.path, or no labels file in it: a machine
without ../shared) the stage still succeeds, so that `dvc repro` runs there: every row says
"n/a: identities set not found at <path>", the ROC CSV has its header only and the figure says
why it is empty. No number is made up.

Reads:  <identities.path>/<identities.labels> (columns path,identity) and the photos it lists;
        lists and embeds their faces as dataset <identities.name>, with the faces and embed
        stages' work (bench.inventory.build, bench.embedding_runner.embed_dataset).
Writes (bench.layout.BaselineOutputs, dvc.yaml stage `baseline`):
        <results_dir>/<identities.name>/                       the faces and embed stages' files
        <results_dir>/tables/baseline.csv, baseline.md        the table
        <results_dir>/tables/baseline.provenance.json          config, weights, data, seed, versions
        <results_dir>/tables/baseline.failures.csv             photos left out and why
        <results_dir>/tables/baseline_roc.csv                  ROC points: recognizer, metric, fpr, tpr
        <results_dir>/figures/baseline_roc.png                 ROC curves
"""
from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from bench import inventory, resultsio, verification
from bench.embedding_runner import embed_dataset
from bench.embeddings import read_embeddings
# Labels, the identities set as a dataset and the one-face-per-photo rule live in a library
# module (the attack stage, the calibration and the query stage's per-person draw use them
# too); re-exported here, this stage's public API.
from bench.identities import (  # noqa: F401
    LABEL_COLUMNS, identities_config, missing_identities, one_face_per_photo, read_labels,
)
from bench.layout import BaselineOutputs
from bench.provenance import record
from bench.recognizers import build_recognizer, selected_recognizers

log = logging.getLogger(__name__)

COUNT_COLUMNS = ("photos", "pairs", "genuine_pairs", "impostor_pairs")
OK = "ok"
ROC_COLUMNS = ("recognizer", "metric", "fpr", "tpr")
# The ROC CSV's false positive rates, the same for every curve (at most 100 points each, so
# `dvc plots` stays light whatever the number of pairs): 51 even steps over [0, 1] and 49 log
# steps over [1e-3, 1], where verification operates.
ROC_FPRS = np.unique(np.round(np.concatenate([np.linspace(0.0, 1.0, 51), np.logspace(-3, 0, 49)]), 6))


def outputs(cfg: DictConfig) -> BaselineOutputs:
    return BaselineOutputs.from_config(cfg)


def run(cfg: DictConfig) -> BaselineOutputs:
    """Lists and embeds the identities folder's faces (as the faces and embed stages do), then
    writes the baseline table; without the identities set, writes n/a rows (see the module
    docstring)."""
    out = outputs(cfg)
    folder = Path(str(cfg.identities.path)).expanduser()
    labels_path = folder / str(cfg.identities.labels)
    missing = missing_identities(folder, labels_path)
    if missing is not None:
        return write_unavailable(cfg, out, missing, labels_path)
    labels = read_labels(labels_path)
    dataset_cfg = identities_config(cfg, labels)
    faces_out = inventory.build(dataset_cfg)  # the faces stage's work, on the identities set
    chosen, failures = one_face_per_photo(labels, pd.read_parquet(faces_out.faces))
    embed_dataset(dataset_cfg)  # the embed stage's
    embeddings_dir = faces_out.embeddings

    rows, curves = [], {}
    for name in selected_recognizers(cfg):
        recognizer = build_recognizer(name, cfg)
        embeddings = read_embeddings(embeddings_dir, name)
        recognizer_rows, recognizer_curves, recognizer_failures = evaluate_recognizer(
            recognizer, embeddings, chosen, cfg.baseline)
        rows += recognizer_rows
        curves.update(recognizer_curves)
        failures += recognizer_failures
    table = pd.DataFrame(rows, columns=table_columns(cfg.baseline)).astype({c: "Int64" for c in COUNT_COLUMNS})

    resultsio.write_csv(table, out.csv)
    markdown = to_markdown(table, cfg, describe_data(cfg, labels, chosen))
    resultsio.write_text(markdown, out.markdown)
    resultsio.write_failures(failures, out.failures)
    resultsio.write_csv(roc_table(curves), out.roc_csv)
    plot_roc(curves, cfg.baseline, out.roc)
    resultsio.write_json(record(
        cfg, "baseline",
        data_manifest={"labels": str(labels_path), "labels_sha256": resultsio.sha256_file(labels_path),
                       "photos": str(faces_out.photos), "photos_sha256": resultsio.sha256_file(faces_out.photos)},
        weights=embeddings_provenance(embeddings_dir),
        protocol={"folds": int(cfg.baseline.folds), "far": float(cfg.baseline.far), "seed": int(cfg.baseline.seed),
                  "one_face_per_photo": "largest aligned face"},
        counts={"photos": len(labels), "photos_with_face": int(chosen.face_id.ne("").sum()),
                "failures": len(failures)},
    ), out.provenance)
    log.info("baseline: %d photos, %d with a face -> %s", len(labels), int(chosen.face_id.ne("").sum()), out.csv)
    print(markdown)  # a benchmark prints its table
    return out


def write_unavailable(cfg: DictConfig, out: BaselineOutputs, reason: str, labels_path: Path) -> BaselineOutputs:
    """Every file of the stage, saying `reason` instead of a number: one n/a row per
    recognizer and metric (its default threshold and where it comes from, which need no data),
    no failure rows, the ROC CSV's header alone and a figure with the reason."""
    rows = []
    for name in selected_recognizers(cfg):
        recognizer = build_recognizer(name, cfg)  # no weights are loaded: a config, not a model
        rows += [{"recognizer": name, "metric": m, "status": reason,
                  "threshold": verification.threshold_of(recognizer, m)[0],
                  "threshold_source": threshold_source(recognizer, m)} for m in cfg.baseline.metrics]
    table = pd.DataFrame(rows, columns=table_columns(cfg.baseline)).astype({c: "Int64" for c in COUNT_COLUMNS})
    resultsio.write_csv(table, out.csv)
    markdown = to_markdown(table, cfg, f"Data: none ({reason}); no pair was compared.")
    resultsio.write_text(markdown, out.markdown)
    resultsio.write_failures([], out.failures)
    resultsio.write_csv(roc_table({}), out.roc_csv)
    plot_roc({}, cfg.baseline, out.roc, empty=reason)
    # dvc.yaml declares the identities set's results folder: empty, as nothing was detected.
    out.dataset.root.mkdir(parents=True, exist_ok=True)
    resultsio.write_json(record(
        cfg, "baseline", data_manifest={"labels": str(labels_path), "status": reason},
        counts={"photos": 0, "photos_with_face": 0, "failures": 0},
    ), out.provenance)
    log.warning("baseline: %s; wrote n/a rows -> %s", reason, out.csv)
    print(markdown)  # a benchmark prints its table, n/a rows included
    return out


def all_pairs(identities: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, same) over every unordered pair i < j of the rows."""
    i, j = np.triu_indices(len(identities), k=1)
    values = identities.to_numpy()
    return i, j, values[i] == values[j]


def table_columns(opts: DictConfig) -> list[str]:
    folds = int(opts.folds)
    return [
        "recognizer", "metric", "status", "threshold", "threshold_source", *COUNT_COLUMNS,
        "accuracy", "tar", "far", f"cv{folds}_accuracy", f"cv{folds}_accuracy_std", f"cv{folds}_threshold",
        "roc_auc", far_column(opts), "far_achieved",
    ]


def far_column(opts: DictConfig) -> str:
    return f"tar_at_far_{float(opts.far):g}"


def threshold_source(recognizer, metric: str) -> str:
    """Where the default threshold comes from (deepface's table, a calibration, an override)."""
    if metric in getattr(recognizer, "threshold_overrides", {}):
        return "config override"
    return str(getattr(recognizer, "threshold_source", "") or "")


def evaluate_recognizer(recognizer, embeddings, chosen: pd.DataFrame, opts: DictConfig):
    """(table rows, ROC curves, failure rows) for one recognizer, one row per metric."""
    name, metrics = recognizer.name, list(opts.metrics)
    unavailable = shared_reason(embeddings, chosen)
    if unavailable is not None:
        rows = [{"recognizer": name, "metric": m, "status": unavailable,
                 "threshold": verification.threshold_of(recognizer, m)[0], "threshold_source": threshold_source(recognizer, m)}
                for m in metrics]
        return rows, {}, []
    faces, failures = usable_faces(name, embeddings, chosen)
    i, j, same = all_pairs(faces.identity)
    rows, curves = [], {}
    for metric in metrics:
        threshold, why_not = verification.threshold_of(recognizer, metric)
        row = {"recognizer": name, "metric": metric, "status": OK, "threshold": threshold,
               "threshold_source": threshold_source(recognizer, metric), "photos": len(faces),
               "pairs": len(same), "genuine_pairs": int(same.sum()), "impostor_pairs": int((~same).sum())}
        if not verification.has_both_classes(same):
            rows.append({**row, "status": "n/a: needs both genuine and impostor pairs"})
            continue
        matrix, left, right = embeddings.matrix, faces.row.to_numpy()[i], faces.row.to_numpy()[j]
        d = verification.pair_distances(matrix[left], matrix[right], metric)
        row.update(threshold_free_metrics(d, same, opts))
        if why_not is None:
            at_default = verification.rates_at(d, same, threshold)
            row.update(accuracy=at_default.accuracy, tar=at_default.tar, far=at_default.far)
        else:  # a stand-in not calibrated yet: only the threshold-free columns have numbers
            row["status"] = why_not
        if "cv_error" in row:
            why = row.pop("cv_error")
            row["status"] = why if row["status"] == OK else f"{row['status']}; {why}"
        rows.append({k: round6(v) for k, v in row.items()})
        far, tar, _ = verification.roc(d, same)
        at_default = verification.rates_at(d, same, threshold) if why_not is None else None
        curves[(name, metric)] = (far, tar, at_default, row["roc_auc"])
    return rows, curves, failures


def shared_reason(embeddings, chosen: pd.DataFrame) -> str | None:
    """The one reason why none of the chosen faces has an embedding (e.g. the recognizer's
    weights are missing), so that its rows say so rather than "needs both genuine and impostor
    pairs"; None when some chosen face has one or the reasons differ. read_embeddings finds
    such a reason only when every face of the file shares it, and faces that could not be
    aligned (never chosen) have a reason of their own."""
    if embeddings.unavailable is not None:
        return embeddings.unavailable
    index = embeddings.index()
    reasons = {embeddings.status[index[f]] if f in index else "n/a: not embedded" for f in chosen.face_id if f}
    return reasons.pop() if len(reasons) == 1 and OK not in reasons else None


def usable_faces(name: str, embeddings, chosen: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """(path, identity, row in embeddings.matrix) of the chosen faces this recognizer embedded,
    and failure rows for the others."""
    index = embeddings.index()
    usable, failures = [], []
    for row in chosen[chosen.face_id != ""].itertuples():
        k = index.get(row.face_id)
        status = embeddings.status[k] if k is not None else "n/a: not embedded"
        if status == OK:
            usable.append((row.path, row.identity, k))
        else:
            failures.append({"photo": row.path, "face_id": row.face_id, "stage": "baseline",
                             "reason": f"{name}: {status}: excluded from this recognizer's pairs"})
    return pd.DataFrame(usable, columns=["path", "identity", "row"]), failures


def threshold_free_metrics(d: np.ndarray, same: np.ndarray, opts: DictConfig) -> dict:
    """k-fold best-threshold accuracy, ROC AUC and TAR at the FAR target."""
    folds = int(opts.folds)
    at_far = verification.tar_at_far(d, same, float(opts.far))
    values = {"roc_auc": verification.roc_auc(d, same), far_column(opts): at_far.tar, "far_achieved": at_far.far}
    try:
        cv = verification.cross_validated_accuracy(d, same, folds=folds, seed=int(opts.seed))
    except ValueError as err:
        values["cv_error"] = f"n/a: cv{folds}: {err}"
    else:
        values.update({f"cv{folds}_accuracy": cv.accuracy, f"cv{folds}_accuracy_std": cv.accuracy_std,
                       f"cv{folds}_threshold": cv.threshold})
    return values


def round6(value):
    """Floats rounded for the table (the same seed gives the same bytes); others unchanged."""
    return round(float(value), 6) if isinstance(value, (float, np.floating)) else value


def describe_data(cfg: DictConfig, labels: pd.DataFrame, chosen: pd.DataFrame) -> str:
    """The table's data line: photos, people, faces found."""
    with_face = int(chosen.face_id.ne("").sum())
    return (f"Data: {len(labels)} photos of {labels.identity.nunique()} people "
            f"({cfg.identities.path}/{cfg.identities.labels}); {with_face} with a face found by "
            f"{cfg.choices.detector} (the largest face per photo); every pair of those photos is compared.")


def to_markdown(table: pd.DataFrame, cfg: DictConfig, data: str) -> str:
    opts = cfg.baseline
    folds, far = int(opts.folds), far_column(opts)
    shown = table.copy()
    for column in shown.columns:
        if column in (*COUNT_COLUMNS, "threshold"):
            continue
        shown[column] = shown[column].map(lambda v: f"{v:.4f}" if isinstance(v, float) and not np.isnan(v) else v)
    shown = shown.astype(object).where(shown.notna(), "")
    lines = [
        "**Genuine baseline: verification of real people before anonymization**", "",
        shown.to_markdown(index=False, tablefmt="pipe", disable_numparse=True), "",
        data,
        "accuracy, tar, far: at the recognizer's default threshold (same person when distance <= threshold). "
        f"cv{folds}_*: best-threshold accuracy by {folds}-fold cross-validation (threshold chosen on "
        f"the training folds, mean and std over the held-out folds; seed {int(opts.seed)}). "
        f"{far}: highest TAR at FAR <= {float(opts.far):g}, far_achieved its FAR.",
        "A row whose status is n/a has numbers only where the reason allows: without a default "
        "threshold (a stand-in not calibrated yet) only the threshold-free columns are filled.",
    ]
    calibrated = table.threshold_source.astype(str).str.startswith("calibration") & table.accuracy.notna()
    if calibrated.any():
        lines.append("threshold_source calibration:*: the threshold was fitted on these same pairs, "
                     "so accuracy, tar and far at it are in-sample (optimistic); cv* is the held-out estimate.")
    return "\n".join(lines) + "\n"


def embeddings_provenance(folder: Path) -> dict:
    """Per recognizer, what the embed stage recorded about it in <folder>/provenance.json:
    its weights (path, sha256), status, thresholds and embedding size."""
    path = folder / "provenance.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("recognizers", {})
    except (OSError, ValueError) as err:
        return {"error": f"{path} unreadable: {err}"}
    keep = ("status", "weights", "thresholds", "dim", "embedded", "faces")
    return {name: {k: entry[k] for k in keep if k in entry} for name, entry in recorded.items()}


def tpr_at(far: np.ndarray, tar: np.ndarray, fprs: np.ndarray) -> np.ndarray:
    """At each of `fprs`, the highest TAR of any ROC point whose FAR is at most it: the empirical
    ROC's step function read at those rates, no interpolation (`far` non-decreasing, from 0)."""
    best = np.maximum.accumulate(np.asarray(tar, dtype=np.float64))
    # 1e-12: a FAR of k/n equal to a grid rate must not miss it by a rounding error
    k = np.searchsorted(np.asarray(far, dtype=np.float64), np.asarray(fprs) + 1e-12, side="right") - 1
    return best[k]


def roc_table(curves: dict) -> pd.DataFrame:
    """The ROC CSV: per curve (recognizer, metric, in the table's order) its TAR at ROC_FPRS,
    long format, rounded like the table (the same seed gives the same bytes)."""
    parts = [pd.DataFrame({"recognizer": name, "metric": metric, "fpr": ROC_FPRS,
                           "tpr": np.round(tpr_at(far, tar, ROC_FPRS), 6)})
             for (name, metric), (far, tar, _, _) in curves.items()]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(ROC_COLUMNS))


def plot_roc(curves: dict, opts: DictConfig, path: Path, empty: str = "no recognizer available") -> None:
    """One panel per metric, one ROC curve per recognizer, its default threshold marked;
    a panel without curves says `empty`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(opts.metrics)
    # Zoom the TAR axis to where the curves are (every curve at FAR <= 1e-3 is above it).
    floors = [tar[far <= 1e-3].max() for far, tar, _, _ in curves.values()]
    bottom = max(0.0, np.floor(10 * min(floors)) / 10 - 0.1) if floors else 0.0
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for (name, m), (far, tar, at_default, auc) in curves.items():
            if m != metric:
                continue
            (line,) = ax.plot(far, tar, label=f"{name} (AUC {auc:.4f})", linewidth=1.2, drawstyle="steps-post")
            if at_default is not None:
                ax.plot([at_default.far], [at_default.tar], "o", color=line.get_color(), markersize=4)
        # Verification lives at small FARs: log-like axis, linear below 1e-3 so FAR = 0 shows.
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.axvline(float(opts.far), color="grey", linestyle=":", linewidth=0.8)
        ax.set(title=metric, xlabel="FAR (impostor pairs accepted)", ylabel="TAR (genuine pairs accepted)",
               xlim=(0, 1), ylim=(bottom, 1.005))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.text(0.5, 0.5, textwrap.fill(empty, 36), ha="center", va="center", fontsize=8, transform=ax.transAxes)
    fig.suptitle(f"Genuine baseline ROC (dots: default thresholds; dotted: FAR = {float(opts.far):g})")
    fig.tight_layout()
    with resultsio.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
