"""Command-line options shared by the commands, and turning them into a DreamConfig."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from .config import PRESETS, DreamConfig
from .configure import PARSERS, build_config, device_for
from .engine import resolve_objective
from .errors import ConfigError
from .image import DEFAULT_MAX_PIXELS, PILLOW_MAX_PIXELS
from .jobs import MAX_SIDE, RunContext
from .models import get_model
from .threads import configure_threads


def echo_error(message: str) -> None:
    click.echo(f"inceptionism: error: {' '.join(str(message).split())}", err=True)


def note(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


def _callback(parse: Callable[[str], Any]) -> Callable:
    def convert(_ctx: Any, param: Any, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        try:
            return parse(value)
        except ConfigError as e:
            raise click.BadParameter(str(e), param=param) from None

    return convert


def _shown(value: Any) -> Any:
    return "none" if value is None else True


class _Readable:
    """Ranges in --help as "0-10000" or ">= 0" (not 0<=x<=9223372036854775807)."""

    def _describe_range(self) -> str:
        lo, hi = self.min, self.max  # type: ignore[attr-defined]
        if hi is None or hi >= 1e15:
            return f">= {lo:g}"
        return f"{lo:g}-{hi:g}"


class IntRange(_Readable, click.IntRange):
    pass


class FloatRange(_Readable, click.FloatRange):
    pass


def config_option(f: dataclasses.Field, default: Any) -> Callable:
    """The click option of one DreamConfig field, from its metadata (help, choices, range,
    spelling); ``default`` is the command's own default, shown in --help."""
    meta = f.metadata
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    decls = [flag] + ([meta["short"]] if meta.get("short") else []) + [f.name]
    kw: dict[str, Any] = {"default": default, "help": meta["help"], "show_default": _shown(default)}
    if f.name in PARSERS:
        kw["callback"] = _callback(PARSERS[f.name])
        kw["type"] = str
        kw["default"] = None if default is None else str(default)
        kw["metavar"] = "X|none" if f.name == "max_loss" else "PX|auto"
    elif meta.get("choices"):
        kw["type"] = click.Choice(meta["choices"])
    elif isinstance(default, bool):
        pass  # an on/off pair, spelled in the metadata
    elif meta.get("lo") is not None:
        lo, hi = meta["lo"], meta["hi"]
        kw["type"] = IntRange(lo, hi) if meta["integer"] else FloatRange(lo, hi)
        kw["metavar"] = "N" if meta["integer"] else "X"
    return click.option(*decls, **kw)


CLI_FIELDS = tuple(f for f in dataclasses.fields(DreamConfig) if f.metadata.get("help"))


def config_options(defaults: dict[str, Any] | None = None) -> Callable:
    """Decorator: every DreamConfig field as an option, with ``--preset`` and ``--class``;
    ``defaults`` are the command's own defaults (used when no --preset is given)."""
    base = DreamConfig().to_dict() | (defaults or {})

    def decorate(f: Callable) -> Callable:
        for field in reversed(CLI_FIELDS):
            f = config_option(field, base[field.name])(f)
        f = click.option(
            "--preset", "-p", default=None, help=f"Named recipe: {', '.join(PRESETS)}."
        )(f)
        f = click.option(
            "--class", "class_", type=ClassValue(), default=None, metavar="N|NAME",
            help="Maximise class N's logit (the term logits:N), added to --layers if given; "
            "a trained network's class by name.",
        )(f)  # fmt: skip
        f.__dict__["command_defaults"] = defaults or {}
        return f

    return decorate


class ClassValue(click.ParamType):
    """--class: a number (0 or more) or a trained network's class name."""

    name = "class"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        text = str(value).strip()
        if text.isdigit():
            return int(text)
        if not text or text.lstrip("-").isdigit():
            self.fail(f"{value!r} is not a class number (0 or more) or a class name", param, ctx)
        return text


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` (not its default): click's parameter source."""
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def explicit_fields(ctx: click.Context, opts: dict[str, Any]) -> dict[str, Any]:
    """The DreamConfig fields the user set on the command line."""
    return {f.name: opts[f.name] for f in CLI_FIELDS if f.name in opts and given(ctx, f.name)}


def stack(*decorators: Callable) -> Callable:
    """Decorator: ``decorators`` applied as if written one above the other, first on top."""

    def decorate(f: Callable) -> Callable:
        for d in reversed(decorators):
            f = d(f)
        return f

    return decorate


model_options = stack(
    click.option("--weights", type=click.Path(path_type=Path), default=None,
                 help="Weights file (.pth state dict, or a Keras .h5 for inception_v3/vgg16/"
                 "vgg19) instead of the packaged, cached or downloaded one."),
    click.option("--device", default="auto", show_default=True,
                 help="cpu, cuda, cuda:N, or auto (cuda when available)."),
    click.option("--input-norm", default=None,
                 help="Your network: none (default), imagenet, or MEAN/STD in --input-range "
                 "units, e.g. 0.485,0.456,0.406/0.229,0.224,0.225."),
    click.option("--input-range", default=None,
                 help="Your network (--model FILE.pt or pkg.mod:factory): the pixel range it "
                 "takes, e.g. 0,1 (default), 0,255 or -1,1."),
    click.option("--threads", type=IntRange(1, 1024), default=None, metavar="N",
                 help="CPU threads for torch (default: $INCEPTIONISM_THREADS, $OMP_NUM_THREADS, "
                 "or the cores this process may use, fewer while other processes keep some "
                 "busy)."),
)  # fmt: skip


def pixel_options(max_size: int | None = None) -> Callable:
    """--max-size and --max-pixels: how large a photo may be, and how it is downscaled."""
    shown = "89.5 million" if DEFAULT_MAX_PIXELS == 89_478_485 else True
    return stack(
        click.option("--max-size", type=IntRange(16, MAX_SIDE), default=max_size, metavar="PX",
                     show_default=max_size is not None,
                     help="Downscale so the long side is at most PX."),
        click.option("--max-pixels", type=IntRange(1, PILLOW_MAX_PIXELS),
                     default=DEFAULT_MAX_PIXELS, show_default=shown, metavar="N",
                     help="Refuse inputs with more pixels (decompression bombs)."),
    )  # fmt: skip


def command_config(
    ctx: click.Context,
    opts: dict[str, Any],
    defaults: dict[str, Any] | None = None,
    guide: bool = False,
) -> DreamConfig:
    """A command's DreamConfig from its options, checked against the model's layer table and the
    device, all before any file is read or written."""
    config = build_config(opts, explicit_fields(ctx, opts), defaults, guide)
    resolve_objective(config.model, config)
    device_for(opts["device"])
    return config


def load_run(config: DreamConfig, opts: dict[str, Any]) -> RunContext:
    """The model (loaded once per command) and what its jobs share."""
    configure_threads(opts.get("threads"))
    model = get_model(config.model, weights=opts.get("weights"), device=device_for(opts["device"]))
    return RunContext(model, opts.get("weights"))


steering_options = stack(
    click.option("--guide", default=None, help="Guide image: dream towards its features."),
    click.option("--mask", default=None, help="Mask image: dream only where it is white (softly)."),
)


def run_flags(force_help: str) -> Callable:
    """--force and --quiet."""
    return stack(
        click.option("--force", "-f", is_flag=True, help=force_help),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
    )


def dream_options(defaults: dict[str, Any] | None = None, max_size: int | None = None) -> Callable:
    """Every dreaming command's options: guide and mask, the recipe (DreamConfig's fields with
    the command's ``defaults``), the model, the photo's size limits."""
    return stack(steering_options, config_options(defaults), model_options,
                 pixel_options(max_size))  # fmt: skip
