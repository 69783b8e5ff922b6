"""Reading photos robustly: EXIF orientation applied, every pixel format converted to 8-bit
RGB, and every way a file can be unreadable turned into an ImageLoadError with a reason."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from bench.errors import ImageLoadError

# A truncated JPEG must fail, not be padded with grey (PIL's opt-in behaviour).
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb limit


@dataclass(frozen=True)
class Photo:
    """One decoded photo: `rgb` is HxWx3 uint8, already rotated upright."""

    rgb: np.ndarray
    source_mode: str
    exif_rotated: bool

    @property
    def bgr(self) -> np.ndarray:
        return np.ascontiguousarray(self.rgb[:, :, ::-1])


def load_photo(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Decodes `path` into an upright 8-bit RGB photo.

    Raises:
        ImageLoadError: empty, missing, not an image, corrupt, truncated, larger than
            `max_pixels` (a decompression bomb), or holding several frames (a multi-page
            TIFF, an animated GIF, WebP or PNG: faces on frames after the first would never
            be seen, so the file is refused, naming its frame count), with the reason in the
            message.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"not a file: {path}")
    if path.stat().st_size == 0:
        raise ImageLoadError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise ImageLoadError(
                        f"decompression bomb: {width}x{height} = {width * height} pixels > limit {max_pixels}"
                    )
                frames = int(getattr(img, "n_frames", 1) or 1)
                if frames > 1:
                    raise ImageLoadError(
                        f"{frames} frames ({img.format}): only single-frame photos are anonymized; a face on "
                        f"frame 2 or later would be published unseen, so the file is refused")
                img.load()
                mode = img.mode
                upright = ImageOps.exif_transpose(img)
                rotated = upright.size != img.size or _orientation(img) not in (None, 1)
                rgb = to_rgb8(upright)
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError("not an image: no decoder recognises the file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(f"decompression bomb: {err}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageLoadError(f"corrupt or truncated image: {err}") from None
    if rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise ImageLoadError(f"degenerate image size {rgb.shape[1]}x{rgb.shape[0]}")
    return Photo(rgb=rgb, source_mode=mode, exif_rotated=rotated)


def _orientation(img: Image.Image):
    try:
        return img.getexif().get(0x0112)
    except Exception:  # a broken EXIF block is no reason to drop the photo
        return None


def to_rgb8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> HxWx3 uint8 RGB. Alpha is composited on white; 16-bit and float
    images are rescaled (PIL's own convert would clip 16-bit values instead)."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        if mode.startswith("I;16"):
            arr = arr / 257.0
        elif mode == "I":
            arr = arr / 257.0 if arr.max(initial=0) > 255 else arr
        else:  # float: assume [0, 1] if it looks like it, else [0, 255]
            arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
        grey = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        img = img.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(img.convert("RGB"))
