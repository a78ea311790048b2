"""Recipes in and out of the studio: a recipe turned back into the controls' values (from a
dropped PNG or pasted JSON, checked against the recipe schema), a replayed recipe's config, and
the recipes the studio writes without the server paths of a visitor's uploads."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inceptionism.engine.config import DreamConfig
from inceptionism.errors import InceptionismError
from inceptionism.io.image import parse_recipe, read_recipe
from inceptionism.jobs.job import Job
from inceptionism.jobs.recipes import read_job
from inceptionism.ops.objectives import Objective
from inceptionism.studio.controls import ADVANCED, RECIPE_FIELDS, Controls


def controls_from_recipe(
    png: str | None,
    text: str | None,
    max_side: int,
    offers: Callable[[str, dict[str, Any] | None], bool],
) -> Controls:
    """The controls that re-create a recipe: from a dropped PNG or pasted JSON, checked
    against the recipe schema (a recipe never names code the studio would run). ``offers``
    says whether the studio has the recipe's model (with the recorded network, if any)."""
    if png:
        try:
            data = read_recipe(png)
        except InceptionismError as e:
            raise InceptionismError(public(str(e), png)) from None
    elif text and text.strip():
        data = parse_recipe(text)
    else:
        raise InceptionismError("drop a PNG made by inceptionism or paste its recipe")
    recipe = read_job(data)
    if not offers(recipe.model, recipe.network):
        raise InceptionismError(
            f"the recipe names the network {recipe.model!r}, which the studio does not have"
        )
    config, start = recipe.job.config, recipe.job.start
    label = start.source.input if start.source is not None else ""
    size = start.max_size or max(start.size or (512,))
    blank, noise_size = start.kind == "noise", start.size
    motion = recipe.job.motion or {}
    if motion.get("command") == "zoom":  # a zoom frame: its loop's start and seed
        label, blank = str(motion.get("source") or ""), motion.get("source") == "noise"
        noise_size = tuple(motion.get("size") or ()) or None  # type: ignore[assignment]
        size = max(noise_size or (size,))
        config = config.replace(seed=config.seed - (recipe.job.index or 1))
    if blank:
        kind = "noise"
    elif label.startswith("sample:"):
        kind = "sample"
    else:
        kind = "upload"
    advanced: dict[str, Any] = {k: getattr(config, k) for k in ADVANCED}
    advanced["tile"] = str(advanced["tile"])
    return Controls(
        source=kind, sample=label if kind == "sample" else Controls.sample,
        model=config.model,
        layers=Objective.of(config.layers).layers if config.layers else None,
        objective=config.layers or "", preset="default",
        size=int(min(size, max_side)),
        recipe=json.dumps({"config": config.to_dict(),
                           "noise_size": noise_size if kind == "noise" else None}),
        **{k: getattr(config, k) for k in RECIPE_FIELDS},
        **advanced,
    )  # fmt: skip


def replayed(text: str, max_side: int) -> tuple[DreamConfig | None, tuple[int, int] | None]:
    """A replayed recipe's config and noise size (None, None without one)."""
    if not text:
        return None, None
    try:
        data = json.loads(text)
        config = DreamConfig.from_dict(data["config"])
        size = data.get("noise_size")
        if size is not None:
            w, h = (max(16, min(int(v), max_side)) for v in size)
            size = (w, h)
    except (ValueError, TypeError, KeyError):
        raise InceptionismError("the replayed recipe is not one the studio wrote") from None
    return config, size


def scrubbed(recipe: dict[str, Any], job: Job, upload: bool) -> dict[str, Any]:
    """A recipe without the server paths of a job's uploads (their hashes identify them);
    ``upload``: the start is one."""
    uploads = {"start": job.start.source if upload else None,
               "guide": job.guide, "mask": job.mask}  # fmt: skip
    for key, ref in uploads.items():
        if ref is not None and not ref.input.startswith("sample:"):
            where = recipe["start"]["source"] if key == "start" else recipe[key]
            name = "upload" if key == "start" else key
            where.update(input=name, path=name)
    return recipe


def public(message: str, *paths: str | None) -> str:
    """A message for the page: the server's file paths replaced by their names."""
    for path in [*paths, tempfile.gettempdir()]:
        if path:
            message = message.replace(str(Path(path).parent) + os.sep, "")
    return re.sub(r"(/[^\s/:]+)+/([^\s/:]+)", r"\2", message)
