"""The studio's Motion tab: a zoom loop of the controls' dream and a video dreamed frame by
frame (motion/'s runners), each an MP4 plus every frame's PNG with its recipe; a visitor's
Cancel, or a run its first frames show would pass the time limit, stops after the frame in
progress."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from inceptionism.errors import InceptionismError
from inceptionism.io.image import read_recipe
from inceptionism.io.video import probe_range, read_frames
from inceptionism.jobs.job import FileRef, Job, Start
from inceptionism.jobs.run import RunContext
from inceptionism.motion.frames import FrameRun, FramesTarget, finish_frames, run_settings
from inceptionism.motion.sequential import dream_video, zoom_loop
from inceptionism.studio.base import StudioBase
from inceptionism.studio.controls import MAX_FRAMES, Controls
from inceptionism.studio.recipe import public, scrubbed


class Motion(StudioBase):
    def zoom(
        self,
        c: Controls,
        frames: int = 8,
        zoom: float = 1.05,
        rotate: float = 0.0,
        fps: float = 12.0,
        on_frame: Callable[[Any], Any] | None = None,
        session: str = "",
    ) -> tuple[str, list[str]]:
        """`inceptionism zoom` of the controls' dream: frame 1 the start dreamed, each next one
        the last zoomed and rotated, then dreamed; returns the MP4 and every frame's PNG with
        its recipe."""
        self._forget_old_results()
        frames = int(frames)
        if not 1 <= frames <= MAX_FRAMES:
            raise InceptionismError(f"frames: from 1 to {MAX_FRAMES} in the studio, got {frames}")
        job = self.job(c)
        first = dataclasses.replace(job.start, quantize=True)  # frames are carried as 8 bits
        refs = {k: r for k in ("guide", "mask") if (r := getattr(job, k)) is not None}
        folder = self._folder("zoom")
        target = FramesTarget(str(folder / "zoom.mp4"), True, [])
        model, lock = self.model(job.config.model)
        run = RunContext(model)
        source = "upload" if job.label == "upload" else job.label
        settings = run_settings("zoom", job.config, run, source=source,
                                source_sha256=first.source.sha256 if first.source else None,
                                size=list(first.size or ()), zoom=float(zoom),
                                rotate=float(rotate), shift=[0.0, 0.0])  # fmt: skip
        frame_run = FrameRun(target.frames, frames, settings, run,
                             on_frame=self._deadline(frames, on_frame, session),
                             force=True, refs=refs)  # fmt: skip
        with lock:
            zoom_loop(first, job.config, frame_run, float(zoom), float(rotate), (0.0, 0.0))
            finish_frames(target, frame_run, Fraction(float(fps)).limit_denominator(1001))
        files = self._scrub_files(target.frames, job)
        assert target.file is not None
        return str(target.file), files

    def video(
        self,
        c: Controls,
        video: str,
        blend: float = 0.5,
        flow: bool = False,
        t_start: float | None = None,
        t_end: float | None = None,
        on_frame: Callable[[Any], Any] | None = None,
        session: str = "",
    ) -> tuple[str, list[str]]:
        """`inceptionism video` with the controls' settings: each frame of the uploaded
        ``video`` (long side at most the controls' size) dreamed, the previous dream mixed in
        by ``blend`` (along the optical flow with ``flow``), its sound kept; returns the MP4
        and every frame's PNG with its recipe. Refused up front past MAX_FRAMES frames."""
        self._forget_old_results()
        if not video:
            raise InceptionismError("upload a video first")
        self._check_upload(video, "video")
        config = self.config(c)
        refs = self.steering(c)
        side = max(16, min(int(c.size), self.limits.max_side))
        path = Path(video)
        try:
            info, total = probe_range(path, t_start, t_end, self.limits.max_pixels)
        except InceptionismError as e:
            raise InceptionismError(f"the video: {public(str(e), video)}") from None
        if total > MAX_FRAMES:
            raise InceptionismError(
                f"the video has {total} frames in that range; the studio dreams at most "
                f"{MAX_FRAMES} (set a start and an end)"
            )
        spec: dict[str, Any] = {"max_size": side, "max_pixels": self.limits.max_pixels,
                                "t_start": t_start, "t_end": t_end, "blend": float(blend),
                                "flow": bool(flow)}  # fmt: skip
        ref = FileRef.of(path)
        folder = self._folder("video")
        target = FramesTarget(str(folder / "video.mp4"), True, [])
        model, lock = self.model(config.model)
        run = RunContext(model)
        settings = run_settings("video", config, run, source="upload", source_sha256=ref.sha256,
                                blend=float(blend), flow=bool(flow), start=t_start, end=t_end,
                                max_size=side)  # fmt: skip
        frame_run = FrameRun(target.frames, total, settings, run, force=True, refs=refs,
                             on_frame=self._deadline(total, on_frame, session))  # fmt: skip
        audio: dict[str, Any] = {"audio_from": path if info.has_audio else None, "start": t_start,
                                 "end": t_end}  # fmt: skip
        with lock:
            dream_video(ref, read_frames(path, info, t_start, t_end), config, frame_run, spec)
            finish_frames(target, frame_run, info.fps, **audio)
        job = Job(config, Start("video", ref, frame=1, **spec), None, "frame",
                  refs.get("guide"), refs.get("mask"), label="upload")  # fmt: skip
        return str(target.file), self._scrub_files(target.frames, job)

    def _deadline(
        self, total: int, on_frame: Callable[[Any], Any] | None, session: str
    ) -> Callable:
        """A frame callback that stops a run once its first frames say it would run late, or
        once its visitor (``session``) cancels."""
        began = time.monotonic()
        cancel = self._event(session)
        cancel.clear()

        def frame_done(p: Any) -> None:
            if cancel.is_set():
                raise InceptionismError(f"cancelled after {p.k} of {total} frames")
            if on_frame is not None:
                on_frame(p)
            late = time.monotonic() - began + (p.eta or 0.0)
            if late > self.limits.time_limit:
                raise InceptionismError(
                    f"{total} frames would take about {late:.0f} s, over the studio's limit "
                    f"of {self.limits.time_limit:g} s; ask for fewer frames or a smaller size"
                )

        return frame_done

    def _scrub_files(self, folder: Path, job: Job) -> list[str]:
        """The frames' recipes without the uploads' server paths."""
        files = sorted(str(p) for p in folder.glob("*.png"))
        for path in files:
            recipe = read_recipe(path)
            source = recipe["start"].get("source")
            if job.label == "upload" and source:
                source.update(input="upload", path="upload")
            self._rewrite(path, scrubbed(recipe, job, False))
        return files
