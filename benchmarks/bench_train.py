"""Time per epoch of `inceptionism train` on the showcase set (200 pictures of 4 classes, 160 to
train and 40 held out, 224 px, batch 16), in fresh processes, with `--unfreeze 0` and `2`
interleaved over the rounds. Reports each epoch's wall seconds (from the command's own epoch
lines), the whole command's wall and CPU seconds (user + system of the child), and the load
average before and after each run, so a figure taken on busy cores says so.

    python benchmarks/bench_train.py [--rounds 2] [--epochs 3] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "docs"))

from train_showcase import make_pictures  # noqa: E402  (the showcase's own picture maker)

EPOCH = re.compile(r"^epoch (\d+)/\d+: .*held-out ([0-9.]+) .*, (\d+):(\d+)", re.M)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(pictures: Path, out: Path, unfreeze: int, epochs: int, threads: int | None) -> dict:
    cmd = [sys.executable, "-m", "inceptionism", "train", str(pictures), "-o", str(out),
           "--epochs", str(epochs), "--unfreeze", str(unfreeze), "--patience", str(epochs),
          ]  # fmt: skip
    env = dict(os.environ)
    if threads:
        env["INCEPTIONISM_THREADS"] = str(threads)
    before_load, before = load(), resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    epochs_seen = [(int(m[0]), float(m[1]), int(m[2]) * 60 + int(m[3]))
                   for m in EPOCH.findall(done.stderr)]  # fmt: skip
    return {"wall": wall, "cpu": cpu, "epochs": epochs_seen, "load": (before_load, load())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pictures = make_pictures(Path(tmp) / "pictures")
        print(f"cpu {os.cpu_count()} logical, python {sys.version.split()[0]}")
        for r in range(1, args.rounds + 1):
            for unfreeze in (0, 2):
                out = Path(tmp) / f"net-{r}-{unfreeze}.pt"
                res = run(pictures, out, unfreeze, args.epochs, args.threads)
                per_epoch = ", ".join(f"{s} s" for _, _, s in res["epochs"])
                accuracy = ", ".join(f"{a:.2f}" for _, a, _ in res["epochs"])
                print(f"round {r} --unfreeze {unfreeze}: epochs {per_epoch}; held-out "
                      f"{accuracy}; command {res['wall']:.1f} s wall, {res['cpu']:.1f} CPU-s; "
                      f"load {res['load'][0]} -> {res['load'][1]}")  # fmt: skip


if __name__ == "__main__":
    main()
