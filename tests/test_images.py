"""Image input: every pixel format becomes upright 8-bit RGB, every bad file a named error.
The bad-input corpus is generated here; no binary fixtures."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.errors import ImageLoadError
from bench.images import load_photo


def gradient(width=40, height=20) -> np.ndarray:
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[..., 0] = x
    rgb[..., 1] = 255 - x
    rgb[: height // 2, :, 2] = 200
    return rgb


def save(img: Image.Image, path, **kwargs):
    img.save(path, **kwargs)
    return path


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "RGB"])
def test_pixel_modes_become_rgb8(tmp_path, mode):
    img = Image.fromarray(gradient()).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    photo = load_photo(save(img, tmp_path / f"x.{fmt.lower()}", format=fmt))
    assert photo.rgb.dtype == np.uint8 and photo.rgb.shape == (20, 40, 3)
    assert photo.source_mode == mode


def test_rgba_is_composited_on_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)  # fully transparent black
    photo = load_photo(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert (photo.rgb == 255).all()


def test_16_bit_grey_is_rescaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16).repeat(4, axis=0)
    img = Image.fromarray(values)  # uint16 -> mode I;16
    photo = load_photo(save(img, tmp_path / "g16.png"))
    assert photo.source_mode.startswith("I")
    assert photo.rgb[0, :, 0].tolist() == [0, 100, 255]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(gradient(40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    photo = load_photo(save(img, tmp_path / "rot.jpg", exif=exif.tobytes()))
    assert photo.rgb.shape[:2] == (40, 20)
    assert photo.exif_rotated


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(gradient(64, 64)).save(buf, format="JPEG")
    return buf.getvalue()


BAD_FILES = {
    "empty.jpg": (b"", "empty"),
    "text.png": (b"hello, I am not a picture\n" * 10, "not an image"),
    "random.jpg": (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not an image"),
    "truncated.jpg": (jpeg_bytes()[:300], "truncated"),
    "corrupt_header.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, ""),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_files_raise_named_error(tmp_path, name):
    data, words = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ImageLoadError) as err:
        load_photo(path)
    assert words in str(err.value)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = save(Image.new("L", (200, 200)), tmp_path / "bomb.png")
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_photo(path, max_pixels=10_000)


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="not a file"):
        load_photo(tmp_path / "nope.jpg")


@pytest.mark.parametrize("fmt,kwargs", [("TIFF", {}), ("GIF", {"loop": 0}), ("WEBP", {"lossless": True}),
                                        ("PNG", {})])
def test_a_file_of_several_frames_is_refused_naming_its_frame_count(tmp_path, fmt, kwargs):
    """A face on frame 2 or later would be published unseen: the file is refused, never read
    at its first frame only."""
    frames = [Image.fromarray(gradient()), Image.fromarray(255 - gradient()), Image.fromarray(gradient() // 2)]
    path = tmp_path / f"multi.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], **kwargs)
    with pytest.raises(ImageLoadError, match="3 frames"):
        load_photo(path)
    single = save(Image.fromarray(gradient()), tmp_path / f"single.{fmt.lower()}", format=fmt)
    assert load_photo(single).rgb.shape == (20, 40, 3)
