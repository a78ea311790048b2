"""Speed and memory of the dream engine, measured side by side in one run.

    python benchmarks/bench_dream.py            # all embedded models, 256x256, 512x512, 1024x768
    python benchmarks/bench_dream.py --quick    # lite0 at 256x256 only

Table 1: one gradient step (median of several) and one full dream with the default recipe
(4 octaves x 20 steps) per model and size, with peak resident memory. Each cell runs in its own
process so peak memory belongs to that cell alone.
Table 2: what each engine optimisation buys for one gradient step, as ratios to plain eager
PyTorch (weights with gradients, the whole network run, NCHW, BatchNorm separate).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

SIZES = {"256x256": (256, 256), "512x512": (512, 512), "1024x768": (768, 1024)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cell(model_name: str, size: str, repeats: int, full: bool) -> dict:
    """One (model, size) measurement; run in a child process."""
    from inceptionism import DreamConfig, dream_tensor, get_model
    from inceptionism.engine.ascent import objective_gradient
    from inceptionism.engine.loop import resolve_objective

    h, w = SIZES[size]
    model = get_model(model_name)
    config = DreamConfig(model=model_name)
    objective = resolve_objective(model, config)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    base_rss = _rss_mb()
    step = _median_time(lambda: objective_gradient(model, x, objective), repeats)
    dream_s = None
    if full:
        t = time.perf_counter()
        dream_tensor(x, model, config)
        dream_s = time.perf_counter() - t
    return {"step_s": step, "dream_s": dream_s, "peak_mb": _peak_mb(), "model_mb": base_rss}


def variants(model_name: str, size: str, repeats: int) -> list[tuple[str, float]]:
    """One gradient step under each optimisation, cumulatively, in one process."""
    from inceptionism import DreamConfig, get_model
    from inceptionism.engine.ascent import objective_gradient
    from inceptionism.engine.loop import resolve_objective

    h, w = SIZES[size]
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))

    def whole_net_step(model, objective, train_weights: bool) -> None:
        """A step without the engine's shortcuts: every layer runs, hooks grab activations;
        with ``train_weights`` the weights also get gradients, as in a naive implementation."""
        model.net.requires_grad_(train_weights)
        acts = {}
        handles = [
            model.net.get_submodule(model.layer(n).module).register_forward_hook(
                lambda _m, _i, o, n=n: acts.__setitem__(n, o)
            )
            for n in objective.layers
        ]
        try:
            xi = x.clone().requires_grad_(True)
            model.net(model.normalize(xi))
            objective(acts).backward()
            model.net.zero_grad(set_to_none=True)
        finally:
            for hd in handles:
                hd.remove()
            model.net.requires_grad_(False)

    plain = get_model(model_name, fuse=False, channels_last=False)
    objective = resolve_objective(plain, DreamConfig(model=model_name))
    rows = [
        (
            "plain eager: weight grads, whole net",
            _median_time(lambda: whole_net_step(plain, objective, True), repeats),
        ),
        (
            "+ frozen weights",
            _median_time(lambda: whole_net_step(plain, objective, False), repeats),
        ),
    ]
    rows.append(
        (
            "+ stop after deepest layer",
            _median_time(lambda: objective_gradient(plain, x, objective), repeats),
        )
    )
    cl = get_model(model_name, fuse=False, channels_last=True)
    rows.append(
        ("+ channels_last", _median_time(lambda: objective_gradient(cl, x, objective), repeats))
    )
    fused = get_model(model_name, fuse=True, channels_last=True)
    rows.append(
        (
            "+ BatchNorm folded (the engine)",
            _median_time(lambda: objective_gradient(fused, x, objective), repeats),
        )
    )
    return rows


def large(tile: int, limit_gb: float) -> dict:
    """A 4000x3000 photo, default recipe but one step per octave (peak memory does not grow
    with steps), tiled or not, under an address-space limit so an infeasible run fails cleanly."""
    if limit_gb > 0:
        cap = int(limit_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from PIL import Image

    from inceptionism import DreamConfig, dream_tensor, get_model
    from inceptionism.io.image import LoadedImage
    from inceptionism.io.samples import sample_path

    model = get_model("efficientnet_lite2")
    photo = Image.open(sample_path("sample:astronaut")).convert("RGB").resize((4000, 3000))
    x = LoadedImage.from_pil(photo).rgb
    del photo
    config = DreamConfig(steps=1, octaves=4, tile=tile)
    t = time.perf_counter()
    try:
        dream_tensor(x, model, config)
    except (RuntimeError, MemoryError) as e:
        return {"ok": False, "error": type(e).__name__, "peak_mb": _peak_mb()}
    return {"ok": True, "dream_s": time.perf_counter() - t, "peak_mb": _peak_mb()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _child(args: list[str], extra: list[str] = ()) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args, *extra],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--models", default="efficientnet_lite0,efficientnet_lite1,efficientnet_lite2"
    )
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-dream", action="store_true", help="time gradient steps only")
    parser.add_argument("--quick", action="store_true", help="lite0 at 256x256 only")
    parser.add_argument(
        "--large", action="store_true", help="only the 4000x3000 tiled vs untiled comparison"
    )
    parser.add_argument("--limit-gb", type=float, default=16.0, help="memory cap, --large runs")
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "MODEL", "SIZE", "REPEATS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.child:
        kind, model, size, repeats = args.child
        if kind == "large":
            print(json.dumps(large(int(model), float(size))))
        elif kind == "cell":
            print(json.dumps(cell(model, size, int(repeats), not args.no_dream)))
        else:
            print(json.dumps(variants(model, size, int(repeats))))
        return

    if args.large:
        _large_table(args.limit_gb)
        return
    models = ["efficientnet_lite0"] if args.quick else args.models.split(",")
    sizes = ["256x256"] if args.quick else args.sizes.split(",")
    print(f"# machine: {_cpu_name()}, {os.cpu_count()} cores, {platform.system()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print()
    print(
        "| model | size | gradient step | full dream (4 oct x 20 steps) | peak RSS | model loaded |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for model in models:
        for size in sizes:
            extra = ["--no-dream"] if args.no_dream else []
            r = _child(["cell", model, size, str(args.repeats)], extra)
            dream_s = f"{r['dream_s']:.1f} s" if r["dream_s"] is not None else "-"
            print(f"| {model} | {size} | {r['step_s'] * 1000:.0f} ms | {dream_s} | "
                  f"{r['peak_mb']:.0f} MB | {r['model_mb']:.0f} MB |")  # fmt: skip
    model, size = models[-1], ("512x512" if "512x512" in sizes else sizes[0])
    rows = _child(["variants", model, size, str(args.repeats)])
    base = rows[0][1]
    print()
    print(f"One gradient step, {model} at {size}, default layers:")
    print()
    print("| engine | time | vs plain eager |")
    print("|---|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t * 1000:.0f} ms | {base / t:.2f}x |")


def _large_table(limit_gb: float) -> None:
    print(f"# machine: {_cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}")
    print()
    print("4000x3000 photo, efficientnet_lite2, default recipe with 1 step per octave (4 octaves):")
    print()
    print("| gradient | dream time | peak RSS |")
    print("|---|---:|---:|")
    for tile, label in ((512, "tiles of 512"), (1024, "tiles of 1024"), (0, "untiled")):
        r = _child(["large", str(tile), str(limit_gb), "0"])
        if r["ok"]:
            print(f"| {label} | {r['dream_s']:.1f} s | {r['peak_mb']:.0f} MB |")
        else:
            print(f"| {label} | infeasible: {r['error']} under a {limit_gb:g} GB cap | "
                  f"{r['peak_mb']:.0f} MB when it failed |")  # fmt: skip


if __name__ == "__main__":
    main()
