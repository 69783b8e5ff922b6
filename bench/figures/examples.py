"""Figures of example faces: Fig. 3/7 (source, target and result per query strategy) and
Fig. 4's sample grid, the contact sheet (source, target, then one result per generator),
for a person to look at. Every tile is a 112x112 ArcFace-aligned crop: results are cut from
the anonymized photo at the SOURCE face's landmarks, so faces that the detector did not
find again (blur, pixelate) are shown too."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from PIL import Image  # noqa: E402

from bench.align import align_face  # noqa: E402
from bench.layout import Cell  # noqa: E402
from bench.facetable import slug  # noqa: E402

BLANK = np.full((112, 112, 3), 235, np.uint8)


def source_crop(cell: Cell, face) -> np.ndarray:
    return read_rgb(cell.dataset_dir / face.crop) if face.aligned else BLANK


def target_crop(pool_root: Path, pool_faces: pd.DataFrame, target: str) -> np.ndarray:
    """The target pool face's aligned crop (manifold stage), or a blank tile."""
    if not target or target not in pool_faces.index:
        return BLANK
    crop = pool_faces.loc[target, "crop"]
    return read_rgb(pool_root / crop) if crop else BLANK


def result_crop(cell: Cell, face) -> np.ndarray:
    """The anonymized photo cut at the source face's landmarks (blank if not written)."""
    path = cell.photos / f"{slug(face.photo)}.png"
    if not path.is_file():
        return BLANK
    return align_face(read_rgb(path), np.asarray(face.landmarks, np.float32).reshape(5, 2), size=112)


def read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def contact_sheet(base: Cell, generators: list[str], faces: pd.DataFrame, pool_root: Path,
                  pool_faces: pd.DataFrame, path: Path, max_faces: int = 12) -> Path:
    """Rows: faces; columns: source, target, one result per generator (Fig. 4's grid)."""
    shown = faces[faces.aligned].head(max_faces)
    targets = read_targets(base)
    columns = ["source", "target"] + list(generators)
    rows = []
    for face in shown.itertuples():
        tiles = [source_crop(base, face), target_crop(pool_root, pool_faces, targets.get(face.face_id, ""))]
        tiles += [result_crop(replace(base, generator=g), face) for g in generators]
        rows.append(tiles)
    title = f"{base.dataset}: source | target ({base.metric}, {base.query}) | results"
    return tile_figure(rows, columns, [f.face_id for f in shown.itertuples()], title, path)


def strategy_sheet(base: Cell, strategies: list[str], faces: pd.DataFrame, pool_root: Path,
                   pool_faces: pd.DataFrame, path: Path, max_faces: int = 6) -> Path:
    """Fig. 3/7: for each face, source then (target, result) for each query strategy."""
    shown = faces[faces.aligned].head(max_faces)
    columns, rows = ["source"], []
    for strategy in strategies:
        columns += [f"{strategy}\ntarget", f"{strategy}\nresult"]
    cells = {s: replace(base, query=s) for s in strategies}
    targets = {s: read_targets(c) for s, c in cells.items()}
    for face in shown.itertuples():
        tiles = [source_crop(base, face)]
        for strategy, cell in cells.items():
            tiles += [target_crop(pool_root, pool_faces, targets[strategy].get(face.face_id, "")), result_crop(cell, face)]
        rows.append(tiles)
    title = f"{base.dataset}: {base.generator}, targets queried in {base.metric} space"
    return tile_figure(rows, columns, [f.face_id for f in shown.itertuples()], title, path)


def read_targets(cell: Cell) -> dict[str, str]:
    if not cell.pairs.is_file():
        return {}
    pairs = pd.read_parquet(cell.pairs)
    return dict(zip(pairs.source_face.astype(str), pairs.target.astype(str)))


def tile_figure(rows, columns, row_labels, title: str, path: Path) -> Path:
    n_rows, n_cols = max(len(rows), 1), len(columns)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.5 * n_cols, 1.6 * n_rows + 0.6), squeeze=False)
    for r in range(n_rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.imshow(rows[r][c] if r < len(rows) else BLANK)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c == 0 and r < len(row_labels):
                ax.set_ylabel(row_labels[r], fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    from bench import resultsio

    with resultsio.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    return path
