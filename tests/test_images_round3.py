"""Input images, round 3: pixel data that ends early and float pixels that are not numbers are
refused with one line, in the loader and from the command line."""

from __future__ import annotations

import itertools
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from inceptionism.errors import ImageError
from inceptionism.io.image import load_image
from inceptionism.io.pngdata import png_data_complete, png_data_size


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_of(raw: bytes, width: int, height: int, colour: int = 2, interlaced: bool = False) -> bytes:
    """A well-formed PNG (8-bit samples) whose IDAT inflates to ``raw``: every chunk and CRC
    right, a complete zlib stream, however many rows ``raw`` holds."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, int(interlaced))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


def rows(width: int, height: int, channels: int = 3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return b"".join(
        b"\0" + rng.integers(0, 255, width * channels, dtype=np.uint8).tobytes()
        for _ in range(height)
    )


def test_a_png_whose_data_ends_early_is_refused(tmp_path):
    """10 of 400 rows, then IEND: Pillow decodes it (the rest black) and says nothing."""
    path = tmp_path / "short.png"
    path.write_bytes(png_of(rows(300, 10), 300, 400))
    with Image.open(path) as im:
        im.load()  # what Pillow alone does: no error
    with pytest.raises(ImageError, match="ends before the last row"):
        load_image(path)


def test_the_whole_png_is_accepted(tmp_path):
    path = tmp_path / "full.png"
    path.write_bytes(png_of(rows(30, 20), 30, 20))
    assert load_image(path).size == (30, 20)


@pytest.mark.parametrize("interlaced", [False, True])
@pytest.mark.parametrize("missing", ["a byte", "a row"])
def test_one_missing_byte_or_row_is_enough(tmp_path, interlaced, missing):
    w, h = 13, 11
    need = png_data_size(w, h, 8, 2, interlaced)
    raw = bytes(need)  # filter 0, black: valid whatever the layout
    cut = 1 if missing == "a byte" else 1 + 3 * w  # the last row (of Adam7's last pass): full width
    full, short = tmp_path / "full.png", tmp_path / "short.png"
    full.write_bytes(png_of(raw, w, h, interlaced=interlaced))
    short.write_bytes(png_of(raw[:-cut], w, h, interlaced=interlaced))
    assert png_data_complete(full) and load_image(full).size == (w, h)
    assert not png_data_complete(short)
    with pytest.raises(ImageError, match="ends before|truncated"):
        load_image(short)


def test_adam7_sizes_by_hand():
    # 8x8 RGB: passes of 1x1, 1x1, 2x1, 2x2, 4x2, 4x4, 8x4 pixels, each row a filter byte more
    assert png_data_size(8, 8, 8, 2, True) == 4 + 4 + 7 + 14 + 26 + 52 + 100
    assert png_data_size(1, 1, 8, 2, True) == 4  # the first pass only
    assert png_data_size(8, 8, 1, 0, False) == 8 * 2  # 1-bit grey: one byte of 8 pixels a row
    assert png_data_size(3, 2, 16, 6, False) == 2 * (1 + 3 * 8)


@pytest.mark.parametrize(
    "mode, size",
    list(itertools.product(["1", "L", "LA", "P", "RGB", "RGBA", "I;16"],
                           [(1, 1), (7, 3), (33, 17), (64, 64)])),
)  # fmt: skip
def test_pngs_pillow_writes_count_as_complete(tmp_path, mode, size):
    rng = np.random.default_rng(1)
    w, h = size
    if mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
    else:
        im = Image.fromarray(rng.integers(0, 255, (h, w, 4), dtype=np.uint8), "RGBA").convert(mode)
    im.save(tmp_path / "x.png")
    assert png_data_complete(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png").size == size


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_a_cut_file_is_refused(tmp_path, keep):
    rng = np.random.default_rng(2)
    for suffix in (".png", ".jpg"):
        whole = tmp_path / f"whole{suffix}"
        Image.fromarray(rng.integers(0, 255, (120, 90, 3), dtype=np.uint8)).save(whole)
        data = whole.read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(ImageError):
            load_image(cut)


def test_the_lenient_loading_stays_off():
    import inceptionism.cli.main  # noqa: F401
    import inceptionism.engine.api  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_pixels_that_are_not_numbers_are_refused(tmp_path, bad):
    a = np.full((16, 20), 0.5, np.float32)
    a[3, 4] = bad
    path = tmp_path / "f.tif"
    Image.fromarray(a, "F").save(path)
    with pytest.raises(ImageError, match="NaN or infinite") as e:
        load_image(path)
    assert str(path) in str(e.value)


def test_finite_float_pixels_load_clipped(tmp_path):
    a = np.linspace(-1, 2, 16 * 20, dtype=np.float32).reshape(16, 20)
    Image.fromarray(a, "F").save(tmp_path / "f.tif")
    rgb = load_image(tmp_path / "f.tif").rgb
    assert rgb.shape == (1, 3, 16, 20) and float(rgb.min()) == 0 and float(rgb.max()) == 1


@pytest.mark.parametrize("kind", ["short.png", "nan.tif"])
def test_the_command_line_gives_one_line_and_writes_nothing(tmp_path, kind):
    if kind == "short.png":
        (tmp_path / kind).write_bytes(png_of(rows(64, 5), 64, 48))
    else:
        a = np.full((48, 64), 0.5, np.float32)
        a[10:20, 10:20] = np.nan
        Image.fromarray(a, "F").save(tmp_path / kind)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-m", "inceptionism", "dream", kind, "-o", "out.png", "--model", "lite0",
         "--steps", "1", "--octaves", "1", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("inceptionism: error:") and kind in lines[0], proc.stderr
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == [kind]
