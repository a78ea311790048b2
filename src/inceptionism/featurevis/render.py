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
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.featurevis.params import PARAMS, VALID, make_param
from inceptionism.featurevis.transforms import (
    Compose,
    Jitter,
    RandomRotate,
    RandomScale,
    parse_transforms,
)
from inceptionism.models import DreamModel
from inceptionism.ops.numerics import fixed_abs_mean, fixed_mean, fixed_sum
from inceptionism.ops.objectives import Context, Objective

# What `inceptionism presets` says of the lucid recipe (a FeatureVisConfig, not a DreamConfig).
LUCID_DESCRIPTION = (
    "feature visualisation from noise (Fourier, decorrelated colour, robustness transforms, "
    "Adam): channels, atlas noise, dream --class N --init noise; the default there"
)


# Pixels one render pass holds (batch x size x size), with every activation and gradient of
# the network for them: 64 images of 128 px, 16 of 256 or 4 of 512 (a few GB at most).
MAX_RENDER_PIXELS = 1 << 20


@dataclass(frozen=True)
class FeatureVisConfig:
    """Every parameter of a feature-visualisation render. Defaults: the ``lucid`` preset."""

    # Image parameterisation: "fft" (1/f-scaled Fourier spectrum) or "pixel".
    param: str = "fft"
    # Optimise colours in ImageNet's decorrelated colour space (params.ColourDecorrelation).
    decorrelate: bool = True
    # Squash into [0, 1]: "sigmoid" or "clamp".
    valid: str = "sigmoid"
    # Robustness transforms before every step: "standard" (Lucid's), "none" or a list. The
    # default drops Lucid's 12 px grey pad and its first 8 px jitter: at 128 px they cost about
    # 5% of the transformation-robust activation (benchmarks/bench_featurevis.py).
    transforms: str = "jitter=4,scale=0.1,rotate=10"
    # Adam steps (Lucid's tutorials: 512 at lr 0.05).
    steps: int = 256
    # Adam learning rate on the parameterisation (Lucid: 0.05; with ``damping`` the high
    # frequencies no longer take full Adam steps, so a larger rate is stable).
    lr: float = 0.3
    # Images per forward/backward pass.
    batch: int = 16
    # Rendered image side in pixels (square).
    size: int = 128
    # Weight of the diversity penalty (Gram-matrix similarity between a batch's images, in
    # ``diversity_layer``, default the units' first layer). 0: off.
    diversity: float = 0.0
    diversity_layer: str | None = None
    # Size of the random start in the parameter space, and the spectrum's decay exponent.
    sd: float = 0.01
    decay_power: float = 1.0
    # Coarse to fine: over the first share of the steps the Fourier basis's frequency cutoff
    # grows from a few cycles per image to the full spectrum (octaves, in the Fourier basis).
    # 0: off. On 16 block6 channels at 90 steps 0.5 scored 7% lower (benchmarks/).
    coarse_to_fine: float = 0.0
    # Adam's epsilon relative to each image's gradient, which is scaled to mean |g| = 1 before
    # Adam: coordinates whose gradient is well below the mean (mostly high frequencies) then
    # take proportionally smaller steps instead of Adam's full-size ones, which keeps the high
    # frequencies down. 0: plain Adam (Lucid).
    damping: float = 8.0
    # Seeds the starts (per unit, so batching does not change a unit's start) and the
    # transforms (per batch).
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("param", "valid"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a text, got {getattr(self, name)!r}"[:200])
        if not isinstance(self.transforms, str):
            raise ConfigError(f"transforms must be a text such as 'jitter=4,scale=0.1', got "
                              f"{self.transforms!r}"[:200])  # fmt: skip
        if self.diversity_layer is not None and not isinstance(self.diversity_layer, str):
            raise ConfigError(f"diversity_layer must be a layer name, got "
                              f"{self.diversity_layer!r}"[:200])  # fmt: skip
        if not isinstance(self.decorrelate, bool):
            raise ConfigError(f"decorrelate must be true or false, got {self.decorrelate!r}"[:200])
        if self.param not in PARAMS:
            raise ConfigError(f"param must be one of {', '.join(PARAMS)}, got {self.param!r}")
        if self.valid not in VALID:
            raise ConfigError(f"valid must be one of {', '.join(VALID)}, got {self.valid!r}")
        object.__setattr__(self, "transforms", str(parse_transforms(self.transforms)))
        bounds = (("steps", 0, 10_000), ("batch", 1, 256), ("size", 16, 4096),
                  ("seed", 0, 2**63 - 1))  # fmt: skip
        for name, lo, hi in bounds:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
        for name in ("lr", "diversity", "sd", "decay_power", "damping", "coarse_to_fine"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and 0 <= value <= 1e6):
                raise ConfigError(f"{name} must be a number from 0 to 1e6, got {value!r}")
        if self.batch * self.size**2 > MAX_RENDER_PIXELS:
            raise ConfigError(
                f"a batch of {self.batch} images of {self.size}x{self.size} is "
                f"{self.batch * self.size**2} pixels in one pass; the limit is "
                f"{MAX_RENDER_PIXELS} (batch x size x size): lower --batch or --size"
            )

    def replace(self, **changes: Any) -> FeatureVisConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> FeatureVisConfig:
        if name not in FEATUREVIS_PRESETS:
            raise UnknownNameError("feature-visualisation preset", name, list(FEATUREVIS_PRESETS))
        return FEATUREVIS_PRESETS[name].replace(**overrides)


FEATUREVIS_PRESETS: dict[str, FeatureVisConfig] = {
    # Fourier + decorrelated colour + sigmoid + robustness transforms + Adam, tuned: damped
    # Adam at lr 0.3, no pad, Lucid's first jitter of 8 px left out.
    "lucid": FeatureVisConfig(),
    # The recipe as Lucid ships it: Lucid's standard transforms, plain Adam at lr 0.05.
    "lucid-paper": FeatureVisConfig(
        transforms="standard", lr=0.05, damping=0.0, coarse_to_fine=0.0
    ),
    # The same loop in plain pixel space without transforms (an ablation, not today's look:
    # that is the DeepDream-of-noise recipe, `channels --preset default`).
    "pixel": FeatureVisConfig(param="pixel", decorrelate=False, transforms="none"),
}


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


def _unit_values(
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
                values, acts = _unit_values(model, x, chunk, size, extra)
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
        values, _ = _unit_values(model, chain(images, gen), targets, size)
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


@dataclass(frozen=True)
class Rendering:
    """How one picture of a job is feature-visualised: the whole render it is part of (its
    config and every unit, since a batch shares its transform draws) and its index among the
    units, so that ``render(model, units, config)[index]`` re-creates it."""

    config: FeatureVisConfig
    units: tuple[str, ...]
    index: int = 0

    def __post_init__(self) -> None:
        if not all(isinstance(u, str) for u in self.units):
            raise ConfigError("a recorded render's units are objective specs (text)")
        object.__setattr__(self, "units", tuple(str(Objective.parse(u)) for u in self.units))
        if not 0 < len(self.units) <= 256:
            raise ConfigError("a render has 1 to 256 units")
        if not 0 <= self.index < len(self.units):
            raise ConfigError(f"index {self.index} is outside the render's {len(self.units)} units")

    @property
    def unit(self) -> str:
        return self.units[self.index]

    def to_dict(self) -> dict[str, Any]:
        """The recipe's section (the layout ``read_featurevis`` reads)."""
        return {"featurevis": self.config.to_dict(), "units": list(self.units),
                "index": self.index}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendering:
        config, units, index = read_featurevis(data)
        return cls(config, tuple(units), index)


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


def read_featurevis(data: dict[str, Any]) -> tuple[FeatureVisConfig, list[str], int]:
    """A recorded render checked: (config, units, index); each violation one line (the
    recipe reader adds where it was)."""
    fields = data.get("featurevis")
    units: Any = data.get("units")
    index: Any = data.get("index")
    if not isinstance(fields, dict):
        raise ConfigError("'featurevis' must be an object")
    ok = isinstance(units, list) and 0 < len(units) <= 256
    if not ok or not all(isinstance(u, str) and len(u) < 200 for u in units):
        raise ConfigError("'units' must be a list of 1 to 256 unit specs")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(units):
        raise ConfigError(f"'index' must be an integer from 0 to {len(units) - 1}")
    known = {f.name for f in dataclasses.fields(FeatureVisConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"featurevis: unknown fields {unknown}")
    try:
        config = FeatureVisConfig(**fields)
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        raise ConfigError(f"featurevis: {e}") from None
    return config, units, index
