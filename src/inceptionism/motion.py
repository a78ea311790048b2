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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .config import DreamConfig
from .engine import Progress
from .errors import ImageError, InceptionismError
from .executors import Done, Executor, Tally, executor_record
from .image import LoadedImage, from_uint8, read_recipe, to_uint8
from .jobs import CrossFade, FileRef, Job, RunContext, Start, fit_frame, mix_dreams, run_job
from .outputs import check_outputs, final_path
from .video import FRAME_NAME, VIDEO_SUFFIXES, assemble, count_frames, ffmpeg_exe, frame_numbers

# Per-frame recipe unless the user says otherwise: a frame is one step of a long walk, so it
# needs far less than a still (Google's notebook used its full recipe; this is ~4x cheaper).
MOTION_DEFAULTS = {"steps": 10, "octaves": 2}


def transform(
    image: torch.Tensor, zoom: float = 1.0, rotate: float = 0.0, shift: tuple[float, float] = (0, 0)
) -> torch.Tensor:
    """Zoom in by ``zoom``, rotate by ``rotate`` degrees (counter-clockwise) about the centre,
    then move the content by ``shift`` (dx, dy) pixels; borders are filled by reflection."""
    _, _, h, w = image.shape
    if zoom == 1 and rotate == 0 and shift == (0, 0):
        return image.clone()
    a = math.radians(rotate)
    cos, sin = math.cos(a) / zoom, math.sin(a) / zoom
    # output pixel -> input pixel, in normalised coordinates (x right, y down, [-1, 1])
    theta = torch.tensor(
        [[cos, sin * h / w, -2 * shift[0] / w], [-sin * w / h, cos, -2 * shift[1] / h]],
        dtype=image.dtype,
    ).unsqueeze(0)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)  # fmt: skip


def flow_warp(detail: np.ndarray, prev_frame: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Move ``detail`` (H, W, C float, aligned with ``prev_frame``) to where the scene moved in
    ``frame``: Farneback optical flow from the new frame to the old, then a remap."""
    import cv2

    def grey(rgb: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    flow = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]
        grey(frame), grey(prev_frame), None, 0.5, 3, 15, 3, 5, 1.2, 0
    )
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(detail.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)  # fmt: skip


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
        run: RunContext,
        *,
        on_frame: Callable[[FrameProgress], None] | None = None,
        force: bool = False,
        live: Callable[[int], Callable[[Progress], Any] | None] | None = None,
        refs: dict[str, FileRef] | None = None,
    ):
        self.folder, self.total, self.settings = folder, total, settings
        self.refs = refs or {}
        self.run, self.on_frame, self.live = run, on_frame, live
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
        result = run_job(job, self.run, self.live(k) if self.live else None)
        self.run.frames.dreams[str(self.path(k).resolve())] = to_uint8(result.rgb)
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
        self.run.frames.dreams = {  # keep one earlier dream in memory, not the whole clip
            p: v for p, v in self.run.frames.dreams.items() if p == str(self.path(k - 1).resolve())
        }
        return FileRef.of(self.path(k - 1))

    def _eta(self, k: int) -> float | None:
        if not self.times:
            return None
        return float(np.median(self.times)) * (self.total - k)


def frame_config(config: DreamConfig, k: int) -> DreamConfig:
    """Each frame its own jitter sequence, the same on every run: seed + frame number."""
    return config.replace(seed=config.seed + k)


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
    cache = run.run.frames.video
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


# --- --blend > 0 in parallel: chunks with a burn-in ----------------------------------------------

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
    from .image import load_image, save_image
    from .recipes import job_recipe

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


def run_settings(command: str, config: DreamConfig, run: RunContext, **fields: Any) -> dict:
    """The settings every frame of a zoom or video run shares (a resume must match them): the
    command's own ``fields``, the recipe, the model and its weights."""
    return {"command": command, **fields, "config": config.to_dict(), "model": run.model.name,
            "weights_sha256": run.model.weights_sha256}  # fmt: skip
