"""The image pyramid and the detail carried between its levels (pure functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .errors import ConfigError

MIN_OCTAVE_SIDE = 16
MAX_GROWTH = 4.0  # an octave_scale below 1 grows the levels; at most this many times per side


def _check_growth(shapes: list[tuple[int, int]], height: int, width: int) -> None:
    h, w = max(shapes)
    if h > MAX_GROWTH * height or w > MAX_GROWTH * width:
        raise ConfigError(
            f"octave_scale < 1 makes levels up to {w}x{h} from a {width}x{height} image "
            f"(more than {MAX_GROWTH:g}x per side); use fewer octaves or a scale >= 1"
        )


def octave_shapes(
    height: int, width: int, octaves: int, scale: float, min_side: int = MIN_OCTAVE_SIDE
) -> list[tuple[int, int]]:
    """Shapes ``int(side / scale**i)`` for i = octaves-1 .. 0, as the Keras seed computes them.

    The last shape is always the original. Levels whose short side would fall below
    ``min_side`` pixels are left out (a network cannot see anything in them).
    """
    shapes = [(int(height / scale**i), int(width / scale**i)) for i in range(octaves)]
    _check_growth(shapes, height, width)
    kept = [s for s in shapes[1:] if min(s) >= min_side]
    return [(height, width), *kept][::-1]


def successive_shapes(
    height: int, width: int, octaves: int, scale: float, min_side: int = MIN_OCTAVE_SIDE
) -> list[tuple[int, int]]:
    """Google's pyramid: each level is the previous one zoomed by 1/scale (sizes rounded as
    ``scipy.ndimage.zoom`` rounds them), smallest first; too-small levels left out."""
    shapes = [(height, width)]
    for _ in range(octaves - 1):
        h, w = shapes[-1]
        nxt = (round(h / scale), round(w / scale))
        if min(nxt) < min_side:
            break
        shapes.append(nxt)
        _check_growth(shapes, height, width)
    return shapes[::-1]


def successive_pyramid(original: torch.Tensor, shapes: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Google's octave bases: each level resized from the next larger one, smallest first."""
    bases = [original]
    for shape in reversed(shapes[:-1]):
        bases.append(resize(bases[-1], shape))
    return bases[::-1]


def resize(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize mapping corner to corner, as ``scipy.ndimage.zoom(order=1)`` in the seeds.

    Resizing to the current shape returns ``x`` itself.
    """
    if tuple(x.shape[-2:]) == tuple(shape):
        return x
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=True)


def photo_detail(original: torch.Tensor, previous: tuple[int, int], shape: tuple[int, int]):
    """Keras: the photo's detail at ``shape`` lost by having passed through ``previous``."""
    return resize(original, shape) - resize(resize(original, previous), shape)
