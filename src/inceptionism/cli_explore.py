"""`inceptionism sweep`, `atlas` and `channels`: experiments as labelled contact sheets.

Each cell is a job (kind ``cell``) on one start and one loaded model; every cell is built, and so
checked, before the first is dreamed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click
from PIL import Image

from .cli_options import (
    command_config,
    config_options,
    explicit_fields,
    given,
    load_run,
    model_options,
    note,
    pixel_options,
    run_flags,
    steering_options,
)
from .config import DreamConfig
from .configure import parse_size
from .engine import resolve_objective
from .errors import ConfigError, ImageError, UnknownNameError
from .executors import Executor, executor_option, make_executor
from .explore import (
    Cell,
    cell_config,
    cell_jobs,
    parse_vary,
    run_cells,
    sweep_sheets,
    varied_fields,
)
from .featurevis import FeatureVisConfig, featurevis_recipe, render_channels
from .image import LoadedImage, save_image
from .jobs import FileRef, Job, RunContext, Start, blank_start, photo_start, start_tensor
from .models import layer_index, layer_table
from .outputs import check_outputs
from .params import PARAMS
from .sheets import contact_sheet

STARTS = ("noise", "grey")
CHANNEL_DEFAULTS = {"objective": "mean", "grad_norm": "laplacian", "step_size": 0.02,
                    "steps": 30, "octaves": 3}  # fmt: skip


def _explore_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--output", "-o", "out", required=True, help="Sheet file (.png)."),
            click.option("--cells", "cells_dir", default=None, help="Also keep each cell here."),
            click.option("--size", default=None, help="WxH of a noise/grey start (256x256)."),
            click.option("--cell-size", type=click.IntRange(64, 1024), default=256,
                         show_default=True, help="Cell side on the sheet."),
            steering_options,
            run_flags("Overwrite an existing sheet."),
            executor_option,
        ]
    ):  # fmt: skip
        f = option(f)
    return pixel_options(max_size=320)(model_options(f))


class _Run:
    """What every explore command shares: the start, the model, the sheet's outputs."""

    def __init__(self, source: str, ctx: click.Context, opts: dict[str, Any], defaults=None):
        self.out = Path(opts["out"])
        if self.out.suffix.lower() != ".png":
            raise ImageError(f"{self.out}: sheets are written as .png")
        self.opts, self.force, self.quiet = opts, opts["force"], opts["quiet"]
        self.cells_dir = Path(opts["cells_dir"]) if opts["cells_dir"] else None
        if self.cells_dir is not None and self.cells_dir.exists() and not self.cells_dir.is_dir():
            raise ImageError(f"--cells {self.cells_dir}: exists and is not a folder")
        self.config = command_config(ctx, opts, defaults, guide=opts.get("guide") is not None)
        self.source = source
        max_size = opts["max_size"]
        if source in STARTS:
            self.start: Start = blank_start(source, parse_size(opts["size"]) or (256, 256),
                                            opts["max_pixels"])  # fmt: skip
        else:
            if opts["size"] is not None:
                raise ImageError("--size is for noise or grey starts (the photo sets the size)")
            self.start = photo_start(source, self.config.init, max_size, opts["max_pixels"])
        self.refs = {k: FileRef.of(opts[k]) for k in ("guide", "mask") if opts.get(k)}
        self.runs: dict[str, RunContext] = {}
        self.executor: Executor | None = None
        self.ctx = ctx

    def jobs(self, cells: list[Cell]) -> list[Job]:
        """Every cell as a job, checked (objective, guide, sizes) before any work."""
        return cell_jobs(cells, self.start, self.cells_dir, self.refs)

    def check(self, sheets: list[Path], jobs: list[Job]) -> None:
        reads = [p for job in jobs[:1] for p in job.reads]
        check_outputs(sheets, reads, self.force)
        cells = [p for job in jobs for p in job.writes]
        check_outputs(cells, [*reads, *sheets], force=True)

    def run_for(self, job: Job) -> RunContext:
        """The loaded model of a job's config (each model loaded once: --vary model=...)."""
        return self.context(job.config)

    def context(self, config: DreamConfig) -> RunContext:
        name = config.model
        if name not in self.runs:
            weights = self.opts.get("weights") if name == self.config.model else None
            self.runs[name] = load_run(config, {**self.opts, "weights": weights})
        return self.runs[name]

    def dream(self, jobs: list[Job]) -> list[Image.Image]:
        if self.executor is None:  # the executor joined (a cluster) before the model or a write
            self.executor = make_executor(self.opts["executor"], self.opts["device"]).open()
            self.ctx.call_on_close(self.executor.close)
        return run_cells(self.run_for, jobs, None if self.quiet else note, self.executor)

    def photo(self) -> Image.Image | None:
        """The photo as the cells saw it (downscaled), for the sheet's first cell."""
        if self.start.source is None:
            return None
        photo = dataclasses.replace(self.start, kind="photo")
        return LoadedImage(start_tensor(photo, 0)[0]).to_pil()

    def write(self, path: Path, sheet: Image.Image, info: dict[str, Any]) -> None:
        save_image(sheet, path, {"sheet": info, "model": self.config.model})
        note(f"wrote {path}", self.quiet)


def _title(config: DreamConfig, skip: set[str], source: str) -> str:
    fields = dataclasses.fields(DreamConfig)
    keys = [f.name for f in fields if f.metadata.get("title") and f.name not in skip]
    parts = [f"{k.replace('_', '-')}={getattr(config, k)}" for k in keys]
    return f"{source}: " + " ".join(p for p in parts if not p.endswith("=None"))


@click.command()
@click.argument("source")
@click.option("--vary", "varies", multiple=True, required=True,
              help="NAME=V1,V2,... (any config option; ';' separates layer specs).")  # fmt: skip
@config_options()
@_explore_options
@click.pass_context
def sweep(ctx: click.Context, source: str, varies: tuple[str, ...], **opts: Any) -> None:
    """Dream SOURCE (a photo, sample:NAME, noise or grey) once per combination of --vary
    values, as a labelled grid: one or two varied parameters make one sheet, more make one
    sheet per value of the extra ones (OUT.<name>=<value>.png)."""
    run = _Run(source, ctx, opts)
    build = cell_config(opts, explicit_fields(ctx, opts), guide=opts.get("guide") is not None)
    parsed = [parse_vary(v, build) for v in varies]
    sheets = sweep_sheets(build, parsed)
    out = run.out
    paths = [out.with_name(f"{out.stem}.{s[0]}{out.suffix}") for s in sheets] if len(
        sheets) > 1 else [out]  # fmt: skip
    all_jobs = [run.jobs(cells) for _, _, cells, _, _ in sheets]
    run.check(paths, [j for jobs in all_jobs for j in jobs])
    photo = run.photo()
    skip = varied_fields([c for _, _, cells, _, _ in sheets for c in cells])
    for path, (_, extras, cells, columns, row_labels), jobs in zip(paths, sheets, all_jobs):
        images = run.dream(jobs)
        pairs: list[tuple[str, Image.Image | None]] = [
            (c.label, im) for c, im in zip(cells, images)
        ]
        if photo is not None and not row_labels:  # one row: the source first in it
            pairs, columns = [("source", photo), *pairs], columns + 1
        elif photo is not None:  # a grid: the source first, on a row of its own
            pairs = [("source", photo)] + [("", None)] * (columns - 1) + pairs
            row_labels = ["", *row_labels]
        title = _title(run.config, skip, source) + ("  " + " ".join(extras) if extras else "")
        sheet = contact_sheet(pairs, columns, title, opts["cell_size"], row_labels or None)
        run.write(path, sheet, {"kind": "sweep", "vary": list(varies), "extra": extras})


def _layer_names(model_name: str, spec: str) -> list[tuple[str, int]]:
    table = layer_table(model_name)
    if spec.strip() == "all":
        return [(i.name, i.channels) for i in table if "." not in i.name and i.stride > 0]
    by_name = layer_index(table)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise ConfigError("--layers: name at least one layer, or 'all'")
    for n in names:
        if n not in by_name:
            raise UnknownNameError("layer", n, list(by_name), where=model_name)
    return [(n, by_name[n].channels) for n in names]


@click.command()
@click.argument("source")
@config_options()
@_explore_options
@click.pass_context
def atlas(ctx: click.Context, source: str, **opts: Any) -> None:
    """One cell per layer (--layers a,b,c or all): what each layer sees in SOURCE (a photo,
    sample:NAME, noise or grey). Labelled with the layer's name and channels."""
    spec = opts.pop("layers") or "all"
    opts["layers"] = None
    run = _Run(source, ctx, opts)
    layers = _layer_names(run.config.model, spec)
    cells = [Cell(f"{n} ({c} ch)", f"layer_{n}", run.config.replace(layers=n)) for n, c in layers]
    jobs = run.jobs(cells)
    run.check([run.out], jobs)
    images = run.dream(jobs)
    pairs = [(c.label, im) for c, im in zip(cells, images)]
    photo = run.photo()
    if photo is not None:
        pairs = [("source", photo), *pairs]
    columns = min(6, len(pairs))
    title = _title(run.config, {"layers"}, source)
    run.write(run.out, contact_sheet(pairs, columns, title, opts["cell_size"]),
              {"kind": "atlas", "layers": [n for n, _ in layers]})  # fmt: skip


# --- `channels` with the lucid recipe (featurevis.py) -------------------------------------------

_DREAM_ONLY = ("objective", "border", "grad_norm", "lap_levels", "smooth", "tv", "step_size",
               "octaves", "octave_scale", "detail", "jitter", "clip", "tile_overlap", "max_loss",
               "tile")  # fmt: skip


def _featurevis_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--param", type=click.Choice(PARAMS), default=None,
                         help="lucid recipe: image parameterisation (default fft)."),
            click.option("--transforms", default=None,
                         help="lucid recipe: robustness transforms, e.g. jitter=4,scale=0.1,"
                              "rotate=10 (default), standard (Lucid's, with pad=12), none."),
            click.option("--batch", type=click.IntRange(1, 256), default=None,
                         help="lucid recipe: channels per forward/backward pass (16)."),
        ]
    ):  # fmt: skip
        f = option(f)
    return f


def _featurevis_config(ctx: click.Context, opts: dict[str, Any]) -> FeatureVisConfig | None:
    """The lucid recipe unless --preset names a dream preset (None then: the DeepDream of
    noise); --steps and --seed apply to both, the dream-only options to the latter."""
    fv_opts = {k: opts.pop(k) for k in ("param", "transforms", "batch")}
    if opts["preset"] not in (None, "lucid"):
        named = [f"--{k}" for k, v in fv_opts.items() if v is not None]
        if named:
            raise ConfigError(f"{', '.join(named)}: for the lucid recipe, not --preset")
        return None
    opts["preset"] = None
    named = [k for k in _DREAM_ONLY if given(ctx, k)]
    if named:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in named)
        raise ConfigError(f"{names}: DeepDream options; add --preset default to use them")
    size = parse_size(opts["size"]) or (128, 128)
    if size[0] != size[1]:
        raise ConfigError(f"--size {opts['size']}: the lucid recipe renders square images")
    changes = {k: v for k, v in fv_opts.items() if v is not None}
    changes.update({k: opts[k] for k in ("steps", "seed") if given(ctx, k)})
    return FeatureVisConfig.preset("lucid", size=size[0], **changes)


def _featurevis_cells(run: _Run, layer: str, picked: list[int], fv: FeatureVisConfig) -> list:
    """Render the channels in batches; with --cells, each cell as a PNG with its recipe (kind
    featurevis: the whole render's units and the cell's index, which replay re-renders)."""
    model = run.context(run.config).model

    def report(done: int, total: int, value: float) -> None:
        if not run.quiet and (done % 10 == 0 or done == total):
            note(f"step {done}/{total}: mean channel activation {value:.3f}")

    tensors = render_channels(model, layer, picked, config=fv, on_progress=report)
    images = [LoadedImage(t[None].cpu()).to_pil() for t in tensors]
    units = [f"{layer}:{c}" for c in picked]
    if run.cells_dir is not None:
        for k, (c, im) in enumerate(zip(picked, images)):
            save_image(im, run.cells_dir / f"{layer}_{c}.png",
                       featurevis_recipe(fv, units, k, model))  # fmt: skip
    return images


@click.command()
@click.argument("layer")
@click.option("--count", type=click.IntRange(1, 256), default=16, show_default=True,
              help="The first COUNT channels.")  # fmt: skip
@click.option("--channels", "channel_list", default=None, help="Exactly these: 3,17,42.")
@_featurevis_options
@config_options(CHANNEL_DEFAULTS)
@_explore_options
@click.pass_context
def channels(ctx: click.Context, layer: str, count: int, channel_list: str | None,
             **opts: Any) -> None:  # fmt: skip
    """Feature visualisation of LAYER's channels: what makes each one fire. By default the
    lucid recipe (Fourier + decorrelated colour + robustness transforms + Adam, channels
    rendered in batches); --preset default (or any dream preset) gives the DeepDream of noise."""
    if ctx.get_parameter_source("layers") == click.core.ParameterSource.COMMANDLINE:
        raise ConfigError("channels takes the layer as its argument, not --layers")
    fv = _featurevis_config(ctx, opts)
    if opts["preset"] == "default":  # the earlier look: DeepDream of noise, channels' defaults
        opts["preset"] = None
    size = opts["size"]
    if fv is not None:  # the noise start's size is the render's; the DeepDream config unused
        opts["size"] = f"{fv.size}x{fv.size}"
    run = _Run("noise", ctx, {**opts, "layers": layer}, CHANNEL_DEFAULTS)
    opts["size"] = size
    run.config = run.config.replace(layers=layer)
    resolve_objective(run.config.model, run.config)  # an unknown layer: one line, valid names
    info = layer_index(layer_table(run.config.model))[layer]
    if channel_list:
        try:
            picked = [int(c) for c in channel_list.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(
                f"--channels: expected numbers like 3,17,42, got {channel_list!r}"
            ) from None
        bad = [c for c in picked if not 0 <= c < info.channels]
        if bad or not picked:
            raise ConfigError(
                f"--channels {bad or channel_list}: {layer} has channels 0..{info.channels - 1}"
            )
    else:
        picked = list(range(min(count, info.channels)))
    cells = [
        Cell(f"{layer}:{c}", f"{layer}_{c}", run.config.replace(layers=f"{layer}:{c}"))
        for c in picked
    ]
    jobs = run.jobs(cells)
    run.check([run.out], jobs)
    if fv is not None:
        images = _featurevis_cells(run, layer, picked, fv)
        shown = ("param", "transforms", "steps", "lr", "size", "seed")
        title = f"{run.config.model} {layer}: lucid " + " ".join(
            f"{k.replace('_', '-')}={fv.to_dict()[k]}" for k in shown
        )
    else:
        images = run.dream(jobs)
        title = _title(run.config, {"layers"}, "noise")
    columns = min(8, max(1, round(len(cells) ** 0.5 + 0.5)))
    pairs = list(zip([c.label for c in cells], images))
    sheet = contact_sheet(pairs, columns, title, opts["cell_size"])
    info_ = {"kind": "channels", "layer": layer}
    run.write(run.out, sheet, {**info_, "featurevis": fv.to_dict()} if fv else info_)


COMMANDS = [sweep, atlas, channels]
