"""The dreaming commands: `dream` (a photo, a batch, noise), `replay` (a recipe back to its
pixels), and the lists that need the networks: `models`, `layers`.

Every user error ends as one line on stderr and exit code 2 (a failing outside tool: 1); nothing
is half-written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.options import (
    SectionedCommand,
    batch_jobs,
    command_config,
    dream_options,
    executor_option,
    load_run,
    model_options,
    read_options,
    run_flags,
)
from inceptionism.cli.params import (
    IntRange,
    echo_error,
    examples,
    note,
    size_text,
    table,
)
from inceptionism.configure import Options, dream_featurevis, parse_size
from inceptionism.engine.progress import ProgressBar
from inceptionism.errors import ImageError, InceptionismError
from inceptionism.executors.base import Done, Tally
from inceptionism.executors.select import make_executor
from inceptionism.io.image import DEFAULT_MAX_PIXELS, PILLOW_MAX_PIXELS, has_recipe
from inceptionism.io.outputs import plan_batch
from inceptionism.jobs.job import Job, check_starts, steering_refs
from inceptionism.jobs.replay import replay_job
from inceptionism.jobs.run import run_job
from inceptionism.models import depth_groups, get_spec, layer_table, list_models, parameter_count
from inceptionism.models.custom import DRY_SIZE, is_network, register_network
from inceptionism.models.hub import cached_repos


@click.command(
    cls=SectionedCommand,
    short_help=short_help("dream"),
    epilog=examples(
        "dream sample:coffee -o dream.png",
        "dream photos/ -o dreams/ --preset keras-classic --steps 10",
        "dream --init noise --size 256x256 --layers block12:37 -o channel.png",
    ),
)
@click.argument("inputs", nargs=-1)
@click.option(
    "--output",
    "-o",
    "out",
    required=True,
    metavar="OUT",
    help="Output file (one input) or folder (several, or a name ending in /).",
)
@click.option("--size", default=None, callback=size_text, metavar="WxH",
              help="WxH of a dream without a photo (default 512x512).")  # fmt: skip
@dream_options(lucid=True)
@click.option("--format", "fmt", type=click.Choice(["png", "jpg", "webp"]), default="png",
              show_default=True, help="Output type in a batch folder.")  # fmt: skip
@click.option("--save-octaves", is_flag=True,
              help="Also write each octave's image (OUT.octaveN.png).")  # fmt: skip
@run_flags("Overwrite existing outputs (never an input).")
@executor_option
@click.pass_context
def dream(ctx: click.Context, inputs: tuple[str, ...], out: str, guide: str | None,
          mask: str | None, size: str | None, max_size: int | None, max_pixels: int, fmt: str,
          save_octaves: bool, force: bool, quiet: bool, **opts: Any) -> None:  # fmt: skip
    """Dream INPUT (files, folders or sample:NAME) into OUT.

    With --init noise or grey no INPUT is needed (--size WxH, default 512x512). Batch runs
    skip outputs that already exist, so an interrupted batch resumes.
    """
    options = read_options(ctx, opts)
    wh = parse_size(size)
    fv = dream_featurevis(options, wh, bool(inputs))  # or None
    config = command_config(options, guide=guide is not None, lucid=True)
    config = config.replace(init="noise") if fv else config
    check_starts(inputs, config.init, wh, max_pixels)  # before any file is read
    refs = steering_refs(guide, mask)
    plans, notes = plan_batch(inputs, out, fmt_suffix="." + fmt, octaves=config.octaves,
                              save_octaves=save_octaves, force=force, start=config.init,
                              protected=tuple(r.local() for r in refs.values()),
                              is_ours=has_recipe)  # fmt: skip
    for line in notes:
        note(line, quiet)
    if any(p.dst.suffix.lower() != ".png" for p in plans):
        note("note: JPEG and WebP outputs carry no recipe (only PNG does): replay needs a PNG",
             quiet)  # fmt: skip
    if not plans:
        note("nothing to do: every output exists (use --force to redo)", quiet)
        return
    batch = len(plans) + len(notes) > 1
    jobs = batch_jobs(plans, config, refs=refs, size=wh, max_size=max_size,
                      max_pixels=max_pixels, batch=batch, featurevis=fv)  # fmt: skip
    failed = 0
    for label, job in jobs:  # inputs refused on their header
        if isinstance(job, InceptionismError):
            failed += 1
            echo_error(f"skipped {label}: {job}")
    todo = [job for _, job in jobs if isinstance(job, Job)]
    if not todo:
        raise ImageError(f"{failed} of {len(jobs)} inputs could not be dreamed (see above)")

    def done(d: Done, tally: Tally) -> None:
        nonlocal failed
        prefix = f"[{tally.done}/{tally.total}] " if len(jobs) > 1 else ""
        if d.error is None:
            rate = f" ({tally.describe()})" if executor.parallel else ""
            note(f"{prefix}wrote {d.job.output}{rate}", quiet)
        elif not batch:
            raise d.error
        else:  # this input only (unreadable, neuron outside it, ...)
            failed += 1
            echo_error(f"skipped {d.job.label}: {d.error}")

    def live(i: int, job: Job) -> ProgressBar | None:
        return None if quiet else ProgressBar(label=f"[{i + 1}/{len(todo)}] " if batch else "")

    with make_executor(options["executor"], options["device"]) as executor:  # joined first
        executor.run(todo, load_run(config, options), done, live)  # type: ignore[arg-type]
    if failed:
        raise ImageError(f"{failed} of {len(jobs)} inputs could not be dreamed (see above)")


@click.command(
    cls=SectionedCommand,
    sections={"Files that moved": ("source", "previous", "guide_file", "mask_file")},
    short_help=short_help("replay"),
    epilog=examples(
        "replay dream.png -o again.png",
        "replay dream.png -o again.png --input moved/photo.jpg",
        "replay cells/block12_3.png -o cell.png --device cpu",
    ),
)
@click.argument("recipe_png", type=click.Path(path_type=Path))
@click.option("--output", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Output file.")  # fmt: skip
@click.option("--input", "-i", "source", default=None,
              help="The source image (or video), if it moved since the dream.")  # fmt: skip
@click.option(
    "--previous",
    default=None,
    help="A frame's previous frame (zoom) or previous dream (video), if it moved.",
)
@click.option("--guide", "guide_file", default=None, help="Guide image, if it moved.")
@click.option("--mask", "mask_file", default=None, help="Mask image, if it moved.")
@click.option("--max-pixels", type=IntRange(1, PILLOW_MAX_PIXELS), default=DEFAULT_MAX_PIXELS,
              metavar="N", help="Refuse inputs with more pixels (decompression bombs); a "
              "recipe may lower this limit, never raise it.")  # fmt: skip
@click.option("--model", "-m", default=None,
              help="Build this network instead of the recorded one; needed to re-create a dream "
              "of your own network (a recipe never makes replay import or load code).")  # fmt: skip
@model_options
@run_flags("Overwrite an existing output.")
def replay(recipe_png: Path, out: Path, force: bool, quiet: bool, **opts: Any) -> None:
    """Re-create an output (a dream, a sheet's cell, a zoom or video frame) from the recipe
    stored in its PNG, pixel for pixel on the same machine."""
    notes: list[str] = []  # said once the replay worked: an error stays the only line
    job, run = replay_job(recipe_png, out, force, Options.of(opts), warn=notes.append)
    run_job(job, run, None if quiet else ProgressBar())
    for line in notes:
        note(line)
    note(f"wrote {job.output}", quiet)


@click.command(
    short_help=short_help("models"),
    epilog=examples(
        "models",
        "layers inception_v3",
        "dream sample:coffee -o v3.png --model inception_v3",
    ),
)
def models() -> None:
    """List the registered models, and the Hugging Face Hub networks already in the cache
    (dream with them offline as --model hf:ORG/NAME)."""
    rows = []
    for name in list_models():
        spec = get_spec(name)
        layers = ",".join(f"{n}={w:g}" for n, w in spec.default_layers)
        params = f"{parameter_count(name) / 1e6:.1f}M"
        rows.append((name, params, layers, spec.preset, spec.weights.describe()))
    table(("model", "params", "default layers", "preset", "weights"), rows)
    cached = cached_repos()
    if cached:
        click.echo("\nIn the Hugging Face cache (--model hf:ORG/NAME, offline):")
        table(("model", "architecture", "revisions"), cached)


@click.command(
    short_help=short_help("layers"),
    epilog=examples(
        "layers efficientnet_lite2",
        "layers vgg16",
        "layers my_net.pt --size 224",
    ),
)
@click.argument("model")
@click.option("--size", type=IntRange(16, 4096), default=DRY_SIZE, show_default=True,
              help="Your network: the input size of the dry forward pass that finds channels "
              "and strides.")  # fmt: skip
def layers(model: str, size: int) -> None:
    """List MODEL's targetable layers: name, channels, stride (and aliases).

    MODEL may be your own network: a TorchScript file or package.module:factory.
    """
    if is_network(model) and model not in list_models():
        name = register_network(model, size=size).name
    else:
        name = get_spec(model).name
    found = layer_table(name)
    defaults = {n for n, _ in get_spec(name).default_layers}
    mark = ["*" if i.name in defaults else "" for i in found]
    rows: list[tuple[Any, ...]]
    if any(i.aliases for i in found):
        rows = [
            (i.name, i.channels, i.stride, m, ", ".join(i.aliases)) for i, m in zip(found, mark)
        ]
        table(("layer", "channels", "stride", "default", "aliases"), rows)
    else:
        rows = [(i.name, i.channels, i.stride, m) for i, m in zip(found, mark)]
        table(("layer", "channels", "stride", "default"), rows)
    for label, hint, part in depth_groups(name):
        click.echo(f"{label} ({hint}): {part[0]} .. {part[-1]}")
