"""One gradient-ascent step: jitter, gradient of the objective (tile by tile for large images),
update, clip. Gradient post-processing lives in :mod:`inceptionism.gradients`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import torch

from inceptionism.engine.config import AUTO_TILE, AUTO_TILE_ABOVE
from inceptionism.models import DreamModel
from inceptionism.ops.gradients import normalize_gradient
from inceptionism.ops.numerics import fixed_abs_mean
from inceptionism.ops.objectives import Context, Objective
from inceptionism.ops.tiling import blend_weights, tile_spans

__all__ = ["ascent_step", "normalize_gradient", "objective_gradient", "random_shift", "tile_size"]


def random_shift(jitter: int, generator: torch.Generator) -> tuple[int, int]:
    """A (dy, dx) roll drawn uniformly from [-jitter, jitter] for each axis."""
    if jitter <= 0:
        return 0, 0
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return dy, dx


def tile_size(tile: int | str, height: int, width: int) -> int:
    """The tile side for a level: ``auto`` tiles only large levels; 0 means untiled."""
    if tile == "auto":
        return AUTO_TILE if max(height, width) > AUTO_TILE_ABOVE else 0
    return int(tile)


def _gradient(model: DreamModel, x: torch.Tensor, objective: Objective, statistic: str,
              border: int, context: Context) -> tuple[float, torch.Tensor]:  # fmt: skip
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        acts = model.activations(x, objective.layers)
        loss = objective(acts, statistic, border, context)
        (g,) = torch.autograd.grad(loss, x)
    return float(loss.detach()), g


def _unrolled(start: int, end: int, shift: int, n: int) -> list[tuple[int, int, int]]:
    """Where [start, end) of an axis rolled by ``shift`` lies in the un-rolled axis of length
    ``n``: pieces (offset in the span, end of the piece in the span, start in the axis)."""
    a = (start - shift) % n
    length = end - start
    if a + length <= n:
        return [(0, length, a)]
    return [(0, n - a, a), (n - a, length, 0)]


def _gather(x: torch.Tensor, ys: list, xs: list) -> torch.Tensor:
    """The rolled image's tile, assembled from the un-rolled pieces (a view when it is one)."""
    rows = [
        torch.cat([x[..., oy : oy + y1 - y0, ox : ox + x1 - x0] for x0, x1, ox in xs], dim=-1)
        if len(xs) > 1
        else x[..., oy : oy + y1 - y0, xs[0][2] : xs[0][2] + xs[0][1]]
        for y0, y1, oy in ys
    ]
    return torch.cat(rows, dim=-2) if len(rows) > 1 else rows[0]


def objective_gradient(
    model: DreamModel,
    x: torch.Tensor,
    objective: Objective,
    statistic: str = "l2",
    border: int = 2,
    shift: tuple[int, int] = (0, 0),
    tile: int = 0,
    overlap: int = 64,
    full_size: tuple[int, int] | None = None,
    guide: Mapping[str, torch.Tensor] | None = None,
    keep_small_maps: bool = True,
) -> tuple[float, torch.Tensor]:
    """The objective's value and its gradient w.r.t. ``x``, evaluated on ``x`` rolled by ``shift``.

    With ``tile`` > 0 and an image larger than the tile, the rolled image is cut into
    overlapping tiles covering every pixel, aligned to the coarsest layer's stride; each tile's
    gradient is computed on its own (memory bounded by the tile) and the gradients are blended
    with linear ramps across the overlaps. Layer statistics are weighted by each tile's share
    of the pixels, so the value (the sum over tiles) is on the untiled scale; the l2 border is
    cut only at the image's edges; a neuron counts in one tile only. The gradient comes back
    un-rolled, aligned with ``x``. Only the image gets a gradient. ``keep_small_maps``: see
    :func:`~inceptionism.objectives.layer_statistic`.
    """
    dy, dx = shift
    h, w = x.shape[-2:]
    strides = {name: model.layer(name).stride for name in objective.layers}
    context = Context(
        shift, strides, full_size, (h, w), (0, 0), guide, keep_small_maps=keep_small_maps
    )
    align = max([s for s in strides.values() if s > 0], default=1)
    rows, cols = tile_spans(h, tile, overlap, align), tile_spans(w, tile, overlap, align)
    if len(rows) == 1 and len(cols) == 1:
        rolled = torch.roll(x, (dy, dx), dims=(-2, -1)) if (dy or dx) else x
        loss, g = _gradient(model, rolled, objective, statistic, border, context)
        if dy or dx:
            g = torch.roll(g, (-dy, -dx), dims=(-2, -1))
        return loss, g
    # Tiles are cut from the rolled image and their gradients added back un-rolled, piece by
    # piece, so neither the rolled image nor a rolled gradient is ever made at full size.
    loss, g = 0.0, torch.zeros_like(x)
    tiles = tuple((y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols)
    tiled_pixels = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in tiles)
    col_weights = [wx.to(x)[None, :] for wx in blend_weights(cols)]
    for (y0, y1), wy in zip(rows, blend_weights(rows)):
        wy = wy.to(x)[:, None]
        ys = _unrolled(y0, y1, dy, h)
        for j, (x0, x1) in enumerate(cols):
            ctx = replace(
                context,
                offset=(y0, x0),
                tiles=tiles,
                interior=(y0 > 0, y1 < h, x0 > 0, x1 < w),
                share=(y1 - y0) * (x1 - x0) / tiled_pixels,
            )
            xs = _unrolled(x0, x1, dx, w)
            part = _gather(x, ys, xs)
            tile_loss, tile_g = _gradient(model, part, objective, statistic, border, ctx)
            loss += tile_loss  # blend weights add up to 1: no total to divide by
            tile_g.mul_(wy).mul_(col_weights[j])
            for ty0, ty1, oy in ys:
                for tx0, tx1, ox in xs:
                    g[..., oy : oy + ty1 - ty0, ox : ox + tx1 - tx0].add_(
                        tile_g[..., ty0:ty1, tx0:tx1]
                    )
    return loss, g


def ascent_step(
    x: torch.Tensor,
    g: torch.Tensor,
    step_size: float,
    grad_norm: str,
    clip: bool,
    lap_levels: int = 4,
    mask: torch.Tensor | None = None,
    span: float = 1.0,
    eps: float = 0.0,
    reuse_gradient: bool = False,
    reuse_image: bool = False,
) -> torch.Tensor:
    """``x + step_size * normalise(g)`` (times ``mask`` where given), clipped when asked.

    ``span``: the width of the pixel range ``step_size`` and ``eps`` are given in (2 for
    [-1, 1], 255 for 0-255). The gradient is then the one w.r.t. those pixels, ``g / span``,
    normalised with ``eps`` there, and the step is taken there: ``x += step_size / span * n``.
    So a recipe's floor binds exactly where it binds in the recipe's own units.
    ``reuse_gradient``: ``g`` may be overwritten (the engine's own gradient, not used again):
    one image-sized buffer less, the same numbers. ``reuse_image``: ``x`` is updated in place
    (the engine's own image, which nobody else holds): another buffer less.
    """
    if span != 1.0:
        update = normalize_gradient(g / span, grad_norm, lap_levels, eps).mul_(step_size / span)
    elif reuse_gradient and grad_norm == "l1":  # normalize_gradient's l1, in place
        mean = fixed_abs_mean(g)
        update = g.div_(mean.clamp_min(eps or 1e-7)).mul_(step_size)
    else:
        update = normalize_gradient(g, grad_norm, lap_levels, eps).mul_(step_size)
    if mask is not None:
        update.mul_(mask)
    x = x.add_(update) if reuse_image else x + update
    return x.clamp_(0.0, 1.0) if clip else x
