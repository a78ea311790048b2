"""The ``inceptionism`` command: a thin shell over :func:`inceptionism.dream_tensor`.

Every user error ends as one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import torch

from . import __version__
from .cli_options import build_config, config_options, device_for, model_options, parse_size
from .config import PRESETS, DreamConfig
from .engine import Progress, dream_tensor, resolve_objective
from .errors import ImageError, InceptionismError
from .image import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    load_image,
    output_format,
    read_recipe,
    save_image,
)
from .models import DreamModel, get_model, get_spec, layer_table, list_models, parameter_count
from .models.custom import DRY_SIZE, is_network, register_network
from .models.weights import sha256_file
from .outputs import Job, plan_jobs, same_file
from .progress import ProgressBar
from .recipe import config_from_recipe, make_recipe
from .samples import is_sample, list_samples, sample_path
from .techniques import start_image

DEFAULT_SIZE = (512, 512)


def _err(message: str) -> None:
    click.echo(f"inceptionism: error: {' '.join(str(message).split())}", err=True)


def _note(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


# --- commands ------------------------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="inceptionism")
def cli() -> None:
    """DeepDream on PyTorch: dream photos with pretrained networks, offline."""


@dataclass
class Steering:
    """Images a run reads besides its inputs, loaded once per command, and the size of a dream
    without a photo."""

    guide: LoadedImage | None = None
    mask: LoadedImage | None = None
    size: tuple[int, int] | None = None  # (width, height)
    refs: dict[str, Any] = field(default_factory=dict)  # recipe entries: path and sha256

    @classmethod
    def load(cls, guide: str | None, mask: str | None, size: tuple[int, int] | None,
             max_pixels: int) -> Steering:  # fmt: skip
        found = cls(size=size)
        for kind, text in (("guide", guide), ("mask", mask)):
            if text is None:
                continue
            path = sample_path(text) if is_sample(text) else Path(text)
            setattr(found, kind, load_image(path, max_pixels=max_pixels))
            found.refs[kind] = {"input": text, "path": str(path.resolve()),
                                "sha256": sha256_file(path)}  # fmt: skip
        return found

    def paths(self) -> tuple[Path, ...]:
        return tuple(Path(ref["path"]) for ref in self.refs.values())


def _dream_one(
    model: DreamModel,
    config: DreamConfig,
    job: Job,
    max_size: int | None,
    max_pixels: int,
    quiet: bool,
    steering: Steering,
    weights_file: Path | None = None,
    prefix: str = "",
) -> None:
    if job.src is not None:
        image = load_image(job.src, max_pixels=max_pixels).resized_to_fit(max_size)
    else:
        w, h = steering.size or DEFAULT_SIZE
        image = LoadedImage(torch.zeros(1, 3, h, w))
    if config.init != "photo":  # noise or grey, of the photo's size when there is one
        h, w = image.rgb.shape[-2:]
        image = LoadedImage(start_image(config.init, h, w, config.seed), image.alpha)
    recipe = make_recipe(config, model, job.label, job.src, max_size, max_pixels, weights_file)
    recipe["source"]["size"] = list(image.size)
    recipe.update(steering.refs)
    bar = None if quiet else ProgressBar(label=prefix)

    def on_progress(p: Progress) -> None:
        if bar is not None:
            bar(p)
        if p.octave_done and p.image is not None and p.octave <= len(job.octave_files):
            shot = LoadedImage(p.image.clamp(0, 1).cpu(), image.alpha).with_alpha_fitted()
            save_image(shot, job.octave_files[p.octave - 1], {**recipe, "octave": p.octave})

    guide = steering.guide.rgb if steering.guide is not None else None
    mask = steering.mask.as_mask() if steering.mask is not None else None
    out = dream_tensor(image.rgb, model, config, on_progress, guide=guide, mask=mask)
    save_image(image.with_rgb(out.cpu()), job.dst, recipe=recipe)
    _note(f"{prefix}wrote {job.dst}", quiet)


@cli.command()
@click.argument("inputs", nargs=-1)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    help="Output file (one input) or folder (several, or a name ending in /).",
)
@click.option("--guide", default=None, help="Guide image: dream towards its features.")
@click.option("--mask", default=None, help="Mask image: dream only where it is white (softly).")
@click.option("--size", default=None, help="WxH of a dream without a photo (default 512x512).")
@config_options
@model_options
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
    guide: str | None,
    mask: str | None,
    size: str | None,
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

    With --init noise or grey no INPUT is needed (--size WxH, default 512x512). Batch runs
    skip outputs that already exist, so an interrupted batch resumes.
    """
    config = build_config({**opts, "guide": guide})
    resolve_objective(config.model, config)  # bad layers fail before files or weights
    device_for(device)  # a bad device fails before any work
    wh = parse_size(size)
    if wh is not None and wh[0] * wh[1] > max_pixels:
        raise ImageError(
            f"--size {wh[0]}x{wh[1]} is {wh[0] * wh[1]} pixels, over the limit of {max_pixels} "
            "(raise it with --max-pixels)"
        )
    if not inputs and config.init == "photo":
        raise ImageError("no INPUT given; name a photo, or start from --init noise or grey")
    if wh is not None and inputs:
        raise ImageError("--size is for dreams without a photo (the photo sets the size)")
    if config.keep_colors and config.init != "photo":
        raise ImageError("--keep-colors needs a photo to take the colours from")
    steering = Steering.load(guide, mask, wh, max_pixels)
    todo, notes = plan_jobs(inputs, out, "." + fmt, config.octaves, save_octaves, force,
                            start=config.init, protected=steering.paths())  # fmt: skip
    for note in notes:
        _note(note, quiet)
    if not todo:
        _note("nothing to do: every output exists (use --force to redo)", quiet)
        return
    model = get_model(config.model, weights=weights, device=device_for(device))
    failed = 0
    batch = len(todo) + len(notes) > 1
    for k, job in enumerate(todo, 1):
        prefix = f"[{k}/{len(todo)}] " if len(todo) > 1 else ""
        try:
            _dream_one(model, config, job, max_size, max_pixels, quiet, steering, weights, prefix)
        except InceptionismError as e:  # this input only (unreadable, neuron outside it, ...)
            if not batch:
                raise
            failed += 1
            _err(f"skipped {job.label}: {e}")
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
@click.option("--guide", "guide_file", default=None, help="Guide image, if it moved.")
@click.option("--mask", "mask_file", default=None, help="Mask image, if it moved.")
@model_options
@click.option("--force", "-f", is_flag=True, help="Overwrite an existing output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def replay(
    recipe_png: Path,
    out: Path,
    source: str | None,
    guide_file: str | None,
    mask_file: str | None,
    weights: Path | None,
    device: str,
    input_norm: str | None,
    input_range: str | None,
    force: bool,
    quiet: bool,
) -> None:
    """Re-run the recipe stored in a PNG written by `inceptionism dream`."""
    recipe = read_recipe(recipe_png)
    config = config_from_recipe(recipe)
    network = recipe.get("network") if isinstance(recipe.get("network"), dict) else None
    if network is not None or input_norm is not None or input_range is not None:
        network = network or {}
        register_network(
            config.model,
            input_norm if input_norm is not None else network.get("input_norm"),
            input_range if input_range is not None else network.get("input_range"),
            int(network.get("size") or DRY_SIZE),
        )
    src_info = recipe.get("source")
    if not isinstance(src_info, dict):
        raise ImageError(f"{recipe_png}: recipe has no 'source' section")
    if src_info.get("path") is None and config.init != "photo" and source is None:
        src, label = None, str(src_info.get("input") or config.init)  # a dream from noise
    else:
        src, label = _replay_source(recipe_png, src_info, source)
    steering = Steering(size=tuple(src_info["size"]) if src_info.get("size") else None)
    max_pixels = src_info.get("max_pixels") or DEFAULT_MAX_PIXELS
    for kind, given in (("guide", guide_file), ("mask", mask_file)):
        if isinstance(recipe.get(kind), dict):
            path, _ = _replay_source(recipe_png, recipe[kind], given, kind)
            setattr(steering, kind, load_image(path, max_pixels=max_pixels))
    output_format(out)
    reads = [p for p in (src, recipe_png, *steering.paths()) if p is not None]
    if any(same_file(p, out) for p in reads):
        raise ImageError(f"{out} is an input; refusing to overwrite it, even with --force")
    if out.exists() and not force:
        raise ImageError(f"{out} exists; pass --force to overwrite it")
    recorded_weights = recipe.get("weights_file")
    if weights is None and recorded_weights and Path(recorded_weights).is_file():
        weights = Path(recorded_weights)
    model = get_model(config.model, weights=weights, device=device_for(device))
    if recipe.get("weights_sha256") and model.weights_sha256 != recipe["weights_sha256"]:
        _note("warning: weights differ from the recorded ones; the result will differ")
    job = Job(label, src, out)
    _dream_one(model, config, job, src_info.get("max_size"), max_pixels, quiet, steering, weights)


def _replay_source(
    recipe_png: Path, info: dict[str, Any], given: str | None, kind: str = "source image"
) -> tuple[Path, str]:
    """A recorded image: --input if given, else the recorded file whose sha256 still matches
    (the absolute path first, then the input as written); a changed file only with a warning."""
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
        hint = f"; pass --{'input' if kind == 'source image' else kind}"
        raise ImageError(f"{recipe_png}: {kind} not found ({shown}){hint}")
    recorded = info.get("sha256")
    for path, label in existing:
        if not recorded or sha256_file(path) == recorded:
            return path, label
    path, label = existing[0]
    _note(f"warning: {path} differs from the recorded {kind}; the result will differ")
    return path, label


@cli.command()
def models() -> None:
    """List the registered models."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        layers = ",".join(f"{n}={w:g}" for n, w in spec.default_layers)
        params = f"{parameter_count(name) / 1e6:.1f}M"
        rows.append((name, params, layers, spec.preset, spec.weights.describe()))
    _table(("model", "params", "default layers", "preset", "weights"), rows)


@cli.command()
@click.argument("model")
@click.option(
    "--size",
    type=click.IntRange(16, 4096),
    default=DRY_SIZE,
    show_default=True,
    help="Your network: the input size of the dry forward pass that finds channels and strides.",
)
def layers(model: str, size: int) -> None:
    """List MODEL's targetable layers: name, channels, stride (and aliases).

    MODEL may be your own network: a TorchScript file or package.module:factory.
    """
    if is_network(model) and model not in list_models():
        name = register_network(model, size=size).name
    else:
        name = get_spec(model).name
    table = layer_table(name)
    if any(i.aliases for i in table):
        rows = [(i.name, i.channels, i.stride, ", ".join(i.aliases)) for i in table]
        _table(("layer", "channels", "stride", "aliases"), rows)
    else:
        _table(("layer", "channels", "stride"), [(i.name, i.channels, i.stride) for i in table])


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


# the other commands register themselves on `cli`
from . import cli_explore, cli_motion, cli_studio  # noqa: E402,F401


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
