"""Command-line options shared by the commands, and turning them into a DreamConfig."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch

from .config import DEFAULT_MODEL, MAX_JITTER, MAX_SEED, PRESETS, DreamConfig
from .errors import ConfigError
from .models import ModelSpec, get_spec, layer_table, list_models
from .models.custom import is_network, register_network


def _parse_max_loss(_ctx: Any, _param: Any, value: str | None) -> float | None | str:
    if value is None:
        return "unset"
    if value.lower() in ("none", "off", "inf"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'none', got {value!r}") from None


_CONFIG_OPTIONS: list[Callable] = [
    click.option(
        "--model",
        "-m",
        default=None,
        help=f"Network (default {DEFAULT_MODEL}); see `inceptionism models`.",
    ),
    click.option("--preset", "-p", default=None, help=f"Named recipe: {', '.join(PRESETS)}."),
    click.option(
        "--layers",
        "-l",
        default=None,
        help='Objective: "LAYER[:C[+C..][@X,Y]][=WEIGHT],..." e.g. "block12,block14:37=2".',
    ),
    click.option(
        "--class",
        "class_",
        type=click.IntRange(min=0),
        default=None,
        help="Maximise class N's logit (the term logits:N), added to --layers if given.",
    ),
    click.option(
        "--objective",
        type=click.Choice(["l2", "mean", "guide"]),
        default=None,
        help="Per-layer statistic (guide: set by --guide).",
    ),
    click.option(
        "--border",
        type=click.IntRange(min=0),
        default=None,
        help="l2: activation pixels excluded at each edge.",
    ),
    click.option(
        "--grad-norm",
        type=click.Choice(["l1", "std", "laplacian"]),
        default=None,
        help="Gradient normalisation.",
    ),
    click.option(
        "--lap-levels",
        type=click.IntRange(1, 12),
        default=None,
        help="Laplacian pyramid levels for --grad-norm laplacian (default 4).",
    ),
    click.option(
        "--smooth",
        type=click.FloatRange(0, 1000),
        default=None,
        help="Gaussian smoothing of the gradient: sigma in pixels at the last octave.",
    ),
    click.option(
        "--tv",
        type=click.FloatRange(0, 1000),
        default=None,
        help="Total-variation penalty, relative to the objective gradient.",
    ),
    click.option(
        "--step-size",
        type=click.FloatRange(min=0),
        default=None,
        help="Pixel change per step ([0,1] units).",
    ),
    click.option(
        "--steps", type=click.IntRange(min=0), default=None, help="Gradient steps per octave."
    ),
    click.option("--octaves", type=click.IntRange(min=1), default=None, help="Number of scales."),
    click.option(
        "--octave-scale",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Size ratio between scales.",
    ),
    click.option(
        "--detail",
        type=click.Choice(["photo", "dream"]),
        default=None,
        help="Detail carried between octaves.",
    ),
    click.option(
        "--max-loss",
        callback=_parse_max_loss,
        default=None,
        help="Stop an octave once the loss exceeds this ('none': never).",
    ),
    click.option(
        "--jitter",
        type=click.IntRange(0, MAX_JITTER),
        default=None,
        help="Random roll in pixels before each step.",
    ),
    click.option("--clip/--no-clip", default=None, help="Keep pixels in [0,1] after every step."),
    click.option(
        "--seed",
        type=click.IntRange(0, MAX_SEED),
        default=None,
        help="Seed for every random choice.",
    ),
    click.option(
        "--init",
        type=click.Choice(["photo", "noise", "grey"]),
        default=None,
        help="Start image (noise: the seeds' grey noise). No INPUT needed for noise/grey.",
    ),
    click.option(
        "--tile",
        default=None,
        help="Tile side in pixels for the gradient, 'auto' (large images only) or 0 (never).",
    ),
    click.option(
        "--tile-overlap",
        type=click.IntRange(0, 4096),
        default=None,
        help="Pixels shared by neighbouring tiles (blended).",
    ),
    click.option(
        "--keep-colors/--no-keep-colors",
        default=None,
        help="Keep the photo's colours; dream in luminance only.",
    ),
]


def config_options(f: Callable) -> Callable:
    for option in reversed(_CONFIG_OPTIONS):
        f = option(f)
    return f


def model_options(f: Callable) -> Callable:
    f = click.option(
        "--input-range",
        default=None,
        help="Your network (--model FILE.pt or pkg.mod:factory): the pixel range it takes, "
        "e.g. 0,1 (default), 0,255 or -1,1.",
    )(f)
    f = click.option(
        "--input-norm",
        default=None,
        help="Your network: none (default), imagenet, or MEAN/STD in --input-range units, "
        "e.g. 0.485,0.456,0.406/0.229,0.224,0.225.",
    )(f)
    f = click.option(
        "--device",
        default="auto",
        show_default=True,
        help="cpu, cuda, cuda:N, or auto (cuda when available).",
    )(f)
    return click.option(
        "--weights",
        type=click.Path(path_type=Path),
        default=None,
        help="Weights file (.pth state dict, or a Keras .h5 for inception_v3/vgg16/vgg19) "
        "instead of the packaged, cached or downloaded one.",
    )(f)


def device_for(name: str) -> torch.device:
    """The device to dream on; a CUDA request on a machine without CUDA is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


def network_spec(opts: dict[str, Any]) -> ModelSpec:
    """The spec for --model: a registered name, or your own network (registered here with its
    --input-norm/--input-range); those two options are refused for a registered model."""
    name = opts.get("model") or DEFAULT_MODEL
    norm, rng = opts.get("input_norm"), opts.get("input_range")
    if is_network(name) and name not in list_models():
        return register_network(name, norm, rng)
    if norm is not None or rng is not None:
        raise ConfigError(
            f"--input-norm/--input-range are for your own network; {name} normalises its own input"
        )
    return get_spec(name)


def build_config(opts: dict[str, Any]) -> DreamConfig:
    """Preset for the chosen model first, then every option given explicitly."""
    model = network_spec(opts).name
    fields = {k: opts[k] for k in _FIELDS if opts.get(k) is not None}
    if opts["max_loss"] != "unset":
        fields["max_loss"] = opts["max_loss"]
    if opts["tile"] is not None:
        fields["tile"] = _parse_tile(opts["tile"])
    if opts.get("guide") is not None:
        if fields.get("objective", "guide") != "guide":
            raise ConfigError(f"--guide needs --objective guide, not {fields['objective']}")
        fields["objective"] = "guide"
    config = (
        DreamConfig.preset(opts["preset"], model=model, **fields)
        if opts["preset"]
        else DreamConfig(model=model, **fields)
    )
    if opts["class_"] is not None:
        info = {i.name: i for i in layer_table(model)}.get("logits")
        if info is None:
            raise ConfigError(f"--class: {model} has no class head (no 'logits' layer)")
        if opts["class_"] >= info.channels:
            raise ConfigError(f"--class {opts['class_']}: {model} has {info.channels} classes")
        base = config.layers  # explicit --layers, or the preset's; None: the class alone
        term = f"logits:{opts['class_']}"
        config = config.replace(layers=f"{base},{term}" if base else term)
    return config


_FIELDS = (
    "layers", "objective", "border", "grad_norm", "lap_levels", "smooth", "tv", "step_size",
    "steps", "octaves", "octave_scale", "detail", "jitter", "clip", "seed", "init",
    "tile_overlap", "keep_colors",
)  # fmt: skip


def _parse_tile(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(
            f"expected a number of pixels, 'auto' or 0, got {text!r}", param_hint="'--tile'"
        ) from None


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (width, height)."""
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    if not sep or not w.strip().isdigit() or not h.strip().isdigit() or int(w) < 16 or int(h) < 16:
        raise click.BadParameter(
            f"expected WxH of at least 16x16, e.g. 512x384; got {text!r}", param_hint="'--size'"
        )
    return int(w), int(h)
