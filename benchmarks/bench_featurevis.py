"""Feature visualisation: batched speed, and transformation-robust activation of three recipes.

    python benchmarks/bench_featurevis.py                  # both parts, Lite0
    python benchmarks/bench_featurevis.py --part speed     # or --part quality
    python benchmarks/bench_featurevis.py --gallery docs/channels-lucid.jpg

Speed: 64 channels at 128x128 rendered in batches of ``--batch`` vs one at a time, interleaved
(each group of ``--batch`` channels is timed batched, then one by one, so load on a shared
machine hits both alike); the ratio is of the summed times.

Quality: 16 channels of a mid-depth layer at 128x128, each recipe given the same number of
gradient steps. "today" is the DeepDream-of-noise recipe of `channels --preset default` (mean
objective, Laplacian-normalised gradient, step 0.02, 3 octaves x 30 steps: 90 steps); "new" is
featurevis's `lucid` preset; "reference" is the Lucid recipe written here from the paper (Olah
et al. 2017) and its code's defaults, independently of the package: a 1/f-scaled Fourier
spectrum, colours through the ImageNet colour covariance's square root, sigmoid, Lucid's standard
transforms, Adam at lr 0.05. The score is the transformation-robust activation: each image's
channel mean averaged over 16 seeded random jitter/scale/rotation transforms.
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import dream_tensor
from inceptionism.engine.techniques import start_image
from inceptionism.featurevis.render import (
    FeatureVisConfig,
    high_frequency_share,
    render,
    render_channels,
    robust_activation,
)
from inceptionism.io.image import LoadedImage
from inceptionism.io.sheets import contact_sheet
from inceptionism.models import get_model


def today(model, layer: str, channels: list[int], size: int, steps_per_octave: int, seed: int):
    """`inceptionism channels --preset default`: one DeepDream of noise per channel."""
    out = []
    for c in channels:
        config = DreamConfig(model=model.name, layers=f"{layer}:{c}", objective="mean",
                             grad_norm="laplacian", step_size=0.02, steps=steps_per_octave,
                             octaves=3, init="noise", seed=seed)  # fmt: skip
        out.append(dream_tensor(start_image("noise", size, size, seed), model, config))
    return torch.cat(out)


# --- the reference: the Lucid recipe from the paper, sharing no code with the package ---------


def _ref_colour_matrix() -> torch.Tensor:
    # ImageNet RGB covariance from its published principal components; its SVD square root,
    # scaled to a largest column norm of 1
    vecs = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                         [-0.5836, -0.6948, 0.4203]], dtype=torch.float64)  # fmt: skip
    vals = torch.tensor([0.2175, 0.0188, 0.0045], dtype=torch.float64)
    u, s, _ = torch.linalg.svd(vecs @ torch.diag(vals) @ vecs.T)
    root = u @ torch.diag(s.sqrt())
    return (root / root.norm(dim=0).max()).float()


def _ref_transform(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    x = F.pad(x, (12, 12, 12, 12), value=0.5)

    def crop(x, d):
        oy, ox = rng.integers(0, d + 1, 2)
        return x[..., oy : oy + x.shape[-2] - d, ox : ox + x.shape[-1] - d]

    x = crop(x, 8)
    s = rng.choice([1 + (i - 5) / 50 for i in range(11)])
    x = F.interpolate(x, scale_factor=float(s), mode="bilinear", align_corners=False)
    deg = rng.choice(list(range(-10, 11)) + [0] * 5)
    a = math.radians(float(deg))
    h, w = x.shape[-2:]
    theta = torch.tensor([[math.cos(a), -math.sin(a) * h / w, 0],
                          [math.sin(a) * w / h, math.cos(a), 0]], dtype=x.dtype)  # fmt: skip
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    return crop(x, 4)


def reference(model, layer: str, channels: list[int], size: int, steps: int, seed: int):
    n = len(channels)
    gen = torch.Generator().manual_seed(seed)
    spectrum = (0.01 * torch.randn(n, 3, size, size // 2 + 1, 2, generator=gen)).requires_grad_()
    fy = torch.fft.fftfreq(size)[:, None]
    fx = torch.fft.rfftfreq(size)[None, :]
    scale = 1.0 / torch.sqrt(fx**2 + fy**2).clamp(min=1.0 / size)
    colour = _ref_colour_matrix()

    def image():
        raw = torch.fft.irfft2(torch.view_as_complex(spectrum) * scale, s=(size, size),
                               norm="ortho") / 4.0  # fmt: skip
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", colour, raw))

    opt = torch.optim.Adam([spectrum], lr=0.05)
    rng = np.random.default_rng(seed)
    idx = torch.tensor(channels)
    for _ in range(steps):
        opt.zero_grad()
        a = model.activations(_ref_transform(image(), rng), [layer])[layer]
        a = a[torch.arange(n), idx]  # image i's own channel
        (-a.mean(dim=(-2, -1)).sum()).backward()
        opt.step()
    with torch.no_grad():
        return image()


# --- the two parts -------------------------------------------------------------------------------


def speed(model, layer: str, count: int, size: int, steps: int, batch: int) -> None:
    config = FeatureVisConfig(steps=steps, size=size, batch=batch)
    channels = list(range(count))
    render_channels(model, layer, channels[:2], config=config.replace(steps=1))  # warm-up
    batched, single = [], []
    for start in range(0, count, batch):
        group = channels[start : start + batch]
        t = time.perf_counter()
        render_channels(model, layer, group, config=config)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        for c in group:
            render_channels(model, layer, [c], config=config.replace(batch=1))
        single.append(time.perf_counter() - t)
    b, s = sum(batched), sum(single)
    print(f"speed: {count} channels of {layer}, {size}x{size}, {steps} steps each")
    print(f"  batched ({batch} per pass): {b:7.1f} s   per group {_spread(batched)}")
    print(f"  one at a time:          {s:7.1f} s   per group {_spread(single)}")
    print(f"  speed-up: {s / b:.2f}x  (target >= 3x)")


def _spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.1f} s, min {min(times):.1f}, max {max(times):.1f}"


def quality(model, layer: str, count: int, size: int, steps_per_octave: int, seed: int,
            gallery: str | None) -> None:  # fmt: skip
    channels = list(range(count))
    steps = 3 * steps_per_octave
    units = [f"{layer}:{c}" for c in channels]
    results = {}
    for name, fn in (
        ("today", lambda: today(model, layer, channels, size, steps_per_octave, seed)),
        ("new", lambda: torch.stack(render_channels(model, layer, channels, steps=steps,
                                                    size=size, seed=seed, batch=count))),
        ("reference", lambda: reference(model, layer, channels, size, steps, seed)),
    ):  # fmt: skip
        t = time.perf_counter()
        images = fn()
        took = time.perf_counter() - t
        score = robust_activation(model, images, units)
        results[name] = (images, score)
        hf = high_frequency_share(images).mean()
        print(f"  {name:9s} robust activation {float(score.mean()):7.3f}  "
              f"energy above half Nyquist {float(hf):.3f}  ({took:.0f} s)")  # fmt: skip
    base, ref = results["today"][1], results["reference"][1]
    new = results["new"][1]
    print(f"quality: {count} channels of {layer}, {size}x{size}, {steps} steps, seed {seed}")
    print(
        f"  new / today:     {float(new.mean() / base.mean()):.3f}x of the means "
        f"(per channel: median {float((new / base).median()):.3f}x, "
        f"higher on {int((new > base).sum())}/{count})  (target >= 1.25x)"
    )
    print(
        f"  new / reference: {float(new.mean() / ref.mean()):.3f}x of the means "
        f"(higher on {int((new > ref).sum())}/{count})  (target > 1)"
    )
    print(f"  reference / today: {float(ref.mean() / base.mean()):.3f}x")
    if gallery:
        write_gallery(gallery, layer, channels, results["today"][0], results["new"][0], steps)


def write_gallery(path: str, layer: str, channels, old: torch.Tensor, new: torch.Tensor,
                  steps: int) -> None:  # fmt: skip
    def sheet(images, title):
        cells = [
            (f"{layer}:{c}", LoadedImage(im[None]).to_pil()) for c, im in zip(channels, images)
        ]
        return contact_sheet(cells, 4, title, 160)

    left = sheet(old, f"today (channels --preset default), {steps} steps")
    right = sheet(new, f"new default (lucid preset), {steps} steps")
    both = Image.new("RGB", (left.width + right.width + 24, max(left.height, right.height)),
                     (250, 250, 250))  # fmt: skip
    both.paste(left, (0, 0))
    both.paste(right, (left.width + 24, 0))
    both.save(path, quality=80)
    print(f"  wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--part", choices=["speed", "quality", "both"], default="both")
    ap.add_argument("--speed-layer", default="block9")
    ap.add_argument("--count", type=int, default=64, help="channels for the speed part")
    ap.add_argument("--speed-steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--layer", default="block6", help="layer for the quality part")
    ap.add_argument("--channels", type=int, default=16, help="channels for the quality part")
    ap.add_argument("--steps-per-octave", type=int, default=30, help="today's; x3 for the others")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gallery", default=None, help="write today's vs new's pictures here")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    model = get_model(args.model)
    if args.part in ("speed", "both"):
        speed(model, args.speed_layer, args.count, args.size, args.speed_steps, args.batch)
    if args.part in ("quality", "both"):
        quality(model, args.layer, args.channels, args.size, args.steps_per_octave, args.seed,
                args.gallery)  # fmt: skip


if __name__ == "__main__":
    main()


__all__ = ["reference", "render", "today"]
