"""One gradient-ascent step: jitter, gradient of the objective, normalisation, update, clip."""

from __future__ import annotations

import torch

from .errors import ConfigError
from .models import DreamModel
from .objectives import Objective


def normalize_gradient(g: torch.Tensor, mode: str) -> torch.Tensor:
    """``l1``: divide by max(mean |g|, 1e-7) (Keras, Google); ``std``: by std(g) + 1e-8 (TF's
    ``reduce_std``, the population standard deviation)."""
    if mode == "l1":
        return g / g.abs().mean().clamp_min(1e-7)
    if mode == "std":
        return g / (g.std(correction=0) + 1e-8)
    raise ConfigError(f"unknown gradient normalisation {mode!r}; valid: l1, std")


def random_shift(jitter: int, generator: torch.Generator) -> tuple[int, int]:
    """A (dy, dx) roll drawn uniformly from [-jitter, jitter] for each axis."""
    if jitter <= 0:
        return 0, 0
    dy, dx = torch.randint(-jitter, jitter + 1, (2,), generator=generator).tolist()
    return dy, dx


def objective_gradient(
    model: DreamModel,
    x: torch.Tensor,
    objective: Objective,
    statistic: str = "l2",
    border: int = 2,
    shift: tuple[int, int] = (0, 0),
) -> tuple[float, torch.Tensor]:
    """The objective's value and its gradient w.r.t. ``x``, evaluated on ``x`` rolled by ``shift``.

    The gradient comes back un-rolled, aligned with ``x``. Only the image gets a gradient.
    """
    dy, dx = shift
    rolled = torch.roll(x, (dy, dx), dims=(-2, -1)) if (dy or dx) else x
    rolled = rolled.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = objective(model.activations(rolled, objective.layers), statistic, border)
        (g,) = torch.autograd.grad(loss, rolled)
    if dy or dx:
        g = torch.roll(g, (-dy, -dx), dims=(-2, -1))
    return float(loss.detach()), g


def ascent_step(
    x: torch.Tensor, g: torch.Tensor, step_size: float, grad_norm: str, clip: bool
) -> torch.Tensor:
    """``x + step_size * normalise(g)``, clipped to [0, 1] when asked."""
    x = x + step_size * normalize_gradient(g, grad_norm)
    return x.clamp(0.0, 1.0) if clip else x
