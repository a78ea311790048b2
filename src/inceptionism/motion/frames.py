"""What every zoom or video run shares: its per-frame recipe, the frames folder (resume,
settings that must match), progress per frame, and the finished video."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import Progress
from inceptionism.errors import ImageError, InceptionismError
from inceptionism.io.image import read_recipe, to_uint8
from inceptionism.io.outputs import check_outputs, final_path
from inceptionism.io.video import (
    FRAME_NAME,
    VIDEO_SUFFIXES,
    assemble,
    count_frames,
    ffmpeg_exe,
    frame_numbers,
)
from inceptionism.jobs.job import FileRef, Job, Start
from inceptionism.jobs.run import RunContext, run_job
from inceptionism.jobs.schema import MOTION_FIELDS

# Per-frame recipe unless the user says otherwise: a frame is one step of a long walk, so it
# needs far less than a still (Google's notebook used its full recipe; this is ~4x cheaper).
MOTION_DEFAULTS = {"steps": 10, "octaves": 2}


@dataclass
class FrameProgress:
    """One finished (or reused) frame: number k of n, seconds it took, ETA for the rest."""

    k: int
    n: int
    seconds: float
    eta: float | None
    reused: bool


class FrameRun:
    """A frames folder being filled: checks that frames already there were made with the same
    settings (so a re-run resumes), runs each frame's job, reports progress."""

    def __init__(
        self,
        folder: Path,
        total: int,
        settings: dict[str, Any],
        context: RunContext,
        *,
        on_frame: Callable[[FrameProgress], None] | None = None,
        force: bool = False,
        live: Callable[[int], Callable[[Progress], Any] | None] | None = None,
        refs: dict[str, FileRef] | None = None,
    ):
        self.folder, self.total, self.settings = folder, total, settings
        self.refs = refs or {}
        self.context, self.on_frame, self.live = context, on_frame, live
        self.times: list[float] = []
        existing = frame_numbers(folder)
        if existing and force:
            for k in existing:
                (folder / FRAME_NAME.format(k)).unlink()
            existing = []
        if existing:
            self._check(existing)
        self.done = [k for k in existing if k <= total]
        # only a gap-free run of frames from 1 counts; anything after a gap is dreamed again
        self.done = [k for i, k in enumerate(self.done, 1) if k == i]
        folder.mkdir(parents=True, exist_ok=True)

    def _check(self, existing: list[int]) -> None:
        last = self.folder / FRAME_NAME.format(existing[-1])
        try:
            recorded = read_recipe(last).get("motion")
        except InceptionismError as e:
            raise ImageError(
                f"{last} is not a complete frame written by inceptionism ({e}); "
                "delete it to resume, or use --force to start over"
            ) from None
        if recorded != self.settings:
            raise ImageError(
                f"{self.folder} holds frames made with other settings; "
                "use the same options to resume, another output, or --force to start over"
            )

    @property
    def reused_all(self) -> bool:
        """Every frame was already there: this run dreamed nothing."""
        return not self.times

    def path(self, k: int) -> Path:
        return self.folder / FRAME_NAME.format(k)

    def is_done(self, k: int) -> bool:
        return k <= len(self.done)

    def reuse(self, k: int) -> None:
        if self.on_frame:
            self.on_frame(FrameProgress(k, self.total, 0.0, self._eta(k), reused=True))

    def dream(self, k: int, config: DreamConfig, start: Start) -> None:
        """Frame ``k``: its job (start, the frame's seed) dreamed and written with its recipe;
        the 8-bit frame as saved is what the next frame starts from."""
        began = time.monotonic()
        job = self.job(k, config, start)
        result = run_job(job, self.context, self.live(k) if self.live else None)
        self.context.frames.dreams[str(self.path(k).resolve())] = to_uint8(result.rgb)
        self.finished(k, time.monotonic() - began)

    def job(self, k: int, config: DreamConfig, start: Start) -> Job:
        """Frame ``k``'s job: its start, the frame's seed, the run's settings."""
        return Job(frame_config(config, k), start, self.path(k), "frame", label=f"frame {k}",
                   index=k, motion=self.settings, guide=self.refs.get("guide"),
                   mask=self.refs.get("mask"))  # fmt: skip

    def kept(self, k: int) -> bool:
        """Frame ``k`` is in the folder, complete and made with this run's settings (a parallel
        run that was interrupted leaves frames after a gap)."""
        if self.is_done(k):
            return True
        try:
            return read_recipe(self.path(k)).get("motion") == self.settings
        except (InceptionismError, OSError):
            return False

    def finished(self, k: int, seconds: float) -> None:
        self.done.append(k)
        self.times.append(seconds)
        if self.on_frame:
            self.on_frame(FrameProgress(k, self.total, seconds, self._eta(k), reused=False))

    def previous(self, k: int) -> FileRef:
        """Frame ``k - 1`` as the file frame ``k`` starts from (by path and hash)."""
        self.context.frames.dreams = {  # keep one earlier dream in memory, not the whole clip
            p: v
            for p, v in self.context.frames.dreams.items()
            if p == str(self.path(k - 1).resolve())
        }
        return FileRef.of(self.path(k - 1))

    def _eta(self, k: int) -> float | None:
        if not self.times:
            return None
        return float(np.median(self.times)) * (self.total - k)


def frame_config(config: DreamConfig, k: int) -> DreamConfig:
    """Each frame its own jitter sequence, the same on every run: seed + frame number."""
    return config.replace(seed=config.seed + k)


class FramesTarget:
    """Where frames go and what is assembled from them: OUT.mp4 / OUT.gif with the frames in
    OUT.mp4.frames/ (kept, for resuming), or a folder OUT/ that gets the frames only."""

    def __init__(self, out: str, force: bool, inputs: list[Path]):
        path = Path(out)
        if out.endswith(("/", "\\")) or path.is_dir() or not path.suffix:
            self.file, self.frames = None, final_path(path)
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            self.file = final_path(path)
            self.frames = self.file.with_name(self.file.name + ".frames")
        else:
            raise ImageError(f"{out}: the output must be .mp4, .gif or a folder (OUT/)")
        if self.frames.exists() and not self.frames.is_dir():
            raise ImageError(f"{self.frames}: exists and is not a folder")
        if any(final_path(p).parent == self.frames for p in inputs):
            raise ImageError(f"{self.frames} holds an input; write the frames elsewhere")
        check_outputs([self.frames / "frame_000001.png"], inputs, force=True)  # writable
        if self.file is not None:
            ffmpeg_exe()  # the video extra is needed before any work
            check_outputs([self.file], inputs, force or self.frames.is_dir())
        self.force = force


def finish_frames(
    target: FramesTarget, run: FrameRun, fps: Fraction, interrupted: bool = False, **audio: Any
) -> str:
    """Assemble the finished frames into the video (a partial, playable one when interrupted);
    returns the line to show."""
    if interrupted:
        if target.file is not None and run.done:
            assemble(target.frames, len(run.done), target.file, fps, **audio)
        return f"interrupted after {len(run.done)} of {run.total} frames; the same command resumes"
    done = target.file is not None and target.file.exists() and run.reused_all
    if done and target.file and not target.force and count_frames(target.file) == len(run.done):
        return f"nothing to do: {target.file} is complete (use --force to redo)"
    if target.file is not None and run.done:
        assemble(target.frames, len(run.done), target.file, fps, **audio)
        return f"wrote {target.file} ({len(run.done)} frames at {fps} fps)"
    return f"wrote {len(run.done)} frames to {target.frames}"


def fitted_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """(width, height) of a frame after :func:`jobs.fit_frame`, without decoding it."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    k = max_size / max(width, height)
    return max(1, round(width * k)), max(1, round(height * k))


def run_settings(command: str, config: DreamConfig, run: RunContext, **fields: Any) -> dict:
    """The settings every frame of a zoom or video run shares (a resume must match them): the
    command's own ``fields``, the recipe, the model and its weights. Only the fields the recipe
    schema declares (``jobs.schema.MOTION_SETTINGS``): another is a mistake in the caller."""
    unknown = sorted(set(fields) - MOTION_FIELDS)
    if unknown:
        raise TypeError(f"{unknown}: not motion settings; declare them in MOTION_SETTINGS")
    return {"command": command, **fields, "config": config.to_dict(), "model": run.model.name,
            "weights_sha256": run.model.weights_sha256}  # fmt: skip
