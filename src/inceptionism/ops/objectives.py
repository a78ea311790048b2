"""What a dream maximises: a weighted sum of terms over layers, channels, neurons and classes.

One sign convention, stated once: the engine *maximises* the objective; a negative weight
suppresses what its term measures. Objectives are values::

    Objective.parse("block12=1,block14:37=2") + 0.5 * Objective.parse("block10:5@12,9")

The grammar (shared by the CLI, the API and presets), terms separated by commas:

    LAYER            the whole layer
    LAYER:C          one channel;  LAYER:C1+C2+C3  several channels
    LAYER:C@X,Y      one neuron: channel C at column X, row Y of the layer's grid
    ...=WEIGHT       any term may carry a weight (default 1; negative suppresses)

Neuron coordinates are in the grid of the full-size image's activation; on smaller octaves and
under jitter they follow the same image point. Layers without a grid (``logits``) are maximised
as raw values, which is what ``--class N`` (the term ``logits:N``) asks for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import torch

from inceptionism.errors import ConfigError
from inceptionism.ops.numerics import fixed_mean, fixed_sum
from inceptionism.ops.text import format_weight

STATISTICS = ("l2", "mean")  # "guide" too, when guide features are given

_TERM = re.compile(
    r"\s*(?P<layer>\w[\w.\-/]*)"
    r"(?::(?P<channels>\d+(?:\+\d+)*)(?:@(?P<x>\d+),(?P<y>\d+))?)?"
    r"(?:\s*=\s*(?P<weight>[^,]*))?\s*(?:,|$)"
)


@dataclass(frozen=True)
class Term:
    layer: str
    weight: float = 1.0
    channels: tuple[int, ...] | None = None
    neuron: tuple[int, int] | None = None  # (x, y) in the full-size activation grid

    def __str__(self) -> str:
        text = self.layer
        if self.channels is not None:
            text += ":" + "+".join(str(c) for c in self.channels)
        if self.neuron is not None:
            text += f"@{self.neuron[0]},{self.neuron[1]}"
        return text + "=" + format_weight(self.weight)


@dataclass(frozen=True)
class Context:
    """What a term needs beyond activations: the jitter roll in pixels, each layer's stride,
    the full-size image's and this level's (height, width), where this tile starts (pixels),
    and the guide image's activation vectors per layer, (M, C), for the "guide" statistic.

    When the gradient is computed tile by tile: ``tiles`` lists every tile (y0, y1, x0, x1) of
    the level (a neuron is evaluated only in the tile where it sits most centrally),
    ``interior`` says which sides (top, bottom, left, right) of this tile are inside the image
    (the l2 border is cut only at real edges), and ``share`` is this tile's share of the level's
    pixels (so per-tile statistics add up to the whole image's). ``keep_small_maps``: see
    :func:`layer_statistic`."""

    shift: tuple[int, int] = (0, 0)
    strides: Mapping[str, int] = field(default_factory=dict)
    full_size: tuple[int, int] | None = None
    level_size: tuple[int, int] | None = None
    offset: tuple[int, int] = (0, 0)
    guide: Mapping[str, torch.Tensor] | None = None
    tiles: tuple[tuple[int, int, int, int], ...] = ()
    interior: tuple[bool, bool, bool, bool] = (False, False, False, False)
    share: float = 1.0
    keep_small_maps: bool = True


@dataclass(frozen=True)
class Objective:
    """A weighted sum of terms; the statistic (``l2`` or ``mean``) is chosen at evaluation."""

    terms: tuple[Term, ...]

    @classmethod
    def parse(cls, spec: str) -> Objective:
        """Parse the grammar above; a bad spec raises ConfigError pointing at the bad part."""
        spec = spec.strip()
        if not spec:
            raise ConfigError("empty objective (expected e.g. 'block12=1,block14:37=2')")
        terms, pos = [], 0
        while pos < len(spec):
            m = _TERM.match(spec, pos)
            if not m or m.end() == pos:
                bad = spec[pos:].split(",")[0] or spec[pos:]
                raise ConfigError(
                    f"cannot parse {bad.strip()!r} at position {pos} of {spec!r} "
                    "(expected LAYER, LAYER:C, LAYER:C1+C2 or LAYER:C@X,Y, each with =WEIGHT "
                    "optional)"
                )
            terms.append(_term_from_match(m, spec))
            pos = m.end()
            if spec[m.end() - 1 : m.end()] == "," and pos == len(spec):
                raise ConfigError(f"trailing comma in {spec!r}")
        return cls(tuple(terms))

    @classmethod
    def of(cls, layers: str | Objective | Mapping[str, float] | Iterable) -> Objective:
        """Coerce a spec string, an Objective, ``{layer: weight}`` or ``[(layer, weight)]``."""
        if isinstance(layers, Objective):
            return layers
        if isinstance(layers, str):
            return cls.parse(layers)
        items = layers.items() if isinstance(layers, Mapping) else layers
        terms = []
        for item in items:
            if isinstance(item, Term):
                terms.append(item)
            else:
                name, weight = item  # type: ignore[misc,str-unpack]
                terms.extend(
                    replace(t, weight=t.weight * float(weight)) for t in cls.parse(name).terms
                )
        return cls(tuple(terms))

    @property
    def layers(self) -> list[str]:
        """Distinct layer names, in first-mention order."""
        return list(dict.fromkeys(t.layer for t in self.terms))

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)

    def __add__(self, other: Objective) -> Objective:
        return Objective(self.terms + other.terms)

    def __mul__(self, k: float) -> Objective:
        return Objective(tuple(replace(t, weight=t.weight * k) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __call__(
        self,
        activations: Mapping[str, torch.Tensor],
        statistic: str = "l2",
        border: int = 2,
        context: Context | None = None,
    ) -> torch.Tensor:
        context = context or Context()
        return sum(  # type: ignore[return-value]
            t.weight * term_value(activations[t.layer], t, statistic, border, context)
            for t in self.terms
        )


def _term_from_match(m: re.Match, spec: str) -> Term:
    layer = m["layer"]
    weight = 1.0
    if m["weight"] is not None:
        try:
            weight = float(m["weight"])
        except ValueError:
            raise ConfigError(f"bad weight {m['weight']!r} for {layer!r} in {spec!r}") from None
        if not math.isfinite(weight):
            raise ConfigError(f"weight of {layer!r} must be finite, got {m['weight']!r}")
    try:  # int() refuses strings of over 4300 digits
        channels = tuple(int(c) for c in m["channels"].split("+")) if m["channels"] else None
        neuron = (int(m["x"]), int(m["y"])) if m["x"] is not None else None
    except ValueError:
        numbers = m.group(0).strip().rstrip(",")
        shown = numbers if len(numbers) <= 40 else f"{numbers[:24]}... ({len(numbers)} characters)"
        raise ConfigError(f"{shown!r}: a channel or position of {layer!r} is too long") from None
    return Term(layer, weight, channels, neuron)


def layer_statistic(
    a: torch.Tensor,
    statistic: str,
    border: int = 2,
    interior: tuple[bool, bool, bool, bool] = (False, False, False, False),
    keep_small: bool = True,
) -> torch.Tensor:
    """``l2``: the Keras seed's ``sum(a[..., b:-b, b:-b]**2) / a.numel()`` (border pixels excluded,
    scaled by the whole activation's size); ``mean``: the TF notebooks' mean activation.
    Sides flagged in ``interior`` (tile edges inside the image) keep their border. A map too
    small to lose its border counts whole with ``keep_small``, else nothing (as in the seed)."""
    if statistic == "l2":
        h, w = a.shape[-2:]
        top, bottom, left, right = (0 if inner else border for inner in interior)
        if h > top + bottom and w > left + right:
            return _BorderedSquares.apply(a, (top, bottom, left, right)) / a.numel()
        if keep_small:  # a map too small to lose its border keeps it
            return _BorderedSquares.apply(a, (0, 0, 0, 0)) / a.numel()
        return fixed_sum(a[..., :0, :0].square()) / a.numel()  # the seed's empty slice: adds 0
    if statistic == "mean":
        return fixed_mean(a)
    raise ConfigError(f"unknown objective statistic {statistic!r}; valid: {', '.join(STATISTICS)}")


class _BorderedSquares(torch.autograd.Function):
    """``sum(a[..., top:h-bottom, left:w-right] ** 2)`` with a one-pass backward.

    Autograd's own backward (square, then two slices) makes two zero-filled copies of ``a`` in
    the contiguous layout, so the layer's gradient arrives in another memory layout than the
    network's channels_last one and every addition into it downstream runs strided. This one
    writes ``a * (2 g)`` in ``a``'s layout and zeroes the border: the same numbers bit for bit
    (``2 g`` and ``2 a`` are exact, so ``a * 2g`` rounds the same product as autograd's
    ``g * 2a``)."""

    @staticmethod
    def forward(ctx, a, border):  # type: ignore[override]
        top, bottom, left, right = border
        h, w = a.shape[-2:]
        ctx.save_for_backward(a)
        ctx.border = border
        return fixed_sum(a[..., top : h - bottom, left : w - right].square())

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (a,) = ctx.saved_tensors
        top, bottom, left, right = ctx.border
        h, w = a.shape[-2:]
        ga = torch.mul(a, g * 2)
        for rows, cols in (
            (slice(0, top), slice(None)),
            (slice(h - bottom, h), slice(None)),
            (slice(None), slice(0, left)),
            (slice(None), slice(w - right, w)),
        ):
            ga[..., rows, cols] = 0
        return ga, None


def term_value(
    a: torch.Tensor, term: Term, statistic: str, border: int, context: Context
) -> torch.Tensor:
    """One term's value on its layer's activation ``a`` (N, C, H, W) or (N, C)."""
    if term.channels is not None:
        if max(term.channels) >= a.shape[1]:
            raise ConfigError(
                f"channel {max(term.channels)} of {term.layer!r} is out of range "
                f"({a.shape[1]} channels: 0..{a.shape[1] - 1})"
            )
        a = a[:, list(term.channels)]
    if a.ndim == 2:  # no grid (logits): the raw value
        return fixed_mean(a)
    if term.neuron is not None:
        pos = neuron_position(term, a.shape[-2:], context)
        if pos is None:  # the neuron lies in another tile
            return fixed_sum(a) * 0.0
        return fixed_mean(a[:, :, pos[0], pos[1]])
    if statistic == "guide":
        return context.share * guide_similarity(a, term, context)
    return context.share * layer_statistic(
        a, statistic, border, context.interior, context.keep_small_maps
    )


def guide_similarity(a: torch.Tensor, term: Term, context: Context) -> torch.Tensor:
    """Google's guide objective: each activation vector's dot product with the guide vector
    it matches best, averaged. Its gradient moves every vector towards its best match."""
    if context.guide is None or term.layer not in context.guide:
        raise ConfigError("the 'guide' objective needs a guide image (--guide IMAGE)")
    g = context.guide[term.layer].to(a)
    if term.channels is not None:
        g = g[:, list(term.channels)]
    x = a.flatten(2).transpose(1, 2).reshape(-1, a.shape[1])  # (N*h*w, C)
    with torch.no_grad():  # the best match per vector, in chunks: memory stays small
        best = torch.cat([(chunk @ g.T).argmax(dim=1) for chunk in x.detach().split(4096)])
    return fixed_mean((x * g[best]).sum(dim=1))


def neuron_position(
    term: Term, grid: torch.Size | tuple[int, int], context: Context
) -> tuple[int, int] | None:
    """(row, column) of the neuron's image point in this activation: scaled from the full-size
    grid to this level's grid, moved with the jitter roll, relative to this tile (None when
    it falls outside the tile)."""
    assert term.neuron is not None
    x, y = term.neuron
    stride = max(context.strides.get(term.layer, 1), 1)
    h, w = int(grid[0]), int(grid[1])
    level_h, level_w = h, w
    if context.level_size is not None:
        level_h = math.ceil(context.level_size[0] / stride)
        level_w = math.ceil(context.level_size[1] / stride)
    if context.full_size is not None:
        full_h = math.ceil(context.full_size[0] / stride)
        full_w = math.ceil(context.full_size[1] / stride)
        if not (0 <= x < full_w and 0 <= y < full_h):
            raise ConfigError(
                f"neuron {x},{y} of {term.layer!r} is outside its {full_w}x{full_h} grid "
                f"(columns 0..{full_w - 1}, rows 0..{full_h - 1})"
            )
        x, y = x * level_w // full_w, y * level_h // full_h
    dy, dx = context.shift
    level_row = (y + round(dy / stride)) % level_h
    level_col = (x + round(dx / stride)) % level_w
    if context.tiles:  # only the tile where the neuron's pixel is most central counts it
        py, px = level_row * stride + stride // 2, level_col * stride + stride // 2
        owner = max(context.tiles, key=lambda t: min(py - t[0], t[1] - py, px - t[2], t[3] - px))
        if (owner[0], owner[2]) != tuple(context.offset):
            return None
    row = level_row - context.offset[0] // stride
    col = level_col - context.offset[1] // stride
    if not (0 <= row < h and 0 <= col < w):
        return None
    return row, col
