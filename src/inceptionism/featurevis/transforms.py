"""Transformation robustness: small random, differentiable changes of the image before every
step, so that what is optimised is a picture the network recognises whatever its exact
placement, size and angle (Olah et al. 2017), not a pattern tuned to one pixel grid.

Transforms are callables ``t(x, generator) -> x`` on (N, 3, H, W) batches; one draw per call is
shared by the batch. Every random choice comes from the generator passed in.

    chain = parse_transforms("standard")          # or "none", or "pad=12,jitter=8,rotate=10"
    y = chain(x, torch.Generator().manual_seed(0))

Names: ``pad[=PX]`` (constant mid-grey border), ``jitter[=PX]`` (random crop losing up to PX
pixels), ``scale[=R]`` (random zoom by one of 11 factors in 1-R..1+R), ``rotate[=DEG]``
(random rotation by a whole number of degrees in -DEG..DEG, 0 drawn more often).
``standard`` is Lucid's set: pad 12, jitter 8, scale 0.1, rotate 10, jitter 4.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from inceptionism.errors import ConfigError
from inceptionism.ops.octaves import resize


def _choice(values: Sequence[float], generator: torch.Generator | None) -> float:
    i = int(torch.randint(len(values), (1,), generator=generator))
    return values[i]


@dataclass(frozen=True)
class Pad:
    """Pad every side by ``width`` pixels of ``value`` (mid-grey): room for jitter and rotation
    without the image's own edge becoming a feature."""

    width: int = 12
    value: float = 0.5

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.width <= 0:
            return x
        return F.pad(x, (self.width,) * 4, mode="constant", value=self.value)

    def __str__(self) -> str:
        return f"pad={self.width}"


@dataclass(frozen=True)
class Jitter:
    """Crop ``d`` pixels off each axis at a random offset in [0, d]: a shift of up to d pixels."""

    d: int = 8

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        d = min(self.d, h - 1, w - 1)
        if d <= 0:
            return x
        oy, ox = torch.randint(d + 1, (2,), generator=generator).tolist()
        return x[..., oy : oy + h - d, ox : ox + w - d]

    def __str__(self) -> str:
        return f"jitter={self.d}"


@dataclass(frozen=True)
class RandomScale:
    """Resize (bilinear) by a factor drawn from ``factors``."""

    factors: tuple[float, ...] = tuple(1 + (i - 5) / 50 for i in range(11))

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        s = _choice(self.factors, generator)
        h, w = x.shape[-2:]
        size = (max(1, round(h * s)), max(1, round(w * s)))
        if size == (h, w):
            return x
        return resize(x, size, "half-pixel")  # interpolate's sampling, thread-invariant

    @classmethod
    def spread(cls, r: float) -> RandomScale:
        """11 factors evenly spaced in [1 - r, 1 + r]."""
        return cls(tuple(1 + r * (i - 5) / 5 for i in range(11)))

    def __str__(self) -> str:
        return f"scale={format(max(self.factors) - 1, 'g')}"


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle (degrees) drawn from ``angles``; corners take the
    border's colour."""

    angles: tuple[float, ...] = tuple(range(-10, 11)) + (0,) * 5

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        a = math.radians(_choice(self.angles, generator))
        if a == 0:
            return x
        n, _, h, w = x.shape
        c, s = math.cos(a), math.sin(a)
        # affine_grid works in [-1, 1] coordinates per axis: correct for the aspect ratio
        theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=x.dtype)
        grid = F.affine_grid(theta.expand(n, 2, 3).to(x.device), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    @classmethod
    def spread(cls, degrees: int) -> RandomRotate:
        """Whole degrees in [-degrees, degrees], with 0 drawn five extra times (as Lucid)."""
        return cls(tuple(range(-degrees, degrees + 1)) + (0,) * 5)

    def __str__(self) -> str:
        return f"rotate={format(max(self.angles), 'g')}"


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order; ``str()`` gives back a spec ``parse_transforms`` accepts."""

    transforms: tuple = ()

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x

    def __len__(self) -> int:
        return len(self.transforms)

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.transforms) or "none"


def standard_transforms() -> Compose:
    """Lucid's default robustness set."""
    scale, rotate = RandomScale.spread(0.1), RandomRotate.spread(10)
    return Compose((Pad(12), Jitter(8), scale, rotate, Jitter(4)))


NAMES = ("pad", "jitter", "scale", "rotate")


def _make(name: str, value: str | None) -> object:
    try:
        if name == "pad":
            return Pad(int(value) if value else 12)
        if name == "jitter":
            return Jitter(int(value) if value else 8)
        if name == "scale":
            r = float(value) if value else 0.1
            if not 0 <= r < 1:
                raise ValueError("scale spread must be in [0, 1)")
            return RandomScale.spread(r)
        if name == "rotate":
            return RandomRotate.spread(int(value) if value else 10)
    except ValueError as e:
        raise ConfigError(f"transform {name}: bad value {value!r} ({e})") from None
    raise ConfigError(
        f"unknown transform {name!r}; valid: standard, none, or a list of {', '.join(NAMES)} "
        "(each NAME or NAME=VALUE), e.g. 'pad=12,jitter=8,scale=0.1,rotate=10'"
    )


def parse_transforms(spec: str | Compose | None) -> Compose:
    """``standard``, ``none`` (or empty/None), or ``NAME[=VALUE],...`` (see the module doc)."""
    if isinstance(spec, Compose):
        return spec
    text = (spec or "none").strip().lower()
    if text == "none" or not text:
        return Compose()
    if text == "standard":
        return standard_transforms()
    parts = []
    for item in text.split(","):
        name, _, value = item.strip().partition("=")
        if not name:
            raise ConfigError(f"empty transform name in {spec!r}")
        if name in ("standard", "none"):
            raise ConfigError(f"{name!r} stands alone; it cannot be listed with others")
        parts.append(_make(name, value.strip() or None))
    return Compose(tuple(parts))
