"""`inceptionism sweep`, `atlas` and `channels`: experiments as labelled contact sheets.

Each cell is a job (kind ``cell``) on one start and one loaded model (explore.Sheets); every
cell is built, and so checked, before the first is dreamed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.options import (
    SectionedCommand,
    command_config,
    dream_options,
    executor_option,
    given,
    load_run,
    read_options,
    run_flags,
    stack,
)
from inceptionism.cli.params import (
    IntRange,
    examples,
    finite_each,
    finite_numbers,
    note,
    size_text,
)
from inceptionism.configure import Options, featurevis_config, parse_size
from inceptionism.engine.loop import resolve_objective
from inceptionism.errors import ConfigError
from inceptionism.explore.cells import Sheets, atlas_layers, lucid_title, pick_channels, sheet_title
from inceptionism.explore.vary import Cell, cell_config, parse_vary, sweep_sheets, varied_fields
from inceptionism.featurevis.params import PARAMS
from inceptionism.io.sheets import contact_sheet, with_source
from inceptionism.jobs.job import BLANK_STARTS, source_start, steering_refs

CHANNEL_DEFAULTS = {"objective": "mean", "grad_norm": "laplacian", "step_size": 0.02,
                    "steps": 30, "octaves": 3}  # fmt: skip


def _explore_options(defaults: dict[str, Any] | None = None, lucid: bool = False) -> Any:
    return stack(
        click.option("--output", "-o", "out", required=True, metavar="OUT",
                     help="Sheet file (.png)."),
        click.option("--cells", "cells_dir", default=None, help="Also keep each cell here."),
        click.option("--size", default=None, callback=size_text, metavar="WxH",
                     help="WxH of a noise/grey start (256x256)."),
        click.option("--cell-size", type=IntRange(64, 1024), default=256,
                     show_default=True, help="Cell side on the sheet."),
        run_flags("Overwrite an existing sheet."),
        executor_option,
        dream_options(defaults, max_size=320, lucid=lucid),
    )  # fmt: skip


def _sheets(source: str, ctx: click.Context, options: Options, defaults=None,
            lucid: bool = False) -> Sheets:  # fmt: skip
    """The options every sheet command shares, read into its Sheets (all checked first);
    ``lucid``: the command renders the lucid recipe."""
    guide = options.get("guide") is not None
    config = command_config(options, defaults, guide=guide, lucid=lucid)
    start = source_start(source, config.init, parse_size(options["size"]), options["max_size"],
                         options["max_pixels"], default_size=(256, 256))  # fmt: skip
    cells = Path(options["cells_dir"]) if options["cells_dir"] else None
    weights = options.get("weights")

    def load(c: Any) -> Any:  # --weights belongs to the command's own model
        return load_run(c, options.replace(weights=weights if c.model == config.model else None))

    refs = steering_refs(options.get("guide"), options.get("mask"))
    return Sheets(config, start, refs=refs, out=Path(options["out"]), cells_dir=cells,
                  force=options["force"], load=load,
                  executor=(options["executor"], options["device"]),
                  report=None if options["quiet"] else note,
                  on_close=ctx.call_on_close)  # fmt: skip


@click.command(
    cls=SectionedCommand,
    sections={"Sweep": ("varies",)},
    short_help=short_help("sweep"),
    epilog=examples(
        "sweep sample:coffee -o steps.png --vary step-size=0.003,0.006,0.012",
        "sweep sample:coffee -o grid.png --vary octaves=2,4 --vary steps=10,20",
        'sweep noise -o layers.png --vary "layers=block10;block12;block14"',
    ),
)
@click.argument("source")
@click.option("--vary", "varies", multiple=True, required=True, callback=finite_each,
              help="NAME=V1,V2,... (any config option; ';' separates layer specs).")  # fmt: skip
@_explore_options()
@click.pass_context
def sweep(ctx: click.Context, source: str, varies: tuple[str, ...], **opts: Any) -> None:
    """Dream SOURCE (a photo, sample:NAME, noise or grey) once per combination of --vary
    values, as a labelled grid: one or two varied parameters make one sheet, more make one
    sheet per value of the extra ones (OUT.<name>=<value>.png)."""
    options = read_options(ctx, opts)
    run = _sheets(source, ctx, options)
    build = cell_config(options, guide=options.get("guide") is not None)
    parsed = [parse_vary(v, build) for v in varies]
    sheets = sweep_sheets(build, parsed)
    out = run.out
    paths = [out.with_name(f"{out.stem}.{s[0]}{out.suffix}") for s in sheets]
    paths = paths if len(sheets) > 1 else [out]
    all_jobs = [run.jobs(cells) for _, _, cells, _, _ in sheets]
    run.check(paths, [j for jobs in all_jobs for j in jobs])
    photo = run.photo()
    skip = varied_fields([c for _, _, cells, _, _ in sheets for c in cells])
    for path, (_, extras, cells, columns, rows), jobs in zip(paths, sheets, all_jobs):
        dreamed: list[tuple[str, Any]] = list(zip([c.label for c in cells], run.dream(jobs)))
        pairs, columns, rows = with_source(dreamed, columns, rows, photo)
        title = sheet_title(run.config, skip, source) + ("  " + " ".join(extras) if extras else "")
        sheet = contact_sheet(pairs, columns, title, options["cell_size"], rows or None)
        run.write(path, sheet, {"kind": "sweep", "vary": list(varies), "extra": extras})


@click.command(
    cls=SectionedCommand,
    short_help=short_help("atlas"),
    epilog=examples(
        "atlas sample:coffee -o atlas.png",
        "atlas sample:chelsea -o three.png --layers block4,block8,block12",
        "atlas noise -o lucid_atlas.png --preset lucid",
    ),
)
@click.argument("source")
@_explore_options(lucid=True)
@click.pass_context
def atlas(ctx: click.Context, source: str, **opts: Any) -> None:
    """One cell per layer (--layers a,b,c or all): what each layer sees in SOURCE (a photo,
    sample:NAME, noise or grey). Labelled with the layer's name and channels."""
    options = read_options(ctx, opts)
    spec = options["layers"] or "all"
    options = options.replace(layers=None)  # the atlas's cells name theirs
    size = parse_size(options["size"]) or (256, 256)
    photo = source not in BLANK_STARTS
    fv = featurevis_config(options, size, photo=photo)
    run = _sheets(source, ctx, options, lucid=True)
    layers = atlas_layers(run.config.model, spec)
    cells = [Cell(f"{n} ({c} ch)", f"layer_{n}", run.config.replace(layers=n)) for n, c in layers]
    jobs = run.jobs(cells, fv)
    run.check([run.out], jobs)
    pairs, columns, _ = with_source(list(zip([c.label for c in cells], run.dream(jobs))),
                                    len(cells), [], run.photo())  # fmt: skip
    title = lucid_title(fv, source) if fv else sheet_title(run.config, {"layers"}, source)
    info = {"kind": "atlas", "layers": [n for n, _ in layers]}
    run.write(run.out, contact_sheet(pairs, min(6, columns), title, options["cell_size"]),
              {**info, "featurevis": fv.to_dict()} if fv else info)  # fmt: skip


@click.command(
    cls=SectionedCommand,
    sections={
        "Channels": ("count", "channel_list"),
        "The lucid recipe": ("param", "transforms", "batch"),
    },
    short_help=short_help("channels"),
    epilog=examples(
        "channels block12 -o block12.png",
        "channels block12 -o picked.png --channels 3,17,42",
        "channels block6 -o deepdream.png --model efficientnet_lite0 --preset default",
    ),
)
@click.argument("layer")
@click.option("--count", type=IntRange(1, 256), default=16, show_default=True,
              help="The first COUNT channels.")  # fmt: skip
@click.option("--channels", "channel_list", default=None, help="Exactly these: 3,17,42.")
@stack(
    click.option("--param", type=click.Choice(PARAMS), default=None,
                 help="lucid recipe: image parameterisation (default fft)."),
    click.option("--transforms", default=None, callback=finite_numbers,
                 help="lucid recipe: robustness transforms, e.g. jitter=4,scale=0.1,rotate=10 "
                      "(default), standard (Lucid's, with pad=12), none."),
    click.option("--batch", type=IntRange(1, 256), default=None,
                 help="lucid recipe: channels per forward/backward pass (16)."),
)  # fmt: skip
@_explore_options(CHANNEL_DEFAULTS, lucid=True)
@click.pass_context
def channels(ctx: click.Context, layer: str, count: int, channel_list: str | None,
             **opts: Any) -> None:  # fmt: skip
    """Feature visualisation of LAYER's channels: what makes each one fire. By default the
    lucid recipe (Fourier + decorrelated colour + robustness transforms + Adam, channels
    rendered in batches); --preset default (or any dream preset) gives the DeepDream of noise."""
    if given(ctx, "layers"):
        raise ConfigError("channels takes the layer as its argument, not --layers")
    options = read_options(ctx, opts)
    lucid = {k: v for k in ("param", "transforms", "batch") if (v := options[k]) is not None}
    side = parse_size(options["size"]) or (128, 128)
    fv = featurevis_config(options, side, True, **lucid)
    if options["preset"] == "default":  # the earlier look: DeepDream of noise, channels' own
        options = options.replace(preset=None)
    size = f"{fv.size}x{fv.size}" if fv is not None else options["size"]  # the render's size
    run = _sheets("noise", ctx, options.replace(layers=layer, size=size), CHANNEL_DEFAULTS, True)
    run.config = run.config.replace(layers=layer)
    resolve_objective(run.config.model, run.config)  # an unknown layer: one line, valid names
    picked = pick_channels(run.config.model, layer, count, channel_list)
    cells = [Cell(f"{layer}:{c}", f"{layer}_{c}", run.config.replace(layers=f"{layer}:{c}"))
             for c in picked]  # fmt: skip
    jobs = run.jobs(cells, fv)
    run.check([run.out], jobs)
    images = run.dream(jobs)
    title = (lucid_title(fv, f"{run.config.model} {layer}") if fv
             else sheet_title(run.config, {"layers"}, "noise"))  # fmt: skip
    columns = min(8, max(1, round(len(cells) ** 0.5 + 0.5)))
    sheet = contact_sheet(list(zip([c.label for c in cells], images)), columns, title,
                          options["cell_size"])  # fmt: skip
    info = {"kind": "channels", "layer": layer}
    run.write(run.out, sheet, {**info, "featurevis": fv.to_dict()} if fv else info)
