"""Thread settings side by side: how waiting OpenMP threads behave (the package default, which
spins briefly and then sleeps, against always sleeping and always spinning) and thread count,
on a quiet machine and beside busy neighbours, each job a fresh process.

    python benchmarks/bench_threads.py                 # InceptionV3-sized random net, 299x299
    python benchmarks/bench_threads.py --size 512 --rounds 3 --neighbours 1
    python benchmarks/bench_threads.py --waits default,passive,spin:3000,spin:100000

A wait setting is ``default`` (what ``import inceptionism`` sets), ``passive`` / ``active``
(``OMP_WAIT_POLICY``) or ``spin:N`` (``GOMP_SPINCOUNT=N``, libgomp's spin before sleeping).
A "neighbour" is a process this script starts that spins on one core (as another program
would); the dream's slowdown is its wall time beside the neighbours over its wall time alone.
Every job also reports the CPU seconds other processes used while it was timed (/proc/stat),
so a machine that was not quiet to begin with shows.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
sys.path.insert(0, str(HERE.parent))

from bench_vs_keras import Timed, _keep_memory  # noqa: E402


def job(spec: dict) -> dict:
    """One timed job: a few gradient steps of a random InceptionV3 (mixed4..mixed7)."""
    from inceptionism.ops.threads import configure_threads

    configure_threads(spec["threads"] or None)
    import torch

    from inceptionism.engine.ascent import objective_gradient
    from inceptionism.models import get_model
    from inceptionism.ops.objectives import Objective

    model = get_model("inception_v3", weights=spec["weights"])
    obj = Objective.parse("mixed4,mixed5,mixed6,mixed7")
    x = torch.rand(1, 3, spec["size"], spec["size"], generator=torch.Generator().manual_seed(0))
    try:  # the engine's loop shares the cores between steps (trees from before: nothing)
        from inceptionism.ops.threads import share_cores
    except ImportError:

        def share_cores():
            return None

    share_cores()  # as the engine does when a dream starts
    _keep_memory()  # and on an untiled level
    objective_gradient(model, x, obj)
    with Timed() as t:
        for _ in range(spec["steps"]):
            objective_gradient(model, x, obj)
            share_cores()
    n = spec["steps"]
    return {"wall": t.wall / n, "cpu": t.cpu / n, "others": t.others / n,
            "threads": torch.get_num_threads()}  # fmt: skip


def spinner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def wait_env(wait: str) -> dict:
    """The environment a wait setting stands for (the package default: none of the variables)."""
    if wait == "default":
        return {}
    if wait.startswith("spin:"):
        return {"GOMP_SPINCOUNT": wait.split(":", 1)[1]}
    return {"OMP_WAIT_POLICY": wait.upper()}


def run(spec: dict, wait: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARS}
    env.update(wait_env(wait), PYTHONPATH=str(SRC))
    out = subprocess.run([sys.executable, str(HERE), "--job", json.dumps(spec)], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, default=299)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--neighbours", type=int, default=1, help="spinning processes beside")
    ap.add_argument("--waits", default="default,passive,active", help="wait settings, see above")
    args = ap.parse_args()
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    import tempfile

    sys.path.insert(0, str(SRC))
    import torch

    from inceptionism.models import inception
    from inceptionism.models.blocks import init_random

    weights = Path(tempfile.mkdtemp()) / "inception_v3_random.pth"
    net = init_random(inception.build(), torch.Generator().manual_seed(0))
    torch.save(net.state_dict(), weights)
    rows: dict[tuple, list[dict]] = {}
    for _ in range(args.rounds):
        for busy in (0, args.neighbours):
            for threads in (0, 1):
                for policy in args.waits.split(","):
                    spec = {"threads": threads, "size": args.size, "steps": args.steps,
                            "weights": str(weights)}  # fmt: skip
                    spinners = [spinner() for _ in range(busy)]
                    time.sleep(0.5 if busy else 0)
                    try:
                        res = run(spec, policy)
                    finally:
                        for p in spinners:
                            p.kill()
                            p.wait()
                    rows.setdefault((busy, threads, policy), []).append(res)
                    print(f"neighbours={busy} threads={threads or 'all'} {policy:12s} "
                          f"wall {res['wall']:.3f}s cpu {res['cpu']:.3f}s "
                          f"others {res['others']:.2f} cpu-s/step", flush=True)  # fmt: skip
    print(
        f"\n| {args.size}x{args.size} step, s (median) | threads | quiet | "
        f"{args.neighbours} busy neighbour(s) | slowdown | others' CPU s/step quiet |"
    )
    print("|---|---|---|---|---|---|")
    for policy in args.waits.split(","):
        for threads in (0, 1):
            quiet = statistics.median(r["wall"] for r in rows[(0, threads, policy)])
            busy = statistics.median(r["wall"] for r in rows[(args.neighbours, threads, policy)])
            noise = max(r["others"] for r in rows[(0, threads, policy)])
            print(f"| {policy} | {threads or 'all'} | {quiet:.3f} | {busy:.3f} |"
                  f" {busy / quiet:.2f}x | {noise:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
