"""Tile geometry (property-based) and tiled gradients."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from inceptionism.engine.ascent import objective_gradient
from inceptionism.ops.objectives import Objective
from inceptionism.ops.tiling import blend_weights, span_weights, tile_grid, tile_spans


@settings(max_examples=300, deadline=None)
@given(
    length=st.integers(1, 3000),
    tile=st.integers(8, 1200),
    overlap=st.integers(0, 200),
)
def test_spans_cover_every_pixel_within_the_tile_and_overlap(length, tile, overlap):
    overlap = min(overlap, tile // 2 - 1) if tile > 2 else 0
    overlap = max(overlap, 0)
    spans = tile_spans(length, tile, overlap)
    covered = torch.zeros(length, dtype=torch.int32)
    for start, end in spans:
        assert 0 <= start < end <= length
        assert end - start <= tile
        covered[start:end] += 1
    assert bool((covered >= 1).all())  # every pixel, the last ones included
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert end - start >= overlap  # neighbours share at least the overlap
    # Blending is seamless: when every tile reports its own constant (0, 1, 0, 1, ...), the
    # blend keeps a tile's value where it alone covers a pixel and moves between neighbours by
    # at most a linear ramp's step across their shared pixels (a hard cut would jump by 1).
    blended = torch.zeros(length, dtype=torch.float64)
    alone = torch.zeros(length, dtype=torch.int64)
    for i, ((start, end), w) in enumerate(zip(spans, blend_weights(spans))):
        assert w.shape == (end - start,) and bool((span_weights(spans, i) > 0).all())
        blended[start:end] += (i % 2) * w.double()
        alone[start:end] += 1
    parity = torch.zeros(length, dtype=torch.float64)
    for i, (start, end) in enumerate(spans):
        parity[start:end] = i % 2  # where tiles overlap, the later one; masked out below
    single = alone == 1
    assert torch.allclose(blended[single], parity[single])
    for (_, end), (start, _) in zip(spans, spans[1:]):
        shared = end - start
        jumps = (blended[start - 1 : end + 1].diff()).abs()
        assert float(jumps.max()) <= 1.0 / (shared + 1) + 1e-6, (shared, jumps.max())


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 700), w=st.integers(1, 700), tile=st.integers(40, 300))
def test_grid_covers_the_image_and_blends_constants_exactly(h, w, tile):
    grid = tile_grid(h, w, tile, 16)
    rows, cols = tile_spans(h, tile, 16), tile_spans(w, tile, 16)
    assert len(grid) == len(rows) * len(cols)
    acc, total = torch.zeros(h, w, dtype=torch.float64), torch.zeros(h, w, dtype=torch.float64)
    for i, (y0, y1) in enumerate(rows):
        for j, (x0, x1) in enumerate(cols):
            weight = (
                span_weights(rows, i).double()[:, None] * span_weights(cols, j).double()[None, :]
            )
            acc[y0:y1, x0:x1] += 3.5 * weight  # every tile reports the same constant gradient
            total[y0:y1, x0:x1] += weight
    assert torch.allclose(acc / total, torch.full((h, w), 3.5, dtype=torch.float64))


def test_a_tile_covering_the_image_equals_no_tiling(lite0):
    x = torch.rand(1, 3, 96, 120, generator=torch.Generator().manual_seed(0))
    obj = Objective.parse("block9=1,block5:3=0.5")
    plain = objective_gradient(lite0, x, obj, "l2", 2, (5, -7))
    for tile in (120, 500):
        tiled = objective_gradient(lite0, x, obj, "l2", 2, (5, -7), tile=tile, overlap=16)
        assert tiled[0] == plain[0] and torch.equal(tiled[1], plain[1])


def test_tiled_gradient_is_close_to_the_whole_one_away_from_seams(lite0):
    """Tiles see less context, so values differ near tile edges; the blend keeps it smooth and
    the bulk of the gradient agrees with the untiled one."""
    x = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(1))
    obj = Objective.parse("block5")
    _, whole = objective_gradient(lite0, x, obj, "mean", 0)
    _, tiled = objective_gradient(lite0, x, obj, "mean", 0, tile=96, overlap=32)
    assert tiled.shape == whole.shape and torch.isfinite(tiled).all()
    # mean over a tile counts each tile's pixels with weight 1/tile_area instead of 1/image_area
    cos = torch.nn.functional.cosine_similarity(tiled.flatten(), whole.flatten(), dim=0)
    assert float(cos) > 0.8


def test_tile_starts_align_to_the_coarsest_stride():
    for length, tile, overlap, align in [
        (1000, 512, 64, 32),
        (120, 64, 8, 16),
        (4000, 512, 64, 32),
    ]:
        spans = tile_spans(length, tile, overlap, align)
        assert all(start % align == 0 for start, _ in spans)
        assert spans[-1][1] == length and all(end - start <= tile for start, end in spans)


def _centroid(g):
    m = g.abs().sum(dim=1)[0]
    ys, xs = torch.meshgrid(torch.arange(m.shape[0]), torch.arange(m.shape[1]), indexing="ij")
    return float((m * ys).sum() / m.sum()), float((m * xs).sum() / m.sum())


def test_neuron_counts_once_and_in_place_under_tiles(lite0):
    x = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(2))
    obj = Objective.parse("block5:5@6,4")  # stride 16: the pixel around (72, 104)
    loss, whole = objective_gradient(lite0, x, obj, "l2", 2, (0, 0))
    for tile, overlap in ((64, 16), (96, 32)):
        t_loss, tiled = objective_gradient(
            lite0, x, obj, "l2", 2, (0, 0), tile=tile, overlap=overlap
        )
        cy, cx = _centroid(tiled)
        wy, wx = _centroid(whole)
        assert abs(cy - wy) < 16 and abs(cx - wx) < 16  # within one stride (tiles clip the field)
        assert abs(t_loss) < 3 * abs(loss) + 1  # one neuron value, not one per tile


def test_default_l2_objective_has_no_dip_at_tile_joins(lite0):
    """The l2 border is cut only at the image's edges, so tile joins are not starved."""
    x = torch.rand(1, 3, 192, 640, generator=torch.Generator().manual_seed(3))
    obj = Objective.parse("block11")
    _, whole = objective_gradient(lite0, x, obj, "l2", 2)
    _, tiled = objective_gradient(lite0, x, obj, "l2", 2, tile=256, overlap=64)
    col = lambda g: g.abs().mean(dim=(0, 1, 2)).reshape(-1, 32).mean(dim=1)  # noqa: E731
    ratio = col(tiled) / col(whole)
    assert float(ratio[2:-2].min()) > 0.6  # away from the image edges, no starved band
    # per-tile statistics are weighted by their share: the value stays on the untiled scale
    loss_whole, _ = objective_gradient(lite0, x, obj, "l2", 2)
    loss_tiled, _ = objective_gradient(lite0, x, obj, "l2", 2, tile=256, overlap=64)
    assert abs(loss_tiled - loss_whole) < 0.25 * loss_whole


@settings(max_examples=100, deadline=None)
@given(length=st.integers(1, 3000), tile=st.integers(64, 1200), overlap=st.integers(0, 31))
def test_spans_are_spread_evenly_with_no_more_tiles_than_needed(length, tile, overlap):
    align = 16
    spans = tile_spans(length, tile, overlap, align)
    step = (tile - overlap) // align * align
    if length > tile:  # the fewest tiles: last start (in grid steps) over the largest step
        last_start = -(-(length - tile) // align)
        assert len(spans) == 1 + -(-last_start // (step // align))
    sizes = {end - start for start, end in spans[:-1]}
    assert len(sizes) <= 1  # one tile shape (the last may be shorter): fixed shapes
    shared = [end - start for (_, end), (start, _) in zip(spans, spans[1:])]
    if shared:
        assert min(shared) >= overlap and max(shared) - min(shared) <= 2 * align  # evenly spread
    total = torch.zeros(length, dtype=torch.float64)
    for (start, end), w in zip(spans, blend_weights(spans)):
        total[start:end] += w.double()
    assert torch.allclose(total, torch.ones(length, dtype=torch.float64), atol=1e-6)
