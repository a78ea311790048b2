"""The recipe in every output PNG: a job written down, typed and versioned.

A recipe is data from a stranger, never code: :func:`read_job` checks every field against the
schema (schema.py) and its types, ranges, sizes within the pixel limit and nesting depth (the
file reader caps the total size) before anything is loaded or allocated, and each violation is
one line. A recipe may name a network of your own (a factory or a TorchScript file); it is
recorded, and replay refuses to build it unless you name it yourself with ``--model``.

Format 2 (this release) records the job: ``kind`` (dream, cell, frame), the ``start``, the
config, guide and mask; a cross-faded video frame (a chunked run's overlap) adds ``crossfade``:
``{weight, previous}``, the second dream's previous frame and its weight in the mix (recipes
without it read as before). Format 1 (the first release) is read too: a still's ``source`` section
becomes a photo/noise/grey start; a zoom or video frame's start is rebuilt from its ``motion``
section and the frame before it in the same folder.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from inceptionism._version import __version__
from inceptionism.engine.config import MAX_SIDE, DreamConfig
from inceptionism.errors import ConfigError
from inceptionism.featurevis.render import Rendering
from inceptionism.io.image import DEFAULT_MAX_PIXELS, PILLOW_MAX_PIXELS
from inceptionism.jobs.job import JOB_KINDS, START_KINDS, CrossFade, FileRef, Job, Start
from inceptionism.jobs.schema import (
    MAX_FRAME,
    MAX_OCTAVES,
    RECIPE_FORMAT,
    SHA256,
    RecipeError,
    check_depth,
    check_fields,
)
from inceptionism.models import DreamModel
from inceptionism.ops.numerics import environment


@dataclass(frozen=True)
class Recipe:
    """A recipe read back: the job and what it was dreamed with."""

    job: Job
    model: str
    weights_sha256: str | None = None
    weights_file: str | None = None
    network: dict[str, Any] | None = None  # your own network's input format, as recorded
    format: int = RECIPE_FORMAT
    environment: dict[str, str] | None = None  # what decided its pixels beside the config
    hub: dict[str, str] | None = None  # a Hub model's repo, revision, commit, architecture


# --- writing -------------------------------------------------------------------------------------


def job_recipe(job: Job, model: DreamModel, weights_file: Path | None = None) -> dict[str, Any]:
    """The recipe a job writes: the config with the layers resolved, the model and its weights'
    hash, the start, guide and mask with their hashes, and the versions."""
    config = job.config
    layers = config.layers if config.layers is not None else model.spec.default_layers
    recipe: dict[str, Any] = {
        "format": RECIPE_FORMAT,
        "kind": job.kind,
        "inceptionism": __version__,
        "torch": torch.__version__,
        "model": model.name,
        "weights_sha256": model.weights_sha256,
        "weights_file": str(Path(weights_file).resolve()) if weights_file else None,
        "device": str(model.device),
        "environment": environment(model.device),
        "network": model.spec.origin,  # your own network's input format; None for the zoo
        "config": config.replace(model=model.name, layers=layers).to_dict(),
        "start": job.start.to_dict(),
        "guide": job.guide.to_dict() if job.guide else None,
        "mask": job.mask.to_dict() if job.mask else None,
        "label": job.label,
        "index": job.index,
    }
    if model.spec.hub is not None:  # where a Hub model came from (replay looks for that commit)
        recipe["hub"] = dict(model.spec.hub)
    if job.motion is not None:
        recipe["motion"] = job.motion
    if job.crossfade is not None:
        recipe["crossfade"] = job.crossfade.to_dict()
    if job.featurevis is not None:  # rendered with the lucid recipe: the whole render
        recipe["featurevis"] = job.featurevis.to_dict()
    return recipe


def same_work(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two recipes describe the same dream (versions, device and output aside): the test
    for reusing a cell or frame an earlier run wrote."""
    keys = (
        "model",
        "weights_sha256",
        "config",
        "start",
        "guide",
        "mask",
        "crossfade",
        "featurevis",
    )
    return all(a.get(k) == b.get(k) for k in keys)


# --- reading -------------------------------------------------------------------------------------


def read_job(data: Any, where: Path | None = None) -> Recipe:
    """Check a recipe against the schema and turn it into a :class:`Recipe`. ``where`` is the
    PNG it came from (a format-1 frame finds the frame before it beside it)."""
    if not isinstance(data, dict):
        raise RecipeError("not a JSON object")
    check_depth(data, 0)
    check_fields(data)
    fmt = data.get("format", 1)
    if fmt not in (1, 2) or isinstance(fmt, bool):
        raise RecipeError(f"format {fmt!r} is not one this version reads (1 or 2)")
    model = _text(data, "model", required=True)
    assert model is not None
    config_data = data.get("config")
    if not isinstance(config_data, dict):
        raise RecipeError("'config' must be an object")
    try:
        config = DreamConfig.from_dict(config_data)
    except ConfigError as e:
        raise RecipeError(f"config: {e}") from None
    config = config.replace(model=model) if config.model != model else config
    if fmt == 2:
        start = _start(_section(data, "start", required=True), "start")
        kind = _choice(data, "kind", JOB_KINDS, default="dream")
        label = _text(data, "label") or ""
        index = _int(data, "index", 0, MAX_FRAME)
    else:
        start, kind, label, index = _v1_start(data, config, where)
    guide = _ref(data.get("guide"), "guide")
    mask = _ref(data.get("mask"), "mask")
    motion = data.get("motion")
    if motion is not None and not isinstance(motion, dict):
        raise RecipeError("'motion' must be an object")
    network = data.get("network")
    if network is not None and not isinstance(network, dict):
        raise RecipeError("'network' must be an object")
    if network is not None:
        for key in ("input_norm", "input_range", "checkpoint"):  # checkpoint: a trained net
            _text(network, key)
        _int(network, "size", 16, 4096)
    sha = _text(data, "weights_sha256")
    hub = _section(data, "hub")
    if hub is not None:
        hub = {key: _text(hub, key, required=True) for key in ("repo", "revision", "commit",
                                                                  "architecture")}  # fmt: skip
        if not re.match(r"^[0-9a-f]{40}$", str(hub["commit"])):
            raise RecipeError(
                f"'hub.commit' must be a 40-digit commit hash, got {hub['commit']!r}"[:200]
            )
    crossfade = _crossfade(data.get("crossfade"))
    rendering = _section(data, "featurevis")
    try:
        featurevis = Rendering.from_dict(rendering) if rendering is not None else None
        job = Job(config, start, None, kind, guide, mask, label=label, index=index, motion=motion,
                  crossfade=crossfade, featurevis=featurevis,
                  octave=_int(data, "octave", 1, MAX_OCTAVES))  # fmt: skip
    except RecipeError:
        raise
    except ConfigError as e:
        raise RecipeError(str(e)) from None
    return Recipe(job, model, sha, _text(data, "weights_file"), network, fmt,
                  _environment(data.get("environment")), hub)  # fmt: skip


def _environment(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    ok = isinstance(value, dict) and len(value) <= 16
    if not ok or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RecipeError("'environment' must be an object of texts")
    return dict(value)


def _section(data: dict[str, Any], key: str, required: bool = False) -> dict[str, Any] | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, dict):
        raise RecipeError(f"'{key}' must be an object")
    return value


def _text(data: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise RecipeError(f"'{key}' must be a text, got {value!r}"[:200])
    return value


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise RecipeError(f"'{key}' must be one of {', '.join(choices)}, got {value!r}"[:200])
    return value


def _int(data: dict[str, Any], key: str, lo: int, hi: int, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RecipeError(f"'{key}' must be an integer from {lo} to {hi}, got {value!r}"[:200])
    return value


def _num(data: dict[str, Any], key: str, lo: float, hi: float, default: Any = None) -> Any:
    value = data.get(key, default)
    if value is None:
        return default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not lo <= value <= hi:
        raise RecipeError(f"'{key}' must be a number from {lo:g} to {hi:g}, got {value!r}"[:200])
    return float(value)


def _bool(data: dict[str, Any], key: str, default: bool = False) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise RecipeError(f"'{key}' must be true or false, got {value!r}"[:200])
    return value


def _ref(value: Any, where: str) -> FileRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecipeError(f"'{where}' must be an object with input, path and sha256")
    path, text = value.get("path"), value.get("input")
    if not isinstance(path, str) and isinstance(text, str):
        path = text  # format 1 sometimes recorded only what the user wrote
    if not isinstance(path, str) or not path:
        raise RecipeError(f"'{where}.path' must be a file path")
    if text is not None and not isinstance(text, str):
        raise RecipeError(f"'{where}.input' must be a text")
    return FileRef(text or path, path, _sha(value.get("sha256"), f"{where}.sha256"))


def _sha(sha: Any, where: str) -> str | None:
    if sha is not None and (not isinstance(sha, str) or not SHA256.match(sha)):
        raise RecipeError(f"'{where}' must be 64 hex digits")
    return sha


def _crossfade(value: Any) -> CrossFade | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RecipeError("'crossfade' must be an object with weight and previous")
    weight = _num(value, "weight", 0, 1)
    if weight is None or not 0 < weight < 1:
        raise RecipeError(f"'crossfade.weight' must be a number between 0 and 1, got "
                          f"{value.get('weight')!r}"[:200])  # fmt: skip
    return CrossFade(weight, _ref(value.get("previous"), "crossfade.previous"))


def _size(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) == 2
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or not all(1 <= v <= MAX_SIDE for v in value):
        raise RecipeError(f"'{where}' must be [width, height] from 1 to {MAX_SIDE}")
    return int(value[0]), int(value[1])


def _start(d: dict[str, Any] | None, where: str) -> Start:
    assert d is not None
    kind = _choice(d, "kind", START_KINDS, default="photo")
    shift = d.get("shift", [0.0, 0.0])
    ok = isinstance(shift, list) and len(shift) == 2
    if not ok or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in shift):
        raise RecipeError(f"'{where}.shift' must be [dx, dy]")
    try:
        return Start(
            kind=kind,
            source=_ref(d.get("source"), f"{where}.source"),
            size=_size(d.get("size"), f"{where}.size"),
            max_size=_int(d, "max_size", 16, MAX_SIDE),
            max_pixels=_int(d, "max_pixels", 1, PILLOW_MAX_PIXELS, DEFAULT_MAX_PIXELS),
            quantize=_bool(d, "quantize"),
            previous=_ref(d.get("previous"), f"{where}.previous"),
            frame=_int(d, "frame", 1, MAX_FRAME),
            t_start=_num(d, "t_start", 0, 1e7),
            t_end=_num(d, "t_end", 0, 1e7),
            blend=_num(d, "blend", 0, 1, 0.0),
            flow=_bool(d, "flow"),
            zoom=_num(d, "zoom", 0.5, 2.0, 1.0),
            rotate=_num(d, "rotate", -180, 180, 0.0),
            shift=(float(shift[0]), float(shift[1])),
        )
    except ConfigError as e:
        raise RecipeError(f"{where}: {e}") from None


def _v1_start(
    data: dict[str, Any], config: DreamConfig, where: Path | None
) -> tuple[Start, str, str, int | None]:
    """A format-1 recipe's start: its ``source`` section, or for a frame its ``motion``."""
    source = _section(data, "source")
    if source is None:
        raise RecipeError("'source' must be an object")
    motion = _section(data, "motion")
    common = {
        "size": _size(source.get("size"), "source.size"),
        "max_size": _int(source, "max_size", 16, MAX_SIDE),
        "max_pixels": _int(source, "max_pixels", 1, PILLOW_MAX_PIXELS, DEFAULT_MAX_PIXELS),
    }
    photo = _ref(source, "source") if source.get("path") or source.get("input") else None
    if motion is None:
        kind = config.init if config.init in ("noise", "grey") else "photo"
        if kind == "photo" and photo is None:  # no path recorded: replay asks for --input
            photo = FileRef("", "", _sha(source.get("sha256"), "source.sha256"))
        try:
            return Start(kind, photo, **common), "dream", "", None
        except ConfigError as e:
            raise RecipeError(f"source: {e}") from None
    # a zoom or video frame of the first release: frame k was dreamed with seed base + k
    base = _section(motion, "config")
    command = _choice(motion, "command", ("zoom", "video"), default="zoom")
    k = config.seed - _int(base or {}, "seed", 0, 2**63 - 1, 0)
    if k < 1:
        raise RecipeError("motion: cannot tell which frame this is")
    previous = None
    if k > 1 and where is not None:
        previous = FileRef(str(where.parent / f"frame_{k - 1:06d}.png"),
                           str(where.parent.resolve() / f"frame_{k - 1:06d}.png"))  # fmt: skip
    label = f"frame {k}"
    try:
        if command == "zoom":
            if k == 1:
                start_text = _text(motion, "source") or "noise"
                size = _size(motion.get("size"), "motion.size")
                kind = start_text if start_text in ("noise", "grey") else "photo"
                start = Start(kind, photo, size, common["max_size"], common["max_pixels"], True)
            else:
                shift = motion.get("shift") or [0, 0]
                start = Start(
                    "zoom", previous=previous, quantize=True, max_pixels=common["max_pixels"],
                    zoom=_num(motion, "zoom", 0.5, 2.0, 1.0),
                    rotate=_num(motion, "rotate", -180, 180, 0.0),
                    shift=(float(shift[0]), float(shift[1])),
                )  # fmt: skip
        else:
            video = _text(motion, "source", required=True)
            assert video is not None
            start = Start(
                "video", FileRef(video, video, _text(motion, "source_sha256")),
                max_size=_int(motion, "max_size", 16, MAX_SIDE),
                max_pixels=common["max_pixels"], frame=k, previous=previous,
                t_start=_num(motion, "start", 0, 1e7), t_end=_num(motion, "end", 0, 1e7),
                blend=_num(motion, "blend", 0, 1, 0.0), flow=_bool(motion, "flow"),
            )  # fmt: skip
    except ConfigError as e:
        raise RecipeError(f"motion: {e}") from None
    return start, "frame", label, k
