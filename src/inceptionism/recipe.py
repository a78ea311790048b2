"""The recipe stored in every output PNG: enough to re-create the dream exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import DreamConfig
from .errors import ImageError
from .models import DreamModel
from .models.weights import sha256_file

RECIPE_FORMAT = 1


def make_recipe(
    config: DreamConfig,
    model: DreamModel,
    source: str | None,
    source_path: Path | None,
    max_size: int | None,
    max_pixels: int | None = None,
    weights_file: Path | None = None,
) -> dict[str, Any]:
    """Config (layers resolved), model, weights hash, source image and its hash, versions."""
    layers = config.layers if config.layers is not None else model.spec.default_layers
    return {
        "format": RECIPE_FORMAT,
        "inceptionism": __version__,
        "torch": torch.__version__,
        "model": model.name,
        "weights_sha256": model.weights_sha256,
        "weights_file": str(Path(weights_file).resolve()) if weights_file else None,
        "device": str(model.device),
        "network": model.spec.origin,  # your own network's input format; None for the zoo
        "config": config.replace(model=model.name, layers=layers).to_dict(),
        "source": {
            "input": source,
            "path": str(source_path.resolve()) if source_path else None,
            "sha256": sha256_file(source_path) if source_path else None,
            "max_size": max_size,
            "max_pixels": max_pixels,
        },
    }


def config_from_recipe(recipe: dict[str, Any]) -> DreamConfig:
    if not isinstance(recipe, dict) or "config" not in recipe:
        raise ImageError("recipe has no 'config' section")
    return DreamConfig.from_dict(recipe["config"])
