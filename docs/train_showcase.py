"""Regenerate docs/train-showcase.jpg: python docs/train_showcase.py (needs the samples extra).

Builds a small class folder from the sample photos (random crops, flips and colour changes of
four of them: cat, coffee, rocket, astronaut), trains efficientnet_lite0's head and last blocks
on it with the public API (the same call as `inceptionism train`), then dreams one photo with
the base network's default layers and with the trained network's class "cat", side by side.
Prints the time per epoch and the held-out accuracy (docs/train.md quotes them).
"""

from __future__ import annotations

import platform
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageOps

from inceptionism import DreamConfig, dream_tensor, get_model
from inceptionism.io.image import load_image
from inceptionism.io.samples import sample_path
from inceptionism.models.trained import register_trained
from inceptionism.train import TrainConfig, train

HERE = Path(__file__).parent
CLASSES = {"cat": "chelsea", "coffee": "coffee", "rocket": "rocket", "astronaut": "astronaut"}
PER_CLASS = 50  # 200 pictures in all
SIDE = 256  # the crops' side on disk
SUBJECT = "grace_hopper"  # the photo both networks dream
CELL = 320


def make_pictures(root: Path, seed: int = 0) -> Path:
    """PER_CLASS random crops (10-60 % of the photo's area), flips and tints per class."""
    gen = torch.Generator().manual_seed(seed)

    def draw(lo: float, hi: float) -> float:
        return lo + (hi - lo) * float(torch.rand((), generator=gen))

    for name, sample in CLASSES.items():
        photo = Image.open(sample_path(f"sample:{sample}")).convert("RGB")
        w, h = photo.size
        (root / name).mkdir(parents=True)
        for i in range(PER_CLASS):
            side = int(min(w, h) * draw(0.35, 0.8))
            left, top = int(draw(0, w - side)), int(draw(0, h - side))
            crop = photo.crop((left, top, left + side, top + side)).resize((SIDE, SIDE))
            if draw(0, 1) < 0.5:
                crop = ImageOps.mirror(crop)
            tint = Image.new("RGB", crop.size, tuple(int(draw(0, 255)) for _ in range(3)))
            crop = Image.blend(crop, tint, draw(0.0, 0.2))
            crop.save(root / name / f"{i:03d}.jpg", quality=90)
    return root


def label(image: torch.Tensor, text: str) -> Image.Image:
    pixels = (image[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
    cell = Image.fromarray(pixels)
    canvas = Image.new("RGB", (cell.width, cell.height + 24), "white")
    canvas.paste(cell, (0, 24))
    ImageDraw.Draw(canvas).text((6, 6), text, fill="black")
    return canvas


def main() -> None:
    torch.set_num_threads(2)
    config = TrainConfig(epochs=6, unfreeze=2, size=224, patience=2, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = make_pictures(Path(tmp) / "pictures")
        out = Path(tmp) / "samples-net.pt"
        start = time.perf_counter()

        def report(r) -> None:
            if r.held_out_accuracy is not None:
                print(f"epoch {r.epoch}: {r.elapsed:.1f} s, loss {r.loss:.3f}, held-out "
                      f"{r.held_out_accuracy:.2f} ({r.held_out_correct}/{r.held_out_total})",
                      flush=True)  # fmt: skip

        result = train(folder, out, config, progress=report)
        total = time.perf_counter() - start
        print(f"trained in {total:.0f} s on {platform.processor() or platform.machine()}, "
              f"{torch.get_num_threads()} threads, torch {torch.__version__}")  # fmt: skip
        trained = get_model(register_trained(str(out)).name)
        base = get_model("efficientnet_lite0")
        photo = load_image(sample_path(f"sample:{SUBJECT}")).resized_to_fit(CELL).rgb
        cat = result.meta["classes"].index("cat")
        dreams = [
            (photo, f"photo: {SUBJECT}"),
            (dream_tensor(photo, base, DreamConfig(model=base.name, seed=0)),
             "efficientnet_lite0, default layers"),
            (dream_tensor(photo, trained, DreamConfig(model=trained.name, seed=0,
                                                      layers=f"block13,logits:{cat}")),
             "trained on the samples: block13 + class 'cat'"),
        ]  # fmt: skip
    cells = [label(image, text) for image, text in dreams]
    sheet = Image.new("RGB", (sum(c.width for c in cells), max(c.height for c in cells)), "white")
    x = 0
    for c in cells:
        sheet.paste(c, (x, 0))
        x += c.width
    sheet.save(HERE / "train-showcase.jpg", quality=88)
    print(f"wrote {HERE / 'train-showcase.jpg'}; best held-out accuracy "
          f"{result.meta['held_out_accuracy']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
