"""The ``inceptionism`` command: a thin shell over :func:`inceptionism.dream_tensor`.

Every user error ends as one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import torch

from . import __version__
from .config import DEFAULT_MODEL, MAX_JITTER, MAX_SEED, PRESETS, DreamConfig
from .engine import Progress, dream_tensor, resolve_objective
from .errors import ConfigError, ImageError, InceptionismError
from .image import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    load_image,
    output_format,
    read_recipe,
    save_image,
)
from .models import DreamModel, get_model, get_spec, layer_table, list_models, parameter_count
from .models.weights import sha256_file
from .outputs import Job, plan_jobs, same_file
from .progress import ProgressBar
from .recipe import config_from_recipe, make_recipe
from .samples import is_sample, list_samples, sample_path


def _err(message: str) -> None:
    click.echo(f"inceptionism: error: {' '.join(str(message).split())}", err=True)


def _note(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


# --- shared option groups ------------------------------------------------------------------------


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
        "--layers", "-l", default=None, help='Objective layers: "name=weight,name=weight".'
    ),
    click.option(
        "--objective", type=click.Choice(["l2", "mean"]), default=None, help="Per-layer statistic."
    ),
    click.option(
        "--border",
        type=click.IntRange(min=0),
        default=None,
        help="l2: activation pixels excluded at each edge.",
    ),
    click.option(
        "--grad-norm",
        type=click.Choice(["l1", "std"]),
        default=None,
        help="Gradient normalisation.",
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
]


def _config_options(f: Callable) -> Callable:
    for option in reversed(_CONFIG_OPTIONS):
        f = option(f)
    return f


def _model_options(f: Callable) -> Callable:
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
        help="Weights file instead of the packaged one.",
    )(f)


def _device(name: str) -> torch.device:
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


def _build_config(opts: dict[str, Any]) -> DreamConfig:
    """Preset for the chosen model first, then every option given explicitly."""
    model = get_spec(opts["model"] or DEFAULT_MODEL).name
    fields = {
        k: opts[k]
        for k in (
            "objective",
            "border",
            "grad_norm",
            "step_size",
            "steps",
            "octaves",
            "octave_scale",
            "detail",
            "jitter",
            "clip",
            "seed",
        )
        if opts[k] is not None
    }
    if opts["max_loss"] != "unset":
        fields["max_loss"] = opts["max_loss"]
    if opts["layers"] is not None:
        fields["layers"] = opts["layers"]
    if opts["preset"]:
        return DreamConfig.preset(opts["preset"], model=model, **fields)
    return DreamConfig(model=model, **fields)


# --- commands ------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inceptionism")
def cli() -> None:
    """DeepDream on PyTorch: dream photos with pretrained networks, offline."""


def _dream_one(
    model: DreamModel,
    config: DreamConfig,
    job: Job,
    max_size: int | None,
    max_pixels: int,
    quiet: bool,
    weights_file: Path | None = None,
    prefix: str = "",
) -> None:
    image = load_image(job.src, max_pixels=max_pixels).resized_to_fit(max_size)
    recipe = make_recipe(config, model, job.label, job.src, max_size, max_pixels, weights_file)
    bar = None if quiet else ProgressBar(label=prefix)

    def on_progress(p: Progress) -> None:
        if bar is not None:
            bar(p)
        if p.octave_done and p.image is not None and p.octave <= len(job.octave_files):
            shot = LoadedImage(p.image.clamp(0, 1).cpu(), image.alpha).with_alpha_fitted()
            save_image(shot, job.octave_files[p.octave - 1], {**recipe, "octave": p.octave})

    out = dream_tensor(image.rgb, model, config, on_progress)
    save_image(image.with_rgb(out.cpu()), job.dst, recipe=recipe)
    _note(f"{prefix}wrote {job.dst}", quiet)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    help="Output file (one input) or folder (several, or a name ending in /).",
)
@_config_options
@_model_options
@click.option(
    "--max-size",
    type=click.IntRange(min=16),
    default=None,
    help="Downscale so the long side is at most PX.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse inputs with more pixels (decompression bombs).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "jpg", "webp"]),
    default="png",
    show_default=True,
    help="Output type in a batch folder.",
)
@click.option(
    "--save-octaves", is_flag=True, help="Also write each octave's image (OUT.octaveN.png)."
)
@click.option("--force", "-f", is_flag=True, help="Overwrite existing outputs (never an input).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def dream(
    inputs: tuple[str, ...],
    out: str,
    weights: Path | None,
    device: str,
    max_size: int | None,
    max_pixels: int,
    fmt: str,
    save_octaves: bool,
    force: bool,
    quiet: bool,
    **opts: Any,
) -> None:
    """Dream INPUT (files, folders or sample:NAME) into OUT.

    Batch runs skip outputs that already exist, so an interrupted batch resumes.
    """
    config = _build_config(opts)
    resolve_objective(config.model, config)  # bad layers fail before files or weights
    _device(device)  # a bad device fails before any work
    todo, notes = plan_jobs(inputs, out, "." + fmt, config.octaves, save_octaves, force)
    for note in notes:
        _note(note, quiet)
    if not todo:
        _note("nothing to do: every output exists (use --force to redo)", quiet)
        return
    model = get_model(config.model, weights=weights, device=_device(device))
    failed = 0
    batch = len(todo) + len(notes) > 1
    for k, job in enumerate(todo, 1):
        prefix = f"[{k}/{len(todo)}] " if len(todo) > 1 else ""
        try:
            _dream_one(model, config, job, max_size, max_pixels, quiet, weights, prefix)
        except ImageError as e:
            if not batch:
                raise
            failed += 1
            _err(f"skipped: {e}")
    if failed:
        raise ImageError(f"{failed} of {len(todo)} inputs could not be dreamed (see above)")


@cli.command()
@click.argument("recipe_png", type=click.Path(path_type=Path))
@click.option(
    "--output", "-o", "out", required=True, type=click.Path(path_type=Path), help="Output file."
)
@click.option(
    "--input", "-i", "source", default=None, help="Source image, if it moved since the dream."
)
@_model_options
@click.option("--force", "-f", is_flag=True, help="Overwrite an existing output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def replay(
    recipe_png: Path,
    out: Path,
    source: str | None,
    weights: Path | None,
    device: str,
    force: bool,
    quiet: bool,
) -> None:
    """Re-run the recipe stored in a PNG written by `inceptionism dream`."""
    recipe = read_recipe(recipe_png)
    config = config_from_recipe(recipe)
    src_info = recipe.get("source")
    if not isinstance(src_info, dict):
        raise ImageError(f"{recipe_png}: recipe has no 'source' section")
    src, label = _replay_source(recipe_png, src_info, source)
    output_format(out)
    if same_file(src, out) or same_file(recipe_png, out):
        raise ImageError(f"{out} is an input; refusing to overwrite it, even with --force")
    if out.exists() and not force:
        raise ImageError(f"{out} exists; pass --force to overwrite it")
    recorded_weights = recipe.get("weights_file")
    if weights is None and recorded_weights and Path(recorded_weights).is_file():
        weights = Path(recorded_weights)
    model = get_model(config.model, weights=weights, device=_device(device))
    if recipe.get("weights_sha256") and model.weights_sha256 != recipe["weights_sha256"]:
        _note("warning: weights differ from the recorded ones; the result will differ")
    max_pixels = src_info.get("max_pixels") or DEFAULT_MAX_PIXELS
    job = Job(label, src, out)
    _dream_one(model, config, job, src_info.get("max_size"), max_pixels, quiet, weights)


def _replay_source(recipe_png: Path, info: dict[str, Any], given: str | None) -> tuple[Path, str]:
    """The source image: --input if given, else the recorded file whose sha256 still matches
    (the absolute path first, then the input as written); a changed source only with a warning."""
    if given:
        candidates = [(sample_path(given) if is_sample(given) else Path(given), given)]
    else:
        label = info.get("input")
        candidates = []
        if info.get("path"):
            candidates.append((Path(info["path"]), label or info["path"]))
        if isinstance(label, str):
            candidates.append((sample_path(label) if is_sample(label) else Path(label), label))
    existing = [(p, label) for p, label in candidates if p.is_file()]
    if not existing:
        shown = ", ".join(str(p) for p, _ in candidates) or "none recorded"
        raise ImageError(f"{recipe_png}: source image not found ({shown}); pass --input")
    recorded = info.get("sha256")
    for path, label in existing:
        if not recorded or sha256_file(path) == recorded:
            return path, label
    path, label = existing[0]
    _note(f"warning: {path} differs from the recorded source; the result will differ")
    return path, label


@cli.command()
def models() -> None:
    """List the registered models."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        layers = ",".join(f"{n}={w:g}" for n, w in spec.default_layers)
        rows.append((name, f"{parameter_count(name) / 1e6:.1f}M", layers, spec.weights.describe()))
    _table(("model", "params", "default layers", "weights"), rows)


@cli.command()
@click.argument("model")
def layers(model: str) -> None:
    """List MODEL's targetable layers: name, channels, stride."""
    name = get_spec(model).name
    _table(
        ("layer", "channels", "stride"), [(i.name, i.channels, i.stride) for i in layer_table(name)]
    )


@cli.command()
def presets() -> None:
    """List the named recipes."""
    _table(("preset", "description"), [(k, p.description) for k, p in PRESETS.items()])


@cli.command()
def samples() -> None:
    """List the sample photos usable as sample:NAME."""
    found = list_samples()
    if not found:
        raise ImageError("no sample photos installed: pip install 'inceptionism[samples]'")
    _table(("sample", "file"), [(f"sample:{k}", str(v)) for k, v in sorted(found.items())])


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv: list[str] | None = None) -> int:
    """Console entry point: one line per error, exit code 2 for anything the user can fix."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        click.echo(cli.get_help(click.Context(cli, info_name="inceptionism")))
        return 0
    try:
        cli.main(args=args, prog_name="inceptionism", standalone_mode=False)
    except InceptionismError as e:
        _err(str(e))
        return e.exit_code
    except OSError as e:  # a write that failed (disk full, permissions, a vanished folder)
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        _err(f"{where}{e.strerror or e}")
        return 2
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        _err(e.format_message().replace("\n", " ") + hint)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):
        if sys.stderr.isatty():
            click.echo("", err=True)  # leave the progress line
        _err("interrupted; finished outputs are kept")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
