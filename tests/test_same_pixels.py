"""Same recipe, same pixels: whatever the thread count, a change of it mid-dream, the load or
the executor (on one CPU family and torch build).

Sizes here are chosen above PyTorch's 32,768-element grain, where its reductions and some of
its kernels start to split work by thread (below it everything runs on one thread and the
tests would pass on any code).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from inceptionism.engine.config import PRESETS, DreamConfig
from inceptionism.engine.loop import dream_tensor
from inceptionism.io.image import read_recipe
from inceptionism.models import get_model, get_spec
from inceptionism.models.blocks import init_random
from inceptionism.models.fuse import conv_input_grad
from inceptionism.ops.numerics import (
    environment,
    environment_difference,
    fixed_abs_mean,
    fixed_std,
    fixed_sum,
    onednn_isa,
)
from inceptionism.ops.objectives import Objective
from inceptionism.ops.octaves import resize
from inceptionism.ops.thread_probe import record_ops, thread_dependent

THREADS = (1, 2, 3, 4)


def at_threads(n: int, fn, *args, **kwargs):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# --- the harness and the fixed-order reductions ----------------------------------------------


def test_probe_finds_a_thread_dependent_sum_and_passes_the_fixed_one():
    x = torch.randn(1_000_003, generator=torch.Generator().manual_seed(0))
    found = thread_dependent(record_ops(lambda: x.sum()), threads=(2, 3, 4))
    assert [f.name for f in found] == ["aten.sum.default"]  # the harness can fail
    assert thread_dependent(record_ops(lambda: fixed_sum(x)), threads=(2, 3, 4)) == []


@pytest.mark.parametrize("n", [1, 8191, 8192, 100_000, 1_000_003, 3_000_000])
def test_fixed_reductions_are_thread_invariant_and_close_to_torchs(n):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=g) * 3 + 1
    for fn, ref in (
        (fixed_sum, lambda t: t.double().sum()),
        (fixed_abs_mean, lambda t: t.double().abs().mean()),
        (fixed_std, lambda t: t.double().std(correction=0)),
    ):
        results = [at_threads(t, fn, x) for t in THREADS]
        assert all(torch.equal(results[0], r) for r in results[1:]), fn.__name__
        assert float(results[0]) == pytest.approx(float(ref(x)), rel=1e-5, abs=1e-3)


def test_fixed_sum_reads_channels_last_and_strided_tensors_and_differentiates():
    x = torch.randn(1, 40, 60, 70).contiguous(memory_format=torch.channels_last)
    assert float(fixed_sum(x)) == pytest.approx(float(x.double().sum()), abs=1e-2)
    part = x[..., 2:-2, 3:-3]
    assert float(fixed_sum(part)) == pytest.approx(float(part.double().sum()), abs=1e-2)
    y = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fixed_sum(y.square()), y)
    assert torch.allclose(g, 2 * x)


def test_resize_matches_interpolate_and_is_thread_invariant():
    x = torch.rand(1, 3, 190, 230, generator=torch.Generator().manual_seed(0))
    for mode, corners in (("corners", True), ("half-pixel", False)):
        for shape in ((136, 164), (271, 329), (1, 1), (190, 231)):
            ref = torch.nn.functional.interpolate(
                x.double(), size=shape, mode="bilinear", align_corners=corners
            )
            out = resize(x, shape, mode)
            assert (out.double() - ref).abs().max() < 1e-6
            assert all(torch.equal(out, at_threads(n, resize, x, shape, mode)) for n in THREADS)


@pytest.mark.parametrize(
    "cin,cout,k,stride,pad,groups,h,w",
    [(3, 64, 7, 2, 3, 1, 33, 40), (16, 24, 3, 2, 1, 1, 20, 21), (8, 8, 3, 2, 1, 8, 17, 16),
     (4, 6, 1, 2, 0, 1, 9, 10), (4, 6, 3, 2, 0, 2, 11, 10), (5, 7, 5, 3, 2, 1, 13, 14),
     (3, 8, 3, 2, 1, 1, 1, 1), (64, 64, 3, 1, 1, 1, 3, 3), (6, 10, 7, 1, 3, 2, 20, 19),
     (8, 8, 1, 1, 0, 1, 5, 6), (4, 4, 5, 1, 1, 1, 9, 9)],
)  # fmt: skip
def test_conv_input_gradient_equals_autograds(cin, cout, k, stride, pad, groups, h, w):
    gen = torch.Generator().manual_seed(cin * 100 + k)
    x = torch.randn(1, cin, h, w, dtype=torch.float64, generator=gen, requires_grad=True)
    weight = torch.randn(cout, cin // groups, k, k, dtype=torch.float64, generator=gen)
    y = torch.nn.functional.conv2d(x, weight, None, stride, pad, 1, groups)
    g = torch.randn(y.shape, dtype=torch.float64, generator=gen)
    (ref,) = torch.autograd.grad(y, x, g)
    g32 = g.float().contiguous(memory_format=torch.channels_last)
    ours = conv_input_grad(g32, weight.float(), [stride] * 2, [pad] * 2, groups, x.float())
    scale = float(ref.abs().max()) or 1.0
    assert (ours.double() - ref).abs().max() / scale < 1e-5
    assert all(
        torch.equal(ours, at_threads(n, conv_input_grad, g32, weight.float(), [stride] * 2,
                                     [pad] * 2, groups, x.float()))
        for n in THREADS
    )  # fmt: skip


# --- every op of a step, every model family ---------------------------------------------------


@pytest.fixture(scope="module")
def zoo_models(tmp_path_factory):
    """The canonical architectures with random weights (what a torchvision file holds), built
    the way get_model builds them (folded, channels-last)."""
    folder = tmp_path_factory.mktemp("weights")
    models = {}

    def get(name: str):
        if name not in models:
            path = folder / f"{name}.pth"
            net = init_random(get_spec(name).build(), torch.Generator().manual_seed(0))
            torch.save(net.state_dict(), path)
            models[name] = get_model(name, weights=path)
        return models[name]

    return get


def one_step(model, x: torch.Tensor, grad_norm: str, tile: int = 0):
    from inceptionism.engine.ascent import ascent_step, objective_gradient
    from inceptionism.ops.gradients import gaussian_blur, with_tv_penalty

    objective = Objective.of(model.spec.default_layers)
    loss, g = objective_gradient(model, x, objective, "l2", 2, (3, -5), tile, 32, x.shape[-2:])
    g = with_tv_penalty(gaussian_blur(g, 1.0), x, 0.1)
    return loss, ascent_step(x.clone(), g, 0.01, grad_norm, True)


@pytest.mark.parametrize(
    "name,grad_norm,side",
    [("efficientnet_lite0", "l1", 230), ("efficientnet_lite2", "laplacian", 230),
     ("googlenet", "std", 230), ("inception_v3", "laplacian-tf1", 230), ("resnet50", "l1", 230),
     # small maps: oneDNN's backward of a 3x3 convolution on a 3x3 map, and its forward with
     # more padding than half the kernel, followed the thread count
     ("resnet50", "l1", 48), ("inception_v3", "std", 48)],
)  # fmt: skip
def test_no_op_of_a_step_depends_on_the_thread_count(name, grad_norm, side, lite0, zoo_models):
    if name == "efficientnet_lite0":
        model = lite0
    else:  # the embedded Lite2, or a canonical architecture with random weights
        model = get_model(name) if name.startswith("efficientnet") else zoo_models(name)
    x = torch.rand(1, 3, side, side + 20, generator=torch.Generator().manual_seed(1))
    ops = record_ops(lambda: one_step(model, x, grad_norm))
    assert len(ops) > 100  # forward and backward were recorded
    assert thread_dependent(ops, threads=(2, 3, 4)) == []


# --- whole dreams ----------------------------------------------------------------------------


class SwitchingThreads:
    """Loop hooks that change the thread count after every step (1, 2, 3, 4, 1, ...), where
    the job runner's policy would follow the load."""

    def __init__(self) -> None:
        self.counts = itertools.cycle(THREADS)

    def level(self, tiled: bool) -> None:
        pass

    def step(self) -> None:
        torch.set_num_threads(next(self.counts))

    def end(self) -> None:
        pass


def switching_dream(monkeypatch, *args, **kwargs):
    """A dream whose thread count changes between every two steps."""
    before = torch.get_num_threads()
    try:
        return dream_tensor(*args, hooks=SwitchingThreads(), **kwargs)
    finally:
        torch.set_num_threads(before)


DREAMS = {
    "l1": {},
    "std": {"grad_norm": "std"},
    "laplacian": {"grad_norm": "laplacian"},
    "laplacian-tf1": {"grad_norm": "laplacian-tf1", "detail": "none", "octave_resize": "tf1"},
    "smooth-tv-keep-colors": {"smooth": 1.0, "tv": 0.2, "keep_colors": True},
    "tiled": {"tile": 96, "tile_overlap": 32},
    "photo-detail-half-pixel": {"detail": "photo", "octave_resize": "half-pixel"},
    "mean-channels": {"objective": "mean", "layers": "block9:3+5,block12:7@3,2"},
}


@pytest.mark.parametrize("case", list(DREAMS))
def test_dream_is_identical_at_any_thread_count_and_schedule(case, lite0, monkeypatch):
    config = DreamConfig(model="efficientnet_lite0", steps=3, octaves=2, **DREAMS[case])
    x = torch.rand(1, 3, 170, 200, generator=torch.Generator().manual_seed(2))
    ref = at_threads(1, dream_tensor, x, lite0, config)
    for n in (2, 3):
        assert torch.equal(at_threads(n, dream_tensor, x, lite0, config), ref), n
    assert torch.equal(switching_dream(monkeypatch, x, lite0, config), ref)


def test_guided_and_masked_dreams_are_identical_at_any_thread_count(lite0, monkeypatch):
    gen = torch.Generator().manual_seed(3)
    x, guide = torch.rand(1, 3, 170, 200, generator=gen), torch.rand(1, 3, 150, 160, generator=gen)
    mask = torch.rand(1, 1, 170, 200, generator=gen)
    guided = DreamConfig(model="efficientnet_lite0", steps=3, octaves=2, objective="guide")
    plain = DreamConfig(model="efficientnet_lite0", steps=3, octaves=2)
    for config, kw in ((guided, {"guide": guide}), (plain, {"mask": mask})):
        ref = at_threads(1, dream_tensor, x, lite0, config, **kw)
        assert torch.equal(at_threads(3, dream_tensor, x, lite0, config, **kw), ref)
        assert torch.equal(switching_dream(monkeypatch, x, lite0, config, **kw), ref)


@pytest.mark.parametrize("name", ["googlenet", "resnet50", "inception_v3"])
def test_zoo_dream_is_identical_at_any_thread_count(name, zoo_models, monkeypatch):
    model = zoo_models(name)
    config = DreamConfig(model=name, steps=2, octaves=2, tile=128, tile_overlap=32)
    x = torch.rand(1, 3, 200, 230, generator=torch.Generator().manual_seed(4))
    ref = at_threads(1, dream_tensor, x, model, config)
    assert torch.equal(at_threads(2, dream_tensor, x, model, config), ref)
    assert torch.equal(switching_dream(monkeypatch, x, model, config), ref)


def test_lucid_render_is_identical_at_any_thread_count(lite0):
    from inceptionism.featurevis.render import FeatureVisConfig, render

    config = FeatureVisConfig(size=160, steps=3, batch=2, diversity=0.5)
    ref = at_threads(1, render, lite0, ["block10:3", "block12:5"], config)
    assert torch.equal(at_threads(2, render, lite0, ["block10:3", "block12:5"], config), ref)
    assert torch.equal(at_threads(3, render, lite0, ["block10:3", "block12:5"], config), ref)


# --- the command line: threads, load, replay, zoom, video ---------------------------------------

SMALL = ["--model", "lite0", "--steps", "3", "--octaves", "2", "-q"]


@pytest.mark.parametrize("tile", ["0", "96"])
def test_cli_dream_at_one_and_two_threads_is_identical_and_replays(tile, run_cli, tmp_path):
    args = [
        "dream",
        "sample:coffee",
        "--max-size",
        "200",
        "--tile",
        tile,
        "--tile-overlap",
        "32",
        *SMALL,
    ]
    for n in ("1", "2"):
        r = run_cli(*args, "--threads", n, "-o", tmp_path / f"t{n}.png")
        assert r.code == 0, r.err
    assert np.array_equal(pixels(tmp_path / "t1.png"), pixels(tmp_path / "t2.png"))
    torch.set_num_threads(2)
    r = run_cli("replay", tmp_path / "t2.png", "--threads", "1", "-o", tmp_path / "r.png", "-q")
    assert r.code == 0 and r.err == "", r.err  # same environment: no note
    assert torch.get_num_threads() == 1  # the replay ran at the count asked for
    assert np.array_equal(pixels(tmp_path / "r.png"), pixels(tmp_path / "t1.png"))


BUSY = "import time\nend = time.time() + 120\nwhile time.time() < end: pass\n"


@pytest.mark.slow
def test_dream_beside_busy_processes_equals_the_quiet_one(tmp_path):
    """Default threads (they follow the load between steps) with two processes spinning on the
    cores, against one fixed thread on a quieter machine: the same pixels."""
    cmd = [sys.executable, "-m", "inceptionism", "dream", "sample:chelsea", "--max-size", "220",
           "--steps", "4", "--octaves", "2", "--model", "lite0", "-q"]  # fmt: skip
    quiet = subprocess.run([*cmd, "--threads", "1", "-o", tmp_path / "quiet.png"],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    try:
        time.sleep(0.5)
        loaded = subprocess.run([*cmd, "-o", tmp_path / "loaded.png"], capture_output=True,
                                text=True, timeout=600)  # fmt: skip
    finally:
        for p in busy:
            p.kill()
            p.wait()
    assert loaded.returncode == 0, loaded.stderr
    assert np.array_equal(pixels(tmp_path / "quiet.png"), pixels(tmp_path / "loaded.png"))


@pytest.mark.slow
def test_zoom_frames_replay_exactly_at_another_thread_count(run_cli, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "frames"
    r = run_cli("zoom", "sample:astronaut", "--frames", "3", "--max-size", "190", "--threads",
                "2", "-o", f"{out}/", *SMALL)  # fmt: skip
    assert r.code == 0, r.err
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 3
    r = run_cli("replay", frames[-1], "--threads", "1", "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(frames[-1]))


@pytest.mark.slow
def test_video_frames_replay_exactly_at_another_thread_count(run_cli, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    from inceptionism.io.video import ffmpeg_exe

    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", "testsrc=size=200x160:rate=12", "-frames:v", "3", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True)  # fmt: skip
    out = tmp_path / "frames"
    r = run_cli("video", clip, "--blend", "0.5", "--threads", "2", "-o", f"{out}/", *SMALL)
    assert r.code == 0, r.err
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 3
    r = run_cli("replay", frames[-1], "--threads", "1", "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(frames[-1]))


@pytest.mark.slow
def test_lucid_cell_replays_exactly_at_another_thread_count(run_cli, tmp_path):
    cells = tmp_path / "cells"
    r = run_cli("channels", "block10", "--channels", "3,17", "--batch", "2", "--size",
                "160x160", "--cell-size", "160", "--steps", "3", "--model", "lite0", "--threads",
                "2", "--cells", cells, "-o", tmp_path / "sheet.png", "-q")  # fmt: skip
    assert r.code == 0, r.err
    cell = sorted(cells.glob("*.png"))[-1]
    r = run_cli("replay", cell, "--threads", "1", "-o", tmp_path / "again.png", "-q")
    assert r.code == 0, r.err
    assert np.array_equal(pixels(tmp_path / "again.png"), pixels(cell))


# --- what the recipe records about the environment -------------------------------------------


def rewrite_recipe(src: Path, dst: Path, change) -> None:
    data = read_recipe(src)
    change(data)
    info = PngInfo()
    info.add_itxt("inceptionism", json.dumps(data))
    with Image.open(src) as im:
        im.save(dst, pnginfo=info)


def test_recipe_records_the_environment_and_replay_names_a_difference(run_cli, tmp_path):
    r = run_cli("dream", "sample:coffee", "--max-size", "64", *SMALL, "-o", tmp_path / "a.png")
    assert r.code == 0, r.err
    recorded = read_recipe(tmp_path / "a.png")["environment"]
    assert recorded == environment("cpu")
    assert recorded["torch"] == torch.__version__ and recorded["onednn"]

    def other(data):
        data["environment"]["onednn"] = "avx512_core_amx"
        data["environment"]["torch"] = "9.9.9"

    rewrite_recipe(tmp_path / "a.png", tmp_path / "b.png", other)
    r = run_cli("replay", tmp_path / "b.png", "-o", tmp_path / "c.png", "-q")
    assert r.code == 0, r.err
    assert len(r.err_lines) == 1 and "pixels may differ" in r.err
    assert "torch 9.9.9 -> " in r.err and "onednn avx512_core_amx -> " in r.err
    assert np.array_equal(pixels(tmp_path / "c.png"), pixels(tmp_path / "a.png"))

    def bad(data):
        data["environment"] = {"torch": ["x"]}

    rewrite_recipe(tmp_path / "a.png", tmp_path / "bad.png", bad)
    r = run_cli("replay", tmp_path / "bad.png", "-o", tmp_path / "d.png", "-q")
    assert r.code == 2 and len(r.err_lines) == 1 and "environment" in r.err


def test_onednn_isa_follows_the_cpu_flags():
    assert onednn_isa({"avx2", "avx", "sse4_1"}) == "avx2"
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx2"}
    assert onednn_isa(avx512) == "avx512_core"
    assert onednn_isa(avx512 | {"avx512_bf16", "avx512_vnni"}) == "avx512_core_bf16"
    assert onednn_isa(avx512 | {"amx_tile", "amx_bf16", "avx512_bf16"}) == "avx512_core_amx"
    assert onednn_isa({"sse4_1"}) == "sse41"


def test_environment_difference_says_what_changed():
    here = environment("cpu")
    assert environment_difference(here, here) is None
    note = environment_difference({**here, "cpu": "avx512"}, here)
    assert note is not None and f"cpu avx512 -> {here['cpu']}" in note
    assert "does not record" in (environment_difference(None, here) or "")


# --- old recipes -------------------------------------------------------------------------------


def test_format_1_recipe_without_a_path_replays_with_input(run_cli, tmp_path):
    r = run_cli("dream", "sample:coffee", "--max-size", "64", *SMALL, "-o", tmp_path / "a.png")
    assert r.code == 0, r.err
    data = read_recipe(tmp_path / "a.png")
    v1 = {
        "model": data["model"],
        "config": data["config"],
        "source": {"max_size": 64},
    }  # fmt: skip  (the first release recorded no path here)
    info = PngInfo()
    info.add_itxt("inceptionism", json.dumps(v1))
    with Image.open(tmp_path / "a.png") as im:
        im.save(tmp_path / "v1.png", pnginfo=info)
    r = run_cli("replay", tmp_path / "v1.png", "-o", tmp_path / "b.png", "-q")
    assert r.code == 2 and len(r.err_lines) == 1 and "--input" in r.err, r.err
    r = run_cli("replay", tmp_path / "v1.png", "--input", "sample:coffee", "-o",
                tmp_path / "b.png", "-q")  # fmt: skip
    assert r.code == 0, r.err
    assert np.array_equal(pixels(tmp_path / "b.png"), pixels(tmp_path / "a.png"))


# --- the studio --------------------------------------------------------------------------------


@pytest.mark.parametrize("preset", list(PRESETS))
def test_studio_replays_a_recipe_whole_for_every_preset(preset, run_cli, tmp_path):
    from inceptionism.studio.core import Studio

    r = run_cli("dream", "sample:coffee", "--preset", preset, "--max-size", "64", "--steps",
                "2", "--octaves", "2", "-q", "-o", tmp_path / "cli.png")  # fmt: skip
    assert r.code == 0, r.err
    studio = Studio()
    try:
        controls = studio.controls_from_recipe(str(tmp_path / "cli.png"), None)
        assert studio.config(controls) == DreamConfig.from_dict(
            read_recipe(tmp_path / "cli.png")["config"]
        )  # every field, not only those with a control
        *_, (result, _, png) = studio.dream(controls)
        assert np.array_equal(pixels(Path(png)), pixels(tmp_path / "cli.png"))
    finally:
        studio.close()


def test_studio_keeps_the_presets_layers_when_none_are_picked():
    from inceptionism.studio.core import Controls, Studio

    studio = Studio()
    try:
        c = Controls(source="noise", model="efficientnet_lite2", preset="dlwp", layers=None)
        preset = DreamConfig.preset("dlwp", model="efficientnet_lite2")
        assert preset.layers and studio.config(c).layers == preset.layers
    finally:
        studio.close()
