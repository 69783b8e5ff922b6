"""Identity labels: a folder of photos whose labels CSV (columns path,identity; conf/config.yaml
`identities`, or a dataset's `labels`) says who each photo shows.

Shared by every stage that needs to know who is who: the genuine baseline, the attacks, and
the query stage's per-person draw. One face per photo is the labelled person: the largest
aligned face the detector found in it (a stranger in the background is smaller).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf, open_dict

from bench.errors import BenchError, DatasetNotFound
from bench.userpaths import shown_path

LABEL_COLUMNS = ("path", "identity")


def missing_identities(folder: Path, labels_path: Path) -> str | None:
    """The n/a status when the identities set is absent (no folder, or no labels file in it);
    None when its labels file is there. The folder is written by bench.userpaths.shown_path
    ("$BENCH_SHARED/data/identities"), as every n/a reason names a path."""
    if labels_path.is_file():
        return None
    if folder.is_dir():
        return (f"n/a: identities set not found at {shown_path(folder)} (it has no {labels_path.name} "
                "with columns path,identity)")
    return f"n/a: identities set not found at {shown_path(folder)} (set identities.path, or BENCH_SHARED for ../shared)"


def read_labels(path: Path) -> pd.DataFrame:
    """labels.csv (path,identity), sorted by path; a clear error when it is missing or malformed."""
    if not path.is_file():
        raise DatasetNotFound(f"identity labels {path} not found: set identities.path to a folder "
                              "with a labels.csv whose columns are path,identity")
    labels = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in LABEL_COLUMNS if c not in labels.columns]
    if missing:
        raise BenchError(f"{path} lacks the column(s) {', '.join(missing)}; it needs path,identity")
    labels = labels[list(LABEL_COLUMNS)]
    if labels.path.duplicated().any():
        raise BenchError(f"{path} lists a photo twice: {labels.path[labels.path.duplicated()].iloc[0]}")
    return labels.sort_values("path", kind="stable").reset_index(drop=True)


def dataset_labels_path(dataset: DictConfig) -> Path | None:
    """<dataset.path>/<dataset.labels> for a dataset with identity labels, else None."""
    name = dataset.get("labels")
    if not name:
        return None
    return Path(str(dataset.path)).expanduser() / str(name)


def one_face_per_photo(labels: pd.DataFrame, faces: pd.DataFrame) -> tuple[pd.DataFrame, list[dict]]:
    """(labels with the chosen face_id per photo, "" when none; failure rows for those).

    The chosen face is the photo's largest aligned face (ties: the lower face_index)."""
    aligned = faces[faces.aligned].sort_values(["photo", "face_size", "face_index"],
                                               ascending=[True, False, True], kind="stable")
    largest = aligned.drop_duplicates("photo").set_index("photo").face_id
    chosen = labels.assign(face_id=labels.path.map(largest).fillna("").astype(str))
    failures = [
        {"photo": p, "face_id": "", "stage": "baseline", "reason": "no aligned face found: excluded from every pair"}
        for p in chosen.path[chosen.face_id == ""]
    ]
    return chosen, failures


def face_identities(labels: pd.DataFrame, faces: pd.DataFrame) -> dict[str, str]:
    """{face_id: identity} for the labelled face of every labelled photo (one_face_per_photo);
    the other faces (strangers in the background, unlabelled photos) are absent."""
    chosen, _ = one_face_per_photo(labels, faces)
    chosen = chosen[chosen.face_id != ""]
    return dict(zip(chosen.face_id.astype(str), chosen.identity.astype(str)))


def identities_config(cfg: DictConfig, labels: pd.DataFrame) -> DictConfig:
    """`cfg` with the identities folder as its dataset (a folder dataset restricted to the
    labelled photos), so that the faces and embed stages' work (bench.inventory.build,
    bench.embedding_runner.embed_dataset) runs on it unchanged."""
    derived = cfg.copy()
    with open_dict(derived):
        derived.dataset = OmegaConf.create({
            "name": str(cfg.identities.name), "path": str(cfg.identities.path), "files": labels.path.tolist(),
            "detect_max_side": cfg.identities.detect_max_side,
        })
        derived.choices.dataset = "folder"
    return derived
