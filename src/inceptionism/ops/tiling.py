"""Tiles for computing gradients piece by piece (pure functions).

Spans cover every pixel (the last tile is never skipped: it ends at the edge), as few tiles as
the overlap allows are spread evenly (so no pair overlaps much more than asked, and no pixel is
computed more often than it must be), neighbours overlap by at least ``overlap`` pixels, starts
are aligned to the coarsest layer's stride, tiles are no longer than that needs (one size, the
last maybe shorter), and blending weights ramp linearly across each overlap so the weighted sum
has no seams.
"""

from __future__ import annotations

import torch

from inceptionism.errors import ConfigError


def tile_spans(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """[(start, end)] covering [0, length): each at most ``tile`` long, neighbours sharing at
    least ``overlap`` pixels, every start a multiple of ``align`` (so a layer of stride
    ``align`` sees the same grid in every tile). One span when the tile covers the length."""
    if length <= 0:
        raise ConfigError(f"length must be positive, got {length}")
    if tile <= 0 or length <= tile:
        return [(0, length)]
    step = (tile - overlap) // align * align
    if overlap < 0 or step < 1:
        raise ConfigError(
            f"tile {tile} leaves no room to advance past an overlap of {overlap} "
            f"in steps of {align} pixels; use a larger tile or a smaller overlap"
        )
    last = -(-(length - tile) // align)  # in units of align: the last full tile ends at the edge
    gaps = -(-last // (step // align))  # the fewest tiles (minus one) that keep the overlap
    # Evenly spread starts k*i/gaps rounded to the grid: a rounded gap is at most
    # ceil(k/gaps) grid steps (floor(y + m) = floor(y) + m for whole m). The tiles then only
    # need to be that gap plus the overlap long, and the last one must reach the edge: pick the
    # last start k that makes them shortest (fewer pixels computed than full-size tiles).
    sizes = ((max(length - align * k, align * -(-k // gaps) + overlap), k)
             for k in range(length // align + 1))  # fmt: skip
    size, k = min((s, k) for s, k in sizes if s <= tile)  # k = last always qualifies
    starts = [align * ((i * k + gaps // 2) // gaps) for i in range(gaps + 1)]
    return [(start, min(start + size, length)) for start in starts]


def tile_grid(
    height: int, width: int, tile: int, overlap: int, align: int = 1
) -> list[tuple[int, int, int, int]]:
    """[(y0, y1, x0, x1)]: the product of the row and column spans."""
    rows, cols = tile_spans(height, tile, overlap, align), tile_spans(width, tile, overlap, align)
    return [(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]


def span_weights(spans: list[tuple[int, int]], index: int) -> torch.Tensor:
    """Blending weights along one span: 1 inside, a linear ramp across each shared region
    (towards the neighbour), never 0, so every pixel keeps a positive total weight."""
    start, end = spans[index]
    w = torch.ones(end - start)
    if index > 0:
        shared = spans[index - 1][1] - start
        if shared > 0:
            w[:shared] = torch.linspace(0, 1, shared + 2)[1:-1]
    if index < len(spans) - 1:
        shared = end - spans[index + 1][0]
        if shared > 0:
            w[-shared:] = torch.minimum(w[-shared:], torch.linspace(1, 0, shared + 2)[1:-1])
    return w


def blend_weights(spans: list[tuple[int, int]]) -> list[torch.Tensor]:
    """:func:`span_weights` of every span divided by their sum at each pixel, so they add up to
    exactly 1 along the axis; the outer product of a row's and a column's weights then needs no
    image-sized total to divide by."""
    weights = [span_weights(spans, i).double() for i in range(len(spans))]
    total = torch.zeros(spans[-1][1], dtype=torch.float64)
    for (start, end), w in zip(spans, weights):
        total[start:end] += w
    return [(w / total[start:end]).float() for (start, end), w in zip(spans, weights)]
