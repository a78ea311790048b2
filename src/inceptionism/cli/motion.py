"""The `zoom` and `video` commands: a thin shell over motion/ and io/video.py."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import click

from inceptionism.cli.catalog import short_help
from inceptionism.cli.options import (
    SectionedCommand,
    command_config,
    dream_options,
    executor_option,
    load_run,
    read_options,
    run_flags,
)
from inceptionism.cli.params import (
    FloatRange,
    IntRange,
    examples,
    note,
    parse_floats,
    size_text,
)
from inceptionism.configure import parse_size
from inceptionism.engine.progress import frame_bars, frame_lines
from inceptionism.errors import ConfigError, MissingExtraError
from inceptionism.executors.select import make_executor
from inceptionism.io.video import probe_range, read_frames
from inceptionism.jobs.job import FileRef, Job, Start, source_start, steering_refs
from inceptionism.motion.chunks import (
    burn_in_frames,
    crossfade_frames,
    dream_video_chunks,
    dream_video_parallel,
)
from inceptionism.motion.frames import (
    MOTION_DEFAULTS,
    FrameRun,
    FramesTarget,
    finish_frames,
    fitted_size,
    frame_config,
    run_settings,
)
from inceptionism.motion.sequential import dream_video, zoom_loop


@click.command(
    cls=SectionedCommand,
    sections={"Motion": ("frames", "zoom_factor", "rotate", "shift", "fps")},
    short_help=short_help("zoom"),
    epilog=examples(
        "zoom sample:coffee -o zoom.mp4 --frames 48",
        "zoom noise -o tunnel.gif --zoom 1.1 --rotate 2",
        "zoom photo.jpg -o frames/ --shift 4,0 --fps 24",
    ),
)
@click.argument("source")
@click.option("--output", "-o", "out", required=True, metavar="OUT",
              help="OUT.mp4, OUT.gif or a folder OUT/.")  # fmt: skip
@click.option("--frames", type=IntRange(1, 999_999), default=48, show_default=True,
              help="Number of frames.")  # fmt: skip
@click.option("--zoom", "zoom_factor", type=FloatRange(0.5, 2.0), default=1.05,
              show_default=True, help="Scale per frame (>1 zooms in).")  # fmt: skip
@click.option("--rotate", type=FloatRange(-180, 180), default=0.0, show_default=True,
              help="Degrees per frame, counter-clockwise.")  # fmt: skip
@click.option("--shift", default="0,0", show_default=True, metavar="DX,DY",
              help="Pixels per frame.",
              callback=lambda _c, _p, text: parse_floats(text, 2, "DX,DY in pixels"))  # fmt: skip
@click.option("--fps", type=FloatRange(0.1, 240), default=12.0, show_default=True,
              help="Frames per second of the video.")  # fmt: skip
@click.option("--size", default=None, callback=size_text, metavar="WxH",
              help="WxH for a noise or grey start (default 512x512).")  # fmt: skip
@dream_options(MOTION_DEFAULTS)
@run_flags("Start over, replacing frames and output.")
@executor_option
@click.pass_context
def zoom(ctx: click.Context, source: str, out: str, frames: int, zoom_factor: float,
         rotate: float, shift: tuple[float, float], fps: float, size: str | None,
         guide: str | None, mask: str | None, max_size: int | None, max_pixels: int,
         force: bool, quiet: bool, **opts: Any) -> None:  # fmt: skip
    """An endless zoom: each frame dreamed from the last one, zoomed, rotated and shifted.

    SOURCE is a photo, sample:NAME, noise or grey. Frames are written as they finish, next to
    OUT (OUT.mp4.frames/); running the same command again resumes after the last one.
    """
    options = read_options(ctx, opts)
    if options["executor"] != "local":
        raise ConfigError("zoom is sequential (each frame starts from the last one): "
                          "it runs with --executor local only")  # fmt: skip
    config = command_config(options, MOTION_DEFAULTS, guide=guide is not None)
    first = source_start(source, config.init, parse_size(size), max_size, max_pixels, True)
    refs = steering_refs(guide, mask)
    target = FramesTarget(out, force, [*first.reads, *(r.local() for r in refs.values())])
    Job(frame_config(config, 1), first, None, "frame", refs.get("guide"), refs.get("mask"))
    rate = Fraction(fps).limit_denominator(1001)
    run = load_run(config, options)
    settings = run_settings("zoom", config, run, source=source,
                            source_sha256=first.source.sha256 if first.source else None,
                            size=list(first.size or ()), zoom=zoom_factor, rotate=rotate,
                            shift=list(shift))  # fmt: skip
    frame_run = FrameRun(target.frames, frames, settings, run, on_frame=frame_lines(quiet),
                         force=force, live=frame_bars(quiet, frames), refs=refs)  # fmt: skip
    try:
        zoom_loop(first, config, frame_run, zoom_factor, rotate, shift)
    except KeyboardInterrupt:  # the frames so far become a playable partial result
        note(finish_frames(target, frame_run, rate, interrupted=True))
        raise
    note(finish_frames(target, frame_run, rate), quiet)


@click.command(
    cls=SectionedCommand,
    sections={"Motion": ("blend", "flow", "t_start", "t_end")},
    short_help=short_help("video"),
    epilog=examples(
        "video clip.mp4 -o dreamed.mp4",
        "video clip.mp4 -o smooth.mp4 --blend 0.7 --flow",
        "video clip.mp4 -o part.mp4 --start 5 --end 10 --max-size 480",
    ),
)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--output", "-o", "out", required=True, metavar="OUT",
              help="OUT.mp4, OUT.gif or a folder OUT/.")  # fmt: skip
@click.option("--blend", type=FloatRange(0, 1), default=0.5, show_default=True,
              help="How much of the previous dream goes into the next frame's start.")  # fmt: skip
@click.option("--flow", is_flag=True,
              help="Carry the previous dream's detail along the optical flow.")  # fmt: skip
@click.option("--start", "t_start", type=FloatRange(0, 1e7), default=None,
              help="Start time in seconds.")  # fmt: skip
@click.option("--end", "t_end", type=FloatRange(0, 1e7), default=None,
              help="End time in seconds.")  # fmt: skip
@dream_options(MOTION_DEFAULTS)
@run_flags("Start over, replacing frames and output.")
@executor_option
@click.pass_context
def video(ctx: click.Context, source: Path, out: str, blend: float, flow: bool,
          t_start: float | None, t_end: float | None, guide: str | None, mask: str | None,
          max_size: int | None, max_pixels: int, force: bool, quiet: bool,
          **opts: Any) -> None:  # fmt: skip
    """Dream a video frame by frame, keeping its frame rate, frame count and sound.

    Frames are written as they finish (OUT.mp4.frames/); running the same command again
    resumes after the last one. Ctrl-C leaves a playable partial OUT.
    """
    options = read_options(ctx, opts)
    if flow:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise MissingExtraError("--flow (OpenCV)", "video") from None
    config = command_config(options, MOTION_DEFAULTS, guide=guide is not None)
    info, total = probe_range(source, t_start, t_end, max_pixels)
    refs = steering_refs(guide, mask)
    target = FramesTarget(out, force, [source, *(r.local() for r in refs.values())])
    ref = FileRef.of(source)
    spec: dict[str, Any] = {"max_size": max_size, "max_pixels": max_pixels, "t_start": t_start,
                            "t_end": t_end, "blend": blend, "flow": flow}  # fmt: skip
    Job(config, Start("video", ref, frame=1, **spec), None, "frame", refs.get("guide"),
        refs.get("mask"))  # checked before any work  # fmt: skip
    executor = make_executor(options["executor"], options["device"])
    burn_in = burn_in_frames(blend) if executor.parallel else 0
    ctx.call_on_close(executor.close)
    executor.open()  # a cluster joined before the model loads or a frame is written
    run = load_run(config, options)
    fade = crossfade_frames(burn_in)
    # chunks in parallel make other frames than one sequential run: recorded, so never mixed
    chunked = {k: v for k, v in (("burn_in", burn_in), ("crossfade", fade)) if v}
    settings = run_settings("video", config, run, source=str(source), source_sha256=ref.sha256,
                            blend=blend, flow=flow, start=t_start, end=t_end,
                            max_size=max_size, **chunked)  # fmt: skip
    audio: dict[str, Any] = {"audio_from": source if info.has_audio else None, "start": t_start,
                             "end": t_end}  # fmt: skip
    frame_run = FrameRun(target.frames, total, settings, run, on_frame=frame_lines(quiet),
                         force=force, live=frame_bars(quiet, total), refs=refs)  # fmt: skip
    try:
        size = fitted_size(info.width, info.height, max_size)
        if executor.parallel and blend > 0:
            workers = len(executor.pool(run, total))  # type: ignore[attr-defined]
            dream_video_chunks(ref, read_frames(source, info, t_start, t_end), size, config,
                               frame_run, spec, executor, workers, burn_in, fade)  # fmt: skip
        elif executor.parallel:
            dream_video_parallel(ref, size, config, frame_run, spec, executor)
        else:
            dream_video(ref, read_frames(source, info, t_start, t_end), config, frame_run, spec)
    except KeyboardInterrupt:  # the frames so far become a playable partial result
        note(finish_frames(target, frame_run, info.fps, interrupted=True, **audio))
        raise
    note(finish_frames(target, frame_run, info.fps, **audio), quiet)
