"""The leak check's contact sheet (bench/stages/leaks.py writes it as the cell's leaks.png):
every anonymized photo of a cell, a red box on each face the leak table marks as leaking,
a green one on the others, and an orange label on each face the closed loop swapped more
than once or covered (bench.guard)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from bench import resultsio
from bench.facetable import slug
from bench.guard import STOP_FALLBACK
from bench.layout import Cell, DatasetLayout
from bench.progress import progress

RED, GREEN, GRAY, ORANGE = (230, 20, 20), (20, 190, 60), (200, 200, 200), (255, 140, 0)


def retried_faces(cell: Cell) -> dict[str, list[tuple[tuple[float, ...], str]]]:
    """{photo: [(source box, label)]} of the faces the closed loop swapped more than once or
    covered with its fallback (pairs.parquet `tries`, `guard_stop`; bench.guard)."""
    pairs = pd.read_parquet(cell.pairs) if cell.pairs.is_file() else pd.DataFrame()
    if pairs.empty or "tries" not in pairs:
        return {}
    inventory = pd.read_parquet(DatasetLayout(cell.results_dir, cell.dataset).faces).set_index("face_id")
    out: dict = {}
    for pair in pairs.itertuples():
        tries = int(pair.tries) if pd.notna(pair.tries) else 0
        if (tries <= 1 and pair.guard_stop != STOP_FALLBACK) or pair.source_face not in inventory.index:
            continue
        face = inventory.loc[pair.source_face]
        label = "guard fallback" if pair.guard_stop == STOP_FALLBACK else f"try {tries}"
        out.setdefault(str(pair.photo), []).append(((face.x1, face.y1, face.x2, face.y2), label))
    return out


def contact_sheet(cell: Cell, photos: list[str], table: pd.DataFrame, tile: int, note: str = "",
                  retried: dict | None = None) -> Path:
    """Every anonymized photo scaled to `tile` px wide, a red box on each leaking face and a
    green one on the others, an orange label over each face the closed loop swapped more than
    once ("try N") or covered ("guard fallback"); a gray tile for a readable photo with no
    output. `note` (e.g. why the cell has no photos) heads the sheet."""
    retried = retried or {}
    leaks = table.groupby("face").leak.apply(lambda s: bool(s.fillna(False).any())).to_dict()
    boxes = table[table.face != ""].drop_duplicates("face")
    font = label_font(16)
    tiles = []
    for photo in progress(photos, "leaks: contact sheet", unit="photo"):
        path = cell.photos / f"{slug(photo)}.png"
        if not path.is_file():
            img = Image.new("RGB", (tile, tile * 3 // 4), GRAY)
            ImageDraw.Draw(img).text((10, 30), "NO ANONYMIZED PHOTO\n(missing output)", fill=RED, font=label_font(28))
            tiles.append((photo, img, None))
            continue
        with Image.open(path) as src:
            img = src.convert("RGB")
        scale = tile / img.width
        img = img.resize((tile, max(1, round(img.height * scale))), Image.Resampling.LANCZOS)
        draw = ImageDraw.Draw(img)
        mine = boxes[boxes.photo == photo]
        for face in mine.itertuples():
            x1, y1, x2, y2 = (v * scale for v in (face.x1, face.y1, face.x2, face.y2))
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2  # a tiny face still gets a visible box
            half_w, half_h = max((x2 - x1) / 2, 4), max((y2 - y1) / 2, 4)
            color = RED if leaks.get(face.face) else GREEN
            draw.rectangle([cx - half_w, cy - half_h, cx + half_w, cy + half_h], outline=color,
                           width=3 if color == RED else 2)
        for box, text in retried.get(photo, []):
            x1, y1, x2, y2 = (v * scale for v in box)
            draw.rectangle([x1, y1, x2, y2], outline=ORANGE, width=1)
            draw.text((x1, max(0, y1 - 14)), text, fill=ORANGE, font=label_font(12))
        tiles.append((photo, img, sum(bool(leaks.get(f)) for f in mine.face)))
    label_h, cols = 22, max(1, min(3, len(tiles)))
    row_h = [max((t[1].height for t in tiles[r:r + cols]), default=0) + label_h for r in range(0, len(tiles), cols)]
    top = label_h if note else 0
    sheet = Image.new("RGB", (cols * tile, max(sum(row_h) + top, label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if note:
        draw.text((4, 2), note, fill=(0, 0, 0), font=font)
    y = top
    for r, start in enumerate(range(0, len(tiles), cols)):
        for c, (photo, img, n) in enumerate(tiles[start:start + cols]):
            label = f"{photo}: missing output" if n is None else f"{photo}: {n} leak(s)" if n else photo
            draw.text((c * tile + 4, y + 2), label, fill=RED if n is None or n else (0, 0, 0), font=font)
            sheet.paste(img, (c * tile, y + label_h))
        y += row_h[r]
    return resultsio.write_png(np.asarray(sheet), cell.leak_sheet)


def label_font(size: int):
    """PIL's bundled font at `size` px (Pillow >= 10.1), else its fixed small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):
        return ImageFont.load_default()
