"""Running a job: its start resolved (photo, noise, a zoom or video frame), the engine run
with the process policy, the output and its octave files written with the recipe; a streamed
run for the studio."""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inceptionism.engine.config import DEFAULT_SIZE
from inceptionism.engine.loop import Progress, dream_tensor
from inceptionism.engine.techniques import start_image
from inceptionism.errors import ConfigError, ImageError, InceptionismWarning
from inceptionism.featurevis.render import render_group
from inceptionism.io.image import LoadedImage, from_uint8, load_image, to_uint8
from inceptionism.io.video import probe, read_frames
from inceptionism.jobs.job import FileRef, Job, Start, mix_dreams
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.write import write_dream, write_octave
from inceptionism.models import DreamModel
from inceptionism.ops.threads import ProcessPolicy
from inceptionism.ops.warp import flow_warp, transform


class Frames:
    """Decoded source frames and earlier dreams a run already holds, so that a job does not read
    them again (the video command decodes each frame once). Replay starts with an empty one."""

    def __init__(self) -> None:
        self.video: dict[tuple[str, int], np.ndarray] = {}
        self.dreams: dict[str, np.ndarray] = {}
        self._photo: tuple[tuple[Any, ...], LoadedImage] | None = None  # the last photo read

    def photo(self, start: Start) -> LoadedImage:
        """A photo start decoded and downscaled, kept while jobs share it (a sheet's cells)."""
        assert start.source is not None
        key = (start.source.path, start.max_size, start.max_pixels)
        if self._photo is None or self._photo[0] != key:
            image = load_image(start.source.local(), start.max_pixels)
            self._photo = (key, image.resized_to_fit(start.max_size))
        return self._photo[1]

    def source_frame(self, start: Start, k: int) -> np.ndarray:
        assert start.source is not None
        key = (start.source.path, k)
        if key not in self.video:
            self.video[key] = decode_frame(start, k)
        return self.video[key]

    def dream(self, ref: FileRef) -> np.ndarray:
        if ref.path not in self.dreams:
            self.dreams[ref.path] = to_uint8(load_image(ref.local()).rgb)
        return self.dreams[ref.path]


def decode_frame(start: Start, k: int) -> np.ndarray:
    """Frame ``k`` (1-based from ``t_start``) of the start's video, downscaled as recorded."""
    assert start.source is not None
    path = start.source.local()
    info = probe(path)
    if info.width * info.height > start.max_pixels:
        raise ImageError(
            f"{path}: {info.width}x{info.height} frames are over the limit of {start.max_pixels} "
            "pixels (raise it with --max-pixels)"
        )
    for i, rgb in enumerate(read_frames(path, info, start.t_start, start.t_end), 1):
        if i == k:
            return fit_frame(rgb, start.max_size)
    raise ImageError(f"{path}: has no frame {k} in the recorded time range")


def fit_frame(rgb: np.ndarray, max_size: int | None) -> np.ndarray:
    """A decoded frame downscaled like every photo (area averaging), as 8-bit."""
    if not max_size or max(rgb.shape[:2]) <= max_size:
        return rgb
    return to_uint8(LoadedImage(from_uint8(rgb)).resized_to_fit(max_size).rgb)


def start_tensor(
    start: Start, seed: int, frames: Frames | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (1, 3, H, W) start in [0, 1] and the alpha plane to give the result (or None)."""
    frames = frames or Frames()
    alpha = None
    if start.kind == "photo":
        loaded = frames.photo(start)
        x, alpha = loaded.rgb, loaded.alpha
    elif start.kind in ("noise", "grey"):
        w, h = start.size or DEFAULT_SIZE
        x = start_image(start.kind, h, w, seed)
    elif start.kind == "zoom":
        assert start.previous is not None
        x = transform(from_uint8(frames.dream(start.previous)), start.zoom, start.rotate,
                      start.shift)  # fmt: skip
    else:
        x = video_start(start, frames)
    if start.quantize:
        x = from_uint8(to_uint8(x))
    return x, alpha


def video_start(start: Start, frames: Frames) -> torch.Tensor:
    """(1 - A) * frame + A * previous dream, or with flow frame + A * the previous dream's
    detail moved along the optical flow (all on 8-bit values, as the frames are saved)."""
    assert start.frame is not None
    src = frames.source_frame(start, start.frame)
    mixed: np.ndarray = src.astype(np.float32)
    if start.previous is not None and start.blend > 0:
        prev = frames.dream(start.previous).astype(np.float32)
        if prev.shape != mixed.shape:
            raise ImageError(f"{start.previous.path}: not the size of the video's frames")
        if start.flow:
            prev_src = frames.source_frame(start, start.frame - 1)
            detail = prev - prev_src.astype(np.float32)
            mixed = mixed + start.blend * flow_warp(detail, prev_src, src)
        else:
            mixed = (1 - start.blend) * mixed + start.blend * prev
    return torch.from_numpy(np.clip(mixed, 0, 255) / 255).permute(2, 0, 1)[None].float()


class Steering:
    """Guide and mask images loaded once per run, shared by every job that names them."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], torch.Tensor] = {}

    def get(self, ref: FileRef | None, kind: str, max_pixels: int) -> torch.Tensor | None:
        if ref is None:
            return None
        key = (kind, ref.path)
        if key not in self._cache:
            image = load_image(ref.local(), max_pixels=max_pixels)
            self._cache[key] = image.as_mask() if kind == "mask" else image.rgb
        return self._cache[key]


@dataclass
class RunContext:
    """What a run shares between its jobs: the model, loaded inputs, the recipe's extras."""

    model: DreamModel
    weights_file: Path | None = None
    frames: Frames = field(default_factory=Frames)
    steering: Steering = field(default_factory=Steering)


def dream_job(
    job: Job,
    context: RunContext,
    on_progress: Callable[[Progress], Any] | None = None,
    on_octave: Callable[[int, LoadedImage], Any] | None = None,
) -> LoadedImage:
    """Dream one job: resolve its start, run the engine. The result is not written here (a
    remote worker hands it back to the driver, which writes it); ``on_octave(k, image)`` gets
    each finished octave's picture. A cross-faded frame is its two dreams mixed at 8 bits."""
    if job.featurevis is not None:
        (image,) = render_featurevis([job], context, on_progress)
        return image
    if job.crossfade is not None:
        fade, job = job.crossfade, job.replace(crossfade=None)
        other = job.replace(start=dataclasses.replace(job.start, previous=fade.previous))
        a = dream_job(job, context, on_progress)
        b = dream_job(other, context, on_progress)
        mixed = mix_dreams(to_uint8(a.rgb), to_uint8(b.rgb), fade.weight)
        return LoadedImage(from_uint8(mixed), a.alpha)
    x, alpha = start_tensor(job.start, job.config.seed, context.frames)
    max_pixels = job.start.max_pixels
    guide = context.steering.get(job.guide, "guide", max_pixels)
    mask = context.steering.get(job.mask, "mask", max_pixels)

    moved = False  # whether the objective ever left zero

    def progress(p: Progress) -> None:
        nonlocal moved
        moved = moved or (not p.octave_done and p.loss != 0.0)
        if on_progress is not None:
            on_progress(p)
        if on_octave is not None and p.octave_done and p.image is not None:
            on_octave(p.octave, LoadedImage(p.image.clamp(0, 1).cpu(), alpha).with_alpha_fitted())

    out = dream_tensor(x, context.model, job.config, progress, guide=guide, mask=mask,
                       hooks=ProcessPolicy())  # fmt: skip
    if not moved and job.config.steps > 0:
        warn_dead_objective(job)
    return LoadedImage(out.cpu(), alpha)


def warn_dead_objective(job: Job) -> None:
    """One line for a dream whose objective stayed at zero: nothing it targets fired on this
    start, so the gradient was zero and the picture is the start."""
    layers = job.config.layers or "the default layers"
    warnings.warn(
        f"the objective stayed at 0 in every step: {layers} never fired on this start, so the "
        "picture is the start unchanged; try another channel or --seed, a photo start, or a "
        "shallower layer",
        InceptionismWarning,
        stacklevel=2,
    )


def render_featurevis(
    jobs: list[Job], context: RunContext, on_progress: Callable[[Progress], Any] | None = None
) -> list[LoadedImage]:
    """The pictures of feature-visualised jobs that share one render (a sheet's cells), from
    one batched render; progress as one octave of all the render's steps."""
    renderings = [job.featurevis for job in jobs]
    assert all(r is not None for r in renderings)
    side = jobs[0].featurevis.config.size  # type: ignore[union-attr]
    t0 = time.perf_counter()

    def progress(done: int, total: int, value: float) -> None:
        if on_progress is not None:
            on_progress(Progress(1, 1, done, total, value, (side, side),
                                 time.perf_counter() - t0, done / total))  # fmt: skip

    images = render_group(context.model, renderings, progress)  # type: ignore[arg-type]
    return [LoadedImage(im[None].cpu()) for im in images]


def run_job(
    job: Job,
    context: RunContext,
    on_progress: Callable[[Progress], Any] | None = None,
) -> LoadedImage:
    """Dream ``job`` and write its output (and octave files, each as its octave ends)
    atomically with its recipe."""
    recipe = job_recipe(job, context.model, context.weights_file)
    if job.octave is not None:
        return _run_octave(job, context, recipe, on_progress)

    def octave(k: int, image: LoadedImage) -> None:
        write_octave(job, k, image, recipe)

    result = dream_job(job, context, on_progress, octave)
    write_dream(job, result, recipe)
    return result


class _OctaveDone(Exception):
    def __init__(self, image: LoadedImage):
        self.image = image


def _run_octave(
    job: Job, context: RunContext, recipe: dict[str, Any], on_progress: Callable | None
) -> LoadedImage:
    """An octave file re-created: the dream runs up to the end of octave ``job.octave`` and
    that octave's picture is the output (with the same recipe, octave number included)."""

    def octave(k: int, image: LoadedImage) -> None:
        if k == job.octave:
            raise _OctaveDone(image)

    try:
        dream_job(job, context, on_progress, octave)
    except _OctaveDone as done:
        write_dream(job, done.image, recipe)
        return done.image
    raise ConfigError(f"the dream ended before octave {job.octave} (its levels were too small)")


class Cancelled(Exception):
    """Raised inside a streamed dream by its progress callback once cancel was asked for."""


def stream_job(
    job: Job, context: RunContext, cancel: threading.Event, lock: threading.Lock | None = None
) -> Iterator[Progress | LoadedImage]:
    """Dream ``job`` in a worker thread, yielding each step's and each finished octave's
    :class:`Progress` (an octave's with its picture) as it comes, then the result; nothing more
    once ``cancel`` is set (also when the consumer stops listening). ``lock`` serialises dreams
    on a shared model."""
    updates: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}
    cancel.clear()

    def on_progress(p: Progress) -> None:
        if cancel.is_set():
            raise Cancelled
        if p.octave_done and p.image is not None:
            updates.put(dataclasses.replace(p, image=p.image.detach().clone()))
        elif not p.octave_done:  # every step's progress too, without its picture
            updates.put(dataclasses.replace(p, image=None))

    def work() -> None:
        try:
            with lock or contextlib.nullcontext():
                outcome["image"] = dream_job(job, context, on_progress)
        except BaseException as e:  # handed to the generator, which re-raises it
            outcome["error"] = e
        finally:
            updates.put(None)

    threading.Thread(target=work, daemon=True).start()
    try:
        while (item := updates.get()) is not None:
            yield item
    finally:  # the consumer went away: stop the dream too
        if not outcome:
            cancel.set()
    if isinstance(outcome.get("error"), Cancelled):
        return
    if "error" in outcome:
        raise outcome["error"]
    yield outcome["image"]
