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
from inceptionism.executors.worker import Chain
from inceptionism.io.image import LoadedImage, from_uint8, load_image, read_recipe, to_uint8
from inceptionism.io.video import FRAME_NAME
from inceptionism.jobs.job import CrossFade, FileRef, Job, Start, mix_dreams
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import fit_frame
from inceptionism.jobs.write import write_image
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

    executor.run(todo, run.context, done)


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
class Chunk:
    """One chunk of a chunked run: frames ``burn_start`` to ``last`` dreamed in order on one
    worker, kept from ``first``; the previous chunk fades into it over ``fade_in`` frames before
    ``first`` (its last ones), and it fades into the next over its own last ``fade_out``."""

    burn_start: int
    first: int
    last: int
    fade_in: int = 0
    fade_out: int = 0

    @property
    def tail(self) -> range:
        """Its frames faded into the next chunk."""
        return range(self.last - self.fade_out + 1, self.last + 1)

    @property
    def burned(self) -> bool:
        return self.burn_start < self.first

    @property
    def stored(self) -> range:
        """The burn-in frames kept in ``burnin/``: the last one (the first kept frame starts
        from it), the ones faded over and the one before those (their start)."""
        if not self.burned:
            return range(0)
        return range(max(self.burn_start, self.first - self.fade_in - 1), self.first)


def chunk_plan(
    total: int, chunks: int, cuts: list[int], burn_in: int, crossfade: int
) -> list[Chunk]:
    """The chunks of :func:`plan_chunks`, each fading into the next over ``crossfade`` frames
    where the next has a burn-in (never over a shot cut, never longer than either chunk)."""
    plan = [Chunk(*c) for c in plan_chunks(total, chunks, cuts, burn_in)]
    for before, c in zip(plan, plan[1:]):
        if c.burned:
            m = max(0, min(crossfade, c.first - c.burn_start, before.last - before.first))
            before.fade_out = c.fade_in = m
    return plan


@dataclass(frozen=True)
class Resume:
    """What one chunk dreams in this run: frames from ``start`` to its last, its dreams kept
    (written) from ``keep``; ``burn_in_again`` when its burn-in is dreamed again (its
    cross-faded frames then take the later dreams from memory, not from ``burnin/``)."""

    chunk: int
    start: int
    keep: int
    burn_in_again: bool


def plan_resume(
    plan: list[Chunk], have: set[int], burn_ok: set[int], tail_ok: set[int]
) -> list[Resume]:
    """The chunks to dream, given the frames already written (``have``), the burn-in frames on
    disk with this run's settings (``burn_ok``) and the earlier chunks' own dreams of
    cross-faded frames on disk (``tail_ok``). A chunk resumes after its last written frame when
    that frame's dream is on disk; it starts again from its burn-in when nothing of it is
    written, when the frame before the gap is gone, or when the chunk before it still has to
    fade into it and the burn-in frames that fade needs are not on disk. Pure: no files."""
    out = []
    for n, c in enumerate(plan):
        first = next((k for k in range(c.first, c.last + 1) if k not in have), c.last + 1)
        faded_into = n > 0 and any(j not in have for j in plan[n - 1].tail)
        on_disk = all(j in burn_ok for j in range(c.first - c.fade_in, c.first))
        resumable = first > c.first and (first - 1 not in c.tail or first - 1 in tail_ok)
        if first > c.last and (not faded_into or on_disk):
            continue
        restart = first == c.first or not resumable or (faded_into and not on_disk)
        start = c.burn_start if restart else first
        again = start == c.burn_start and c.burned
        out.append(Resume(n, start, c.stored.start if again else start, again))
    return out


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
    folder resumes after the last of them, exactly (:func:`plan_resume`)."""
    cuts = shot_cuts(fit_frame(f, video["max_size"]) for f in frames)
    chunked = _ChunkedVideo(source, size, config, run, video,
                            chunk_plan(run.total, chunks, cuts, burn_in, crossfade))  # fmt: skip
    chains = chunked.chains()
    for k in run.done:
        run.reuse(k)
    if chains:
        executor.run_chains(chains, run.context, chunked.written)
    run.done = _prefix(chunked.have)


class _ChunkedVideo:
    """A chunked video run's state: the frames written, the two chunks' dreams of cross-faded
    frames as they arrive, and where each chunk's own dream of a frame is kept."""

    def __init__(self, source: FileRef, size: tuple[int, int], config: DreamConfig,
                 run: FrameRun, video: dict[str, Any], plan: list[Chunk]):  # fmt: skip
        self.source, self.size, self.config, self.run, self.video = source, size, config, run, video
        self.plan = plan
        self.burn_dir, self.fade_dir = run.folder / "burnin", run.folder / "crossfade"
        self.have = {k for k in range(1, run.total + 1) if run.kept(k)}
        self.resumes: list[Resume] = []
        self.jobs: list[tuple[list[Job], int]] = []
        self.recent: list[float] = []
        self.earlier: dict[int, np.ndarray] = {}  # the earlier chunk's dreams of faded frames
        self.later: dict[int, np.ndarray] = {}  # the later chunk's (its burn-in), when re-dreamed
        self.records: dict[int, dict[str, Any]] = {}  # chunk -> where its worker ran

    def own(self, c: Chunk, j: int) -> Path:
        """Chunk ``c``'s own dream of frame ``j`` as a file."""
        if j < c.first:
            return self.burn_dir / FRAME_NAME.format(j)
        if j in c.tail:
            return self.fade_dir / FRAME_NAME.format(j)
        return self.run.path(j)

    def _valid(self, path: Path) -> bool:
        try:
            return read_recipe(path).get("motion") == self.run.settings
        except (InceptionismError, OSError):
            return False

    def _start(self, k: int, previous: FileRef | None) -> Start:
        return Start("video", self.source, self.size, frame=k, previous=previous, **self.video)

    def chains(self) -> list[tuple[list[Job], int]]:
        """Each resumed chunk's frame jobs and how many of them its worker drops."""
        burn_ok = {j for c in self.plan for j in c.stored
                   if self._valid(self.burn_dir / FRAME_NAME.format(j))}  # fmt: skip
        tail_ok = {j for c in self.plan for j in c.tail
                   if self._valid(self.fade_dir / FRAME_NAME.format(j))}  # fmt: skip
        self.resumes = plan_resume(self.plan, self.have, burn_ok, tail_ok)
        chains = []
        for r in self.resumes:
            c = self.plan[r.chunk]
            jobs = []
            for k in range(r.start, c.last + 1):
                if k == r.start:
                    prev = None if k == c.burn_start else FileRef.of(self.own(c, k - 1))
                else:  # the dream before, held by the worker; named now, hashed when written
                    p = self.own(c, k - 1)
                    prev = FileRef(str(p), str(p.resolve()), None)
                jobs.append(self.run.job(k, self.config, self._start(k, prev)).replace(output=None))
            chains.append((jobs, r.keep - r.start))
        self.jobs = chains
        return chains

    def _save(self, job: Job, path: Path, rgb: np.ndarray, record: dict[str, Any]) -> None:
        context = self.run.context
        recipe = {**job_recipe(job, context.model, context.weights_file), **record}
        write_image(path, LoadedImage(from_uint8(np.array(rgb))), recipe)

    def _frame_written(self, k: int, each: float) -> None:
        run = self.run
        self.have.add(k)
        run.times.append(each)
        self.recent.append(each)
        run.done = _prefix(self.have)
        if run.on_frame:
            left = run.total - len(self.have)
            eta = float(np.median(self.recent)) * left / max(1, len(self.resumes))
            run.on_frame(FrameProgress(k, run.total, each, eta, reused=False))

    def written(self, i: int, chain: Chain) -> None:
        """Chain ``i``'s frames from its worker: burn-in frames and the chunk's own dreams of
        faded frames to their folders, the rest as the video's frames; then any cross-fade
        whose two dreams are both here."""
        r = self.resumes[i]
        c = self.plan[r.chunk]
        each = chain.where.seconds / max(1, c.last - r.start + 1)
        self.records[r.chunk] = record = chain.where.record()
        jobs, skip = self.jobs[i]
        for job, rgb in zip(jobs[skip:], chain.frames):
            k = job.index or 0
            previous = job.start.previous
            if previous is not None and not (k == c.stored.start and k < c.first):
                previous = FileRef.of(previous.path)  # the dream before as written, hashed
            job = job.replace(start=dataclasses.replace(job.start, previous=previous))
            if k < c.first:  # burn-in: the first kept frame's start, and the faded frames' B
                self._save(job, self.own(c, k), rgb, record)
                self.later[k] = rgb
            elif k in c.tail:  # faded into the next chunk: this chunk's own dream of it
                self._save(job, self.own(c, k), rgb, record)
                self.earlier[k] = rgb
            elif k not in self.have:
                self._save(job, self.run.path(k), rgb, record)
                self._frame_written(k, each)
        for m in (r.chunk - 1, r.chunk):
            if 0 <= m < len(self.plan) - 1 and self.plan[m].fade_out:
                self._fade(m, each)

    def _fade(self, n: int, each: float) -> None:
        """Chunk ``n``'s tail written, cross-faded into chunk ``n + 1``, once both are here."""
        p, c = self.plan[n], self.plan[n + 1]
        todo = [j for j in p.tail if j not in self.have]
        if not todo or not all(j in self.earlier for j in todo):
            return
        if any(r.chunk == n + 1 and r.burn_in_again for r in self.resumes):
            if not all(j in self.later for j in todo):
                return
            later = [self.later[j] for j in todo]
        else:
            later = [to_uint8(load_image(self.burn_dir / FRAME_NAME.format(j)).rgb) for j in todo]
        for j, b_dream in zip(todo, later):
            w = fade_weight(j - (p.last - p.fade_out), p.fade_out)
            b_prev = (
                None if j == c.burn_start else FileRef.of(self.burn_dir / FRAME_NAME.format(j - 1))
            )
            job = self.run.job(j, self.config, self._start(j, FileRef.of(self.own(p, j - 1))))
            job = job.replace(crossfade=CrossFade(w, b_prev))
            self._save(job, self.run.path(j), mix_dreams(self.earlier[j], b_dream, w),
                       self.records[n])  # fmt: skip
            self._frame_written(j, each)
