"""The engine against its peer: the Keras ``deep_dream.py`` loop on TensorFlow, same network, same
random weights, measured side by side in one run.

    pip install -e ".[bench,keras]"          # tensorflow-cpu for the Keras side
    python benchmarks/bench_vs_keras.py                  # the full table (about 15-25 minutes)
    python benchmarks/bench_vs_keras.py --quick          # 299x299 only, one round
    python benchmarks/bench_vs_keras.py --tf-python /path/to/venv-tf/bin/python

The Keras side is a transcription of keras-io's ``examples/generative/deep_dream.py``: an
InceptionV3 feature extractor, ``tf.function`` gradient step (retraced for each octave's shape,
as in the original), mean-|g| normalisation, 3 octaves x 1.4, 20 steps, lost photo detail put
back after each octave. Its loss uses the older keras/examples scaling (sum of squares inside a
2-pixel border over the whole activation's size), which is the engine's ``l2`` statistic; layers
are keras-io's mixed4..mixed7 with its weights 1, 1.5, 2, 2.5. ``max_loss`` is off on both sides
(random weights have no meaningful loss scale), so both run every step.

Weights: the Keras model is built with random weights (seeded, BatchNorm statistics away from 0
and 1), written as a legacy HDF5 weight file, and loaded by the engine through its own Keras
converter. Before anything is timed both sides compute the loss and input gradient of one image;
the run stops unless they agree (relative loss error < 1e-3, gradient cosine > 0.999).

Every measurement runs in a fresh process, jobs interleave (Keras, engine, Keras, ...) over
several rounds, and each reports its wall time, its own CPU seconds, its peak resident memory and
the CPU seconds other processes used meanwhile (from /proc/stat), so a busy machine shows.
FLOPs are counted once on the engine's graph (torch.utils.flop_counter, forward and the input
gradient) and used for both sides. Ceilings measured in the same run: a 3x3 convolution through
oneDNN and a square float32 matmul.

``--markdown FILE`` writes the tables as markdown; ``--readme README.md`` writes them into the
README's Performance section (between its two rules), and ``--from-results results.json``
re-renders a finished run's tables without measuring anything.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
SRC = HERE.parent.parent / "src"
LAYERS = {"mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5}  # keras-io's settings
SIZES = {"299x299": (299, 299), "512x512": (512, 512), "1024x768": (768, 1024)}  # (h, w)
STEP = 0.01  # in Keras's [-1, 1] pixels; 0.005 in the engine's [0, 1]
OCTAVES, OCTAVE_SCALE, ITERATIONS = 3, 1.4, 20
SEED = 7


# --- measuring one job (both sides) ------------------------------------------------------------


def _busy_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        parts = [int(v) for v in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts[:8]) - idle, sum(parts[:8])


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timed:
    """Wall time, own CPU seconds and other processes' CPU seconds over a region."""

    def __enter__(self) -> Timed:
        self.busy0, _ = _busy_jiffies()
        self.cpu0, self.t0 = _own_cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = _own_cpu() - self.cpu0
        busy1, _ = _busy_jiffies()
        hz = os.sysconf("SC_CLK_TCK")
        self.others = max(0.0, (busy1 - self.busy0) / hz - self.cpu)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _image(h: int, w: int):
    """The same smooth random picture on both sides, (h, w, 3) float32 in [0, 1]."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    small = rng.random((h // 16 + 2, w // 16 + 2, 3)).astype("float32")
    ys = np.linspace(0, small.shape[0] - 1.001, h)
    xs = np.linspace(0, small.shape[1] - 1.001, w)
    y0, x0 = ys.astype(int), xs.astype(int)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    a, b = small[y0][:, x0], small[y0][:, x0 + 1]
    c, d = small[y0 + 1][:, x0], small[y0 + 1][:, x0 + 1]
    img = (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy
    return np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1).astype("float32")


# --- the Keras side ----------------------------------------------------------------------------


def _keras_setup(threads: int):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return tf


def _keras_model(tf, weights: str):
    import keras

    model = keras.applications.InceptionV3(weights=None, include_top=False)
    model.load_weights(weights) if weights else None
    outputs = {name: model.get_layer(name).output for name in LAYERS}
    return keras.Model(inputs=model.inputs, outputs=outputs)


def _keras_fns(tf, extractor):
    def compute_loss(img):
        features = extractor(img)
        loss = tf.zeros(shape=())
        for name, act in features.items():
            scaling = tf.cast(tf.reduce_prod(tf.shape(act)), "float32")
            loss += LAYERS[name] * tf.reduce_sum(tf.square(act[:, 2:-2, 2:-2, :])) / scaling
        return loss

    @tf.function
    def gradient_ascent_step(img, learning_rate):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img)
        grads = tape.gradient(loss, img)
        grads /= tf.maximum(tf.reduce_mean(tf.abs(grads)), 1e-6)
        img += learning_rate * grads
        return loss, img

    @tf.function
    def loss_and_grad(img):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = compute_loss(img)
        return loss, tape.gradient(loss, img)

    return gradient_ascent_step, loss_and_grad


def keras_write_weights(path: str) -> dict:
    """Random InceptionV3 weights at sensible scales, written in Keras's legacy HDF5 layout."""
    import h5py
    import numpy as np

    tf = _keras_setup(0)
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(SEED)
    model = keras.applications.InceptionV3(weights=None, include_top=False)
    rng = np.random.default_rng(SEED)
    for layer in model.layers:
        values = []
        for w in layer.weights:
            shape, name = tuple(w.shape), w.path
            if "moving_variance" in name:
                values.append(rng.uniform(0.5, 2.0, shape))
            elif "moving_mean" in name or "beta" in name or "bias" in name:
                values.append(rng.normal(0, 0.1, shape))
            elif "gamma" in name:
                values.append(rng.uniform(0.5, 1.5, shape))
            else:
                fan_in = int(np.prod(shape[:-1]))
                values.append(rng.normal(0, (2 / fan_in) ** 0.5, shape))
        if values:
            layer.set_weights([v.astype("float32") for v in values])
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)
    return {"tf": tf.__version__, "keras": keras.__version__}


def keras_job(spec: dict) -> dict:
    import numpy as np

    tf = _keras_setup(spec["threads"])
    extractor = _keras_model(tf, spec["weights"])
    step_fn, loss_and_grad = _keras_fns(tf, extractor)
    h, w = SIZES[spec["size"]]
    photo = _image(h, w)[None] * 2 - 1  # inception preprocessing: [-1, 1]
    if spec["kind"] == "check":
        loss, g = loss_and_grad(tf.constant(photo))
        np.save(spec["out"], g.numpy()[0].transpose(2, 0, 1))
        return {"loss": float(loss)}
    base = _rss_mb()
    if spec["kind"] == "step":
        img = tf.constant(photo)
        _, img = step_fn(img, STEP)  # trace + warm-up
        with Timed() as t:
            for _ in range(spec["steps"]):
                _, img = step_fn(img, STEP)
            img.numpy()
        n = spec["steps"]
    else:  # the whole 3-octave dream, as in deep_dream.py
        with Timed() as t:
            original = tf.constant(photo)
            shapes = [(h, w)]
            for i in range(1, OCTAVES):
                shapes.append(tuple(int(d / OCTAVE_SCALE**i) for d in (h, w)))
            shapes = shapes[::-1]
            shrunk = tf.image.resize(original, shapes[0])
            img = tf.identity(original)
            for shape in shapes:
                img = tf.image.resize(img, shape)
                for _ in range(ITERATIONS):
                    _, img = step_fn(img, STEP)
                up = tf.image.resize(shrunk, shape)
                same = tf.image.resize(original, shape)
                img += same - up
                shrunk = tf.image.resize(original, shape)
            img.numpy()
        n = 1
    return _result(t, n, base)


def _result(t: Timed, n: int, base: float) -> dict:
    return {
        "wall": t.wall / n,
        "cpu": t.cpu / n,
        "others": t.others / n,
        "others_share": t.others / max(t.wall * os.cpu_count(), 1e-9),
        "peak_mb": _peak_mb(),
        "peak_over_model_mb": _peak_mb() - base,
    }


# --- the engine side ---------------------------------------------------------------------------


def _engine_setup(threads: int):
    try:
        from inceptionism.ops.threads import configure_threads
    except ImportError:  # an engine tree from before threads.py (--baseline-src)
        import torch

        torch.set_num_threads(threads or os.cpu_count())
    else:
        configure_threads(threads or None)
    import torch

    return torch


def _engine_config(precision: str = "fp32"):
    from inceptionism import DreamConfig

    layers = ",".join(f"{k}={v}" for k, v in LAYERS.items())
    extra = {"precision": precision} if precision != "fp32" else {}
    return DreamConfig(
        model="inception_v3", layers=layers, objective="l2", border=2, grad_norm="l1",
        step_size=STEP / 2, steps=ITERATIONS, octaves=OCTAVES, octave_scale=OCTAVE_SCALE,
        detail="photo", max_loss=None, jitter=0, clip=False, tile=0, **extra,
    )  # fmt: skip


def _reuse_options(ascent_step) -> dict:
    """The in-place options of the engine loop's step that this tree's ``ascent_step`` has
    (trees from before them, e.g. --baseline-src, take the plain step)."""
    known = inspect.signature(ascent_step).parameters
    return {k: True for k in ("reuse_gradient", "reuse_image") if k in known}


def _cos(a, b) -> float:
    import numpy as np

    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _keep_memory() -> None:
    """Freed buffers kept for reuse, as the engine's loop keeps them (trees before: nothing)."""
    try:
        from inceptionism.ops.threads import keep_freed_memory
    except ImportError:
        return
    keep_freed_memory(True)


def engine_job(spec: dict) -> dict:
    torch = _engine_setup(spec["threads"])
    import numpy as np

    from inceptionism import get_model
    from inceptionism.engine.ascent import ascent_step, objective_gradient
    from inceptionism.engine.loop import dream_tensor, resolve_objective

    precision = spec.get("precision", "fp32")
    model_name = spec.get("model", "inception_v3")
    if model_name == "inception_v3":
        model = get_model("inception_v3", weights=spec["weights"])
        config = _engine_config(precision)
    else:
        from inceptionism import DreamConfig

        model = get_model(model_name)
        config = DreamConfig(model=model_name, jitter=0, tile=0)
    if precision != "fp32":
        model = model.with_precision(precision)
    objective = resolve_objective(model, config)
    h, w = SIZES[spec["size"]]
    x = torch.from_numpy(_image(h, w)).permute(2, 0, 1)[None].contiguous()
    if spec["kind"] in ("check", "flops"):
        if spec["kind"] == "flops":  # float64 runs the reference ops the counter knows
            from torch.utils.flop_counter import FlopCounterMode

            model = model.double()
            with FlopCounterMode(display=False) as counter:
                objective_gradient(model, x.double(), objective, "l2", 2)
            return {"flops": counter.get_total_flops()}
        loss, g = objective_gradient(model, x, objective, "l2", 2)
        np.save(spec["out"], g[0].float().numpy())
        return {"loss": loss}
    base = _rss_mb()

    reuse = _reuse_options(ascent_step)  # the engine loop's step: updated in place

    def step(img):
        _, g = objective_gradient(model, img, objective, "l2", 2)
        return ascent_step(img, g, STEP / 2, "l1", False, **reuse)

    if spec["kind"] == "step":
        _keep_memory()  # as the engine does on an untiled level
        img = step(x)  # warm-up
        with Timed() as t:
            for _ in range(spec["steps"]):
                img = step(img)
        n = spec["steps"]
    else:
        with Timed() as t:
            dream_tensor(x, model, config)
        n = 1
    return _result(t, n, base)


# --- ceilings ----------------------------------------------------------------------------------


def ceiling_job(spec: dict) -> dict:
    """GFLOP per second of a 3x3 convolution through oneDNN and of a float32 matmul."""
    torch = _engine_setup(spec["threads"])
    x = torch.randn(1, 256, 96, 128).contiguous(memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).contiguous(memory_format=torch.channels_last)
    conv_flops = 2 * 256 * 256 * 9 * 96 * 128
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    mm_flops = 2 * 2048**3
    out = {}

    def conv():
        return torch.mkldnn_convolution(x, w, None, [1, 1], [1, 1], [1, 1], 1)

    for name, fn, flops in (("conv", conv, conv_flops), ("matmul", lambda: a @ b, mm_flops)):
        fn()
        with Timed() as t:
            for _ in range(5):
                fn()
        out[name] = flops * 5 / t.wall / 1e9
        out[name + "_others"] = t.others / 5
    return out


JOBS = {"keras": keras_job, "engine": engine_job, "ceiling": ceiling_job}


# --- the driver --------------------------------------------------------------------------------


def run_job(python: str, spec: dict, threads_env: int) -> dict:
    path = f"{spec.get('src', SRC)}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    env = dict(os.environ, PYTHONPATH=path)
    if threads_env:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads_env)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    proc = subprocess.run(
        [python, str(HERE), "--job", json.dumps(spec)], env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"job {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_equal(tf_python: str, weights: str, tmp: Path, bf16: bool = False) -> dict:
    import numpy as np

    common = {"weights": weights, "size": "299x299", "threads": 0, "kind": "check"}
    k = run_job(tf_python, {**common, "side": "keras", "out": str(tmp / "gk.npy")}, 0)
    e = run_job(sys.executable, {**common, "side": "engine", "out": str(tmp / "ge.npy")}, 0)
    gk, ge = np.load(tmp / "gk.npy").ravel() * 2.0, np.load(tmp / "ge.npy").ravel()  # d/d[0,1]
    cos = _cos(gk, ge)
    rel = abs(k["loss"] - e["loss"]) / abs(k["loss"])
    if not (rel < 1e-3 and cos > 0.999):
        raise SystemExit(f"the two sides differ: loss {k['loss']} vs {e['loss']}, cosine {cos}")
    out = {"keras_loss": k["loss"], "engine_loss": e["loss"], "loss_rel": rel, "cosine": cos}
    if bf16:  # how far reduced precision turns the gradient from float32's
        spec = {**common, "side": "engine", "out": str(tmp / "gb.npy"), "precision": "bf16"}
        run_job(sys.executable, spec, 0)
        gb = np.load(tmp / "gb.npy").ravel()
        out["bf16_cosine"] = _cos(gb, ge)
    return out


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--job", help=argparse.SUPPRESS)
    ap.add_argument(
        "--tf-python",
        default=os.environ.get("TF_PYTHON", sys.executable),
        help="a Python with tensorflow-cpu (default: this one, or $TF_PYTHON)",
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=4, help="timed steps per step job")
    ap.add_argument("--sizes", default="299x299,512x512,1024x768")
    ap.add_argument("--dream-sizes", default="1024x768", help="sizes for the full dream")
    ap.add_argument("--threads", default="1,0", help="thread counts; 0 = all cores")
    ap.add_argument("--bf16", action="store_true", help="also time the engine with bf16")
    ap.add_argument("--baseline-src", help="also time another engine tree (its src/ folder)")
    ap.add_argument("--quick", action="store_true", help="299x299, one round, no full dream")
    ap.add_argument("--markdown", help="write the tables to this file")
    ap.add_argument("--readme", help="put the tables into this README's Performance section")
    ap.add_argument("--from-results", help="no measuring: the tables of a run's results.json")
    args = ap.parse_args()
    if args.job:
        spec = json.loads(args.job)
        print(json.dumps(JOBS[spec["side"]](spec)))
        return
    if args.from_results:
        md = report_from_results(json.loads(Path(args.from_results).read_text()))
        print(md)
        write_tables(args, md)
        return
    if args.quick:
        args.rounds, args.sizes, args.dream_sizes = 1, "299x299", ""
    sizes = [s for s in args.sizes.split(",") if s]
    dream_sizes = [s for s in args.dream_sizes.split(",") if s]
    thread_counts = [int(t) for t in args.threads.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench_vs_keras_"))
    weights = str(tmp / "inception_v3_random.h5")
    versions = run_job(args.tf_python, {"side": "keras_weights", "out": weights}, 0)
    check = check_equal(args.tf_python, weights, tmp, args.bf16)
    print(f"same network: loss {check['keras_loss']:.6g} (Keras) vs {check['engine_loss']:.6g} "
          f"(engine), input-gradient cosine {check['cosine']:.6f}", flush=True)  # fmt: skip

    engines = [("engine", sys.executable, {}, str(SRC))]
    if args.bf16:
        engines.append(("engine bf16", sys.executable, {"precision": "bf16"}, str(SRC)))
    if args.baseline_src:
        engines.append(("baseline", sys.executable, {}, args.baseline_src))
    results: dict[tuple, list[dict]] = {}
    flops = {}
    for size in dict.fromkeys(sizes + dream_sizes):
        flops[size] = run_job(
            sys.executable, {"side": "engine", "kind": "flops", "size": size, "threads": 0,
                             "weights": weights}, 0)["flops"]  # fmt: skip
    ceilings: dict[int, list[dict]] = {}
    for r in range(args.rounds):
        for threads in thread_counts:
            ceil = run_job(sys.executable, {"side": "ceiling", "threads": threads}, threads)
            ceilings.setdefault(threads, []).append(ceil)
            print(f"round {r + 1} ceilings threads={threads or 'all'}: conv {ceil['conv']:.0f}, "
                  f"matmul {ceil['matmul']:.0f} GFLOP/s", flush=True)  # fmt: skip
            plan = [(kind, size) for size in sizes for kind in ("step",)]
            plan += [("dream", size) for size in dream_sizes]
            for kind, size in plan:
                sides = [("keras", args.tf_python, {}, str(SRC)), *engines]
                if r % 2:
                    sides = sides[::-1]  # alternate who goes first
                for label, python, extra, src in sides:
                    spec = {"side": "keras" if label == "keras" else "engine", "kind": kind,
                            "size": size, "threads": threads, "weights": weights,
                            "steps": args.steps, "src": src, **extra}  # fmt: skip
                    res = run_job(python, spec, threads)
                    results.setdefault((kind, size, threads, label), []).append(res)
                    print(f"round {r + 1} {label:12s} {kind:5s} {size:9s} "
                          f"threads={threads or 'all'} wall {res['wall']:.3f}s "
                          f"cpu {res['cpu']:.3f}s others "
                          f"{100 * res['others_share']:.0f}% peak {res['peak_mb']:.0f} MB",
                          flush=True)  # fmt: skip
    # Lite2, the default model: GFLOP per CPU-second of one step at 1024x768, one thread
    lite = {}
    for label, _, _extra, src in engines:
        if label == "engine bf16":
            continue
        spec = {"side": "engine", "kind": "step", "size": "1024x768", "threads": 1,
                "model": "efficientnet_lite2", "steps": args.steps, "src": src}  # fmt: skip
        lite[label] = [run_job(sys.executable, spec, 1) for _ in range(max(1, args.rounds - 1))]
    lite_flops = run_job(
        sys.executable, {"side": "engine", "kind": "flops", "size": "1024x768", "threads": 0,
                         "model": "efficientnet_lite2"}, 0)["flops"]  # fmt: skip
    raw = {"args": {"rounds": args.rounds, "sizes": sizes, "dream_sizes": dream_sizes,
                    "threads": thread_counts, "engines": [e[0] for e in engines]},
           "check": check, "versions": versions, "flops": flops, "lite_flops": lite_flops,
           "ceilings": {str(k): v for k, v in ceilings.items()}, "lite": lite,
           "results": [[list(k), v] for k, v in results.items()]}  # fmt: skip
    (tmp / "results.json").write_text(json.dumps(raw))
    print(f"raw results: {tmp / 'results.json'}", flush=True)
    md = report(args, check, versions, flops, ceilings, results, engines, sizes, dream_sizes,
                thread_counts, lite, lite_flops)  # fmt: skip
    print("\n" + md)
    write_tables(args, md)


def write_tables(args, md: str) -> None:
    if args.markdown:
        Path(args.markdown).write_text(md)
    if args.readme:
        readme = Path(args.readme)
        readme.write_text(replace_section(readme.read_text(), md))


def replace_section(text: str, md: str) -> str:
    """``text`` with what lies between the first two ``---`` rules after its "## Performance"
    heading replaced by ``md``."""
    head = text.index("\n## Performance")
    start = text.index("\n---\n", head) + len("\n---\n")
    end = text.index("\n---\n", start)
    return text[:start] + "\n" + md + text[end:]


def report_from_results(raw: dict) -> str:
    """The tables of a finished run, from its results.json."""
    results = {tuple(k): v for k, v in raw["results"]}
    saved = raw.get("args", {})
    keys = list(results)
    sizes = saved.get("sizes") or list(dict.fromkeys(k[1] for k in keys if k[0] == "step"))
    dream_sizes = saved.get("dream_sizes") or list(
        dict.fromkeys(k[1] for k in keys if k[0] == "dream")
    )
    threads = saved.get("threads") or list(dict.fromkeys(k[2] for k in keys))
    labels = saved.get("engines") or list(dict.fromkeys(k[3] for k in keys if k[3] != "keras"))
    rounds = saved.get("rounds") or max(len(v) for v in results.values())
    ceilings = {int(k): v for k, v in raw["ceilings"].items()}
    args = argparse.Namespace(rounds=rounds)
    engines = [(label, None, {}, None) for label in labels]
    return report(args, raw["check"], raw["versions"], raw["flops"], ceilings, results, engines,
                  sizes, dream_sizes, threads, raw["lite"], raw["lite_flops"])  # fmt: skip


def report(args, check, versions, flops, ceilings, results, engines, sizes, dream_sizes,
           thread_counts, lite, lite_flops) -> str:  # fmt: skip
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    lines = [
        f"Generated by `benchmarks/bench_vs_keras.py` ({args.rounds} rounds, medians; "
        f"{os.cpu_count()} cores, {cpu}; TensorFlow {versions['tf']}, Keras {versions['keras']}).",
        f"Same random InceptionV3 on both sides: loss agrees to {check['loss_rel']:.1e}, input "
        f"gradient cosine {check['cosine']:.6f}. Layers mixed4..mixed7 (keras-io weights), "
        "one step = forward to mixed7, input gradient, normalise, update."
        + (
            f" With `--precision bf16` the engine's input gradient has cosine "
            f"{check['bf16_cosine']:.4f} to its float32 one (299x299)."
            if "bf16_cosine" in check
            else ""
        ),  # fmt: skip
        "",
        "| job | size | threads | Keras s | engine s | Keras/engine | engine GFLOP/s | Keras "
        "GFLOP/s | conv / matmul ceiling | engine peak MB | Keras peak MB | others' CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for threads in thread_counts:
        ceil = ceilings[threads]
        conv, mm = median(ceil, "conv"), median(ceil, "matmul")
        for kind, group in (("step", sizes), ("dream", dream_sizes)):
            for size in group:
                k = results[(kind, size, threads, "keras")]
                for label, *_ in engines:
                    e = results[(kind, size, threads, label)]
                    key = "cpu" if threads == 1 else "wall"
                    ks, es = median(k, key), median(e, key)
                    f = flops[size] * (ITERATIONS * _pixel_share(size) if kind == "dream" else 1)
                    others = max(r["others_share"] for r in k + e)
                    name = f"{kind} ({label})" if label != "engine" else kind
                    lines.append(
                        f"| {name} | {size} | {threads or 'all'} | {ks:.3f} | {es:.3f} | "
                        f"**{ks / es:.2f}x** | {f / es / 1e9:.0f} | {f / ks / 1e9:.0f} | "
                        f"{conv:.0f} / {mm:.0f} | {median(e, 'peak_mb'):.0f} | "
                        f"{median(k, 'peak_mb'):.0f} | {100 * others:.0f}% |"
                    )  # fmt: skip
    lines += [
        "",
        "Seconds are CPU seconds with one thread, wall seconds with all cores; a dream is "
        f"{OCTAVES} octaves x {ITERATIONS} steps. GFLOP counts the engine's graph (forward and "
        "input gradient) for both sides. *others' CPU*: the largest share of the machine other "
        "processes used during any timed region of that row (0% = a quiet machine).",
        "",
        "| default model (efficientnet_lite2), one step at 1024x768, one thread | CPU s | "
        "GFLOP per CPU-second |",
        "|---|---|---|",
    ]
    for label, rows in lite.items():
        s = median(rows, "cpu")
        lines.append(f"| {label} | {s:.3f} | {lite_flops / s / 1e9:.1f} |")
    return "\n".join(lines) + "\n"


def _pixel_share(size: str) -> float:
    """Total pixels of a dream's octaves over the full size's pixels."""
    h, w = SIZES[size]
    shapes = [(h, w)] + [tuple(int(d / OCTAVE_SCALE**i) for d in (h, w)) for i in range(1, OCTAVES)]
    return sum(a * b for a, b in shapes) / (h * w)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--job" and '"keras_weights"' in sys.argv[2]:
        spec = json.loads(sys.argv[2])
        print(json.dumps(keras_write_weights(spec["out"])))
    else:
        main()
