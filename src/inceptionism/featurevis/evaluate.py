"""How a rendered picture is judged: its transformation-robust activation and the share of
its energy at high spatial frequencies (benchmarks/bench_featurevis.py, the tests)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from inceptionism.featurevis.transforms import Compose, Jitter, RandomRotate, RandomScale
from inceptionism.featurevis.units import Unit, as_unit, unit_values
from inceptionism.models import DreamModel


def evaluation_transforms() -> Compose:
    """The random transforms ``robust_activation`` averages over (no padding: the picture only)."""
    return Compose((Jitter(8), RandomScale.spread(0.1), RandomRotate.spread(10)))


@torch.no_grad()
def robust_activation(
    model: DreamModel,
    images: torch.Tensor,
    units: Sequence[str | Unit],
    n: int = 16,
    seed: int = 12345,
) -> torch.Tensor:
    """Transformation-robust activation, (N,): each image's own unit value averaged over ``n``
    seeded random jitter/scale/rotation transforms of the image (the same ``n`` for every
    image and every call with this seed)."""
    targets = [as_unit(u) for u in units]
    chain, gen = evaluation_transforms(), torch.Generator().manual_seed(seed)
    size = (int(images.shape[-2]), int(images.shape[-1]))
    total = torch.zeros(images.shape[0], device=images.device)
    for _ in range(n):
        values, _ = unit_values(model, chain(images, gen), targets, size)
        total += values
    return total / n


def high_frequency_share(images: torch.Tensor, cutoff: float = 0.25) -> torch.Tensor:
    """Share of each image's energy (mean removed) at spatial frequencies above ``cutoff``
    cycles per pixel (0.25: half the Nyquist frequency), (N,)."""
    x = images - images.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.rfft2(x, norm="ortho").abs().square()
    h, w = x.shape[-2:]
    fy = torch.fft.fftfreq(h, device=x.device)[:, None]
    fx = torch.fft.rfftfreq(w, device=x.device)[None, :]
    high = (fx**2 + fy**2).sqrt() > cutoff
    # the rfft half-plane counts interior columns once for two conjugate halves: weight them 2x
    weight = torch.full((w // 2 + 1,), 2.0, device=x.device)
    weight[0] = 1.0
    if w % 2 == 0:
        weight[-1] = 1.0
    power = power * weight
    return (power * high).sum(dim=(-3, -2, -1)) / power.sum(dim=(-3, -2, -1)).clamp(min=1e-12)
