"""Datasets: a folder of photos (optionally a fixed list of files) with a name. The name is
the folder under <results_dir>/ that every stage writes to."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from bench.errors import DatasetNotFound


@dataclass(frozen=True)
class PhotoRef:
    photo: str  # the photo's id: its path relative to the dataset root, POSIX style
    path: Path
    # Why this file is not read as a photo (set on `skipped` refs): the faces stage lists it
    # in failures.csv with this reason, so nothing is dropped silently.
    reason: str = ""


def dataset_root(dataset: DictConfig) -> Path:
    """The folder the dataset's photo ids are relative to (`dataset.path`, `~` expanded):
    every stage that opens a dataset photo asks this, so they all open the same file."""
    return Path(str(dataset.path)).expanduser()


def list_photos(dataset: DictConfig, extensions) -> tuple[list[PhotoRef], list[PhotoRef]]:
    """(photos, skipped) of `dataset`, each sorted by id.

    The folder is walked following symbolic links (a linked sub-folder is part of the
    dataset; a folder reached twice through links is read once). `skipped` are files that
    are not read as photos, each with its reason: an extension that is not an image's (a
    dataset folder may hold labels or annotations), a broken symbolic link, a link loop. A
    file listed in `dataset.files` that is missing is kept as a photo, so that the faces
    stage reports it as a failure. Hidden files and folders (".name") and names that are not
    valid UTF-8 are listed in `skipped` with the reason, never read.

    Raises:
        DatasetNotFound: the folder does not exist (the message says how to add it).
    """
    root = dataset_root(dataset)
    if not root.is_dir():
        hint = dataset.get("missing_hint") or "set dataset.path to a folder of photos"
        raise DatasetNotFound(f"dataset {dataset.name!r}: folder {root} not found: {hint}")
    if dataset.get("files"):
        return sorted((PhotoRef(str(f), root / str(f)) for f in dataset.files), key=_by_id), []
    allowed = {e.lower() for e in extensions}
    photos, skipped = [], []
    for ref in _walk(root):
        if ref.reason:
            skipped.append(ref)
        elif ref.path.suffix.lower() in allowed:
            photos.append(ref)
        else:
            skipped.append(PhotoRef(ref.photo, ref.path,
                                    f"extension {ref.path.suffix or '(none)'!r} is not in faces.image_extensions"))
    return sorted(photos, key=_by_id), sorted(skipped, key=_by_id)


def _walk(root: Path):
    """Every non-hidden file below `root` as a PhotoRef, links followed; broken links and
    link loops come back with `reason` set."""
    seen = {os.path.realpath(root)}
    for folder, dirs, files in os.walk(root, followlinks=True):
        rel = Path(folder).relative_to(root)
        keep = []
        for name in sorted(dirs):
            if name.startswith("."):
                yield PhotoRef((rel / name).as_posix() + "/", Path(folder) / name,
                               "skipped: hidden folder (its name starts with '.'), not read")
                continue
            real = os.path.realpath(os.path.join(folder, name))
            if real in seen:  # a link back to a folder already listed: read it once
                path = Path(folder) / name
                yield PhotoRef((rel / name).as_posix(), path,
                               f"skipped: link to a folder already listed ({real}): a loop or a duplicate")
                continue
            seen.add(real)
            keep.append(name)
        dirs[:] = keep
        for name in sorted(files):
            path = Path(folder) / name
            photo = (rel / name).as_posix()
            if not _utf8(photo):
                yield PhotoRef(photo.encode("utf-8", "surrogateescape").decode("utf-8", "replace"), path,
                               "skipped: the file name is not valid UTF-8; rename the file")
            elif name.startswith("."):
                yield PhotoRef(photo, path, "skipped: hidden file (its name starts with '.')")
            elif path.is_symlink() and not path.exists():
                yield PhotoRef(photo, path, f"skipped: broken symbolic link (or a link loop) to {os.readlink(path)}")
            elif path.is_file():
                yield PhotoRef(photo, path)
            else:
                yield PhotoRef(photo, path, "skipped: not a regular file")


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name (os.fsdecode's surrogates)
        return False
    return True


def _by_id(ref: PhotoRef) -> str:
    return ref.photo
