"""``--vary`` axes: which recipe fields vary, their values parsed, one cell config per
combination, the sheets they make."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inceptionism.configure import PARSERS, Options, build_config
from inceptionism.engine.config import PRESETS, DreamConfig
from inceptionism.errors import ConfigError, UnknownNameError

# --vary names: the CLI spelling of every config field marked as variable (the model among
# them), and two that are not fields: a preset per cell and a class logit per cell.
VARIABLES = {
    f.name.replace("_", "-"): f.name
    for f in dataclasses.fields(DreamConfig)
    if f.metadata.get("vary", True) and f.metadata.get("help")
}


NOT_FIELDS = ("preset", "class")


# A cell's config from its varied values ({"steps": 10, "preset": "dlwp", ...}).
CellConfig = Callable[[dict[str, Any]], DreamConfig]


@dataclass(frozen=True)
class Cell:
    label: str
    key: str  # file stem in the cells folder
    config: DreamConfig


def cell_config(options: Options, guide: bool = False) -> CellConfig:
    """How a sweep builds each cell's config, the way the command built its own: the preset
    (or the cell's ``preset``) for the cell's model, then the options the user set and the
    cell's varied fields on top, then ``--class`` (or the cell's ``class``: the term
    ``logits:N`` added to the layers)."""

    def build(changes: dict[str, Any]) -> DreamConfig:
        cell = options.choose(**{k: v for k, v in changes.items() if k not in NOT_FIELDS})
        if "preset" in changes:
            cell = cell.choose(preset=changes["preset"])
        if "class" in changes:
            cell = cell.choose(class_=changes["class"])
        return build_config(cell, None, guide)

    return build


def _builder(base: DreamConfig | CellConfig) -> CellConfig:
    """A config as a cell builder: its fields that differ from the defaults count as set."""
    if not isinstance(base, DreamConfig):
        return base
    defaults = DreamConfig(model=base.model)
    explicit = {k: v for k, v in base.to_dict().items() if v != getattr(defaults, k)}
    plain = cell_config(Options({**explicit, "model": base.model}, frozenset({*explicit, "model"})))

    def build(changes: dict[str, Any]) -> DreamConfig:
        if any(k in NOT_FIELDS for k in changes):
            return plain(changes)
        return base.replace(**changes)

    return build


def _convert(field: str, text: str) -> Any:
    """A --vary value as the field's type, parsed as the CLI option parses it."""
    text = text.strip()
    if field == "preset":
        if text not in PRESETS:
            raise UnknownNameError("preset", text, list(PRESETS))
        return text
    if field == "class":
        if not text.isdigit():
            raise ValueError("expected a class index: 0, 1, 2, ...")
        return int(text)
    meta = next(f for f in dataclasses.fields(DreamConfig) if f.name == field).metadata
    default = getattr(DreamConfig(), field)
    if field in PARSERS:
        return PARSERS[field](text)
    if isinstance(default, bool):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected true or false, got {text!r}")
    if meta.get("integer"):
        return int(text)
    if isinstance(default, float):
        return float(text)
    return text


def parse_vary(spec: str, base: DreamConfig | CellConfig) -> tuple[str, list[Any]]:
    """``"step-size=0.001,0.01"`` -> ("step_size", [0.001, 0.01]); values split on ';' when
    there is one (layer specs contain commas). Every value is checked by building its config
    (``base``: the command's config, or how it builds a cell's: see :func:`cell_config`), so a
    bad preset name or class index stops the sweep before any work."""
    build = _builder(base)
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
        except UnknownNameError as e:
            raise ConfigError(f"--vary {name}: {e}") from None
        except ValueError as e:
            raise ConfigError(f"--vary {name}: bad value {text.strip()!r} ({e})") from None
        try:
            build({field: value})
        except (ConfigError, UnknownNameError) as e:
            raise ConfigError(f"--vary {name}={text.strip()}: {e}") from None
        out.append(value)
    return field, out


def _show(field: str, value: Any) -> str:
    return f"{field.replace('_', '-')}={value if value is not None else 'none'}"


def sweep_sheets(
    base: DreamConfig | CellConfig, varies: list[tuple[str, list[Any]]]
) -> list[tuple[str, list[str], list[Cell], int, list[str]]]:
    """Sheets for a sweep: (name suffix, title extras, cells, columns, row labels).

    One varied parameter: one row. Two: rows x columns. More: one sheet per combination of
    the extra ones, each a grid of the first two. ``base``: as for :func:`parse_vary`.
    """
    build = _builder(base)
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
                config = build(changes)
                label = ", ".join(
                    _show(f, changes[f]) for f in [g for g, _ in grid] if f in changes
                )
                key = "_".join(_show(f, v) for f, v in sorted(changes.items()))
                cells.append(Cell(label, key.replace("/", "_"), config))
        sheets.append(
            (suffix, [_show(f, v) for f, v in fixed.items()], cells, len(cols), row_labels)
        )
    return sheets


def varied_fields(cells: list[Cell]) -> set[str]:
    """The config fields whose values differ between ``cells`` (a varied preset changes many):
    a sheet's title shows only the others."""
    configs = [c.config.to_dict() for c in cells]
    if not configs:
        return set()
    return {k for k in configs[0] if any(c[k] != configs[0][k] for c in configs)}
