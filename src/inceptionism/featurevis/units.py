"""What a feature-visualisation render maximises: a unit per image (an
:class:`~inceptionism.ops.objectives.Objective` or a :class:`Direction`), each image's value
of its own unit, and the diversity penalty between a batch's images."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from inceptionism.errors import ConfigError
from inceptionism.models import DreamModel
from inceptionism.ops.numerics import fixed_mean, fixed_sum
from inceptionism.ops.objectives import Context, Objective


@dataclass(frozen=True)
class Direction:
    """The mean over positions of the activation's projection on a unit ``vector`` in
    ``layer``'s channel space (Lucid's direction objective); ``cosine`` uses the cosine
    similarity instead, which ignores the activation's length."""

    layer: str
    vector: tuple[float, ...]
    cosine: bool = False

    @property
    def layers(self) -> list[str]:
        return [self.layer]

    def __call__(self, activations, statistic="mean", border=0, context=None) -> torch.Tensor:
        a = activations[self.layer]
        v = torch.tensor(self.vector, dtype=a.dtype, device=a.device)
        if v.numel() != a.shape[1]:
            raise ConfigError(
                f"direction has {v.numel()} components; {self.layer} has {a.shape[1]} channels"
            )
        v = v / v.norm().clamp(min=1e-12)
        shape = (1, -1) + (1,) * (a.ndim - 2)
        dots = (a * v.view(shape)).sum(dim=1)
        if self.cosine:
            dots = dots / a.norm(dim=1).clamp(min=1e-6)
        return fixed_mean(dots)


Unit = Objective | Direction


def class_objective(index: int, minus_mean: bool = False, classes: int = 1000) -> Objective:
    """Class ``index``'s logit; with ``minus_mean`` the logit minus the mean of the other
    ``classes - 1`` logits (rewards what is specific to the class, not what raises all logits).

    ``l_c - (S - l_c)/(K-1) = K/(K-1) * (l_c - S/K)``: two terms of the usual grammar.
    """
    if not 0 <= index < classes:
        raise ConfigError(f"class {index} is out of range (0..{classes - 1})")
    if not minus_mean:
        return Objective.parse(f"logits:{index}")
    k = classes / (classes - 1)
    return Objective.parse(f"logits:{index}") * k - Objective.parse("logits") * k


def as_unit(unit: str | Unit) -> Unit:
    return Objective.parse(unit) if isinstance(unit, str) else unit


def gram_similarity(a: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity between the Gram matrices of a batch's activations (N, C, H, W),
    over all ordered pairs of distinct images; 0 for a batch of one."""
    n = a.shape[0]
    if n < 2:
        return fixed_sum(a) * 0.0
    flat = a.flatten(2)  # (N, C, HW)
    grams = flat @ flat.transpose(1, 2)  # (N, C, C)
    grams = torch.nn.functional.normalize(grams.flatten(1), dim=1)
    sims = grams @ grams.T
    return (fixed_sum(sims) - fixed_sum(sims.diagonal())) / (n * (n - 1))


def unit_values(
    model: DreamModel, x: torch.Tensor, units: Sequence[Unit], size: tuple[int, int],
    extra_layers: Sequence[str] = (),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:  # fmt: skip
    """Each image's own unit value, (N,), from one forward pass, and the activations."""
    names = list(dict.fromkeys([n for u in units for n in u.layers] + list(extra_layers)))
    acts = model.activations(x, names)
    strides = {n: model.layer(n).stride for n in names}
    context = Context(
        strides=strides, full_size=size, level_size=(int(x.shape[-2]), int(x.shape[-1]))
    )
    values = [
        unit({n: acts[n][i : i + 1] for n in unit.layers}, "mean", 0, context)
        for i, unit in enumerate(units)
    ]
    return torch.stack(values), acts
