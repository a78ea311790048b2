"""Local vs Ray executors on one machine: a batch of 16 photo jobs, dreamed in this process and on
a local Ray instance with 1 and 2 workers.

Reports the wall time of each run (jobs only, after start-up), the throughput ratio to local,
and the overheads a user pays for Ray: starting the instance, starting the workers (process +
model load), and per job the difference between the driver's wall time and the worker's own
dream time (recipe JSON out, pixels back, the write). Same pixels are checked.

    PYTHONPATH=src python benchmarks/bench_executors.py [--size 256] [--steps 10] [--jobs 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from inceptionism.engine.config import DreamConfig
from inceptionism.executors.base import LocalExecutor
from inceptionism.executors.ray import RayExecutor
from inceptionism.jobs.job import Job, photo_start
from inceptionism.jobs.run import RunContext
from inceptionism.models import get_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=96, help="photo side in pixels")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--octaves", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--model", default="efficientnet_lite0")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    tmp = Path(tempfile.mkdtemp(prefix="bench-executors-"))
    rng = np.random.default_rng(0)
    photos = []
    for k in range(args.jobs):
        p = tmp / "in" / f"p{k:02d}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (args.size, args.size, 3), np.uint8)).save(p)
        photos.append(p)
    config = DreamConfig(model=args.model, steps=args.steps, octaves=args.octaves)
    t = time.perf_counter()
    ctx = RunContext(get_model(args.model))
    load_s = time.perf_counter() - t

    def jobs(name: str) -> list[Job]:
        return [Job(config, photo_start(str(p)), tmp / name / p.name) for p in photos]

    print(f"{args.jobs} jobs of {args.size}x{args.size}, {args.steps} steps x {args.octaves} "
          f"octaves, {args.model}; {cores} cores (load average {os.getloadavg()[0]:.1f}: the "
          "machine is shared, numbers are noisy)")  # fmt: skip
    print(f"model load in the driver: {load_s:.2f} s")
    wall, median_job = {}, {}
    for threads in sorted({cores, 1}, reverse=True):  # one thread: what each of 2 workers has
        torch.set_num_threads(threads)
        t = time.perf_counter()
        local = LocalExecutor().run(jobs(f"local{threads}"), ctx)
        wall[threads] = time.perf_counter() - t
        median_job[threads] = statistics.median(d.seconds for d in local)
        rate = args.jobs / wall[threads] * 60
        print(f"local, {threads} thread(s): {wall[threads]:7.2f} s  {rate:6.1f} jobs/min  "
              f"(median job {median_job[threads]:.2f} s)")  # fmt: skip
    torch.set_num_threads(cores)
    local_s, per_job = wall[cores], median_job[cores]

    t = time.perf_counter()
    session = RayExecutor().open()  # one local instance; each executor below joins it
    connect_s = time.perf_counter() - t
    for workers in (1, 2):
        name = f"ray{workers}"
        executor = RayExecutor(workers=workers).open()
        t = time.perf_counter()
        executor.pool(ctx, args.jobs)
        start_s = time.perf_counter() - t
        t = time.perf_counter()
        done = executor.run(jobs(name), ctx)
        run_s = time.perf_counter() - t
        worker_s = sum(d.seconds for d in done)
        # driver wall time not spent dreaming, per job: shipping, queueing gaps, the write
        overhead = (run_s * workers - worker_s) / len(done)
        threads = executor.infos[0].threads
        same = all(  # against the local run with the workers' thread count
            np.array_equal(np.asarray(Image.open(tmp / f"local{threads}" / p.name)),
                           np.asarray(Image.open(tmp / name / p.name)))
            for p in photos
        )  # fmt: skip
        median = statistics.median(d.seconds for d in done)
        print(f"ray x{workers}:  {run_s:7.2f} s  {args.jobs / run_s * 60:6.1f} jobs/min  "
              f"ratio to local {local_s / run_s:4.2f}; workers start (process + model load) "
              f"{start_s:5.2f} s; median job on a worker {median:.2f} s; driver time per job "
              f"beyond the dream {overhead * 1000:6.1f} ms ({overhead / per_job * 100:4.1f}% of "
              f"a local job); {threads} thread(s) each, ratio to local with as many "
              f"{wall[threads] / run_s:4.2f}; same pixels as that run: {same}")  # fmt: skip
        executor.close()
    session.close()
    print(f"ray instance start-up: {connect_s:.2f} s (once per command)")


if __name__ == "__main__":
    main()
