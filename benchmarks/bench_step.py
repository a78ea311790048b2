"""One gradient step, variants side by side: this tree against another engine tree
(``--baseline-src``, e.g. a ``git archive`` of an older commit) and with PyTorch's transparent
huge pages (``THP_MEM_ALLOC_ENABLE=1``: 10x fewer page faults per step, no CPU time saved that
the busy machine here could show, so not the default), each job a fresh process, jobs
interleaved over rounds.

    python benchmarks/bench_step.py                                # both models, 1024x768
    python benchmarks/bench_step.py --baseline-src /tmp/base/src --models inception_v3

Reports CPU seconds per step (one thread unless ``--threads``), the minor page faults per step
and the CPU seconds other processes used meanwhile, so a busy machine shows. The minimum over
rounds is the least disturbed figure on a shared machine; the median is printed beside it.
InceptionV3 has random weights (mixed4..mixed7, the Keras benchmark's objective), Lite2 its
packaged ones (its default layers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
sys.path.insert(0, str(HERE.parent))

from bench_vs_keras import (  # noqa: E402
    SIZES,
    Timed,
    _engine_setup,
    _image,
    _keep_memory,
    _reuse_options,
)


def job(spec: dict) -> dict:
    torch = _engine_setup(spec["threads"])

    from inceptionism import DreamConfig, get_model
    from inceptionism.engine.ascent import ascent_step, objective_gradient
    from inceptionism.engine.loop import resolve_objective

    if spec["model"] == "inception_v3":
        from inceptionism.models import get_spec
        from inceptionism.models.blocks import init_random
        from inceptionism.models.fuse import fold_batchnorm
        from inceptionism.models.registry import DreamModel, LayerInfo

        model_spec = get_spec("inception_v3")
        net = model_spec.build(aux_logits=False, head=False, keras_pooling=True)
        init_random(net, torch.Generator().manual_seed(0))
        fold_batchnorm(net, net.conv_bn_pairs())
        rows = [r if isinstance(r, LayerInfo) else LayerInfo(*r) for r in net.layer_table()]
        model = DreamModel(model_spec, net, rows)
        config = DreamConfig(model="inception_v3", layers="mixed4,mixed5=1.5,mixed6=2,mixed7=2.5")
    else:
        model = get_model(spec["model"])
        config = DreamConfig(model=spec["model"])
    objective = resolve_objective(model, config)
    h, w = SIZES[spec["size"]]
    x = torch.from_numpy(_image(h, w)).permute(2, 0, 1)[None].contiguous()

    reuse = _reuse_options(ascent_step)  # the engine loop's step: updated in place

    def step(img):
        _, g = objective_gradient(model, img, objective, "l2", 2)
        return ascent_step(img, g, 0.005, "l1", False, **reuse)

    _keep_memory()  # as the engine does on an untiled level
    img = step(x)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with Timed() as t:
        for _ in range(spec["steps"]):
            img = step(img)
    n = spec["steps"]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"cpu": t.cpu / n, "wall": t.wall / n, "faults": faults / n,
            "others": t.others / max(t.wall * os.cpu_count(), 1e-9)}  # fmt: skip


def run(spec: dict, src: str, env_extra: dict) -> dict:
    env = dict(os.environ, PYTHONPATH=src, **env_extra)
    env.setdefault("OMP_NUM_THREADS", str(spec["threads"]))
    out = subprocess.run([sys.executable, str(HERE), "--job", json.dumps(spec)], env=env,
                         capture_output=True, text=True)  # fmt: skip
    if out.returncode:
        raise SystemExit(f"job {spec} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument("--models", default="inception_v3,efficientnet_lite2")
    ap.add_argument("--size", default="1024x768", choices=sorted(SIZES))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline-src", help="another engine tree's src/ folder")
    ap.add_argument("--no-pages", action="store_true", help="skip the huge pages variant")
    args = ap.parse_args()
    if args.job:
        print(json.dumps(job(json.loads(args.job))))
        return
    variants = [("this tree", str(SRC), {})]
    if not args.no_pages:
        variants.append(("huge pages", str(SRC), {"THP_MEM_ALLOC_ENABLE": "1"}))
    if args.baseline_src:
        variants.append(("baseline", args.baseline_src, {}))
    results: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.rounds):
        for model in args.models.split(","):
            order = variants if r % 2 == 0 else variants[::-1]
            for label, src, env in order:
                spec = {"model": model, "size": args.size, "threads": args.threads,
                        "steps": args.steps}  # fmt: skip
                res = run(spec, src, env)
                results.setdefault((model, label), []).append(res)
                print(f"round {r + 1} {model} {label}: cpu {res['cpu']:.3f}s wall "
                      f"{res['wall']:.3f}s faults {res['faults']:.0f} others "
                      f"{100 * res['others']:.0f}%", flush=True)  # fmt: skip
    print(f"\n{args.size}, {args.threads} thread(s), {args.rounds} rounds x {args.steps} steps")
    print("| model | variant | CPU s/step min | median | vs this tree (min) | faults/step | "
          "others' CPU (max) |\n|---|---|---|---|---|---|---|")  # fmt: skip
    for model in args.models.split(","):
        base = min(r["cpu"] for r in results[(model, variants[0][0])])
        for label, *_ in variants:
            rows = results[(model, label)]
            best = min(r["cpu"] for r in rows)
            print(f"| {model} | {label} | {best:.3f} | "
                  f"{statistics.median(r['cpu'] for r in rows):.3f} | {best / base:.2f}x | "
                  f"{statistics.median(r['faults'] for r in rows):.0f} | "
                  f"{100 * max(r['others'] for r in rows):.0f}% |")  # fmt: skip


if __name__ == "__main__":
    main()
