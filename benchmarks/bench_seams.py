"""The seam of a video dreamed in parallel chunks (``--blend A > 0 --executor ray:2``): the
warping error between the last frame of one chunk and the first of the next, against the error
between neighbouring frames inside the chunks (and the same frames of one sequential run).

Warping error of frame k: mean |D_k - warp(D_{k-1})| / 255, D the dreams and warp the optical
flow of the source from frame k-1 to frame k (motion.flow_warp), so what the scene's own motion
explains is not counted.

    PYTHONPATH=src python benchmarks/bench_seams.py [--seconds 2] [--blend 0.5] [--size 64x48]
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

from inceptionism import cli_motion
from inceptionism.cli import main as cli
from inceptionism.motion import burn_in_frames, flow_warp
from inceptionism.video import ffmpeg_exe, probe, read_frames


def warping_errors(folder: Path, sources: list[np.ndarray]) -> dict[int, float]:
    dreams = [np.asarray(Image.open(folder / f"frame_{k:06d}.png").convert("RGB"), np.float32)
              for k in range(1, len(sources) + 1)]  # fmt: skip
    return {
        k: float(np.abs(dreams[k - 1] - flow_warp(dreams[k - 2], sources[k - 2], sources[k - 1]))
                 .mean() / 255)
        for k in range(2, len(sources) + 1)
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--fps", type=int, default=12)
    ap.add_argument("--blend", type=float, default=0.5)
    ap.add_argument("--size", default="64x48")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--burn-in", default=None, help="W values to try, e.g. 7,14 (default: W(A))")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-seams-"))
    clip = tmp / "clip.mp4"
    frames = round(args.seconds * args.fps)
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size={args.size}:rate={args.fps}", "-frames:v", str(frames),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
    sources = list(read_frames(clip, probe(clip)))
    common = ["--blend", str(args.blend), "--steps", str(args.steps), "--octaves",
              str(args.octaves), "--model", "efficientnet_lite0", "-q"]  # fmt: skip
    t = time.perf_counter()
    assert cli(["video", str(clip), "-o", str(tmp / "sequential") + "/", *common]) == 0
    seq_s = time.perf_counter() - t
    seq = warping_errors(tmp / "sequential", sources)
    seam = (frames + 1) // 2 + 1  # 2 chunks: the second's first frame
    print(f"{frames} frames ({args.seconds:g} s at {args.fps} fps, {args.size}), --blend "
          f"{args.blend}, {args.steps} steps x {args.octaves} octaves; default W(A) = "
          f"{burn_in_frames(args.blend)}")  # fmt: skip
    print(f"sequential: {seq_s:.1f} s; its error at frame {seam}: {seq[seam]:.4f} (median "
          f"{statistics.median(seq.values()):.4f})")  # fmt: skip
    ws = [int(w) for w in args.burn_in.split(",")] if args.burn_in else [burn_in_frames(args.blend)]
    for w in ws:
        cli_motion.burn_in_frames = lambda _blend, w=w: w  # the W to try
        out = tmp / f"chunks{w}"
        t = time.perf_counter()
        assert cli(["video", str(clip), "-o", str(out) + "/", *common, "--executor", "ray:2"]) == 0
        chunks_s = time.perf_counter() - t
        chunked = warping_errors(out, sources)
        inner = statistics.median(v for k, v in chunked.items() if k != seam)
        ratio = chunked[seam] / inner
        print(f"W={w:3d} (A^W {args.blend**w:.4f}): seam {seam - 1}->{seam} {chunked[seam]:.4f}, "
              f"median inner {inner:.4f}, ratio {ratio:.3f} (within 10%: {ratio <= 1.10}); "
              f"2 chunks on ray:2 {chunks_s:.1f} s incl. Ray start-up, burn-in {w} extra "
              f"frames ({w / frames * 100:.0f}% more work)")  # fmt: skip


if __name__ == "__main__":
    main()
