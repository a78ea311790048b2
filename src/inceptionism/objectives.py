"""What a dream maximises: a weighted sum of per-layer activation statistics.

One sign convention, stated once: the engine *maximises* the objective; a negative weight
suppresses a layer. Objectives are values: ``Objective.parse("block9=0.5") + 2 * other``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from .errors import ConfigError

STATISTICS = ("l2", "mean")


@dataclass(frozen=True)
class Term:
    layer: str
    weight: float = 1.0


@dataclass(frozen=True)
class Objective:
    """A weighted sum of layer terms; the statistic (``l2`` or ``mean``) is chosen at evaluation."""

    terms: tuple[Term, ...]

    @classmethod
    def parse(cls, spec: str) -> Objective:
        """Parse ``"name=weight,name=weight"`` (weight defaults to 1)."""
        terms = []
        for part in spec.split(","):
            part = part.strip()
            if not part:
                raise ConfigError(f"empty layer in {spec!r} (expected 'name=weight,name=weight')")
            name, sep, weight = part.partition("=")
            name = name.strip()
            if not name:
                raise ConfigError(f"missing layer name in {part!r} of {spec!r}")
            try:
                w = float(weight) if sep else 1.0
            except ValueError:
                raise ConfigError(f"bad weight {weight!r} for layer {name!r} in {spec!r}") from None
            if not math.isfinite(w):
                raise ConfigError(f"weight of layer {name!r} must be finite, got {weight!r}")
            terms.append(Term(name, w))
        return cls(tuple(terms))

    @classmethod
    def of(cls, layers: str | Objective | Mapping[str, float] | Iterable) -> Objective:
        """Coerce a spec string, mapping ``{name: weight}`` or ``[(name, weight)]`` pairs."""
        if isinstance(layers, Objective):
            return layers
        if isinstance(layers, str):
            return cls.parse(layers)
        items = layers.items() if isinstance(layers, Mapping) else layers
        return cls(tuple(Term(str(n), float(w)) for n, w in items))

    @property
    def layers(self) -> list[str]:
        """Distinct layer names, in first-mention order."""
        return list(dict.fromkeys(t.layer for t in self.terms))

    def pairs(self) -> tuple[tuple[str, float], ...]:
        return tuple((t.layer, t.weight) for t in self.terms)

    def __str__(self) -> str:
        return ",".join(f"{t.layer}={t.weight:g}" for t in self.terms)

    def __add__(self, other: Objective) -> Objective:
        return Objective(self.terms + other.terms)

    def __mul__(self, k: float) -> Objective:
        return Objective(tuple(Term(t.layer, t.weight * k) for t in self.terms))

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    def __call__(
        self, activations: Mapping[str, torch.Tensor], statistic: str = "l2", border: int = 2
    ) -> torch.Tensor:
        return sum(
            t.weight * layer_statistic(activations[t.layer], statistic, border) for t in self.terms
        )


def layer_statistic(a: torch.Tensor, statistic: str, border: int = 2) -> torch.Tensor:
    """``l2``: the Keras seed's ``sum(a[..., b:-b, b:-b]**2) / a.numel()`` (border pixels excluded,
    scaled by the whole activation's size); ``mean``: the TF notebooks' mean activation."""
    if statistic == "l2":
        h, w = a.shape[-2:]
        if border > 0 and h > 2 * border and w > 2 * border:
            inner = a[..., border:-border, border:-border]
        else:  # a map too small to lose its border keeps it
            inner = a
        return inner.square().sum() / a.numel()
    if statistic == "mean":
        return a.mean()
    raise ConfigError(f"unknown objective statistic {statistic!r}; valid: {', '.join(STATISTICS)}")
