"""Motion: the zoom loop (each frame dreamed from the transformed last one, as in Google's
notebook) and videos dreamed frame by frame, with the previous dream blended into the next start
or its detail carried along the optical flow.

Frames are written as numbered PNGs as they finish, each with its recipe; the state carried from
one frame to the next is the frame as saved (8-bit), so a run resumed from its frames folder
continues exactly as the uninterrupted run would have.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from inceptionism.engine.config import DreamConfig
from inceptionism.errors import ImageError, InceptionismError
from inceptionism.executors.base import Done, Executor, Tally
from inceptionism.executors.ray import executor_record
from inceptionism.io.image import LoadedImage, from_uint8, read_recipe, to_uint8
from inceptionism.io.video import (
    FRAME_NAME,
)
from inceptionism.jobs.job import CrossFade, FileRef, Job, Start, mix_dreams
from inceptionism.jobs.run import fit_frame
from inceptionism.motion.frames import FrameProgress, FrameRun


def dream_video_parallel(
    source: FileRef,
    size: tuple[int, int],
    config: DreamConfig,
    run: FrameRun,
    video: dict[str, Any],
    executor: Executor,
) -> None:
    """``--blend 0``: every frame is its own job (no previous dream in its start), so all of
    them go to ``executor`` at once and finish in any order. Frames already in the folder with
    this run's settings are kept; ``run.done`` stays the gap-free run of frames from 1 (what an
    interrupted run can assemble)."""
    if video["blend"] > 0:
        raise ImageError("frames with --blend > 0 start from the previous dream; in parallel "
                         "only --blend 0")  # fmt: skip
    have = set()
    todo = []
    for k in range(1, run.total + 1):
        if run.kept(k):
            have.add(k)
            run.reuse(k)
        else:
            start = Start("video", source, size, frame=k, **video)
            todo.append(run.job(k, config, start))
    run.done = _prefix(have)

    def done(d: Done, tally: Tally) -> None:
        if d.error is not None:
            raise d.error
        k = d.job.index or 0
        have.add(k)
        run.times.append(d.seconds)
        run.done = _prefix(have)
        if run.on_frame:
            run.on_frame(FrameProgress(k, run.total, d.seconds, tally.eta, reused=False))

    executor.run(todo, run.run, done)


def _prefix(have: set[int]) -> list[int]:
    k = 0
    while k + 1 in have:
        k += 1
    return list(range(1, k + 1))


BURN_IN_WEIGHT = 0.01  # the previous dream's weight left when a chunk's first kept frame starts


CUT_LEVEL = 0.25  # mean absolute change (0..1) of a small grey frame that makes a shot cut


CROSSFADE_FRAMES = 3  # frames over which one chunk fades into the next (at most W)


def burn_in_frames(blend: float, limit: int = 60) -> int:
    """Frames a chunk starts early so that what it did not see weighs ~A^W <= 1%."""
    if blend <= 0:
        return 0
    if blend >= 1:
        return limit
    return min(limit, math.ceil(math.log(BURN_IN_WEIGHT) / math.log(blend)))


def shot_cuts(frames: Iterable[np.ndarray], level: float = CUT_LEVEL) -> list[int]:
    """Frame numbers (from 1) that start a new shot: the picture changed completely from the
    frame before (mean absolute change of a 32x32 grey thumbnail above ``level``)."""
    cuts, prev = [], None
    for k, rgb in enumerate(frames, 1):
        t = torch.from_numpy(np.array(rgb)).float().mean(-1)[None, None] / 255
        thumb = F.interpolate(t, size=(32, 32), mode="area")
        if prev is not None and float((thumb - prev).abs().mean()) > level:
            cuts.append(k)
        prev = thumb
    return cuts


def plan_chunks(
    total: int, chunks: int, cuts: list[int], burn_in: int
) -> list[tuple[int, int, int]]:
    """(burn-in start, first kept, last kept) of each chunk: the frames split into ``chunks``
    equal runs and at every shot cut; a chunk that does not begin a shot starts ``burn_in``
    frames early (never before its shot)."""
    size = math.ceil(total / max(1, chunks))
    starts = sorted({1, *range(1, total + 1, size), *(c for c in cuts if c <= total)})
    shots = sorted({1, *cuts})
    plan = []
    for i, a in enumerate(starts):
        b = starts[i + 1] - 1 if i + 1 < len(starts) else total
        shot = max(s for s in shots if s <= a)
        plan.append((max(shot, a - burn_in), a, b))
    return plan


def crossfade_frames(burn_in: int, limit: int | None = None) -> int:
    """Frames over which a chunk fades into the next (at most the burn-in: the next chunk's
    dreams of them); ``CROSSFADE_FRAMES`` unless ``limit`` says otherwise."""
    return max(0, min(CROSSFADE_FRAMES if limit is None else limit, burn_in))


def fade_weight(i: int, m: int) -> float:
    """The later chunk's weight in the ``i``-th (1..m) of ``m`` cross-faded frames."""
    return i / (m + 1)


@dataclass
class _Chunk:
    """One chunk of a chunked run: frames ``s`` (burn-in start) to ``b``, kept from ``a``; the
    previous chunk fades into it over ``fade_in`` frames before ``a`` (its last ones), and it
    fades into the next over its own last ``fade_out``."""

    s: int
    a: int
    b: int
    fade_in: int = 0
    fade_out: int = 0

    @property
    def tail(self) -> range:
        return range(self.b - self.fade_out + 1, self.b + 1)

    @property
    def burned(self) -> bool:
        return self.s < self.a

    @property
    def stored(self) -> range:
        """The burn-in frames kept in ``burnin/``: the last one (the first kept frame starts
        from it), the ones faded over and the one before those (their start)."""
        if not self.burned:
            return range(0)
        return range(max(self.s, self.a - self.fade_in - 1), self.a)


def dream_video_chunks(
    source: FileRef,
    frames: Iterable[np.ndarray],
    size: tuple[int, int],
    config: DreamConfig,
    run: FrameRun,
    video: dict[str, Any],
    executor: Any,
    chunks: int,
    burn_in: int,
    crossfade: int = 0,
) -> None:
    """``--blend A > 0`` on a parallel executor: the video split into ``chunks`` runs (and at shot
    cuts), each dreamed in order on one worker, starting ``burn_in`` frames early. The burn-in is
    dreamed and thrown away, except what later frames name in their recipes, kept in ``burnin/``
    in the frames folder: its last frame (the previous dream of the chunk's first frame) and
    the ``crossfade`` frames before it. Over those frames the earlier chunk fades into the
    later one: each is written as both chunks' dreams mixed, the later chunk's weight rising
    i / (M + 1), so the jump between two chunks' dreams is spread over M + 1 steps; the earlier
    chunk's own dreams of them go to ``crossfade/`` (its next frames start from them), and each
    cross-faded frame's recipe names both previous dreams. A chunk with frames already in the
    folder resumes after the last of them, exactly."""
    from inceptionism.io.image import load_image, save_image
    from inceptionism.jobs.recipes import job_recipe

    cuts = shot_cuts(fit_frame(f, video["max_size"]) for f in frames)
    burn_dir, fade_dir = run.folder / "burnin", run.folder / "crossfade"
    plan = [_Chunk(*c) for c in plan_chunks(run.total, chunks, cuts, burn_in)]
    for prev_chunk, c in zip(plan, plan[1:]):
        if c.burned:  # never over a shot cut (a burn-in stops there), never a whole chunk
            m = max(0, min(crossfade, c.a - c.s, prev_chunk.b - prev_chunk.a))
            prev_chunk.fade_out = c.fade_in = m

    def own(c: _Chunk, j: int) -> Path:
        """Chunk ``c``'s own dream of frame ``j`` as a file."""
        if j < c.a:
            return burn_dir / FRAME_NAME.format(j)
        if j in c.tail:
            return fade_dir / FRAME_NAME.format(j)
        return run.path(j)

    def valid(path: Path) -> bool:
        try:
            return read_recipe(path).get("motion") == run.settings
        except (InceptionismError, OSError):
            return False

    have = {k for k in range(1, run.total + 1) if run.kept(k)}
    chains: list[tuple[list[Job], int]] = []
    chunk_of: list[int] = []  # chain -> chunk
    rerun_burn_in: set[int] = set()  # chunks whose burn-in is dreamed again in this run
    for n, c in enumerate(plan):
        first = next((k for k in range(c.a, c.b + 1) if k not in have), c.b + 1)
        faded_into = n > 0 and any(j not in have for j in plan[n - 1].tail)
        on_disk = all(valid(burn_dir / FRAME_NAME.format(j)) for j in range(c.a - c.fade_in, c.a))
        resumable = first > c.a and (first - 1 not in c.tail or valid(own(c, first - 1)))
        if first > c.b and (not faded_into or on_disk):
            continue
        # a resumed chunk continues from its frame on disk, unless its burn-in is needed again
        restart = first == c.a or not resumable or (faded_into and not on_disk)
        start_at = c.s if restart else first
        if start_at == c.s and c.burned:
            rerun_burn_in.add(n)
            keep = c.stored.start
        else:
            keep = start_at
        jobs = []
        for k in range(start_at, c.b + 1):
            if k == start_at:
                prev = None if k == c.s else FileRef.of(own(c, k - 1))
            else:  # the dream before, held by the worker; the file is named, hashed on writing
                p = own(c, k - 1)
                prev = FileRef(str(p), str(p.resolve()), None)
            start = Start("video", source, size, frame=k, previous=prev, **video)
            jobs.append(run.job(k, config, start).replace(output=None))
        chains.append((jobs, keep - start_at))
        chunk_of.append(n)
    for k in run.done:
        run.reuse(k)
    recent: list[float] = []
    pure_a: dict[int, np.ndarray] = {}  # the earlier chunk's dreams of cross-faded frames
    pure_b: dict[int, np.ndarray] = {}  # the later chunk's (its burn-in)
    extras: dict[int, dict[str, Any]] = {}

    def save(job: Job, path: Path, rgb: np.ndarray, extra: dict[str, Any]) -> None:
        recipe = {**job_recipe(job, run.run.model, run.run.weights_file), **extra}
        save_image(LoadedImage(from_uint8(np.array(rgb))), path, recipe)

    def hashed(ref: FileRef | None, written: bool = True) -> FileRef | None:
        """The previous dream as the file written, with its hash, as a sequential run has."""
        return FileRef.of(ref.path) if ref is not None and written else ref

    def frame_written(k: int, each: float) -> None:
        have.add(k)
        run.times.append(each)
        recent.append(each)
        run.done = _prefix(have)
        if run.on_frame:
            left = run.total - len(have)
            eta = float(np.median(recent)) * left / max(1, len(chains)) if recent else None
            run.on_frame(FrameProgress(k, run.total, each, eta, reused=False))

    def fade(n: int, each: float) -> None:
        """Chunk ``n``'s tail written, cross-faded into chunk ``n + 1``, once both are here."""
        p, c = plan[n], plan[n + 1]
        todo = [j for j in p.tail if j not in have]
        if not todo or not all(j in pure_a for j in todo):
            return
        if n + 1 in rerun_burn_in:
            if not all(j in pure_b for j in todo):
                return
            b_dreams = [pure_b[j] for j in todo]
        else:
            b_dreams = [to_uint8(load_image(burn_dir / FRAME_NAME.format(j)).rgb) for j in todo]
        for j, b_dream in zip(todo, b_dreams):
            w = fade_weight(j - (p.b - p.fade_out), p.fade_out)
            b_prev = None if j == c.s else FileRef.of(burn_dir / FRAME_NAME.format(j - 1))
            start = Start("video", source, size, frame=j, previous=FileRef.of(own(p, j - 1)),
                          **video)  # fmt: skip
            job = run.job(j, config, start).replace(crossfade=CrossFade(w, b_prev))
            save(job, run.path(j), mix_dreams(pure_a[j], b_dream, w), extras[n])
            frame_written(j, each)

    def written(i: int, reply: dict[str, Any]) -> None:
        jobs, skip = chains[i]
        n = chunk_of[i]
        c = plan[n]
        each = reply["seconds"] / len(jobs)
        extras[n] = extra = executor_record(reply)
        for job, rgb in zip(jobs[skip:], reply["frames"]):
            k = job.index or 0
            first_stored = k == c.stored.start and k < c.a
            prev = hashed(job.start.previous, written=not first_stored)
            job = job.replace(start=dataclasses.replace(job.start, previous=prev))
            if k < c.a:  # burn-in: the first kept frame's start, and the faded frames' B
                save(job, own(c, k), rgb, extra)
                pure_b[k] = rgb
            elif k in c.tail:  # faded into the next chunk: this chunk's own dream of it
                save(job, own(c, k), rgb, extra)
                pure_a[k] = rgb
            elif k not in have:
                save(job, run.path(k), rgb, extra)
                frame_written(k, each)
        for m in (n - 1, n):
            if 0 <= m < len(plan) - 1 and plan[m].fade_out:
                fade(m, each)

    if chains:
        executor.run_chains(chains, run.run, written)
    run.done = _prefix(have)
