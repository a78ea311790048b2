"""A PNG's image data, checked whole: Pillow decodes a file whose zlib stream ends before the
last row without a word (the missing rows black), so the loader counts the rows itself."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

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


def png_data_complete(path: Path) -> bool:
    """Whether a PNG's IDAT chunks inflate to every row of its image. Pillow fills rows past a
    zlib stream that ends early with black and says nothing; this inflates the stream again, a
    megabyte at a time (nothing kept), and counts. A file it cannot parse counts as complete
    (Pillow's own checks have judged it)."""
    with open(path, "rb") as f:
        if f.read(8) != PNG_SIGNATURE:
            return True
        head = f.read(8)
        if len(head) < 8 or head[4:] != b"IHDR":
            return True
        ihdr = f.read(13)
        if len(ihdr) < 13:
            return False
        width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
        if colour not in _PNG_CHANNELS:
            return True
        need = png_data_size(width, height, depth, colour, interlace == 1)
        f.seek(struct.unpack(">I", head[:4])[0] - 13 + 4, os.SEEK_CUR)  # rest of IHDR, CRC
        inflate, got = zlib.decompressobj(), 0
        while got < need and not inflate.eof:
            head = f.read(8)
            if len(head) < 8:
                break
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IEND":
                break
            if kind != b"IDAT":
                f.seek(length + 4, os.SEEK_CUR)
                continue
            data = f.read(length)
            f.seek(4, os.SEEK_CUR)  # CRC
            try:
                while got < need:  # a full megabyte out: more may be pending, ask again
                    out = inflate.decompress(data, 1 << 20)
                    got, data = got + len(out), inflate.unconsumed_tail
                    if not data and len(out) < 1 << 20:
                        break
            except zlib.error:
                return False
        return got >= need
