"""Fig. 6: the furthest target of each space, for the faces of one photo.

One row per source face of the photo: its aligned crop, then the target picked for it in
each space (embedding, FID, RMSE, SSIM, PSNR) with `strategy` (furthest by default),
each captioned with its distance. Reads only the query stage's targets tables
(<results_dir>/<dataset>/targets/<pool>/<space>-<strategy>.parquet) and the crops and pool
images they name; a missing table or a face without a target shows "n/a" with the reason.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bench import resultsio
from bench.errors import ImageLoadError
from bench.images import load_photo

SPACES = ("embedding", "fid", "rmse", "ssim", "psnr")


def load_targets(dataset_dir: Path, pool: str, spaces=SPACES, strategy: str = "furthest") -> dict[str, pd.DataFrame | str]:
    """{space: its targets table indexed by source_face, or the reason it is missing}."""
    tables: dict[str, pd.DataFrame | str] = {}
    for space in spaces:
        path = Path(dataset_dir) / "targets" / pool / f"{space}-{strategy}.parquet"
        if not path.is_file():
            tables[space] = f"not run: python -m bench query pool={pool} metric={space} query={strategy}"
            continue
        tables[space] = pd.read_parquet(path).set_index("source_face")
        failures = path.with_name(f"{space}-{strategy}.failures.csv")
        if failures.is_file():
            tables[space].attrs["failures"] = pd.read_csv(failures).set_index("face_id").reason.to_dict()
    return tables


def plot_furthest_per_space(dataset_dir: str | Path, pool: str, photo: str, path: str | Path,
                            spaces=SPACES, strategy: str = "furthest", max_faces: int = 6) -> Path:
    """Draws Fig. 6 for the faces of `photo` (a faces.parquet photo id) to `path`."""
    dataset_dir = Path(dataset_dir)
    faces = pd.read_parquet(dataset_dir / "faces.parquet")
    faces = faces[(faces.photo == photo) & faces.aligned].sort_values("face_index").head(max_faces)
    if faces.empty:
        raise ValueError(f"no aligned face of photo {photo!r} in {dataset_dir / 'faces.parquet'}")
    tables = load_targets(dataset_dir, pool, spaces, strategy)
    fig = Figure(figsize=(1.6 * (len(spaces) + 1), 1.9 * len(faces)), layout="constrained")
    axes = fig.subplots(len(faces), len(spaces) + 1, squeeze=False)
    for row, face in zip(axes, faces.itertuples()):
        _image(row[0], dataset_dir / face.crop, f"source\n{face.face_id}")
        for ax, space in zip(row[1:], spaces):
            table = tables[space]
            if isinstance(table, str):
                _text(ax, table, space)
            elif face.face_id not in table.index:
                _text(ax, table.attrs.get("failures", {}).get(face.face_id, "no target"), space)
            else:
                target = table.loc[face.face_id]
                _image(ax, Path(str(target.target_image)), f"{space} {strategy}\nd={target.distance:.3g}")
    fig.suptitle(f"Fig. 6: {strategy} target per space, {photo} (pool {pool})", fontsize=9)
    path = Path(path)
    with resultsio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png",
                    metadata={"CreationDate": None} if path.suffix.lower() == ".pdf" else {})
    return path


def _image(ax, file: Path, title: str) -> None:
    try:
        ax.imshow(load_photo(file).rgb)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    except ImageLoadError as err:
        _text(ax, str(err), title)


def _text(ax, reason: str, title: str) -> None:
    ax.text(0.5, 0.5, textwrap.fill("n/a: " + reason, 24, max_lines=6),
            ha="center", va="center", fontsize=6, transform=ax.transAxes)
    ax.set_title(title, fontsize=7)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.imshow(np.ones((8, 8, 3)))
