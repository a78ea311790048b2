"""Image I/O: every input kind, orientation, alpha, 16-bit, recipes, atomic writes, bad files."""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from inceptionism.errors import ImageError
from inceptionism.io.image import LoadedImage, load_image, read_recipe, save_image


@pytest.fixture
def rgb_array():
    """A smooth colour ramp (survives lossy codecs) with a little texture."""
    y, x = np.mgrid[0:24, 0:36]
    rng = np.random.default_rng(0)
    arr = np.stack([x * 7, y * 10, 255 - x * 5], axis=2) + rng.integers(0, 8, (24, 36, 3))
    return arr.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_reads_common_formats(tmp_path, rgb_array, suffix):
    path = tmp_path / f"in{suffix}"
    Image.fromarray(rgb_array).save(path, **({"quality": 100} if suffix != ".png" else {}))
    img = load_image(path)
    assert img.rgb.shape == (1, 3, 24, 36) and img.alpha is None
    lossless = suffix in (".png", ".tif", ".bmp")
    err = float(
        (img.rgb[0].permute(1, 2, 0) * 255 - torch.from_numpy(rgb_array).float()).abs().mean()
    )
    assert err < (1e-4 if lossless else 6)


def test_exif_orientation_is_applied(tmp_path):
    stored = np.zeros((24, 36, 3), np.uint8)
    stored[:8, :8] = (255, 0, 0)  # red block in the stored top-left corner
    path = tmp_path / "rotated.png"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(path, exif=exif)
    img = load_image(path)
    assert img.size == (24, 36)  # (width, height) swapped
    shown = img.rgb[0].permute(1, 2, 0).numpy()
    assert shown[:8, -8:, 0].min() == 1.0 and shown[:8, -8:, 1].max() == 0.0  # now top-right
    assert shown[:8, :8, 0].max() == 0.0


def test_greyscale_palette_and_alpha(tmp_path, rgb_array):
    grey = tmp_path / "grey.png"
    Image.fromarray(rgb_array[..., 0]).save(grey)
    g = load_image(grey).rgb
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])

    pal = tmp_path / "pal.png"
    p_image = Image.fromarray(rgb_array).convert("P", palette=Image.Palette.ADAPTIVE)
    p_image.save(pal)
    expected = np.asarray(p_image.convert("RGB")) / 255.0
    np.testing.assert_allclose(load_image(pal).rgb[0].permute(1, 2, 0).numpy(), expected, atol=1e-6)

    for mode in ("L", "RGB"):  # tRNS transparency on a non-palette image becomes alpha
        trns = tmp_path / f"trns_{mode}.png"
        im = Image.fromarray(rgb_array).convert(mode)
        key = im.getpixel((0, 0))
        im.save(trns, transparency=key)
        alpha = load_image(trns).alpha
        assert alpha is not None and float(alpha[0, 0]) == 0.0 and float(alpha.max()) == 1.0

    rgba = np.dstack([rgb_array, np.full(rgb_array.shape[:2], 77, np.uint8)])
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    img = load_image(path)
    assert img.alpha is not None and abs(float(img.alpha.mean()) - 77 / 255) < 1e-6
    out = tmp_path / "out.png"
    save_image(img, out)
    back = np.asarray(Image.open(out))
    assert back.shape == (24, 36, 4) and (back[..., 3] == 77).all()
    assert np.array_equal(back[..., :3], rgb_array)


def _png_rgb16(path, arr16):
    """A 48-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = arr16.shape
    raw = b"".join(b"\x00" + arr16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def test_sixteen_bit_inputs(tmp_path):
    ramp = np.linspace(0, 65535, 20 * 30).reshape(20, 30).astype(np.uint16)
    grey = tmp_path / "grey16.png"
    Image.fromarray(ramp).save(grey)
    g = load_image(grey).rgb[0, 0].numpy()
    np.testing.assert_allclose(g, ramp / 65535.0, atol=1e-6)

    rgb16 = np.stack([ramp, ramp[::-1], np.full_like(ramp, 40000)], axis=2)
    path = tmp_path / "rgb16.png"
    _png_rgb16(path, rgb16)
    img = load_image(path).rgb[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(img, rgb16 / 65535.0, atol=1 / 255)  # at least 8-bit precise


def test_downscale_to_max_size(rgb_array):
    img = LoadedImage.from_pil(Image.fromarray(rgb_array))
    assert img.resized_to_fit(18).size == (18, 12)
    assert img.resized_to_fit(100) is img  # never upscales


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp"])
def test_writes_png_jpeg_webp(tmp_path, rgb_array, suffix):
    img = LoadedImage.from_pil(Image.fromarray(rgb_array))
    path = save_image(img, tmp_path / f"o{suffix}")
    with Image.open(path) as im:
        assert (
            im.size == (36, 24)
            and im.format == {".png": "PNG", ".jpg": "JPEG", ".webp": "WEBP"}[suffix]
        )
    assert [p.name for p in tmp_path.iterdir()] == [f"o{suffix}"]  # no temporary left behind
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def test_recipe_round_trips_through_png(tmp_path, rgb_array):
    recipe = {"model": "m", "config": {"steps": 3}, "text": "ünïcode"}
    path = save_image(LoadedImage.from_pil(Image.fromarray(rgb_array)), tmp_path / "r.png", recipe)
    assert read_recipe(path) == recipe
    plain = tmp_path / "plain.png"
    Image.fromarray(rgb_array).save(plain)
    with pytest.raises(ImageError, match="no inceptionism recipe"):
        read_recipe(plain)


def test_failed_write_leaves_nothing(tmp_path, rgb_array, monkeypatch):
    target = tmp_path / "keep.png"
    target.write_bytes(b"old contents")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError):
        save_image(LoadedImage.from_pil(Image.fromarray(rgb_array)), target)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]
    with pytest.raises(ImageError, match="unsupported output type"):
        save_image(LoadedImage.from_pil(Image.fromarray(rgb_array)), tmp_path / "x.gif")


def test_pixel_limit_is_ours_and_named_once(tmp_path, rgb_array):
    path = tmp_path / "small.png"
    Image.fromarray(rgb_array).save(path)
    with pytest.raises(ImageError) as info:
        load_image(path, max_pixels=100)
    assert "36x24 = 864 pixels is over the limit of 100" in str(info.value)
    assert str(info.value).count("limit of") == 1
    assert load_image(path, max_pixels=864).size == (36, 24)


@pytest.mark.parametrize(
    "kind, match",
    [("bomb", "decompression bomb"), ("truncated", "cannot decode"),
     ("text", "not an image"), ("empty", "not an image")],
)  # fmt: skip
def test_bad_inputs_raise_one_clear_error(tmp_path, bad_inputs, kind, match):
    path = bad_inputs[kind]
    with pytest.raises(ImageError, match=match):
        load_image(path)
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.png")
