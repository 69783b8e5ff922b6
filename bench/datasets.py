"""Datasets: a folder of photos (optionally a fixed list of files) with a name. The name is
the folder under <results_dir>/ that every stage writes to."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from bench.errors import DatasetNotFound


@dataclass(frozen=True)
class PhotoRef:
    photo: str  # the photo's id: its path relative to the dataset root, POSIX style
    path: Path


def list_photos(dataset: DictConfig, extensions) -> tuple[list[PhotoRef], list[PhotoRef]]:
    """(photos, skipped) of `dataset`, each sorted by id. `skipped` are files whose
    extension is not an image's (a dataset folder may hold labels or annotations): the caller
    lists them too, so nothing is dropped silently. A listed file that is missing is kept as
    a photo, so that the faces stage reports it as a failure."""
    root = Path(str(dataset.path)).expanduser()
    if not root.is_dir():
        hint = dataset.get("missing_hint") or "set dataset.path to a folder of photos"
        raise DatasetNotFound(f"dataset {dataset.name!r}: folder {root} not found: {hint}")
    if dataset.get("files"):
        return sorted((PhotoRef(str(f), root / str(f)) for f in dataset.files), key=_by_id), []
    allowed = {e.lower() for e in extensions}
    files = [
        PhotoRef(p.relative_to(root).as_posix(), p)
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    photos = [r for r in files if r.path.suffix.lower() in allowed]
    skipped = [r for r in files if r.path.suffix.lower() not in allowed]
    return sorted(photos, key=_by_id), sorted(skipped, key=_by_id)


def _by_id(ref: PhotoRef) -> str:
    return ref.photo
