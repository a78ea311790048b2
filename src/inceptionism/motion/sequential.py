"""Zoom loops and videos dreamed frame after frame, each frame starting from the last."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from inceptionism.engine.config import DreamConfig
from inceptionism.jobs.job import FileRef, Start
from inceptionism.jobs.run import fit_frame
from inceptionism.motion.frames import FrameRun


def zoom_loop(
    first: Start,
    config: DreamConfig,
    run: FrameRun,
    zoom: float,
    rotate: float,
    shift: tuple[float, float],
) -> None:
    """Frame 1 is the start dreamed; frame k+1 is frame k transformed, then dreamed."""
    for k in range(1, run.total + 1):
        if run.is_done(k):
            run.reuse(k)
            continue
        if k == 1:
            start = first
        else:
            start = Start("zoom", previous=run.previous(k), max_pixels=first.max_pixels,
                          quantize=True, zoom=zoom, rotate=rotate, shift=shift)  # fmt: skip
        run.dream(k, config, start)


def dream_video(
    source: FileRef,
    frames: Iterable[np.ndarray],
    config: DreamConfig,
    run: FrameRun,
    video: dict[str, Any],
) -> None:
    """Each source frame dreamed; the start mixes in the previous dream (``blend``): plainly,
    (1 - blend) * frame + blend * previous dream, or with ``flow`` as frame + blend * the
    previous dream's detail (dream - its source frame) moved along the optical flow.
    ``video`` holds the start's fields: max_size, max_pixels, t_start, t_end, blend, flow."""
    cache = run.context.frames.video
    for k, rgb in enumerate(frames, 1):
        if k > run.total:
            break
        cache[(source.path, k)] = fit_frame(rgb, video["max_size"])
        cache.pop((source.path, k - 2), None)  # the frame before is kept for the flow
        if run.is_done(k):
            run.reuse(k)
            continue
        previous = run.previous(k) if k > 1 and video["blend"] > 0 else None
        h, w = cache[(source.path, k)].shape[:2]
        start = Start("video", source, (w, h), frame=k, previous=previous, **video)
        run.dream(k, config, start)
