"""What happens to a gradient before the step: smoothing, a total-variation pull, and
normalisation (mean |g|, standard deviation, or per band of a Laplacian pyramid)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from inceptionism.errors import ConfigError
from inceptionism.ops.numerics import fixed_abs_mean, fixed_rms, fixed_std, fixed_sum

# The TF notebook's 5x5 binomial kernel: outer([1, 4, 6, 4, 1]) / 16**2.
_K1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _kernel(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    k = torch.outer(_K1, _K1).to(x) * scale
    return k.expand(x.shape[1], 1, 5, 5)


def lap_split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level: (low, high) with ``low`` half the size and ``x == upsample(low) + high``."""
    low = F.conv2d(
        F.pad(x, [2, 2, 2, 2], mode="replicate"), _kernel(x), stride=2, groups=x.shape[1]
    )
    return low, x - _upsample(low, x.shape[-2:])


def _upsample(low: torch.Tensor, shape: tuple[int, int] | torch.Size) -> torch.Tensor:
    """Zero-insertion upsampling filtered by 4x the kernel (a transposed convolution), cropped,
    and divided by the same filter's response to the sample grid so edges are not darkened."""
    n, c, h, w = low.shape
    z = low.new_zeros(n, c, 2 * h, 2 * w)
    z[..., ::2, ::2] = low
    ones = low.new_zeros(1, 1, 2 * h, 2 * w)
    ones[..., ::2, ::2] = 1.0
    up = F.conv2d(F.pad(z, [2, 2, 2, 2]), _kernel(low, 4.0), groups=c)
    norm = F.conv2d(F.pad(ones, [2, 2, 2, 2]), _kernel(ones, 4.0))
    return (up / norm)[..., : shape[0], : shape[1]]


def lap_split_n(x: torch.Tensor, levels: int, split=None, smallest: int = 4) -> list[torch.Tensor]:
    """Laplacian pyramid, coarsest first: [low, high_n, ..., high_1]; stops early on maps
    smaller than ``smallest``. ``split``: one level's split (default :func:`lap_split`)."""
    bands = []
    for _ in range(levels):
        if min(x.shape[-2:]) < smallest:
            break
        x, high = (split or lap_split)(x)
        bands.append(high)
    return [x, *bands[::-1]]


def lap_merge(bands: list[torch.Tensor], up=None) -> torch.Tensor:
    """Inverse of :func:`lap_split_n`: exact reconstruction (``up``: the upsampling that
    matches the split, default :func:`lap_split`'s)."""
    x = bands[0]
    for high in bands[1:]:
        x = (up or _upsample)(x, high.shape[-2:]) + high
    return x


def lap_normalize(g: torch.Tensor, levels: int = 4, eps: float = 1e-10) -> torch.Tensor:
    """TF notebook's lap_normalize: divide each pyramid band by its RMS, then merge. Equalises
    the gradient's frequency bands, so fine pixel noise no longer dominates the step."""
    bands = [b / fixed_rms(b).clamp_min(eps) for b in lap_split_n(g, levels)]
    return lap_merge(bands)


def _same_pad(n: int) -> tuple[int, int]:
    """TensorFlow's "SAME" zero padding (before, after) of a 5-tap, stride-2 filter on ``n``."""
    total = max((-(-n // 2) - 1) * 2 + 5 - n, 0)
    return total // 2, total - total // 2


def _tf1_up(low: torch.Tensor, shape: tuple[int, int] | torch.Size) -> torch.Tensor:
    """``tf.nn.conv2d_transpose(low, 4 * k, shape, [1, 2, 2, 1])`` ("SAME"): the adjoint of the
    stride-2 filter that made ``low``, without the edge correction of :func:`_upsample`."""
    top, _ = _same_pad(shape[0])
    left, _ = _same_pad(shape[1])
    up = F.conv_transpose2d(low, _kernel(low, 4.0), stride=2, groups=low.shape[1])
    return up[..., top : top + shape[0], left : left + shape[1]]


def lap_split_tf1(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The TF1 notebook's ``lap_split``: ``low = conv2d(x, k, stride 2, "SAME")`` (zero
    padding, one pixel less before than after on even sides), ``high = x - conv2d_transpose(
    low, 4k)``. Unlike :func:`lap_split` the borders are not corrected (nor replicated)."""
    (t, b), (left, r) = _same_pad(x.shape[-2]), _same_pad(x.shape[-1])
    low = F.conv2d(F.pad(x, [left, r, t, b]), _kernel(x), stride=2, groups=x.shape[1])
    return low, x - _tf1_up(low, x.shape[-2:])


def lap_split_n_tf1(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """The TF1 notebook's ``lap_split_n``: always ``levels`` splits, coarsest band first."""
    return lap_split_n(x, levels, lap_split_tf1, smallest=0)


def lap_merge_tf1(bands: list[torch.Tensor]) -> torch.Tensor:
    """The TF1 notebook's ``lap_merge``: the inverse of :func:`lap_split_n_tf1`."""
    return lap_merge(bands, _tf1_up)


def lap_normalize_tf1(g: torch.Tensor, levels: int = 4, eps: float = 1e-10) -> torch.Tensor:
    """The TF1 notebook's ``lap_normalize(g, scale_n=levels)``: each band of
    :func:`lap_split_n_tf1` divided by ``max(sqrt(mean(band**2)), eps)`` (its
    ``normalize_std``), merged back; nothing rescaled after."""
    bands = lap_split_n_tf1(g, levels)
    return lap_merge_tf1([b / fixed_rms(b).clamp_min(eps) for b in bands])


def normalize_gradient(
    g: torch.Tensor, mode: str, lap_levels: int = 4, eps: float = 0.0
) -> torch.Tensor:
    """``l1``: divide by max(mean |g|, eps) (Keras, Google; eps 1e-7); ``std``: by std(g) + eps
    (TF's ``reduce_std``, the population standard deviation; eps 1e-8); ``laplacian``:
    :func:`lap_normalize`, then scaled to mean |g| = 1 so step sizes stay comparable with
    ``l1``; ``laplacian-tf1``: :func:`lap_normalize_tf1`, the TF1 notebook's exactly (eps
    1e-10). ``eps`` is in the gradient's own units; 0 means the mode's default above."""
    if mode == "l1":  # vector_norm avoids materialising |g| (one image-sized buffer less)
        return g / fixed_abs_mean(g).clamp_min(eps or 1e-7)
    if mode == "std":
        return g / (fixed_std(g) + (eps or 1e-8))
    if mode == "laplacian":
        g = lap_normalize(g, lap_levels)
        return g / fixed_abs_mean(g).clamp_min(eps or 1e-7)
    if mode == "laplacian-tf1":
        return lap_normalize_tf1(g, lap_levels, eps or 1e-10)
    raise ConfigError(
        f"unknown gradient normalisation {mode!r}; valid: l1, std, laplacian, laplacian-tf1"
    )


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders; sigma in pixels (<= 0: unchanged)."""
    if sigma <= 0:
        return x
    radius = max(1, math.ceil(3 * sigma))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    if radius < 1:
        return x
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(
        F.pad(x, [radius, radius, 0, 0], mode="reflect"),
        k.view(1, 1, 1, -1).expand(c, 1, 1, -1),
        groups=c,
    )
    return F.conv2d(
        F.pad(x, [0, 0, radius, radius], mode="reflect"),
        k.view(1, 1, -1, 1).expand(c, 1, -1, 1),
        groups=c,
    )


def smoothing_sigma(smooth: float, octave: int, octaves: int) -> float:
    """Smoothing grows with the octave: smooth * (i + 1) / n for octave i of n (0-based)."""
    return smooth * (octave + 1) / octaves


def tv_gradient(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Gradient of the isotropic total variation sum(sqrt(dx^2 + dy^2 + eps^2))."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        dx = x[..., :-1, 1:] - x[..., :-1, :-1]
        dy = x[..., 1:, :-1] - x[..., :-1, :-1]
        tv = fixed_sum((dx.square() + dy.square() + eps * eps).sqrt())
        (g,) = torch.autograd.grad(tv, x)
    return g


def with_tv_penalty(g: torch.Tensor, x: torch.Tensor, weight: float) -> torch.Tensor:
    """``g`` minus the total-variation gradient, scaled to ``weight`` times g's mean size."""
    if weight <= 0:
        return g
    t = tv_gradient(x)
    return g - weight * fixed_abs_mean(g) / fixed_abs_mean(t).clamp_min(1e-12) * t
