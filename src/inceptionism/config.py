"""DreamConfig (the whole recipe, frozen) and named presets.

Pixel space is RGB in [0, 1] for every model (each model normalises its own input), so a step
size means the same thing whatever the network: the Keras seed's 0.01 in [-1, 1] is 0.005 here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError, UnknownNameError
from .objectives import STATISTICS, Objective, format_weight

DEFAULT_MODEL = "efficientnet_lite2"
GRAD_NORMS = ("l1", "std", "laplacian")
INITS = ("photo", "noise", "grey")
OBJECTIVES = (*STATISTICS, "guide")
DETAIL_MODES = ("photo", "dream")
PRECISIONS = ("fp32", "bf16", "fp16")  # see precision.py
MAX_SEED = 2**63 - 1  # torch.Generator's range
MAX_JITTER = 100_000
AUTO_TILE = 512  # tile="auto" size: at 2048x1536 a step took 2.4 s with 512, 5.1 s with 1024
AUTO_TILE_ABOVE = 1280  # ... used for levels whose long side exceeds this
MIN_TILE = 64


@dataclass(frozen=True)
class DreamConfig:
    """Every parameter of a dream. Defaults are the curated recipe for the default model."""

    model: str = DEFAULT_MODEL
    # Objective spec "layer=w,layer:channel=w,layer:c@x,y=w" (see objectives.py); None means
    # the model's curated default layers. Stored in canonical form.
    layers: str | None = None
    # Per-layer statistic: "l2" (Keras: sum of squares, border excluded, / size), "mean", or
    # "guide" (Google: each activation vector towards its best-matching guide-image vector).
    objective: str = "l2"
    # Activation pixels excluded at each edge by the l2 statistic (the Keras seed uses 2).
    border: int = 2
    # Gradient normalisation: "l1" divides by mean |g| (Keras, Google), "std" by its std (TF),
    # "laplacian" normalises each band of a Laplacian pyramid (TF notebook's lap_normalize).
    grad_norm: str = "l1"
    # Levels of the Laplacian pyramid for grad_norm="laplacian" (TF notebook: 4).
    lap_levels: int = 4
    # Gaussian smoothing of the gradient: sigma in pixels at the last octave, growing from
    # sigma/octaves at the first. 0: off.
    smooth: float = 0.0
    # Total-variation penalty, as a share of the objective gradient's size. 0: off.
    tv: float = 0.0
    # Pixel change per step, in [0, 1] units after normalisation.
    step_size: float = 0.006
    # Gradient steps per octave.
    steps: int = 20
    # Number of scales; the first is the smallest (original / octave_scale**(octaves-1)).
    octaves: int = 4
    octave_scale: float = 1.4
    # Detail carried between octaves: "photo" re-injects the photo's detail lost by shrinking
    # (Keras seed, levels sized from the original); "dream" carries the dream's own detail up
    # to the next scale (Google, each level zoomed from the previous one).
    detail: str = "dream"
    # Stop an octave early once the objective exceeds this (Keras seed: 10). None: never.
    max_loss: float | None = None
    # Random circular shift of up to this many pixels before each gradient (Google: 32).
    jitter: int = 32
    # Keep pixels inside [0, 1] after every step.
    clip: bool = True
    # Seeds every random choice (the jitter, the noise start).
    seed: int = 0
    # Start image: "photo" (the input), "noise" (the seeds' grey noise: uniform(0,1)+100 on
    # 0-255), or "grey" (flat mid-grey).
    init: str = "photo"
    # Compute gradients tile by tile, tiles of at most this many pixels a side: memory is then
    # bounded by the tile, not the image. "auto": 512 for levels over 1280 px, else untiled.
    # 0: never tile.
    tile: int | str = "auto"
    # Pixels shared by neighbouring tiles, blended linearly so there are no seams.
    tile_overlap: int = 64
    # Keep the photo's colours: the result takes the dream's luminance only.
    keep_colors: bool = False
    # Arithmetic of the network: "fp32", or "bf16" (CPUs with bf16 dot products, CUDA) and
    # "fp16" (CUDA) for speed; the objective, the gradient's normalisation and the image stay
    # float32. Unsupported devices are refused when the dream starts.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.layers is not None:
            object.__setattr__(self, "layers", str(Objective.of(self.layers)))
            if not self.layers:
                raise ConfigError("layers must name at least one layer")
        _check_choice("objective", self.objective, OBJECTIVES)
        _check_choice("grad_norm", self.grad_norm, GRAD_NORMS)
        _check_choice("detail", self.detail, DETAIL_MODES)
        _check_choice("init", self.init, INITS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_range("lap_levels", self.lap_levels, lo=1, hi=12, integer=True)
        _check_range("smooth", self.smooth, lo=0.0, hi=1000.0)
        _check_range("tv", self.tv, lo=0.0, hi=1000.0)
        _check_range("tile_overlap", self.tile_overlap, lo=0, hi=4096, integer=True)
        if self.tile != "auto":
            _check_range("tile", self.tile, lo=0, hi=1 << 16, integer=True)
            if 0 < self.tile < MIN_TILE:
                raise ConfigError(f"tile must be 0, 'auto' or at least {MIN_TILE}; got {self.tile}")
        size = AUTO_TILE if self.tile == "auto" else self.tile
        if size and size <= 2 * self.tile_overlap:
            raise ConfigError(
                f"tile ({size}{' for auto' if self.tile == 'auto' else ''}) must be more than "
                f"twice tile_overlap ({self.tile_overlap})"
            )
        _check_range("steps", self.steps, lo=0, integer=True)
        _check_range("octaves", self.octaves, lo=1, integer=True)
        _check_range("border", self.border, lo=0, integer=True)
        _check_range("jitter", self.jitter, lo=0, hi=MAX_JITTER, integer=True)
        _check_range("seed", self.seed, lo=0, hi=MAX_SEED, integer=True)
        _check_range("step_size", self.step_size, lo=0.0)
        if not (math.isfinite(self.octave_scale) and self.octave_scale > 0):
            raise ConfigError(f"octave_scale must be a positive number, got {self.octave_scale}")
        if self.max_loss is not None and not math.isfinite(self.max_loss):
            raise ConfigError(f"max_loss must be finite or None, got {self.max_loss}")

    def replace(self, **changes: Any) -> DreamConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DreamConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}; valid: {', '.join(sorted(names))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"malformed config: {e}") from None

    @classmethod
    def preset(cls, name: str, model: str | None = None, **overrides: Any) -> DreamConfig:
        """A named preset for ``model`` (default: the default model), then ``overrides``."""
        if name not in PRESETS:
            raise UnknownNameError("preset", name, list(PRESETS))
        model = model or DEFAULT_MODEL
        base = PRESETS[name].make(model)
        return cls(**{**base, "model": model, **overrides})


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{field} must be one of {', '.join(choices)}; got {value!r}")


def _check_range(
    field: str, value: Any, lo: float, hi: float = math.inf, integer: bool = False
) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{field} must be {kind}, got {value!r}")
    if not (lo <= value <= hi and math.isfinite(value)):
        bound = f"between {lo} and {hi}" if hi != math.inf else f">= {lo}"
        raise ConfigError(f"{field} must be {bound}, got {value}")


# --- presets -------------------------------------------------------------------------------------

# The seeds name layers of InceptionV3 (mixed0..mixed10, Keras) and GoogLeNet (3a..5b, Caffe).
# On another network a seed layer maps to the block at the same relative depth.
_INCEPTION_V3_BLOCKS = [f"mixed{i}" for i in range(11)]
_GOOGLENET_BLOCKS = ["inception3a", "inception3b", "inception4a", "inception4b", "inception4c",
                     "inception4d", "inception4e", "inception5a", "inception5b"]  # fmt: skip


def main_layers(model: str) -> list[str]:
    """The model's block-level layers (no sub-layers, no stem/head), in depth order."""
    from .models import layer_table

    names = [info.name for info in layer_table(model)]
    blocks = [n for n in names if "." not in n and n not in ("stem", "head", "logits")]
    return blocks or names


def map_seed_layer(seed_layer: str, seed_blocks: list[str], model: str) -> str:
    """The model's layer at the same relative depth as ``seed_layer`` among ``seed_blocks``."""
    ours = main_layers(model)
    if seed_layer in ours:
        return seed_layer
    frac = (seed_blocks.index(seed_layer) + 1) / len(seed_blocks)
    return ours[max(0, round(frac * len(ours)) - 1)]


@dataclass(frozen=True)
class Preset:
    description: str
    params: dict[str, Any]
    seed_layers: tuple[tuple[str, float], ...] = ()
    seed_blocks: tuple[str, ...] = ()
    loss_scale_model: str | None = None  # the network whose activation scale max_loss assumes

    def make(self, model: str) -> dict[str, Any]:
        params = dict(self.params)
        if self.seed_layers:
            blocks = list(self.seed_blocks)
            mapped: dict[str, float] = {}
            for layer, w in self.seed_layers:
                name = map_seed_layer(layer, blocks, model)
                mapped[name] = mapped.get(name, 0.0) + w
            params["layers"] = ",".join(f"{n}={format_weight(w)}" for n, w in mapped.items())
            if self.loss_scale_model and model != self.loss_scale_model:
                # max_loss is in units of the seed network's activations; elsewhere it would
                # stop at once or never, so it stays off unless the user sets it.
                params["max_loss"] = None
        return params


PRESETS: dict[str, Preset] = {
    "default": Preset(
        "curated recipe: the model's default layers, 4 octaves x 1.4, dream detail, jitter",
        {},
    ),
    "keras-classic": Preset(
        "Keras deep_dream.py: mixed2=0.2,mixed3=0.5,mixed4=2,mixed5=1.5, l2 with border 2, "
        "step 0.01 in [-1,1], 20 steps, 3 octaves x 1.4, photo detail, max_loss 10 (InceptionV3 "
        "only), no jitter",
        dict(
            objective="l2",
            border=2,
            grad_norm="l1",
            step_size=0.005,
            steps=20,
            octaves=3,
            octave_scale=1.4,
            detail="photo",
            max_loss=10.0,
            jitter=0,
            clip=False,
        ),
        seed_layers=(("mixed2", 0.2), ("mixed3", 0.5), ("mixed4", 2.0), ("mixed5", 1.5)),
        seed_blocks=tuple(_INCEPTION_V3_BLOCKS),
        loss_scale_model="inception_v3",
    ),  # fmt: skip
    "google-classic": Preset(
        "Google's deepdream.ipynb: inception_4c/output, step 1.5 in 0-255, 10 steps, "
        "4 octaves x 1.4, dream detail, jitter 32, clipped",
        dict(
            objective="l2",
            border=0,
            grad_norm="l1",
            step_size=1.5 / 255,
            steps=10,
            octaves=4,
            octave_scale=1.4,
            detail="dream",
            max_loss=None,
            jitter=32,
            clip=True,
        ),
        seed_layers=(("inception4c", 1.0),),
        seed_blocks=tuple(_GOOGLENET_BLOCKS),
    ),  # fmt: skip
}
