"""The seam of a video dreamed in parallel chunks (``--blend A > 0 --executor ray:2``): the
warping error between the last frame of one chunk and the first of the next, against the error
between neighbouring frames inside the chunks, for several burn-ins W and cross-fades M.

Warping error of frame k: mean |D_k - warp(D_{k-1})| / 255, D the written frames and warp the
optical flow of the source from frame k-1 to frame k (motion.flow_warp), so what the scene's own
motion explains is not counted. "inner" is the median over the steps outside the seam and the
cross-fade; "seam" is the step into the later chunk's first frame; "worst" the largest ratio of
any step in the cross-fade (a fade must not just move the jump one frame earlier).

One Ray run per W, with the cross-fade over all W burn-in frames: the chunks' own dreams do not
depend on M (only what is written over the fade does), and that run keeps both chunks' dreams
of the faded frames (crossfade/, burnin/), so the frames a run with any M <= W writes are mixed
here with the driver's own function (motion.fade_weight, jobs.mix_dreams); for M = W they are
checked against the frames the run wrote. M = 0 is no cross-fade (the earlier chunk's dreams).

    PYTHONPATH=src python benchmarks/bench_seams.py [--seconds 10] [--size 160x120]
        [--burn-in 4,7,14] [--crossfade 0,1,2,4,7] [--clip pan|testsrc] [--sequential]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from inceptionism.cli import motion as cli_motion
from inceptionism.cli.main import main as cli
from inceptionism.io.samples import sample_path
from inceptionism.io.video import ffmpeg_exe, probe, read_frames
from inceptionism.jobs.job import mix_dreams
from inceptionism.motion.chunks import burn_in_frames, fade_weight
from inceptionism.ops.warp import flow_warp


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def warping_errors(dreams: dict[int, np.ndarray], sources: list[np.ndarray]) -> dict[int, float]:
    return {
        k: float(np.abs(dreams[k].astype(np.float32) - flow_warp(dreams[k - 1].astype(np.float32),
                 sources[k - 2], sources[k - 1])).mean() / 255)
        for k in range(2, len(sources) + 1)
    }  # fmt: skip


def make_clip(path: Path, kind: str, size: str, fps: int, frames: int) -> None:
    """``pan``: a camera panning and zooming slowly over a sample photo (real texture and motion);
    ``testsrc``: ffmpeg's test pattern."""
    w, h = (int(v) for v in size.split("x"))
    if kind == "pan":
        photo = sample_path("sample:astronaut")
        # a 2x-size window moving across the 512x512 photo, scaled down to WxH
        vf = (
            f"crop={2 * w}:{2 * h}:x='(iw-{2 * w})*t/{frames / fps}':y='(ih-{2 * h})/3"
            f"+20*sin(t)',scale={w}:{h}"
        )
        src = ["-loop", "1", "-framerate", str(fps), "-i", str(photo), "-vf", vf]
    else:
        src = ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={fps}"]
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *src,
                    "-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p",
                    str(path)], check=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=12)
    ap.add_argument("--blend", type=float, default=0.5)
    ap.add_argument("--size", default="160x120")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--clip", choices=("pan", "testsrc"), default="pan")
    ap.add_argument("--burn-in", default=None, help="W values to try, e.g. 4,7,14 (default W(A))")
    ap.add_argument("--crossfade", default="0,1,2,3,4,7", help="M values (each <= W is shown)")
    ap.add_argument("--sequential", action="store_true", help="also one sequential run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-seams-"))
    clip = tmp / "clip.mp4"
    frames = round(args.seconds * args.fps)
    make_clip(clip, args.clip, args.size, args.fps, frames)
    sources = list(read_frames(clip, probe(clip)))
    assert len(sources) == frames, len(sources)
    common = ["--blend", str(args.blend), "--steps", str(args.steps), "--octaves",
              str(args.octaves), "--model", "efficientnet_lite0", "-q"]  # fmt: skip
    seam = (frames + 1) // 2 + 1  # 2 chunks: the second's first frame
    print(f"{frames} frames ({args.seconds:g} s at {args.fps} fps, {args.size}, {args.clip}), "
          f"--blend {args.blend}, {args.steps} steps x {args.octaves} octaves, 2 chunks on ray:2 "
          f"(the second keeps frames {seam}-{frames}); default W(A) = "
          f"{burn_in_frames(args.blend)}")  # fmt: skip
    if args.sequential:
        t = time.perf_counter()
        assert cli(["video", str(clip), "-o", str(tmp / "sequential") + "/", *common]) == 0
        seq_s = time.perf_counter() - t
        out = tmp / "sequential"
        seq = warping_errors({k: rgb(out / f"frame_{k:06d}.png") for k in range(1, frames + 1)},
                             sources)  # fmt: skip
        print(f"sequential: {seq_s:.1f} s; its error into frame {seam}: {seq[seam]:.4f} (median "
              f"{statistics.median(seq.values()):.4f})")  # fmt: skip
    ws = [int(w) for w in args.burn_in.split(",")] if args.burn_in else [burn_in_frames(args.blend)]
    ms = [int(m) for m in args.crossfade.split(",")]
    for w in ws:
        cli_motion.burn_in_frames = lambda _blend, w=w: w  # the W to try
        cli_motion.crossfade_frames = lambda burn_in: burn_in  # fade over all of it: every M
        out = tmp / f"chunks{w}"
        t = time.perf_counter()
        assert cli(["video", str(clip), "-o", str(out) + "/", *common, "--executor", "ray:2"]) == 0
        chunks_s = time.perf_counter() - t
        written = {k: rgb(out / f"frame_{k:06d}.png") for k in range(1, frames + 1)}
        a = {k: rgb(out / "crossfade" / f"frame_{k:06d}.png") for k in range(seam - w, seam)}
        b = {k: rgb(out / "burnin" / f"frame_{k:06d}.png") for k in range(seam - w, seam)}
        print(f"W={w} (A^W {args.blend**w:.4f}): {chunks_s:.1f} s incl. Ray start-up, burn-in "
              f"{w} extra frames ({w / frames * 100:.0f}% more work)")  # fmt: skip
        for m in (m for m in ms if m <= w):
            dreams = dict(written)
            for j in range(seam - w, seam):  # what a run with cross-fade M writes there
                i = j - (seam - 1 - m)
                dreams[j] = mix_dreams(a[j], b[j], fade_weight(i, m)) if i >= 1 else a[j]
            if m == w:  # the frames the run wrote
                assert all(np.array_equal(dreams[k], written[k]) for k in written)
            errs = warping_errors(dreams, sources)
            fade_steps = range(seam - m, seam + 1)
            inner = statistics.median(v for k, v in errs.items() if k not in fade_steps)
            ratio, worst = errs[seam] / inner, max(errs[k] for k in fade_steps) / inner
            print(f"  M={m}: seam {seam - 1}->{seam} {errs[seam]:.4f}, median inner "
                  f"{inner:.4f}, ratio {ratio:.3f}, worst step in the fade {worst:.3f} "
                  f"(within 10%: {max(worst, ratio) <= 1.10})")  # fmt: skip


if __name__ == "__main__":
    main()
