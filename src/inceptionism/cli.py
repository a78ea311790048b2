"""The ``inceptionism`` command: a thin shell over :func:`inceptionism.dream_tensor`.

Every user error ends as one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import DEFAULT_MODEL, PRESETS, DreamConfig
from .engine import Progress, dream_tensor, resolve_objective
from .errors import ImageError, InceptionismError
from .image import (
    DEFAULT_MAX_PIXELS,
    INPUT_SUFFIXES,
    LoadedImage,
    load_image,
    output_format,
    read_recipe,
    save_image,
)
from .models import DreamModel, get_model, get_spec, layer_table, list_models, parameter_count
from .progress import ProgressBar
from .recipe import config_from_recipe, make_recipe
from .samples import is_sample, list_samples, sample_path


def _err(message: str) -> None:
    click.echo(f"inceptionism: error: {message}", err=True)


def _note(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


# --- resolving inputs and outputs ----------------------------------------------------------------


def _expand_inputs(inputs: tuple[str, ...]) -> tuple[list[tuple[str, Path]], bool]:
    """[(label, path)], and whether the run is a batch (several images, or a folder input)."""
    found: list[tuple[str, Path]] = []
    batch = len(inputs) > 1
    for text in inputs:
        if is_sample(text):
            found.append((text, sample_path(text)))
            continue
        path = Path(text)
        if path.is_dir():
            batch = True
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
            )
            if not images:
                raise ImageError(f"{path}: folder holds no images ({', '.join(INPUT_SUFFIXES)})")
            found += [(str(p), p) for p in images]
        elif not path.exists():
            raise ImageError(f"{path}: no such file")
        else:
            found.append((text, path))
    return found, batch


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _plan_outputs(
    inputs: list[tuple[str, Path]], out: Path, batch: bool, fmt_suffix: str
) -> list[Path]:
    """Output file per input: ``out`` itself for one image, ``out/<stem><suffix>`` for a batch."""
    if not batch and not out.is_dir():
        output_format(out)
        return [out]
    if out.suffix.lower() in (*INPUT_SUFFIXES, ".webp") and not out.is_dir():
        raise ImageError(f"{out}: several inputs need an output folder, not a file name")
    if out.exists() and not out.is_dir():
        raise ImageError(f"{out}: exists and is not a folder")
    names = [out / (p.stem + fmt_suffix) for _, p in inputs]
    seen: dict[Path, Path] = {}
    for (_, src), dst in zip(inputs, names):
        if dst in seen:
            raise ImageError(f"{seen[dst]} and {src} would both be written to {dst}")
        seen[dst] = src
    return names


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
        type=click.IntRange(min=0),
        default=None,
        help="Random roll in pixels before each step.",
    ),
    click.option("--clip/--no-clip", default=None, help="Keep pixels in [0,1] after every step."),
    click.option(
        "--seed", type=click.IntRange(min=0), default=None, help="Seed for every random choice."
    ),
]


def _config_options(f: Callable) -> Callable:
    for option in reversed(_CONFIG_OPTIONS):
        f = option(f)
    return f


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
    label: str,
    src: Path,
    dst: Path,
    max_size: int | None,
    max_pixels: int,
    save_octaves: bool,
    quiet: bool,
    prefix: str = "",
) -> None:
    image = load_image(src, max_pixels=max_pixels).resized_to_fit(max_size)
    recipe = make_recipe(config, model, label, src, max_size)
    bar = None if quiet else ProgressBar(label=prefix)

    def on_progress(p: Progress) -> None:
        if bar is not None:
            bar(p)
        if save_octaves and p.octave_done and p.image is not None and p.octave < p.octaves:
            octave_path = dst.with_name(f"{dst.stem}.octave{p.octave}{dst.suffix}")
            save_image(LoadedImage(p.image.clamp(0, 1).cpu()), octave_path)

    out = dream_tensor(image.rgb, model, config, on_progress)
    save_image(image.with_rgb(out.cpu()), dst, recipe=recipe)
    _note(f"{prefix}wrote {dst}", quiet)


@cli.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output file (one input) or folder (several).",
)
@_config_options
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights file instead of the packaged one.",
)
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
    out: Path,
    weights: Path | None,
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
    sources, batch = _expand_inputs(inputs)
    targets = _plan_outputs(sources, out, batch, "." + fmt)
    for (_, src), dst in zip(sources, targets):
        if _same_file(src, dst):
            raise ImageError(f"{dst} is an input; refusing to overwrite it (even with --force)")
    todo = []
    for (label, src), dst in zip(sources, targets):
        if dst.exists() and not force:
            if not batch:
                raise ImageError(f"{dst} exists; pass --force to overwrite it")
            _note(f"skip {label}: {dst} exists", quiet)
            continue
        todo.append((label, src, dst))
    if not todo:
        _note("nothing to do: every output exists (use --force to redo)", quiet)
        return
    model = get_model(config.model, weights=weights)
    resolve_objective(model, config)  # unknown layers fail before any work
    failed = 0
    for k, (label, src, dst) in enumerate(todo, 1):
        prefix = f"[{k}/{len(todo)}] " if len(todo) > 1 else ""
        try:
            _dream_one(
                model, config, label, src, dst, max_size, max_pixels, save_octaves, quiet, prefix
            )
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
@click.option(
    "--weights",
    type=click.Path(path_type=Path),
    default=None,
    help="Weights file instead of the packaged one.",
)
@click.option("--force", "-f", is_flag=True, help="Overwrite an existing output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def replay(
    recipe_png: Path, out: Path, source: str | None, weights: Path | None, force: bool, quiet: bool
) -> None:
    """Re-run the recipe stored in a PNG written by `inceptionism dream`."""
    recipe = read_recipe(recipe_png)
    config = config_from_recipe(recipe)
    src_info = recipe.get("source") or {}
    label = source or src_info.get("input") or src_info.get("path")
    if not label:
        raise ImageError(f"{recipe_png}: recipe names no source image; pass --input")
    src = sample_path(label) if is_sample(label) else Path(label)
    if not is_sample(label) and not src.exists() and src_info.get("path") and source is None:
        src = Path(src_info["path"])
    if not src.exists():
        raise ImageError(f"{src}: source image not found; pass --input")
    output_format(out)
    if _same_file(src, out) or _same_file(recipe_png, out):
        raise ImageError(f"{out} is an input; refusing to overwrite it (even with --force)")
    if out.exists() and not force:
        raise ImageError(f"{out} exists; pass --force to overwrite it")
    model = get_model(config.model, weights=weights)
    from .models.weights import sha256_file

    if src_info.get("sha256") and sha256_file(src) != src_info["sha256"]:
        _note(f"warning: {src} differs from the recorded source; the result will differ", quiet)
    if recipe.get("weights_sha256") and model.weights_sha256 != recipe["weights_sha256"]:
        _note("warning: weights differ from the recorded ones; the result will differ", quiet)
    _dream_one(
        model, config, label, src, out, src_info.get("max_size"), DEFAULT_MAX_PIXELS, False, quiet
    )


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
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        _err(e.format_message().replace("\n", " ") + hint)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.Abort:
        _err("interrupted; finished outputs are kept")
        return 130
    except KeyboardInterrupt:
        _err("interrupted; finished outputs are kept")
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
