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
    times = {}
    for name, extra in (("sequential", []), ("chunks", ["--executor", "ray:2"])):
        t = time.perf_counter()
        code = cli(["video", str(clip), "-o", str(tmp / name) + "/", *common, *extra])
        assert code == 0, name
        times[name] = time.perf_counter() - t
    w = burn_in_frames(args.blend)
    seam = (frames + 1) // 2 + 1  # 2 chunks: the second's first frame
    seq, chunked = warping_errors(tmp / "sequential", sources), warping_errors(tmp / "chunks",
                                                                               sources)  # fmt: skip
    inner = statistics.median(v for k, v in chunked.items() if k != seam)
    print(f"{frames} frames ({args.seconds:g} s at {args.fps} fps, {args.size}), --blend "
          f"{args.blend}, burn-in W={w} frames (the previous dream's weight ~{args.blend**w:.3f}),"
          f" {args.steps} steps x {args.octaves} octaves")  # fmt: skip
    print(f"seam (frame {seam - 1} -> {seam}): chunked {chunked[seam]:.4f}; median inner "
          f"neighbours {inner:.4f}; ratio {chunked[seam] / inner:.3f} (within 10%: "
          f"{abs(chunked[seam] / inner - 1) <= 0.10})")  # fmt: skip
    median = statistics.median(seq.values())
    print(f"sequential run, same frames: {seq[seam]:.4f} (median {median:.4f})")
    seq_s, chunks_s = times["sequential"], times["chunks"]
    extra = w / frames * 100
    print(f"wall: sequential {seq_s:.1f} s, 2 chunks on ray:2 {chunks_s:.1f} s (includes Ray "
          f"start-up; the burn-in is {w} extra frames, {extra:.0f}% more work here)")  # fmt: skip


if __name__ == "__main__":
    main()
