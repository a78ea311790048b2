"""Tiles for computing gradients piece by piece (pure functions).

Spans cover every pixel (the last tile is never skipped: tiles are spread evenly so the last one
ends at the edge), neighbours overlap by at least ``overlap`` pixels, and blending weights ramp
linearly across each overlap so the weighted sum has no seams.
"""

from __future__ import annotations

import math

import torch


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """[(start, end)] covering [0, length): each at most ``tile`` long, neighbours sharing at
    least ``overlap`` pixels. One span when the tile covers the whole length."""
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    if tile <= 0 or length <= tile:
        return [(0, length)]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    n = math.ceil((length - overlap) / (tile - overlap))
    step = (length - tile) / (n - 1)
    return [(round(i * step), round(i * step) + tile) for i in range(n)]


def tile_grid(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """[(y0, y1, x0, x1)]: the product of the row and column spans."""
    rows, cols = tile_spans(height, tile, overlap), tile_spans(width, tile, overlap)
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
