"""Feature visualisation the way the field does it (Olah et al., "Feature Visualization",
Distill 2017; Lucid): optimise a decorrelated parameterisation of the image (a 1/f-scaled
Fourier spectrum, colours along ImageNet's principal axes) with Adam, through random
transforms before every step, for a whole batch of units at once.

One call renders many units: image ``i`` of a batch has its own objective ("unit"), so one
forward/backward pass serves the whole batch. A unit is an :class:`~.objectives.Objective`
(``"block9:3"``, a neuron ``"block9:3@4,4"``, a class ``"logits:963"``; see
:func:`class_objective` for logit-minus-mean-of-others) or a :class:`Direction` in a layer's
activation space. We maximise, as everywhere in this package.

    images = render_channels(model, "block9", range(16), steps=256, size=128)

DeepDream of photos (``dream``) does not use this module; it keeps its own loop.

The pieces live beside this module: the settings and the record of a render in
``featurevis.config``, the units and their values in ``featurevis.units``, the measures of a
rendered picture in ``featurevis.evaluate``; their names stay importable from here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from inceptionism.engine.presets import LUCID_DESCRIPTION
from inceptionism.errors import ConfigError
from inceptionism.featurevis.config import (
    FEATUREVIS_PRESETS,
    MAX_RENDER_PIXELS,
    FeatureVisConfig,
    Rendering,
    read_featurevis,
)
from inceptionism.featurevis.evaluate import (
    evaluation_transforms,
    high_frequency_share,
    robust_activation,
)
from inceptionism.featurevis.params import make_param
from inceptionism.featurevis.transforms import parse_transforms
from inceptionism.featurevis.units import (
    Direction,
    Unit,
    as_unit,
    class_objective,
    gram_similarity,
    unit_values,
)
from inceptionism.models import DreamModel
from inceptionism.ops.numerics import fixed_abs_mean, fixed_sum
from inceptionism.ops.objectives import Objective

__all__ = [
    "FEATUREVIS_PRESETS",
    "LUCID_DESCRIPTION",
    "MAX_RENDER_PIXELS",
    "Direction",
    "FeatureVisConfig",
    "RenderProgress",
    "Rendering",
    "Unit",
    "as_unit",
    "class_objective",
    "evaluation_transforms",
    "gram_similarity",
    "high_frequency_share",
    "read_featurevis",
    "render",
    "render_channels",
    "render_classes",
    "render_diverse",
    "render_group",
    "robust_activation",
]


RenderProgress = Callable[[int, int, float], None]  # (steps done, steps total, mean value)


def _generator(seed: int, stream: int, index: int) -> torch.Generator:
    # independent, reproducible streams for starts (stream 0) and transforms (stream 1)
    return torch.Generator().manual_seed((seed * 1_000_003 + stream * 7919 + index) % (2**63))


def render(
    model: DreamModel,
    units: Iterable[str | Unit],
    config: FeatureVisConfig | None = None,
    on_progress: RenderProgress | None = None,
    init: torch.Tensor | None = None,
) -> torch.Tensor:
    """Render one image per unit, ``config.batch`` units per forward/backward pass.

    Returns (N, 3, size, size) in [0, 1] on the model's device. ``init`` (N, 3, H, W) in [0, 1]
    starts from given images instead of the seeded random start. ``on_progress`` is called
    after every step with the steps done and to do over all batches, and the batch's mean
    unit value.
    """
    config = config or FeatureVisConfig()
    targets = [as_unit(u) for u in units]
    if not targets:
        raise ConfigError("nothing to render: no units given")
    for name in {n for u in targets for n in u.layers}:
        model.layer(name)  # unknown layer names fail before any work, with the valid names
    chain = parse_transforms(config.transforms)
    size = (config.size, config.size)
    total = math.ceil(len(targets) / config.batch) * config.steps
    out, done = [], 0
    for b, start in enumerate(range(0, len(targets), config.batch)):
        chunk = targets[start : start + config.batch]
        param = _batch_param(chunk, start, config, model.device)
        if init is not None:
            param.set_image(init[start : start + len(chunk)].to(model.device))
        opt = torch.optim.Adam(param.parameters(), lr=config.lr, eps=config.damping or 1e-8)
        gen = _generator(config.seed, 1, b)
        div_layer = config.diversity_layer or chunk[0].layers[0]
        extra = [div_layer] if config.diversity > 0 else []
        for t in range(config.steps):
            if config.coarse_to_fine > 0 and hasattr(param.basis, "cutoff"):
                frac = min(1.0, (t + 1) / max(1.0, config.coarse_to_fine * config.steps))
                param.basis.cutoff = 0.5 * math.sqrt(2) * frac
            opt.zero_grad(set_to_none=True)
            with torch.enable_grad():
                x = chain(param(), gen)
                values, acts = unit_values(model, x, chunk, size, extra)
                loss = -fixed_sum(values)
                if config.diversity > 0:
                    loss = loss + config.diversity * len(chunk) * gram_similarity(acts[div_layer])
                loss.backward()
            if config.damping > 0:
                _normalise_per_image(next(param.parameters()).grad)
            opt.step()
            done += 1
            if on_progress is not None:
                on_progress(done, total, float(values.detach().mean()))
        if hasattr(param.basis, "cutoff"):
            param.basis.cutoff = None
        with torch.no_grad():
            out.append(param().detach())
    return torch.cat(out)


def _normalise_per_image(g: torch.Tensor) -> None:
    scale = torch.stack([fixed_abs_mean(image) for image in g])
    g.div_(scale.clamp(min=1e-20).view(-1, *[1] * (g.ndim - 1)))


def _batch_param(chunk: Sequence[Unit], start: int, config: FeatureVisConfig, device):
    """The batch's parameterisation, each image's start drawn from its unit's own stream."""
    shape = (len(chunk), 3, config.size, config.size)
    param = make_param(config.param, shape, config.decorrelate, config.valid, config.sd,
                       config.decay_power, device=device)  # fmt: skip
    leaf = next(param.parameters())
    with torch.no_grad():
        for i in range(len(chunk)):
            g = _generator(config.seed, 0, start + i)
            leaf[i].copy_(config.sd * torch.randn(leaf.shape[1:], generator=g))
    return param


def render_channels(
    model: DreamModel,
    layer: str,
    channels: Iterable[int],
    steps: int | None = None,
    size: int | None = None,
    param: str | None = None,
    transforms: str | None = None,
    batch: int | None = None,
    seed: int | None = None,
    on_progress: RenderProgress | None = None,
    config: FeatureVisConfig | None = None,
) -> list[torch.Tensor]:
    """One (3, size, size) picture per channel of ``layer``: what makes each channel fire.

    Arguments left as None come from ``config`` (default: the ``lucid`` preset).
    """
    config = _with(config, steps=steps, size=size, param=param, transforms=transforms,
                   batch=batch, seed=seed)  # fmt: skip
    channels = list(channels)
    n = model.layer(layer).channels
    bad = [c for c in channels if not 0 <= c < n]
    if bad:
        raise ConfigError(f"channels {bad}: {layer} has channels 0..{n - 1}")
    units = [Objective.parse(f"{layer}:{c}") for c in channels]
    return list(render(model, units, config, on_progress))


def render_classes(
    model: DreamModel,
    classes: Iterable[int],
    minus_mean: bool = True,
    on_progress: RenderProgress | None = None,
    config: FeatureVisConfig | None = None,
    **options: Any,
) -> list[torch.Tensor]:
    """One picture per class logit (by default the logit minus the mean of the others)."""
    config = _with(config, **options)
    k = model.layer("logits").channels
    units = [class_objective(c, minus_mean, k) for c in classes]
    return list(render(model, units, config, on_progress))


def render_diverse(
    model: DreamModel,
    unit: str | Unit,
    count: int,
    diversity: float = 1.0,
    on_progress: RenderProgress | None = None,
    config: FeatureVisConfig | None = None,
    **options: Any,
) -> list[torch.Tensor]:
    """``count`` different pictures of one unit in one batch, pushed apart by the diversity
    penalty (their Gram matrices' similarity)."""
    config = _with(config, **options).replace(diversity=diversity, batch=count)
    return list(render(model, [as_unit(unit)] * count, config, on_progress))


def _with(config: FeatureVisConfig | None, **changes: Any) -> FeatureVisConfig:
    config = config or FEATUREVIS_PRESETS["lucid"]
    return config.replace(**{k: v for k, v in changes.items() if v is not None})


def render_group(
    model: DreamModel, renderings: Sequence[Rendering], on_progress: RenderProgress | None = None
) -> list[torch.Tensor]:
    """The pictures of renderings that share one render (same config and units), in one
    batched render: each its own (3, H, W) image."""
    first = renderings[0]
    if any((r.config, r.units) != (first.config, first.units) for r in renderings):
        raise ConfigError("renderings rendered together must share their config and units")
    images = render(model, first.units, first.config, on_progress)
    return [images[r.index] for r in renderings]
