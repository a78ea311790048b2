"""The `zoom` and `video` commands: a thin shell over motion.py and video.py."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image

from .cli import _note, cli
from .cli_options import build_config, config_options, device_for, model_options, parse_size
from .config import DreamConfig
from .engine import resolve_objective
from .errors import ConfigError, ImageError
from .image import DEFAULT_MAX_PIXELS, load_image
from .models import get_model
from .models.weights import sha256_file
from .motion import (
    MOTION_DEFAULTS,
    FrameProgress,
    FrameRun,
    dream_video,
    frame_config,
    to_uint8,
    zoom_loop,
)
from .outputs import same_file
from .progress import format_seconds
from .recipe import make_recipe
from .samples import is_sample, sample_path
from .techniques import start_image
from .video import VIDEO_SUFFIXES, assemble, count_frames, ffmpeg_exe, probe, read_frames

STARTS = ("noise", "grey")


class Target:
    """Where frames go and what is assembled from them: OUT.mp4 / OUT.gif with the frames in
    OUT.mp4.frames/ (kept, for resuming), or a folder OUT/ that gets the frames only."""

    def __init__(self, out: str, force: bool, inputs: list[Path]):
        path = Path(out)
        if out.endswith(("/", "\\")) or path.is_dir() or not path.suffix:
            self.file, self.frames = None, path
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            self.file, self.frames = path, path.with_name(path.name + ".frames")
        else:
            raise ImageError(f"{out}: the output must be .mp4, .gif or a folder (OUT/)")
        if self.frames.exists() and not self.frames.is_dir():
            raise ImageError(f"{self.frames}: exists and is not a folder")
        if self.file is not None:
            if any(same_file(p, self.file) for p in inputs):
                raise ImageError(f"{self.file} is an input; refusing to overwrite it")
            ffmpeg_exe()  # the video extra is needed before any work
            if self.file.exists() and not force and not self.frames.is_dir():
                raise ImageError(f"{self.file} exists; pass --force to overwrite it")
        self.force = force


def _progress(quiet: bool):
    def show(p: FrameProgress) -> None:
        if quiet:
            return
        what = "reused" if p.reused else f"{p.seconds:.1f} s"
        sys.stderr.write(f"frame {p.k}/{p.n} {what}  ETA {format_seconds(p.eta)}\n")
        sys.stderr.flush()

    return show


def _config(opts: dict[str, Any]) -> DreamConfig:
    if not opts.get("preset"):  # motion's lighter per-frame recipe unless the user set it
        opts = {**opts, **{k: v for k, v in MOTION_DEFAULTS.items() if opts.get(k) is None}}
    config = build_config(opts)
    resolve_objective(config.model, config)
    return config


def _finish(target: Target, run: FrameRun, fps: Fraction, quiet: bool, **audio: Any) -> None:
    done = target.file is not None and target.file.exists() and run.reused_all
    if done and not target.force and count_frames(target.file) == len(run.done):
        _note(f"nothing to do: {target.file} is complete (use --force to redo)", quiet)
        return
    if target.file is not None and run.done:
        assemble(target.frames, len(run.done), target.file, fps, **audio)
        _note(f"wrote {target.file} ({len(run.done)} frames at {fps} fps)", quiet)
    else:
        _note(f"wrote {len(run.done)} frames to {target.frames}", quiet)


def _interrupted(target: Target, run: FrameRun, fps: Fraction, quiet: bool, **audio) -> None:
    """Ctrl-C: the frames so far become a playable partial result; a re-run resumes."""
    if target.file is not None and run.done:
        assemble(target.frames, len(run.done), target.file, fps, **audio)
    _note(
        f"interrupted after {len(run.done)} of {run.total} frames; the same command resumes",
        False,
    )


def _parse_shift(text: str) -> tuple[float, float]:
    try:
        dx, dy = (float(v) for v in text.split(","))
    except ValueError:
        raise click.BadParameter(f"expected DX,DY in pixels, got {text!r}") from None
    return dx, dy


@cli.command()
@click.argument("source")
@click.option("--output", "-o", "out", required=True, help="OUT.mp4, OUT.gif or a folder OUT/.")
@click.option("--frames", type=click.IntRange(1, 999_999), default=48, show_default=True)
@click.option("--zoom", "zoom_factor", type=click.FloatRange(0.5, 2.0), default=1.05,
              show_default=True, help="Scale per frame (>1 zooms in).")  # fmt: skip
@click.option("--rotate", type=click.FloatRange(-180, 180), default=0.0, show_default=True,
              help="Degrees per frame, counter-clockwise.")  # fmt: skip
@click.option("--shift", default="0,0", show_default=True, help="DX,DY pixels per frame.")
@click.option("--fps", type=click.FloatRange(0.1, 240), default=12.0, show_default=True)
@click.option("--size", default=None, help="WxH for a noise or grey start (default 512x512).")
@click.option("--max-size", type=click.IntRange(min=16), default=None,
              help="Downscale the photo so its long side is at most this.")  # fmt: skip
@config_options
@model_options
@click.option("--force", "-f", is_flag=True, help="Start over, replacing frames and output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def zoom(source: str, out: str, frames: int, zoom_factor: float, rotate: float, shift: str,
         fps: float, size: str | None, max_size: int | None, weights: Path | None,
         device: str, force: bool, quiet: bool, **opts: Any) -> None:  # fmt: skip
    """An endless zoom: each frame dreamed from the last one, zoomed, rotated and shifted.

    SOURCE is a photo, sample:NAME, noise or grey. Frames are written as they finish, next to
    OUT (OUT.mp4.frames/); running the same command again resumes after the last one.
    """
    dxdy = _parse_shift(shift)
    config = _config(opts)
    device_for(device)
    path = None
    if source in STARTS:
        w, h = parse_size(size) or (512, 512)
        start = to_uint8(start_image(source, h, w, config.seed))
    else:
        if size is not None:
            raise ImageError("--size is for noise or grey starts (the photo sets the size)")
        path = sample_path(source) if is_sample(source) else Path(source)
        start = to_uint8(load_image(path, DEFAULT_MAX_PIXELS).resized_to_fit(max_size).rgb)
    target = Target(out, force, [path] if path else [])
    rate = Fraction(fps).limit_denominator(1001)
    model = get_model(config.model, weights=weights, device=device_for(device))
    settings = {
        "command": "zoom", "source": source, "source_sha256": sha256_file(path) if path else None,
        "size": [start.shape[1], start.shape[0]], "zoom": zoom_factor, "rotate": rotate,
        "shift": list(dxdy), "config": config.to_dict(), "model": model.name,
        "weights_sha256": model.weights_sha256,
    }  # fmt: skip

    def recipe(k: int) -> dict[str, Any]:
        return make_recipe(
            frame_config(config, k), model, source, path, max_size, weights_file=weights
        )

    run = FrameRun(target.frames, frames, settings, recipe, _progress(quiet), force)
    try:
        zoom_loop(model, config, start, run, zoom_factor, rotate, dxdy)
    except KeyboardInterrupt:
        _interrupted(target, run, rate, quiet)
        raise
    _finish(target, run, rate, quiet)


@cli.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--output", "-o", "out", required=True, help="OUT.mp4, OUT.gif or a folder OUT/.")
@click.option("--blend", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="How much of the previous dream goes into the next frame's start.")  # fmt: skip
@click.option("--flow", is_flag=True,
              help="Carry the previous dream's detail along the optical flow.")  # fmt: skip
@click.option("--start", "t_start", type=click.FloatRange(min=0), default=None,
              help="Start time in seconds.")  # fmt: skip
@click.option("--end", "t_end", type=click.FloatRange(min=0), default=None,
              help="End time in seconds.")  # fmt: skip
@click.option("--max-size", type=click.IntRange(min=16), default=None,
              help="Downscale frames so the long side is at most this.")  # fmt: skip
@config_options
@model_options
@click.option("--force", "-f", is_flag=True, help="Start over, replacing frames and output.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def video(source: Path, out: str, blend: float, flow: bool, t_start: float | None,
          t_end: float | None, max_size: int | None, weights: Path | None, device: str,
          force: bool, quiet: bool, **opts: Any) -> None:  # fmt: skip
    """Dream a video frame by frame, keeping its frame rate, frame count and sound.

    Frames are written as they finish (OUT.mp4.frames/); running the same command again
    resumes after the last one. Ctrl-C leaves a playable partial OUT.
    """
    if t_start is not None and t_end is not None and t_end <= t_start:
        raise ConfigError(f"--end {t_end} must be after --start {t_start}")
    if flow:
        try:
            import cv2  # noqa: F401
        except ImportError:
            raise ConfigError('--flow needs OpenCV: pip install "inceptionism[video]"') from None
    config = _config(opts)
    device_for(device)
    info = probe(source)
    target = Target(out, force, [source])
    total = count_frames(source, t_start, t_end)
    if total == 0:
        raise ImageError(f"{source}: no frames in the chosen time range")
    model = get_model(config.model, weights=weights, device=device_for(device))
    settings = {
        "command": "video", "source": str(source), "source_sha256": sha256_file(source),
        "blend": blend, "flow": flow, "start": t_start, "end": t_end, "max_size": max_size,
        "config": config.to_dict(), "model": model.name, "weights_sha256": model.weights_sha256,
    }  # fmt: skip

    def recipe(k: int) -> dict[str, Any]:
        return make_recipe(
            frame_config(config, k), model, str(source), None, max_size, weights_file=weights
        )

    def frames():
        for rgb in read_frames(source, info, t_start, t_end):
            if max_size and max(rgb.shape[:2]) > max_size:
                im = Image.fromarray(rgb)
                im.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
                rgb = np.asarray(im)
            yield rgb

    audio = {"audio_from": source if info.has_audio else None, "start": t_start, "end": t_end}
    run = FrameRun(target.frames, total, settings, recipe, _progress(quiet), force)
    try:
        dream_video(model, config, frames(), run, blend, flow)
    except KeyboardInterrupt:
        _interrupted(target, run, info.fps, quiet, **audio)
        raise
    _finish(target, run, info.fps, quiet, **audio)
