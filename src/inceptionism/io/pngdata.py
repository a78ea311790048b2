"""A PNG's image data, checked whole: Pillow decodes a file whose zlib stream ends before the
last row without a word (the missing rows black), so the loader counts the rows itself."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # colour type -> samples per pixel
# Adam7 passes: first column and row, column and row steps
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))  # fmt: skip


def png_data_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int:
    """Bytes of a PNG's inflated image data: each row's filter byte and packed samples, for
    each Adam7 pass when interlaced."""
    bits = depth * _PNG_CHANNELS[colour]

    def rows(w: int, h: int) -> int:
        return h * (1 + (w * bits + 7) // 8) if w and h else 0

    if not interlaced:
        return rows(width, height)
    return sum(
        rows(max(0, -(-(width - x0) // dx)), max(0, -(-(height - y0) // dy)))
        for x0, y0, dx, dy in _ADAM7
    )


def png_chunks(f: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """The chunks of the PNG file ``f``, from where it stands (just after the signature): each
    as its type and the length of its data, with ``f`` at the start of that data. The caller
    may read all, part or none of it: the next chunk is found from the chunk's start (past its
    data and CRC), not from where the caller left ``f``. Ends at IEND, or where the file ends
    before a chunk's 8-byte header."""
    while True:
        head = f.read(8)
        if len(head) < 8:
            return
        length, kind = struct.unpack(">I4s", head)
        if kind == b"IEND":
            return
        start = f.tell()
        yield kind, length
        f.seek(start + length + 4)  # past the data and its CRC


def png_data_complete(path: Path) -> bool:
    """Whether a PNG's IDAT chunks inflate to every row of its image. Pillow fills rows past a
    zlib stream that ends early with black and says nothing; this inflates the stream again, a
    megabyte at a time (nothing kept), and counts. A file it cannot parse counts as complete
    (Pillow's own checks have judged it)."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return True
        chunks = png_chunks(f)
        kind, _ = next(chunks, (b"", 0))
        if kind != b"IHDR":
            return True
        ihdr = f.read(13)
        if len(ihdr) < 13:
            return False
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
        if colour not in _PNG_CHANNELS:
            return True
        need = png_data_size(width, height, depth, colour, interlace == 1)
        inflate, got = zlib.decompressobj(), 0
        for kind, length in chunks:
            if got >= need or inflate.eof:
                break
            if kind != b"IDAT":
                continue
            data = f.read(length)
            try:
                while got < need:  # a full megabyte out: more may be pending, ask again
                    out = inflate.decompress(data, 1 << 20)
                    got, data = got + len(out), inflate.unconsumed_tail
                    if not data and len(out) < 1 << 20:
                        break
            except zlib.error:
                return False
        return got >= need
