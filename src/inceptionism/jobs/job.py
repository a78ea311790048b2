"""The unit of work under every command: a :class:`Job` says how a dream starts, its whole
config, the guide and mask it reads (by path and hash), where it is written and the recipe it
writes. Jobs are plain values: they serialise to the recipe (jobs/recipes.py) and back, so a
job can be replayed from any output, or shipped to another process, and give the same pixels.
jobs/run.py runs them; io/outputs.py plans their files."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inceptionism.engine.config import DEFAULT_SIZE, DreamConfig
from inceptionism.errors import ConfigError, ImageError
from inceptionism.featurevis.render import Rendering
from inceptionism.io.image import (
    DEFAULT_MAX_PIXELS,
    image_size,
)
from inceptionism.io.samples import is_sample, sample_path
from inceptionism.models.weights import sha256_file

START_KINDS = ("photo", "noise", "grey", "video", "zoom")


JOB_KINDS = ("dream", "cell", "frame")


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
