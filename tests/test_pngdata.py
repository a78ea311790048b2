"""The one PNG chunk walk (io/pngdata.png_chunks) and its two readers: the recipe reader and
the check that the image data holds every row."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from inceptionism.errors import ImageError
from inceptionism.io.image import MAX_RECIPE_BYTES, RECIPE_KEY, read_recipe_text
from inceptionism.io.pngdata import PNG_SIGNATURE, png_chunks, png_data_complete


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def itxt(key: str, text: bytes) -> bytes:
    return chunk(b"iTXt", key.encode() + b"\0\0\0\0\0" + text)


def png_bytes(tmp_path: Path, text: dict[str, str] | None = None) -> bytes:
    info = PngInfo()
    for key, value in (text or {}).items():
        info.add_itxt(key, value)
    path = tmp_path / "p.png"
    Image.fromarray(np.full((6, 5, 3), 7, np.uint8)).save(path, pnginfo=info)
    return path.read_bytes()


def test_chunks_are_walked_in_order_whatever_the_caller_reads():
    body = chunk(b"IHDR", bytes(13)) + chunk(b"tEXt", b"a\0bc") + chunk(b"IDAT", b"xyz")
    f = io.BytesIO(PNG_SIGNATURE + body + chunk(b"IEND", b"") + chunk(b"tEXt", b"after"))
    f.read(8)
    seen = []
    for kind, length in png_chunks(f):
        start = f.tell()
        if kind == b"tEXt":
            f.read(2)  # part of the data: the walk goes on from the chunk's start
        elif kind == b"IDAT":
            assert f.read(length) == b"xyz"
        seen.append((kind, length, start))
    assert seen == [(b"IHDR", 13, 16), (b"tEXt", 4, 16 + 25), (b"IDAT", 3, 16 + 25 + 16)]


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 12])
def test_a_walk_ends_where_the_file_ends(cut):
    body = chunk(b"IHDR", bytes(13)) + chunk(b"IDAT", b"abcd")
    f = io.BytesIO(PNG_SIGNATURE + body[: 25 + cut])
    f.read(8)
    kinds = [kind for kind, _ in png_chunks(f)]
    assert kinds == ([b"IHDR", b"IDAT"] if cut >= 8 else [b"IHDR"])


def test_the_recipe_is_found_after_other_text_chunks(tmp_path):
    data = png_bytes(tmp_path, {"Comment": "x" * 100, RECIPE_KEY: '{"a": 1}'})
    (tmp_path / "r.png").write_bytes(data)
    assert read_recipe_text(tmp_path / "r.png") == '{"a": 1}'
    assert png_data_complete(tmp_path / "r.png")


def test_an_oversized_recipe_is_refused_and_an_oversized_foreign_chunk_skipped(tmp_path):
    data = png_bytes(tmp_path)
    iend = data.rindex(b"IEND") - 4
    big = b"x" * (MAX_RECIPE_BYTES + 1)
    ours = data[:iend] + itxt(RECIPE_KEY, big) + data[iend:]
    (tmp_path / "big.png").write_bytes(ours)
    with pytest.raises(ImageError, match=f"over the limit of {MAX_RECIPE_BYTES}"):
        read_recipe_text(tmp_path / "big.png")
    foreign = data[:iend] + itxt("Comment", big) + itxt(RECIPE_KEY, b"{}") + data[iend:]
    (tmp_path / "foreign.png").write_bytes(foreign)
    assert read_recipe_text(tmp_path / "foreign.png") == "{}"


def test_recipe_errors_keep_their_words(tmp_path):
    (tmp_path / "t.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageError, match="not a PNG"):
        read_recipe_text(tmp_path / "t.png")
    with pytest.raises(ImageError, match="no such file"):
        read_recipe_text(tmp_path / "missing.png")
    data = png_bytes(tmp_path, {RECIPE_KEY: '{"a": 1}'})
    cut = data.index(RECIPE_KEY.encode()) - 8  # the file ends before the recipe's chunk
    (tmp_path / "short.png").write_bytes(data[:cut])
    with pytest.raises(ImageError, match="holds no inceptionism recipe"):
        read_recipe_text(tmp_path / "short.png")


def test_image_data_cut_short_is_incomplete(tmp_path):
    data = png_bytes(tmp_path)
    (tmp_path / "full.png").write_bytes(data)
    assert png_data_complete(tmp_path / "full.png")
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    stream = zlib.decompress(data[start : start + length])
    short = zlib.compress(stream[: len(stream) // 2])
    cut = data[: start - 8] + chunk(b"IDAT", short) + chunk(b"IEND", b"")
    (tmp_path / "cut.png").write_bytes(cut)
    assert not png_data_complete(tmp_path / "cut.png")
    split = data[: start - 8] + chunk(b"IDAT", zlib.compress(stream)[:9])
    split += chunk(b"tEXt", b"k\0v") + chunk(b"IDAT", zlib.compress(stream)[9:])
    (tmp_path / "split.png").write_bytes(split + chunk(b"IEND", b""))
    assert png_data_complete(tmp_path / "split.png")  # IDATs with another chunk between
