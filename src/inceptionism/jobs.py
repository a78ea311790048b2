"""The unit of work under every command: a :class:`Job` says how a dream starts, its whole
config, the guide and mask it reads (by path and hash), where it is written and the recipe it
writes. Jobs are plain values: they serialise to the recipe (recipes.py) and back, so a job can
be replayed from any output, or shipped to another process, and give the same pixels.

Three functions do the work every shell used to do on its own: :func:`start_tensor` resolves a
start, :func:`outputs.check_outputs` plans the files, :func:`run_job` dreams and writes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DreamConfig
from .engine import Progress, dream_tensor, resolve_objective
from .errors import ConfigError, ImageError, InceptionismError, InceptionismWarning
from .featurevis import FeatureVisConfig, Rendering, render_group
from .image import (
    DEFAULT_MAX_PIXELS,
    LoadedImage,
    from_uint8,
    image_size,
    load_image,
    save_image,
    to_uint8,
)
from .models import DreamModel
from .models.weights import sha256_file
from .samples import is_sample, sample_path
from .techniques import start_image
from .threads import ProcessPolicy

START_KINDS = ("photo", "noise", "grey", "video", "zoom")
JOB_KINDS = ("dream", "cell", "frame")
DEFAULT_SIZE = (512, 512)  # (width, height) of a dream without a photo
MAX_SIDE = 1 << 16


@dataclass(frozen=True)
class FileRef:
    """A file a job reads: as the user wrote it (a path or ``sample:NAME``), where it was, and
    its sha256 when it was read (None: not hashed, e.g. a video too large to hash per frame)."""

    input: str
    path: str
    sha256: str | None = None

    @classmethod
    def of(cls, text: str | Path, hashed: bool = True) -> FileRef:
        text = str(text)
        path = sample_path(text) if is_sample(text) else Path(text)
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if not path.is_file():
            raise ImageError(f"{path}: not a file")
        return cls(text, str(path.resolve()), sha256_file(path) if hashed else None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def local(self) -> Path:
        return Path(self.path)


@dataclass(frozen=True)
class Start:
    """How a dream starts.

    ``photo``: ``source`` read, downscaled to ``max_size``; ``noise``/``grey``: of ``size``
    (w, h), noise seeded by the config's seed; ``zoom``: the previous frame ``previous``
    transformed by ``zoom``/``rotate``/``shift``; ``video``: frame ``frame`` (1-based, counted
    from ``t_start``) of the video ``source``, mixed with the previous dream ``previous`` by
    ``blend`` (along the optical flow with ``flow``). ``quantize`` rounds the start to 8 bits
    (motion frames are carried as the 8-bit frames they are saved as).
    """

    kind: str
    source: FileRef | None = None
    size: tuple[int, int] | None = None  # (width, height) of the start, once resolved
    max_size: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    quantize: bool = False
    previous: FileRef | None = None
    frame: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    blend: float = 0.0
    flow: bool = False
    zoom: float = 1.0
    rotate: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in START_KINDS:
            raise ConfigError(f"start must be one of {', '.join(START_KINDS)}; got {self.kind!r}")
        if self.kind in ("photo", "video") and self.source is None:
            raise ConfigError(f"a {self.kind} start needs a source file")
        if self.kind == "zoom" and self.previous is None:
            raise ConfigError("a zoom start needs the previous frame")
        if self.kind == "video" and (self.frame is None or self.frame < 1):
            raise ConfigError("a video start needs a frame number (from 1)")
        if self.size is not None:
            w, h = self.size
            if w * h > self.max_pixels:
                raise ImageError(
                    f"a {w}x{h} start is {w * h} pixels, over the limit of {self.max_pixels} "
                    "(raise it with --max-pixels)"
                )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = list(self.size) if self.size else None
        d["shift"] = list(self.shift)
        return d

    @property
    def reads(self) -> list[Path]:
        return [r.local() for r in (self.source, self.previous) if r is not None]


def photo_start(
    text: str,
    init: str = "photo",
    max_size: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quantize: bool = False,
) -> Start:
    """The start for a photo (a path or sample:NAME): checked on its header, not decoded. With
    ``init`` noise or grey, a start of that kind at the photo's (downscaled) size."""
    ref = FileRef.of(text)
    w, h = image_size(ref.local(), max_pixels)
    if max_size and max(w, h) > max_size:
        k = max_size / max(w, h)
        w, h = max(1, round(w * k)), max(1, round(h * k))
    kind = init if init in ("noise", "grey") else "photo"
    return Start(kind, ref, (w, h), max_size, max_pixels, quantize)


def blank_start(
    kind: str,
    size: tuple[int, int] | None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    quantize: bool = False,
) -> Start:
    """A noise or grey start of ``size`` (width, height), default 512x512."""
    if kind not in ("noise", "grey"):
        raise ImageError("no INPUT given; name a photo, or start from --init noise or grey")
    return Start(kind, None, tuple(size or DEFAULT_SIZE), None, max_pixels, quantize)  # type: ignore[arg-type]


BLANK_STARTS = ("noise", "grey")


def source_start(
    source: str,
    init: str,
    size: tuple[int, int] | None,
    max_size: int | None,
    max_pixels: int,
    quantize: bool = False,
    default_size: tuple[int, int] | None = None,
) -> Start:
    """The start a sheet or zoom names as SOURCE: noise or grey of ``size`` (else
    ``default_size``), or a photo (a file or sample:NAME; then ``size`` is refused)."""
    if source in BLANK_STARTS:
        return blank_start(source, size or default_size, max_pixels, quantize=quantize)
    if size is not None:
        raise ImageError("--size is for noise or grey starts (the photo sets the size)")
    return photo_start(source, init, max_size, max_pixels, quantize=quantize)


def check_starts(
    inputs: Sequence[str], init: str, size: tuple[int, int] | None, max_pixels: int
) -> None:
    """What ``dream`` starts from, checked before any file is read: photos (their size their
    own), or without INPUT noise or grey of ``size`` within the pixel limit."""
    if not inputs and init == "photo":
        raise ImageError("no INPUT given; name a photo, or start from --init noise or grey")
    if size is not None and inputs:
        raise ImageError("--size is for dreams without a photo (the photo sets the size)")
    if not inputs:
        blank_start(init, size, max_pixels)


def steering_refs(guide: str | None, mask: str | None) -> dict[str, FileRef]:
    """The guide and mask a dream is steered by, as references (path and hash)."""
    return {k: FileRef.of(v) for k, v in (("guide", guide), ("mask", mask)) if v}


@dataclass(frozen=True)
class CrossFade:
    """A video frame written as two dreams mixed: ``(1 - weight) * A + weight * B`` on their 8-bit
    values (:func:`mix_dreams`), A the job's own dream and B the same job started from the
    other previous dream ``previous`` (None: from the plain source frame). A chunked video
    cross-fades from one chunk into the next over the frames both dreamed."""

    weight: float
    previous: FileRef | None = None

    def __post_init__(self) -> None:
        if not 0 < self.weight < 1:
            raise ConfigError(f"a cross-fade weight is between 0 and 1, got {self.weight!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"weight": self.weight,
                "previous": self.previous.to_dict() if self.previous else None}  # fmt: skip


def mix_dreams(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * a + weight * b`` of two 8-bit frames, rounded half to even: the one
    cross-fade used by the chunked run and by replay."""
    mixed = (1.0 - weight) * a.astype(np.float64) + weight * b.astype(np.float64)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Job:
    """One dream: start, config, guide and mask, output files; ``kind`` says what the output is
    (a still ``dream``, a sheet's ``cell``, a motion ``frame``), ``label`` and ``index`` which
    one. ``motion`` holds the settings shared by every frame of a zoom or video run;
    ``crossfade`` (video frames only) mixes in a second dream from another previous frame.
    ``featurevis``: the picture is feature-visualised from noise (featurevis.py's lucid
    recipe) instead of dreamed; the config then records the model, objective and seed."""

    config: DreamConfig
    start: Start
    output: Path | None = None
    kind: str = "dream"
    guide: FileRef | None = None
    mask: FileRef | None = None
    octave_files: tuple[Path, ...] = ()
    label: str = ""
    index: int | None = None
    motion: dict[str, Any] | None = None
    crossfade: CrossFade | None = None
    featurevis: Rendering | None = None
    octave: int | None = None  # the output is this octave's picture (an octave file's replay)

    def __post_init__(self) -> None:
        if self.kind not in JOB_KINDS:
            raise ConfigError(f"job kind must be one of {', '.join(JOB_KINDS)}; got {self.kind!r}")
        if self.crossfade is not None and (self.kind != "frame" or self.start.kind != "video"):
            raise ConfigError("a cross-fade is for video frames only")
        if self.featurevis is not None:
            check_featurevis(self)
        init = self.start.kind if self.start.kind in ("noise", "grey") else "photo"
        if self.config.init != init:  # the start is the truth; the config agrees with it
            object.__setattr__(self, "config", self.config.replace(init=init))
        if self.config.objective == "guide" and self.guide is None:
            raise ConfigError("the 'guide' objective needs a guide image (--guide IMAGE)")
        if self.guide is not None and self.config.objective != "guide":
            raise ConfigError("a guide image needs --objective guide")
        if self.config.keep_colors and init != "photo":
            raise ConfigError("--keep-colors needs a photo to take the colours from")
        if self.octave is not None and not 1 <= self.octave <= self.config.octaves:
            raise ConfigError(f"octave {self.octave} of a dream of {self.config.octaves} octaves")
        if self.octave is not None and (self.featurevis or self.crossfade):
            raise ConfigError("only a dream has octave pictures")
        check_work(self.config, self.start)

    def replace(self, **changes: Any) -> Job:
        return dataclasses.replace(self, **changes)

    @property
    def reads(self) -> list[Path]:
        """Every file the job reads (never to be written by any job)."""
        refs = [r.local() for r in (self.guide, self.mask) if r is not None]
        if self.crossfade is not None and self.crossfade.previous is not None:
            refs.append(self.crossfade.previous.local())
        return [*self.start.reads, *refs]

    @property
    def writes(self) -> list[Path]:
        return [p for p in (self.output, *self.octave_files) if p is not None]


def check_featurevis(job: Job) -> None:
    """A feature-visualised job starts from noise of its render's size, unsteered."""
    assert job.featurevis is not None
    side = job.featurevis.config.size
    if job.start.kind != "noise" or job.start.size != (side, side):
        got = "x".join(map(str, job.start.size or ())) or "no size"
        raise ConfigError(
            f"the lucid recipe renders {side}x{side} squares from noise (here: {job.start.kind}, "
            f"{got}); give --size NxN, or --preset default for a DeepDream"
        )
    if job.guide is not None or job.mask is not None:
        raise ConfigError("--guide and --mask are for DeepDream; add --preset default")


def check_work(config: DreamConfig, start: Start) -> None:
    """Refuse a dream whose largest octave would exceed the pixel limit (octave_scale < 1
    enlarges) before anything is allocated."""
    if start.size is None:
        return
    w, h = start.size
    factor = config.largest_level_factor
    big = math.log(w) + math.log(h) + 2 * math.log(factor) > math.log(start.max_pixels)
    if big:
        raise ConfigError(
            f"octave-scale {config.octave_scale:g} with {config.octaves} octaves makes the largest "
            f"level {factor:.3g}x the {w}x{h} start, over the limit of {start.max_pixels} pixels"
        )


def batch_jobs(
    plans: list[Any],
    config: DreamConfig,
    *,
    refs: dict[str, FileRef],
    size: tuple[int, int] | None,
    max_size: int | None,
    max_pixels: int,
    batch: bool,
    featurevis: FeatureVisConfig | None = None,
) -> list[tuple[str, Job | InceptionismError]]:
    """The jobs of a `dream` run, one per planned output (outputs.plan_batch), every start
    checked on its header before the model loads. In a batch an input that cannot be dreamed
    is kept as its error, reported in its turn; alone, it raises. With ``featurevis`` each job
    renders its objective with that recipe (the lucid recipe of a class from noise)."""
    jobs: list[tuple[str, Job | InceptionismError]] = []
    unit = str(resolve_objective(config.model, config))
    rendering = Rendering(featurevis, (unit,)) if featurevis else None
    for plan in plans:
        try:
            if plan.src is None:
                start = blank_start(config.init, size, max_pixels)
            else:
                start = photo_start(plan.label, config.init, max_size, max_pixels)
            job = Job(config, start, plan.dst, "dream", refs.get("guide"), refs.get("mask"),
                      tuple(plan.octave_files), label=plan.label, featurevis=rendering)  # fmt: skip
            jobs.append((plan.label, job))
        except InceptionismError as e:
            if not batch:
                raise
            jobs.append((plan.label, e))
    return jobs


# --- resolving a start ---------------------------------------------------------------------------


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
    from .video import probe, read_frames

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
        from .motion import transform

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
    from .motion import flow_warp

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


# --- running -------------------------------------------------------------------------------------


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
    ctx: RunContext,
    on_progress: Callable[[Progress], Any] | None = None,
    on_octave: Callable[[int, LoadedImage], Any] | None = None,
) -> LoadedImage:
    """Dream one job: resolve its start, run the engine. The result is not written here (a
    remote worker hands it back to the driver, which writes it); ``on_octave(k, image)`` gets
    each finished octave's picture. A cross-faded frame is its two dreams mixed at 8 bits."""
    if job.featurevis is not None:
        (image,) = render_featurevis([job], ctx, on_progress)
        return image
    if job.crossfade is not None:
        fade, job = job.crossfade, job.replace(crossfade=None)
        other = job.replace(start=dataclasses.replace(job.start, previous=fade.previous))
        a = dream_job(job, ctx, on_progress)
        b = dream_job(other, ctx, on_progress)
        mixed = mix_dreams(to_uint8(a.rgb), to_uint8(b.rgb), fade.weight)
        return LoadedImage(from_uint8(mixed), a.alpha)
    x, alpha = start_tensor(job.start, job.config.seed, ctx.frames)
    max_pixels = job.start.max_pixels
    guide = ctx.steering.get(job.guide, "guide", max_pixels)
    mask = ctx.steering.get(job.mask, "mask", max_pixels)

    moved = False  # whether the objective ever left zero

    def progress(p: Progress) -> None:
        nonlocal moved
        moved = moved or (not p.octave_done and p.loss != 0.0)
        if on_progress is not None:
            on_progress(p)
        if on_octave is not None and p.octave_done and p.image is not None:
            on_octave(p.octave, LoadedImage(p.image.clamp(0, 1).cpu(), alpha).with_alpha_fitted())

    out = dream_tensor(x, ctx.model, job.config, progress, guide=guide, mask=mask,
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
    jobs: list[Job], ctx: RunContext, on_progress: Callable[[Progress], Any] | None = None
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

    images = render_group(ctx.model, renderings, progress)  # type: ignore[arg-type]
    return [LoadedImage(im[None].cpu()) for im in images]


def run_job(
    job: Job,
    ctx: RunContext,
    on_progress: Callable[[Progress], Any] | None = None,
) -> LoadedImage:
    """Dream ``job`` and write its output (and octave files) atomically with its recipe."""
    from .recipes import job_recipe

    recipe = job_recipe(job, ctx.model, ctx.weights_file)
    if job.octave is not None:
        return _run_octave(job, ctx, recipe, on_progress)

    def octave(k: int, image: LoadedImage) -> None:
        if k <= len(job.octave_files):
            save_image(image, job.octave_files[k - 1], {**recipe, "octave": k})

    result = dream_job(job, ctx, on_progress, octave)
    if job.output is not None:
        save_image(result, job.output, recipe=recipe)
    return result


class _OctaveDone(Exception):
    def __init__(self, image: LoadedImage):
        self.image = image


def _run_octave(
    job: Job, ctx: RunContext, recipe: dict[str, Any], on_progress: Callable | None
) -> LoadedImage:
    """An octave file re-created: the dream runs up to the end of octave ``job.octave`` and
    that octave's picture is the output (with the same recipe, octave number included)."""

    def octave(k: int, image: LoadedImage) -> None:
        if k == job.octave:
            raise _OctaveDone(image)

    try:
        dream_job(job, ctx, on_progress, octave)
    except _OctaveDone as done:
        if job.output is not None:
            save_image(done.image, job.output, {**recipe, "octave": job.octave})
        return done.image
    raise ConfigError(f"the dream ended before octave {job.octave} (its levels were too small)")


class Cancelled(Exception):
    """Raised inside a streamed dream by its progress callback once cancel was asked for."""


def stream_job(
    job: Job, ctx: RunContext, cancel: threading.Event, lock: threading.Lock | None = None
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
                outcome["image"] = dream_job(job, ctx, on_progress)
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
