"""`inceptionism sweep`, `atlas` and `channels`: experiments as labelled contact sheets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from PIL import Image

from .cli import _note, cli
from .cli_options import build_config, config_options, device_for, model_options, parse_size
from .config import DreamConfig
from .engine import resolve_objective
from .errors import ConfigError, ImageError
from .explore import Cell, parse_vary, run_cells, sweep_sheets
from .featurevis import FeatureVisConfig, render_channels
from .image import DEFAULT_MAX_PIXELS, LoadedImage, load_image, output_format, save_image
from .models import DreamModel, get_model, layer_index, layer_table
from .outputs import same_file
from .params import PARAMS
from .recipe import make_recipe
from .samples import is_sample, sample_path
from .sheets import contact_sheet
from .techniques import start_image

STARTS = ("noise", "grey")


def _explore_options(f: Any) -> Any:
    for option in reversed(
        [
            click.option("--output", "-o", "out", required=True, help="Sheet file (.png)."),
            click.option("--cells", "cells_dir", default=None, help="Also keep each cell here."),
            click.option("--max-size", type=click.IntRange(min=16), default=320,
                         show_default=True, help="Long side of the photo for the cells."),
            click.option("--size", default=None, help="WxH of a noise/grey start (256x256)."),
            click.option("--cell-size", type=click.IntRange(64, 1024), default=256,
                         show_default=True, help="Cell side on the sheet."),
            click.option("--force", "-f", is_flag=True, help="Overwrite an existing sheet."),
            click.option("--quiet", "-q", is_flag=True, help="No progress output."),
        ]
    ):  # fmt: skip
        f = option(f)
    return model_options(config_options(f))


class _Run:
    """What every explore command shares: the start image, the model, the sheet's output."""

    def __init__(self, source: str, opts: dict[str, Any], base: DreamConfig | None = None):
        self.out = Path(opts["out"])
        output_format(self.out)
        if self.out.suffix.lower() != ".png":
            raise ImageError(f"{self.out}: sheets are written as .png")
        self.force, self.quiet = opts["force"], opts["quiet"]
        self.cells_dir = Path(opts["cells_dir"]) if opts["cells_dir"] else None
        if self.cells_dir is not None and self.cells_dir.exists() and not self.cells_dir.is_dir():
            raise ImageError(f"--cells {self.cells_dir}: exists and is not a folder")
        self.config = base or build_config(opts)
        resolve_objective(self.config.model, self.config)
        self.device = device_for(opts["device"])
        self.max_size, self.label, self.path = opts["max_size"], source, None
        if source in STARTS:
            self.config = self.config.replace(init=source)  # so each cell's recipe replays
            w, h = parse_size(opts["size"]) or (256, 256)
            self.start = start_image(source, h, w, self.config.seed)
            self.photo = None
        else:
            if opts["size"] is not None:
                raise ImageError("--size is for noise or grey starts (the photo sets the size)")
            self.path = sample_path(source) if is_sample(source) else Path(source)
            image = load_image(self.path, max_pixels=DEFAULT_MAX_PIXELS).resized_to_fit(
                self.max_size
            )
            self.start, self.photo = image.rgb, image.to_pil()
        self.weights = opts["weights"]
        self.model: DreamModel | None = None

    def check_output(self, path: Path) -> None:
        if self.path is not None and same_file(self.path, path):
            raise ImageError(f"{path} is an input; refusing to overwrite it, even with --force")
        if path.exists() and not self.force:
            raise ImageError(f"{path} exists; pass --force to overwrite it")

    def load_model(self) -> DreamModel:
        if self.model is None:
            self.model = get_model(self.config.model, weights=self.weights, device=self.device)
        return self.model

    def recipe(self, cell: Cell) -> dict[str, Any]:
        r = make_recipe(cell.config, self.load_model(), self.label, self.path, self.max_size)
        r["source"]["size"] = [int(self.start.shape[-1]), int(self.start.shape[-2])]
        return r

    def cells(self, cells: list[Cell]) -> list[Image.Image]:
        report = None if self.quiet else (lambda line: _note(line))
        start = self.start.to(self.load_model().device)
        return run_cells(self.model, start, cells, self.cells_dir, self.recipe, report)

    def write(self, path: Path, sheet: Image.Image, info: dict[str, Any]) -> None:
        save_image(sheet, path, {"sheet": info, "model": self.config.model})
        _note(f"wrote {path}", self.quiet)


def _fixed_title(config: DreamConfig, skip: set[str], source: str) -> str:
    keys = ("model", "layers", "objective", "grad_norm", "steps", "step_size", "octaves",
            "octave_scale", "detail", "max_loss", "jitter", "seed")  # fmt: skip
    parts = [f"{k.replace('_', '-')}={getattr(config, k)}" for k in keys if k not in skip]
    return f"{source}: " + " ".join(p for p in parts if not p.endswith("=None"))


@cli.command()
@click.argument("source")
@click.option("--vary", "varies", multiple=True, required=True,
              help="NAME=V1,V2,... (any dream option; ';' separates layer specs).")  # fmt: skip
@_explore_options
def sweep(source: str, varies: tuple[str, ...], **opts: Any) -> None:
    """Dream SOURCE (a photo, sample:NAME, noise or grey) once per combination of --vary
    values, as a labelled grid: one or two varied parameters make one sheet, more make one
    sheet per value of the extra ones (OUT.<name>=<value>.png)."""
    run = _Run(source, opts)
    parsed = [parse_vary(v, run.config) for v in varies]
    sheets = sweep_sheets(run.config, parsed)
    for _, _, cells, _, _ in sheets:  # every cell's objective is checked before any work
        for cell in cells:
            resolve_objective(cell.config.model, cell.config)
    if len(sheets) > 1:
        paths = [run.out.with_name(f"{run.out.stem}.{s[0]}{run.out.suffix}") for s in sheets]
    else:
        paths = [run.out]
    for path in paths:
        run.check_output(path)
    skip = {f for f, _ in parsed}
    for path, (_, extras, cells, columns, row_labels) in zip(paths, sheets):
        images = run.cells(cells)
        pairs: list[tuple[str, Image.Image | None]] = [
            (c.label, im) for c, im in zip(cells, images)
        ]
        if run.photo is not None and not row_labels:  # one row: the source first in it
            pairs, columns = [("source", run.photo), *pairs], columns + 1
        elif run.photo is not None:  # a grid: the source first, on a row of its own
            pairs = [("source", run.photo)] + [("", None)] * (columns - 1) + pairs
            row_labels = ["", *row_labels]
        title = _fixed_title(run.config, skip, source) + ("  " + " ".join(extras) if extras else "")
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
            from .errors import UnknownNameError

            raise UnknownNameError("layer", n, list(by_name), where=model_name)
    return [(n, by_name[n].channels) for n in names]


@cli.command()
@click.argument("source")
@_explore_options
def atlas(source: str, **opts: Any) -> None:
    """One cell per layer (--layers a,b,c or all): what each layer sees in SOURCE (a photo,
    sample:NAME, noise or grey). Labelled with the layer's name and channels."""
    spec = opts.pop("layers") or "all"
    opts["layers"] = None
    run = _Run(source, opts)
    layers = _layer_names(run.config.model, spec)
    run.check_output(run.out)
    cells = [Cell(f"{n} ({c} ch)", f"layer_{n}", run.config.replace(layers=n)) for n, c in layers]
    images = run.cells(cells)
    pairs = [(c.label, im) for c, im in zip(cells, images)]
    if run.photo is not None:
        pairs = [("source", run.photo), *pairs]
    columns = min(6, len(pairs))
    title = _fixed_title(run.config, {"layers"}, source)
    run.write(run.out, contact_sheet(pairs, columns, title, opts["cell_size"]),
              {"kind": "atlas", "layers": [n for n, _ in layers]})  # fmt: skip


# --- `channels` with the lucid recipe (featurevis.py) -------------------------------------------

_DREAM_ONLY = ("objective", "border", "grad_norm", "lap_levels", "smooth", "tv", "step_size",
               "octaves", "octave_scale", "detail", "jitter", "clip", "tile_overlap")  # fmt: skip


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


def _featurevis_config(opts: dict[str, Any]) -> FeatureVisConfig | None:
    """The lucid recipe unless --preset names a dream preset (None then: the DeepDream of
    noise, as before); --steps and --seed apply to both, the dream-only options to the latter."""
    fv_opts = {k: opts.pop(k) for k in ("param", "transforms", "batch")}
    if opts["preset"] not in (None, "lucid"):
        given = [f"--{k}" for k, v in fv_opts.items() if v is not None]
        if given:
            raise ConfigError(f"{', '.join(given)}: for the lucid recipe, not --preset")
        return None
    opts["preset"] = None
    given = [k for k in _DREAM_ONLY if opts.get(k) is not None]
    if given or opts.get("max_loss") not in (None, "unset") or opts.get("tile") is not None:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in given) or "--max-loss/--tile"
        raise ConfigError(f"{names}: DeepDream options; add --preset default to use them")
    size = parse_size(opts["size"]) or (128, 128)
    if size[0] != size[1]:
        raise ConfigError(f"--size {opts['size']}: the lucid recipe renders square images")
    changes = {k: v for k, v in fv_opts.items() if v is not None}
    changes.update({k: opts[k] for k in ("steps", "seed") if opts.get(k) is not None})
    return FeatureVisConfig.preset("lucid", size=size[0], **changes)


def _featurevis_cells(run: _Run, layer: str, picked: list[int], fv: FeatureVisConfig) -> list:
    """Render the channels in batches; with --cells, each cell as a PNG with its recipe."""
    model = run.load_model()

    def report(done: int, total: int, value: float) -> None:
        if not run.quiet and (done % 10 == 0 or done == total):
            _note(f"step {done}/{total}: mean channel activation {value:.3f}")

    tensors = render_channels(model, layer, picked, config=fv, on_progress=report)
    images = [LoadedImage(t[None].cpu()).to_pil() for t in tensors]
    # batches share transform draws: a cell is re-created by render(model, units, fv)[index]
    units = [f"{layer}:{c}" for c in picked]
    if run.cells_dir is not None:
        for k, (c, im) in enumerate(zip(picked, images)):
            recipe = {"kind": "featurevis", "featurevis": fv.to_dict(), "unit": units[k],
                      "units": units, "index": k, "model": model.name,
                      "weights_sha256": model.weights_sha256}  # fmt: skip
            save_image(im, run.cells_dir / f"{layer}_{c}.png", recipe)
    return images


@cli.command()
@click.argument("layer")
@click.option("--count", type=click.IntRange(1, 256), default=16, show_default=True,
              help="The first COUNT channels.")  # fmt: skip
@click.option("--channels", "channel_list", default=None, help="Exactly these: 3,17,42.")
@_featurevis_options
@_explore_options
def channels(layer: str, count: int, channel_list: str | None, **opts: Any) -> None:
    """Feature visualisation of LAYER's channels: what makes each one fire. By default the
    lucid recipe (Fourier + decorrelated colour + robustness transforms + Adam, channels
    rendered in batches); --preset default (or any dream preset) gives the DeepDream of noise."""
    if opts["layers"] is not None:
        raise ConfigError("channels takes the layer as its argument, not --layers")
    fv = _featurevis_config(opts)
    # feature-visualisation defaults, unless given: mean objective, Laplacian normalisation
    for key, value in (("objective", "mean"), ("grad_norm", "laplacian"), ("step_size", 0.02),
                       ("steps", 30), ("octaves", 3)):  # fmt: skip
        if opts.get(key) is None:
            opts[key] = value
    opts["layers"] = layer
    run = _Run("noise", opts)
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
    run.check_output(run.out)
    cells = [
        Cell(f"{layer}:{c}", f"{layer}_{c}", run.config.replace(layers=f"{layer}:{c}"))
        for c in picked
    ]
    if fv is not None:
        images = _featurevis_cells(run, layer, picked, fv)
        title = f"{run.config.model} {layer}: lucid " + " ".join(
            f"{k.replace('_', '-')}={fv.to_dict()[k]}" for k in ("param", "transforms", "steps",
                                                                 "lr", "size", "seed"))  # fmt: skip
    else:
        images = run.cells(cells)
        title = _fixed_title(run.config, {"layers"}, "noise")
    columns = min(8, max(1, round(len(cells) ** 0.5 + 0.5)))
    pairs = list(zip([c.label for c in cells], images))
    sheet = contact_sheet(pairs, columns, title, opts["cell_size"])
    info = {"kind": "channels", "layer": layer}
    run.write(run.out, sheet, {**info, "featurevis": fv.to_dict()} if fv else info)
