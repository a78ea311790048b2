"""Replay: the job a recipe PNG records, rebuilt with its inputs found again.

The order is what keeps a stranger's file harmless: the recipe is read (size-capped, no pixel
decoded) and checked against the schema; the network it names is built only if it is a
registered one (your own network only when you name it with ``--model``); the files it reads
are found by path, the output is planned against all of them; only then is anything hashed or
loaded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from inceptionism.configure import Options, device_for, network_spec
from inceptionism.engine.loop import resolve_objective
from inceptionism.errors import ConfigError, ImageError
from inceptionism.io.image import DEFAULT_MAX_PIXELS, output_format, read_recipe
from inceptionism.io.outputs import check_outputs
from inceptionism.io.samples import is_sample, sample_path
from inceptionism.jobs.job import FileRef, Job
from inceptionism.jobs.recipes import Recipe, read_job
from inceptionism.jobs.run import RunContext
from inceptionism.models import get_model
from inceptionism.models.custom import is_network
from inceptionism.models.hub import replay_note
from inceptionism.models.trained import trained_from_recipe
from inceptionism.models.weights import sha256_file
from inceptionism.ops.numerics import environment, environment_difference
from inceptionism.ops.threads import configure_threads

WEIGHT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".h5", ".hdf5")


def trusted_model(recipe: Recipe, options: Options) -> str:
    """The network replay may build: a registered name from the recipe, or what the user names
    with --model. A recipe that names a factory or a TorchScript file is refused; a trained
    network's checkpoint (tensors only) is found from its recorded path and hash."""
    if given := options.get("model"):
        network = recipe.network or {}
        norm = options.get("input_norm") or network.get("input_norm")
        span = options.get("input_range") or network.get("input_range")
        return network_spec(given, norm, span).name
    if trained := trained_from_recipe(recipe.model, recipe.network or {}, recipe.weights_sha256):
        return trained
    if is_network(recipe.model) or recipe.network is not None:
        raise ConfigError(
            f"the recipe names your own network {recipe.model!r}; replay never imports or loads "
            f"code a file names: pass --model {recipe.model} (and --weights) to re-create it "
            "on purpose"
        )
    return network_spec(recipe.model).name


def locate(
    ref: FileRef, what: str, given: str | None, beside: Path, flag: str | None
) -> tuple[FileRef, bool]:
    """A recorded file found again: ``given`` (the user's override), the recorded path, the
    input as written, or a file of the same name beside the recipe, or in a folder of the same
    name beside it (a moved frames folder and its ``burnin/`` or ``crossfade/``).
    Returns the ref to read and whether it is to be hash-checked (always, where the recipe
    recorded a hash: a file given in its place that differs is worth a warning too)."""
    if given:
        path = sample_path(given) if is_sample(given) else Path(given)
        candidates = [path]
    elif not ref.path:  # a first-release recipe that recorded no path
        candidates = []
    else:
        candidates = [Path(ref.path)]
        if is_sample(ref.input):
            candidates.append(sample_path(ref.input))
        elif ref.input:
            candidates.append(Path(ref.input))
        recorded = Path(ref.path)
        candidates.append(beside / recorded.parent.name / recorded.name)
        candidates.append(beside / recorded.name)
    for path in candidates:
        if path.is_file():
            return FileRef(given or ref.input, str(path.resolve()), ref.sha256), True
    shown = ", ".join(dict.fromkeys(str(p) for p in candidates)) or "no path recorded"
    fix = f"pass {flag} FILE" if flag else "put it back where the recipe says"
    raise ImageError(f"the {what} is missing ({shown}); {fix}")


def replay_job(
    recipe_png: Path,
    out: Path,
    force: bool,
    options: Options,
    warn: Callable[[str], None],
) -> tuple[Job, RunContext]:
    """The job that re-creates ``recipe_png`` into ``out``, and the loaded model to run it."""
    recipe = read_job(read_recipe(recipe_png), recipe_png)
    job = recipe.job
    # a Hub network: its recorded commit, where it is cached
    hub = None if options.get("model") else recipe.hub
    if hub is not None and (note := replay_note(recipe.model, hub)):
        warn(note)
    model = trusted_model(recipe, options)
    job = job.replace(config=job.config.replace(model=model))
    resolve_objective(model, job.config)
    device = device_for(options.get("device") or "auto")
    output_format(out)

    beside = recipe_png.resolve().parent
    start, to_hash = job.start, []
    # a recipe may lower the pixel limit, never raise it: the user's (or the default) caps it
    limit = int(options.get("max_pixels") or DEFAULT_MAX_PIXELS)
    if start.max_pixels > limit:
        try:
            start = dataclasses.replace(start, max_pixels=limit)
        except ConfigError as e:
            raise ConfigError(f"{e} (the recipe's start is larger than --max-pixels)") from None
    found: dict[str, Any] = {}
    names = {
        "source": ("source " + ("video" if start.kind == "video" else "image"), "--input"),
        "previous": ("previous frame (the one this frame was dreamed from)", "--previous"),
    }
    for key, (what, flag) in names.items():
        ref = getattr(start, key)
        if ref is not None and (key != "source" or start.kind in ("photo", "video")):
            ref, check = locate(ref, what, options.get(key), beside, flag)
            to_hash += [(ref, what)] if check else []
        found[key] = ref
    start = dataclasses.replace(start, **found)
    steering = {}
    for kind in ("guide", "mask"):
        ref = getattr(job, kind)
        if ref is not None:
            ref, check = locate(ref, f"{kind} image", options.get(f"{kind}_file"), beside,
                                f"--{kind}")  # fmt: skip
            to_hash += [(ref, f"{kind} image")] if check else []
        steering[kind] = ref
    fade = job.crossfade
    if fade is not None and fade.previous is not None:  # the second dream's previous frame
        what = "previous frame of the cross-fade's second dream"
        ref, check = locate(fade.previous, what, None, beside, None)
        to_hash += [(ref, what)] if check else []
        fade = dataclasses.replace(fade, previous=ref)
    job = job.replace(start=start, output=out, crossfade=fade, **steering)
    reads = [recipe_png, *job.reads]
    (planned,) = check_outputs([out], reads, force)
    job = job.replace(output=planned)

    for ref, what in to_hash:  # only now: hashing may take a while on a big video
        if ref.sha256 and sha256_file(ref.local()) != ref.sha256:
            warn(f"warning: {ref.path} differs from the recorded {what}; the result will differ")
    weights = options.get("weights")
    recorded = recipe.weights_file
    usable = recorded is not None and Path(recorded).suffix.lower() in WEIGHT_SUFFIXES
    if weights is None and usable and recorded is not None and Path(recorded).is_file():
        weights = Path(recorded)
    configure_threads(options.get("threads"))  # --threads, as every command reads it
    loaded = get_model(model, weights=weights, device=device)
    if recipe.weights_sha256 and loaded.weights_sha256 != recipe.weights_sha256:
        warn("warning: weights differ from the recorded ones; the result will differ")
    if recipe.format >= 2:
        note = environment_difference(recipe.environment, environment(loaded.device))
        if note:
            warn(note)
    return job, RunContext(loaded, weights)
