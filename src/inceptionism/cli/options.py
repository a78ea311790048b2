"""Command-line options shared by the commands, and turning them into a DreamConfig."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from inceptionism.cli.params import (
    ClassValue,
    FloatRange,
    IntRange,
    finite_numbers,
    parsed_by,
    shown_default,
)
from inceptionism.configure import PARSERS, Options, build_config, device_for
from inceptionism.engine.config import MAX_SIDE, DreamConfig
from inceptionism.engine.loop import resolve_objective
from inceptionism.engine.presets import preset_names
from inceptionism.errors import (
    ConfigError,
    InceptionismError,
)
from inceptionism.executors.select import parse_executor
from inceptionism.featurevis.render import FeatureVisConfig, Rendering
from inceptionism.io.image import (
    DEFAULT_MAX_PIXELS,
    PILLOW_MAX_PIXELS,
)
from inceptionism.jobs.job import FileRef, Job, blank_start, photo_start
from inceptionism.jobs.run import RunContext
from inceptionism.models import get_model
from inceptionism.ops.threads import configure_threads

# --help's headings, in order, and the section of each option (by its parameter name); a
# command adds its own options' sections (SectionedCommand's ``sections``).
BASICS, WHAT, HOW, SEEDS, NETWORK, OUTPUT, PERFORMANCE = (
    "Basics", "What to dream", "How the ascent runs", "The seeds' units and resizing",
    "Your network and weights", "Output", "Performance and limits",
)  # fmt: skip
SECTIONS = (BASICS, WHAT, HOW, SEEDS, NETWORK, OUTPUT, PERFORMANCE)
OTHER = "Other options"
OPTION_SECTIONS = {
    BASICS: ("out", "size", "preset", "model", "init", "steps", "octaves", "seed"),
    WHAT: ("layers", "class_", "objective", "guide", "mask", "keep_colors"),
    HOW: ("step_size", "octave_scale", "detail", "jitter", "grad_norm", "lap_levels", "smooth",
          "tv", "max_loss", "clip", "octaves_above"),
    SEEDS: ("pixel_range", "grad_eps", "octave_resize", "border", "keep_small_maps"),
    NETWORK: ("weights", "input_norm", "input_range"),
    OUTPUT: ("fmt", "save_octaves", "force", "quiet", "cells_dir", "cell_size"),
    PERFORMANCE: ("device", "threads", "precision", "tile", "tile_overlap", "executor",
                  "max_size", "max_pixels"),
}  # fmt: skip


class SectionedCommand(click.Command):
    """A command whose --help lists its options under headings (click has no option groups):
    each option's section comes from the command's ``sections`` ({heading: parameter names},
    shown after Basics) or :data:`OPTION_SECTIONS`; the rest (--help) come last."""

    def __init__(self, *args: Any, sections: dict[str, tuple[str, ...]] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.sections = {BASICS: OPTION_SECTIONS[BASICS], **(sections or {})}
        self.sections.update({k: v for k, v in OPTION_SECTIONS.items() if k not in self.sections})

    def section_of(self, param: click.Parameter) -> str:
        return next((s for s, names in self.sections.items() if param.name in names), OTHER)

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        placed: dict[str, list[tuple[int, tuple[str, str]]]] = {t: [] for t in self.sections}
        placed[OTHER] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                title = self.section_of(param)
                names = self.sections.get(title, ())
                rank = names.index(param.name) if param.name in names else len(names)
                placed[title].append((rank, record))
        for title, ranked in placed.items():
            if ranked:  # in the order the section lists them
                with formatter.section(title):
                    formatter.write_dl([r for _, r in sorted(ranked, key=lambda x: x[0])])


def _preset_help(names: list[str], width: int = 44) -> str:
    """--preset's help, laid out here in lines of at most ``width`` (after click's \\b, which
    keeps them): click's own wrapping would cut "tf-tutorial" at its hyphen."""
    lines = ["Named recipe (see `inceptionism presets`):", ""]
    for i, name in enumerate(names):
        word = name + ("," if i < len(names) - 1 else "")
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width:
            lines.append("")
        lines[-1] = f"{lines[-1]} {word}".strip()
    return "\b\n" + "\n".join(lines)


def config_option(f: dataclasses.Field, default: Any) -> Callable:
    """The click option of one DreamConfig field, from its metadata (help, choices, range,
    spelling); ``default`` is the command's own default, shown in --help."""
    meta = f.metadata
    flag = meta.get("flag") or "--" + f.name.replace("_", "-")
    decls = [flag] + ([meta["short"]] if meta.get("short") else []) + [f.name]
    kw: dict[str, Any] = {
        "default": default,
        "help": meta["help"],
        "show_default": shown_default(default),
    }
    if f.name in _METAVARS:
        kw["metavar"] = _METAVARS[f.name]
    if f.name in PARSERS:
        kw["callback"] = parsed_by(PARSERS[f.name])
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


_METAVARS = {"model": "NAME", "layers": "SPEC"}
CLI_FIELDS = tuple(f for f in dataclasses.fields(DreamConfig) if f.metadata.get("help"))


def config_options(defaults: dict[str, Any] | None = None, lucid: bool = False) -> Callable:
    """Decorator: every DreamConfig field as an option, with ``--preset`` and ``--class``;
    ``defaults`` are the command's own defaults (used when no --preset is given); ``lucid``:
    the command takes ``--preset lucid``."""
    base = DreamConfig().to_dict() | (defaults or {})

    def decorate(f: Callable) -> Callable:
        for field in reversed(CLI_FIELDS):
            f = config_option(field, base[field.name])(f)
        f = click.option("--preset", "-p", default=None, metavar="NAME",
                         help=_preset_help(preset_names(lucid)))(f)  # fmt: skip
        f = click.option(
            "--class", "class_", type=ClassValue(), default=None, metavar="N|NAME",
            help="Maximise class N's logit (the term logits:N), added to --layers if given; "
            "a trained network's class by name.",
        )(f)  # fmt: skip
        f.__dict__["command_defaults"] = defaults or {}
        return f

    return decorate


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` (not its default): click's parameter source."""
    source = ctx.get_parameter_source(name)
    return source not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)


def read_options(ctx: click.Context, values: dict[str, Any]) -> Options:
    """A command's option values, read once into a frozen value with the names the user set
    (click's parameter source tells them from defaults)."""
    return Options.of(values, (name for name in values if given(ctx, name)))


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
    click.option("--device", default="auto", show_default=True, metavar="DEVICE",
                 help="cpu, cuda, cuda:N, or auto (cuda when available)."),
    click.option("--input-norm", default=None, callback=finite_numbers, metavar="NORM",
                 help="Your network: none (default), imagenet, or MEAN/STD in --input-range "
                 "units, e.g. 0.485,0.456,0.406/0.229,0.224,0.225."),
    click.option("--input-range", default=None, callback=finite_numbers, metavar="LO,HI",
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
    options: Options,
    defaults: dict[str, Any] | None = None,
    guide: bool = False,
    lucid: bool = False,
) -> DreamConfig:
    """A command's DreamConfig from its options, checked against the model's layer table and the
    device, all before any file is read or written. ``lucid``: the command renders the lucid
    recipe (its preset is read by configure.featurevis_config); elsewhere it is refused."""
    config = build_config(options, defaults, guide, lucid)
    resolve_objective(config.model, config)
    device_for(options["device"])
    return config


def load_run(config: DreamConfig, options: Options) -> RunContext:
    """The model (loaded once per command) and what its jobs share."""
    configure_threads(options.get("threads"))
    weights = options.get("weights")
    model = get_model(config.model, weights=weights, device=device_for(options["device"]))
    return RunContext(model, weights)


steering_options = stack(
    click.option("--guide", default=None, metavar="FILE",
                 help="Guide image: dream towards its features."),
    click.option("--mask", default=None, metavar="FILE",
                 help="Mask image: dream only where it is white (softly)."),
)  # fmt: skip


def run_flags(force_help: str) -> Callable:
    """--force and --quiet."""
    return stack(
        click.option("--force", "-f", is_flag=True, help=force_help),
        click.option("--quiet", "-q", is_flag=True, help="No progress output."),
    )


def dream_options(
    defaults: dict[str, Any] | None = None, max_size: int | None = None, lucid: bool = False
) -> Callable:
    """Every dreaming command's options: guide and mask, the recipe (DreamConfig's fields with
    the command's ``defaults``; ``lucid``: --preset lucid too), the model, the photo's size
    limits."""
    return stack(steering_options, config_options(defaults, lucid), model_options,
                 pixel_options(max_size))  # fmt: skip


def batch_jobs(
    plans: list[Any],
    config: DreamConfig,
    *,
    refs: dict[str, FileRef],
    size: tuple[int, int] | None,
    max_size: int | None,
    max_pixels: int,
    batch: bool,
    featurevis: FeatureVisConfig | None = None,
) -> list[tuple[str, Job | InceptionismError]]:
    """The jobs of a `dream` run, one per planned output (outputs.plan_batch), every start
    checked on its header before the model loads. In a batch an input that cannot be dreamed
    is kept as its error, reported in its turn; alone, it raises. With ``featurevis`` each job
    renders its objective with that recipe (the lucid recipe of a class from noise)."""
    jobs: list[tuple[str, Job | InceptionismError]] = []
    unit = str(resolve_objective(config.model, config))
    rendering = Rendering(featurevis, (unit,)) if featurevis else None
    for plan in plans:
        try:
            if plan.src is None:
                start = blank_start(config.init, size, max_pixels)
            else:
                start = photo_start(plan.label, config.init, max_size, max_pixels)
            job = Job(config, start, plan.dst, "dream", refs.get("guide"), refs.get("mask"),
                      tuple(plan.octave_files), label=plan.label, featurevis=rendering)  # fmt: skip
            jobs.append((plan.label, job))
        except InceptionismError as e:
            if not batch:
                raise
            jobs.append((plan.label, e))
    return jobs


EXECUTOR_HELP = (
    "Where jobs run: local (this process), ray (a local Ray instance, one worker per core; "
    "ray:N for N workers), ray:auto or ray://HOST:PORT (join a running Ray cluster)."
)


def _check_option(_ctx: Any, _param: Any, value: str) -> str:
    try:
        parse_executor(value)
    except ConfigError as e:
        raise click.BadParameter(str(e).partition(": ")[2] or str(e)) from None
    return value


def executor_option(f: Callable) -> Callable:
    """The --executor option the batch commands share."""
    return click.option("--executor", default="local", show_default=True, metavar="WHERE",
                        callback=_check_option, help=EXECUTOR_HELP)(f)  # fmt: skip
