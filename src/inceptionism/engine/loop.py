"""The dream loop: octaves of gradient ascent with detail carried between them.

``dream_tensor()`` works on (1, 3, H, W) tensors in [0, 1]; the job runner (jobs/run.py) and the
public ``dream()`` adapter (engine/api.py: images of any kind in, the same kind out) call it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from inceptionism.engine.ascent import ascent_step, objective_gradient, random_shift, tile_size
from inceptionism.engine.config import PIXEL_RANGES, DreamConfig
from inceptionism.engine.techniques import guide_features, keep_colors, prepare_mask
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.models import DreamModel, get_spec, layer_index, layer_table, list_models
from inceptionism.ops.gradients import gaussian_blur, smoothing_sigma, with_tv_penalty
from inceptionism.ops.objectives import Context, Objective, neuron_position
from inceptionism.ops.octaves import (
    grown_shapes,
    octave_shapes,
    photo_detail,
    resize,
    scaled_shapes,
    successive_pyramid,
    successive_shapes,
)
from inceptionism.ops.precision import tune_device


@dataclass(frozen=True)
class Progress:
    """Reported after every step, and once more at the end of each octave (``octave_done``)."""

    octave: int  # 1-based
    octaves: int
    step: int  # steps done in this octave
    steps: int
    loss: float
    shape: tuple[int, int]
    elapsed: float  # seconds since the dream started
    fraction: float  # share of the whole dream's work done, weighted by pixels per step
    octave_done: bool = False
    stopped_early: bool = False  # max_loss reached in this octave
    image: torch.Tensor | None = None  # the current image (1, 3, h, w), at octave ends

    @property
    def eta(self) -> float | None:
        if self.fraction <= 0:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction


ProgressFn = Callable[[Progress], Any]


class LoopHooks(Protocol):
    """Where the loop lets its caller act on the process (threads, memory): before each level
    (``tiled``: whether its gradient is taken tile by tile), after each step, at the end."""

    def level(self, tiled: bool) -> None: ...

    def step(self) -> None: ...

    def end(self) -> None: ...


def resolve_objective(model: DreamModel | str, config: DreamConfig) -> Objective:
    """The config's layers (or the model's defaults), checked against the model's layer table:
    names, channel indexes, and that neurons target layers with a grid. ``model`` may be a
    registered name: then nothing is loaded, only the table is built."""
    if isinstance(model, DreamModel):
        name, table, defaults = model.name, model.layers, model.spec.default_layers
    else:
        spec = get_spec(model)
        name, defaults = spec.name, spec.default_layers
        table = layer_index(layer_table(spec.name))
    objective = Objective.of(config.layers if config.layers is not None else defaults)
    for term in objective.terms:
        info = table.get(term.layer)
        if info is None:
            raise UnknownNameError("layer", term.layer, list(table), where=name,
                                   hint=_other_models(term.layer, name))  # fmt: skip
        if term.channels is not None and max(term.channels) >= info.channels:
            raise ConfigError(
                f"channel {max(term.channels)} of {term.layer!r} is out of range "
                f"({info.channels} channels: 0..{info.channels - 1})"
            )
        if term.neuron is not None and info.stride == 0:
            raise ConfigError(f"{term.layer!r} has no spatial grid; a neuron needs one")
    return objective


def _other_models(layer: str, model: str) -> str:
    """ "mixed4 is a layer of inception_v3; pass --model inception_v3", or "" (the registered
    models' layer tables, built without weights)."""
    for other in list_models():
        if other != model and layer in layer_index(layer_table(other)):
            return f"{layer} is a layer of {other}; pass --model {other}."
    return ""


def dream_tensor(
    image: torch.Tensor,
    model: DreamModel,
    config: DreamConfig,
    on_progress: ProgressFn | None = None,
    guide: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    hooks: LoopHooks | None = None,
) -> torch.Tensor:
    """Dream a (1, 3, H, W) image in [0, 1] on ``model``'s device; returns a new tensor.

    ``guide``: an image (1, 3, h, w) whose features the "guide" objective moves towards.
    ``mask``: (1, 1 or 3, h, w) in [0, 1]; the dream happens where it is white, softly.
    The image is the start whatever ``config.init`` says; see :func:`start_image`.
    ``hooks``: the caller's process policy (threads.ProcessPolicy); the pixels never depend on
    it.
    """
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise ConfigError(
            f"expected an image tensor of shape (1, 3, H, W), got {tuple(image.shape)}"
        )
    objective = resolve_objective(model, config)
    model = model.with_precision(config.precision)
    tune_device(model.device)
    original = image.detach().to(model.device, model.mean.dtype)  # type: ignore[arg-type]
    full_size = (int(original.shape[-2]), int(original.shape[-1]))
    _check_neurons(model, objective, full_size)
    guide_feats = _guide_features(model, objective, config, guide)
    if mask is not None and mask.ndim == 2:
        mask = mask[None, None]
    weight = None if mask is None else prepare_mask(mask.to(original), *full_size)
    shapes, bases = pyramid(original, config, full_size)
    level = _Level(model, objective, config, full_size, guide_feats, hooks,
                   torch.Generator().manual_seed(config.seed))  # fmt: skip
    work = [config.steps * h * w for h, w in shapes]
    total_work, start = float(sum(work)) or 1.0, time.perf_counter()

    def report(done_work: float, **kw: Any) -> None:
        if on_progress is not None:
            on_progress(Progress(octaves=len(shapes), steps=config.steps,
                                 elapsed=time.perf_counter() - start,
                                 fraction=min(done_work / total_work, 1.0), **kw))  # fmt: skip

    how = config.octave_resize
    if hooks is not None:
        hooks.step()  # e.g. the first sample of the load: the first steps already adapt
    x = resize(original, shapes[0], how)
    detail = torch.zeros_like(x)
    try:
        for i, shape in enumerate(shapes):
            if config.detail == "dream":
                base = bases.pop(0)  # the finished levels' bases are not kept
                x = resize(detail, shape, how).add_(base)  # a fresh tensor or detail itself, ours
                del detail  # one full-size tensor less while the largest level runs
            else:
                x = resize(x, shape, how)
            if x is original:  # updated in place below; the start stays as it was
                x = x.clone()
            level_mask = None if weight is None else resize(weight, shape)

            def stepped(step: int, loss: float, i: int = i, shape: tuple[int, int] = shape) -> None:
                done = sum(work[:i]) + step * shape[0] * shape[1]
                report(float(done), octave=i + 1, step=step, loss=loss, shape=shape)

            x, loss, stopped, step = level.run(x, i, len(shapes), level_mask, stepped)
            if config.detail == "dream":
                detail = x - base
            elif config.detail == "photo" and i > 0:
                x = x + photo_detail(original, shapes[i - 1], shape, how)
                if config.clip:
                    x = x.clamp(0.0, 1.0)
            snapshot = None  # a copy: x changes in place on the next level (the last: read only)
            if on_progress is not None:
                snapshot = x.detach().clone() if i + 1 < len(shapes) else x.detach()
            report(float(sum(work[: i + 1])), octave=i + 1, step=step, loss=loss, shape=shape,
                   octave_done=True, stopped_early=stopped, image=snapshot)  # fmt: skip
    finally:
        if hooks is not None:
            hooks.end()
    x = resize(x.detach(), full_size, how).clamp(0.0, 1.0)  # levels above come back down
    if weight is not None:  # the unmasked part stays the start image exactly
        x = original + weight * (x - original)
    if config.keep_colors:
        x = keep_colors(x, original)
    return x


def _check_neurons(model: DreamModel, objective: Objective, full_size: tuple[int, int]) -> None:
    """Neuron coordinates checked against the full-size grid, before any work."""
    for term in objective.terms:
        if term.neuron is not None:
            strides = {term.layer: model.layer(term.layer).stride}
            neuron_position(term, (1, 1), Context(strides=strides, full_size=full_size))


def _guide_features(
    model: DreamModel, objective: Objective, config: DreamConfig, guide: torch.Tensor | None
) -> dict[str, torch.Tensor] | None:
    """The guide image's features at the objective's layers (for ``objective="guide"``)."""
    if config.objective != "guide":
        if guide is not None:
            raise ConfigError("a guide image needs objective='guide'")
        return None
    if guide is None:
        raise ConfigError("the 'guide' objective needs a guide image (--guide IMAGE)")
    usable = [t for t in objective.terms if t.neuron is None and model.layer(t.layer).stride]
    if not usable:
        raise ConfigError(
            "the guide has nothing to act on: it needs a layer or channel term with a "
            "spatial grid (not only neurons or class logits)"
        )
    return guide_features(model, guide, list(dict.fromkeys(t.layer for t in usable)))


def pyramid(
    original: torch.Tensor, config: DreamConfig, full_size: tuple[int, int]
) -> tuple[list[tuple[int, int]], list[torch.Tensor]]:
    """The octaves' (h, w), smallest first, and for ``detail="dream"`` each level's base.

    Each detail flavour comes with its seed's own pyramid: Keras sizes every level from the
    original; Google zooms each level from the previous one; the TF2 tutorial scales the
    original's size by scale**n, levels above the original included; the TF1 notebook (its
    resize, octave_resize="tf1") grows each level from the one before."""
    how, n, scale = config.octave_resize, config.octaves, config.octave_scale
    if config.detail == "photo":
        return octave_shapes(*full_size, n, scale), []
    if config.detail == "none" and how == "tf1":  # the TF1 notebook's sizes, with its resize
        return grown_shapes(*full_size, n - 1, config.octaves_above, scale), []
    if config.detail == "none":
        return scaled_shapes(*full_size, n - 1, config.octaves_above, scale), []
    shapes = successive_shapes(*full_size, n, scale)
    return shapes, successive_pyramid(original, shapes, how)


class _Level:
    """The steps of one octave: gradient (tiled, jittered, border excluded), smoothing and TV,
    the normalised ascent step; the max-loss stop. What every level shares is held here."""

    def __init__(self, model: DreamModel, objective: Objective, config: DreamConfig,
                 full_size: tuple[int, int], guide_feats: Any, hooks: LoopHooks | None,
                 generator: torch.Generator):  # fmt: skip
        self.model, self.objective, self.config = model, objective, config
        self.full_size, self.guide_feats, self.hooks = full_size, guide_feats, hooks
        self.generator = generator
        low, high = PIXEL_RANGES[config.pixel_range]
        self.span = high - low

    def run(
        self,
        x: torch.Tensor,
        i: int,
        levels: int,
        mask: torch.Tensor | None,
        stepped: Callable[[int, float], Any],
    ) -> tuple[torch.Tensor, float, bool, int]:
        """Level ``i`` of ``levels`` from ``x`` (changed in place): the image, the last loss,
        whether max_loss stopped it, the steps applied. ``stepped(step, loss)`` after each."""
        c, shape = self.config, (int(x.shape[-2]), int(x.shape[-1]))
        sigma = smoothing_sigma(c.smooth, i, levels)
        tile = tile_size(c.tile, *shape)
        if self.hooks is not None:
            self.hooks.level(tiled=bool(tile))
        loss, stopped, step = float("nan"), False, 0
        for step in range(1, c.steps + 1):
            shift = random_shift(c.jitter, self.generator)
            loss, g = objective_gradient(
                self.model, x, self.objective, c.objective, c.border, shift, tile,
                c.tile_overlap, self.full_size, self.guide_feats, c.keep_small_maps,
            )  # fmt: skip
            if not math.isfinite(loss):
                raise ConfigError(
                    f"the objective became {loss} at octave {i + 1}, step {step}: the weights "
                    "or activations hold NaN or infinite values (a broken weights file?)"
                )
            if c.max_loss is not None and loss > c.max_loss:
                stopped, step = True, step - 1  # the Keras seed stops before applying this step
                break
            g = with_tv_penalty(gaussian_blur(g, sigma), x, c.tv)
            x = ascent_step(x, g, c.step_size, c.grad_norm, c.clip, c.lap_levels, mask,
                            self.span, c.grad_eps, reuse_gradient=True,
                            reuse_image=True)  # fmt: skip
            if self.hooks is not None:
                self.hooks.step()
            stepped(step, loss)
        return x, loss, stopped, step
