"""The image pyramid and the detail carried between its levels (pure functions)."""

from __future__ import annotations

import numpy as np
import torch

from inceptionism.errors import ConfigError

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


def scaled_shapes(
    height: int, width: int, below: int, above: int, scale: float
) -> list[tuple[int, int]]:
    """The TF2 tutorial's levels: ``int(side * scale**n)`` for n = -below .. above, computed
    in float32 as TF does (``tf.cast(float32_shape * scale**n, tf.int32)``)."""
    shapes = []
    for n in range(-below, above + 1):
        k = np.float32(scale**n)
        shape = (int(np.float32(height) * k), int(np.float32(width) * k))
        if min(shape) < 1:
            raise ConfigError(f"octave {n} of a {width}x{height} image would be empty")
        shapes.append(shape)
    _check_growth(shapes, height, width)
    return shapes


def _tf1_grow(side: int, scale: float) -> int:
    """``np.int32(np.float32(side) * scale)``: one TF1 render_lapnorm level to the next."""
    return int(np.float32(side) * np.float32(scale))


def _tf1_before(side: int, scale: float) -> int:
    """The smallest size whose TF1 growth by ``scale`` reaches ``side``."""
    p = max(1, int(side / scale))
    while p > 1 and _tf1_grow(p - 1, scale) >= side:
        p -= 1
    while _tf1_grow(p, scale) < side:
        p += 1
    return p


def grown_shapes(
    height: int, width: int, below: int, above: int, scale: float
) -> list[tuple[int, int]]:
    """The TF1 notebook's render_lapnorm levels: each ``int32(float32(previous) * scale)``.
    TF1 grows them from its start; here ``(height, width)`` is the level after ``below``
    growths, so the levels below are found backwards, each the smallest size whose growth
    reaches the next: wherever a TF1 run ends at (height, width) these are its levels (224,
    313, 438 for 438 x 438 and 1.4). ``above`` levels grow on past the original."""
    shapes = [(height, width)]
    for _ in range(below):
        h, w = shapes[0]
        shapes.insert(0, (_tf1_before(h, scale), _tf1_before(w, scale)))
    for _ in range(above):
        h, w = shapes[-1]
        shape = (_tf1_grow(h, scale), _tf1_grow(w, scale))
        if min(shape) < 1:
            raise ConfigError(f"an octave of a {width}x{height} image would be empty")
        shapes.append(shape)
    _check_growth(shapes, height, width)
    return shapes


def successive_pyramid(
    original: torch.Tensor, shapes: list[tuple[int, int]], mode: str = "corners"
) -> list[torch.Tensor]:
    """Google's octave bases: each level resized from the next larger one, smallest first."""
    bases = [original]
    for shape in reversed(shapes[:-1]):
        bases.append(resize(bases[-1], shape, mode))
    return bases[::-1]


def resize(x: torch.Tensor, shape: tuple[int, int], mode: str = "corners") -> torch.Tensor:
    """Bilinear resize of (N, C, H, W) in one of the seeds' flavours; none antialiases.

    ``corners``: corner pixels map to corner pixels, as ``scipy.ndimage.zoom(order=1)`` (Keras
    2 and the book's notebook, Google's notebook). ``half-pixel``: pixel centres map to pixel
    centres, as ``tf.image.resize`` and ``keras.ops.image.resize`` (TF2, Keras 3). ``tf1``:
    output pixel i samples input i * in/out, as TF1's ``tf.image.resize_bilinear``.
    Resizing to the current shape returns ``x`` itself.

    The first two give ``F.interpolate(mode="bilinear")``'s sampling, computed as two passes
    of gathered rows and columns weighted by separate multiplications and an addition:
    PyTorch's own kernel rounds differently where its threads' shares of the output start
    (a vectorised body with fused multiply-adds, a scalar tail), so its last bits followed
    the thread count. Here every output value is computed the same way wherever it lies.
    """
    if tuple(x.shape[-2:]) == tuple(shape):
        return x
    if mode in ("corners", "half-pixel"):
        corners = mode == "corners"
        y0, y1, wy0, wy1 = _linear_taps(x.shape[-2], shape[0], corners, x)
        x0, x1, wx0, wx1 = _linear_taps(x.shape[-1], shape[1], corners, x)
        rows = _blend(x, -2, y0, y1, wy0[:, None], wy1[:, None])
        return _blend(rows, -1, x0, x1, wx0, wx1)
    if mode == "tf1":
        return _resize_tf1(x, shape)
    raise ConfigError(f"unknown resize {mode!r}; valid: corners, half-pixel, tf1")


def _linear_taps(size_in: int, size_out: int, corners: bool, like: torch.Tensor):
    """Bilinear sampling along one axis as PyTorch's ``interpolate`` places it: for each
    output index, the two input indices it reads and their weights."""
    dst = torch.arange(size_out, dtype=torch.float64)
    if corners:
        src = dst * ((size_in - 1) / (size_out - 1) if size_out > 1 else 0.0)
    else:
        src = ((dst + 0.5) * (size_in / size_out) - 0.5).clamp_min(0.0)
    lo = src.floor().long().clamp_max(size_in - 1)
    hi = (lo + 1).clamp_max(size_in - 1)
    frac = src - lo.to(torch.float64)
    device = like.device
    return (lo.to(device), hi.to(device), (1.0 - frac).to(like.dtype).to(device),
            frac.to(like.dtype).to(device))  # fmt: skip


def _blend(x: torch.Tensor, dim: int, lo, hi, w_lo, w_hi) -> torch.Tensor:
    """``x[lo] * w_lo + x[hi] * w_hi`` along ``dim``, each operation a kernel of its own (no
    fused multiply-add whose use would depend on where a thread's share starts)."""
    out = x.index_select(dim, lo).mul_(w_lo)
    return out.add_(x.index_select(dim, hi).mul_(w_hi))


def _tf1_taps(size_in: int, size_out: int, like: torch.Tensor):
    src = torch.arange(size_out, dtype=like.dtype, device=like.device) * (size_in / size_out)
    lo = src.floor().long().clamp_max(size_in - 1)
    return lo, (lo + 1).clamp_max(size_in - 1), src - lo.to(like.dtype)


def _resize_tf1(x: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    y0, y1, fy = _tf1_taps(x.shape[-2], shape[0], x)
    x0, x1, fx = _tf1_taps(x.shape[-1], shape[1], x)
    top = x[..., y0, :] + (x[..., y1, :] - x[..., y0, :]) * fy[:, None]
    return top[..., x0] + (top[..., x1] - top[..., x0]) * fx


def photo_detail(
    original: torch.Tensor,
    previous: tuple[int, int],
    shape: tuple[int, int],
    mode: str = "corners",
) -> torch.Tensor:
    """Keras: the photo's detail at ``shape`` lost by having passed through ``previous``."""
    return resize(original, shape, mode) - resize(resize(original, previous, mode), shape, mode)
