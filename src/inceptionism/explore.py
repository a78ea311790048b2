"""Experiments as contact sheets: parameter sweeps, layer atlases, channel galleries.

Each cell is one ``dream_tensor`` call on a model loaded once; cells share the seed, so what
differs between them is the varied parameter only. With a cells folder every cell is also
written as its own PNG with its recipe, and an interrupted run resumes from the cells it has.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .config import DreamConfig
from .engine import dream_tensor
from .errors import ConfigError, ImageError
from .image import LoadedImage, read_recipe, save_image
from .models import DreamModel

# --vary names: the CLI's option names for every config field but the model.
VARIABLES = {
    f.name.replace("_", "-"): f.name for f in dataclasses.fields(DreamConfig) if f.name != "model"
}


@dataclass(frozen=True)
class Cell:
    label: str
    key: str  # file stem in the cells folder
    config: DreamConfig


def _convert(field: str, text: str) -> Any:
    default = getattr(DreamConfig(), field)
    text = text.strip()
    if field == "max_loss":
        return None if text.lower() in ("none", "off") else float(text)
    if field == "tile":
        return "auto" if text == "auto" else int(text)
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def parse_vary(spec: str, base: DreamConfig) -> tuple[str, list[Any]]:
    """``"step-size=0.001,0.01"`` -> ("step_size", [0.001, 0.01]); values split on ';' when
    there is one (layer specs contain commas). Every value is checked by building its config."""
    name, sep, values = spec.partition("=")
    name = name.strip()
    if not sep or name not in VARIABLES:
        valid = ", ".join(VARIABLES)
        raise ConfigError(f"--vary {spec!r}: expected NAME=V1,V2 with NAME one of {valid}")
    field = VARIABLES[name]
    parts = [v for v in values.split(";" if ";" in values else ",") if v.strip()]
    if not parts:
        raise ConfigError(f"--vary {spec!r}: no values")
    out = []
    for text in parts:
        try:
            value = _convert(field, text)
        except ValueError as e:
            raise ConfigError(f"--vary {name}: bad value {text.strip()!r} ({e})") from None
        base.replace(**{field: value})  # raises ConfigError for out-of-range values
        out.append(value)
    return field, out


def _show(field: str, value: Any) -> str:
    return f"{field.replace('_', '-')}={value if value is not None else 'none'}"


def sweep_sheets(
    base: DreamConfig, varies: list[tuple[str, list[Any]]]
) -> list[tuple[str, list[str], list[Cell], int, list[str]]]:
    """Sheets for a sweep: (name suffix, title extras, cells, columns, row labels).

    One varied parameter: one row. Two: rows x columns. More: one sheet per combination of
    the extra ones, each a grid of the first two.
    """
    fields = [f for f, _ in varies]
    if len(set(fields)) != len(fields):
        raise ConfigError("each parameter may be varied once")
    grid, extra = varies[:2], varies[2:]
    sheets = []
    for combo in itertools.product(*[vals for _, vals in extra]):
        fixed = dict(zip([f for f, _ in extra], combo))
        suffix = ".".join(_show(f, v) for f, v in fixed.items())
        rows = grid[0][1] if len(grid) == 2 else [None]
        cols = grid[-1][1]
        cells, row_labels = [], []
        for r in rows:
            if r is not None:
                row_labels.append(_show(grid[0][0], r))
            for c in cols:
                changes = {**fixed, grid[-1][0]: c}
                if r is not None:
                    changes[grid[0][0]] = r
                config = base.replace(**changes)
                label = ", ".join(
                    _show(f, changes[f]) for f in [g for g, _ in grid] if f in changes
                )
                key = "_".join(_show(f, v) for f, v in sorted(changes.items()))
                cells.append(Cell(label, key.replace("/", "_"), config))
        sheets.append(
            (suffix, [_show(f, v) for f, v in fixed.items()], cells, len(cols), row_labels)
        )
    return sheets


def run_cells(
    model: DreamModel,
    start: torch.Tensor,
    cells: list[Cell],
    cells_dir: Path | None,
    recipe: Callable[[Cell], dict[str, Any]],
    report: Callable[[str], None] | None = None,
) -> list[Image.Image]:
    """Dream every cell from ``start`` (reusing cells already in ``cells_dir``)."""
    images: list[Image.Image] = []
    t0, done_new = time.perf_counter(), 0
    for k, cell in enumerate(cells, 1):
        path = cells_dir / f"{cell.key}.png" if cells_dir else None
        reused = False
        if path is not None and path.exists():
            try:
                found = read_recipe(path)
            except ImageError:
                raise ImageError(
                    f"{path} exists and is not a cell written by inceptionism; "
                    "choose another --cells folder"
                ) from None
            wanted = recipe(cell)
            same = found.get("config") == wanted["config"] and found.get("source", {}).get(
                "sha256"
            ) == wanted["source"].get("sha256")
            if same and found.get("source", {}).get("size") == wanted["source"].get("size"):
                with Image.open(path) as im:
                    images.append(im.convert("RGB"))
                reused = True
        if not reused:
            out = dream_tensor(start, model, cell.config)
            image = LoadedImage(out.cpu()).to_pil()
            if path is not None:
                save_image(image, path, recipe(cell))
            images.append(image)
            done_new += 1
        if report is not None:
            elapsed = time.perf_counter() - t0
            left = len(cells) - k
            eta = f"{elapsed / done_new * left:.0f}s" if done_new else "--"
            state = "reused" if reused else "dreamed"
            report(f"cell {k}/{len(cells)} {state}: {cell.label}  elapsed {elapsed:.0f}s ETA {eta}")
    return images
