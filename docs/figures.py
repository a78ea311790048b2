"""Regenerate the README's technique sheet: python docs/figures.py (needs the samples extra).

Every cell is one call of the public API with the options printed under it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from inceptionism import DreamConfig, dream_tensor, get_model
from inceptionism.engine.techniques import start_image
from inceptionism.io.image import LoadedImage, load_image
from inceptionism.io.samples import sample_path

CELL = 256
HERE = Path(__file__).parent


def photo(name: str, side: int = CELL) -> torch.Tensor:
    return load_image(sample_path(f"sample:{name}")).resized_to_fit(side).rgb


def main() -> None:
    model = get_model("efficientnet_lite2")
    noise = start_image("noise", CELL, CELL, seed=0)
    grey = start_image("grey", CELL, CELL, seed=0)
    coffee, cat, astro = photo("coffee"), photo("chelsea"), photo("astronaut")
    half = torch.zeros(1, 1, *astro.shape[-2:])
    half[..., astro.shape[-1] // 2 :] = 1.0
    feature = dict(objective="mean", octaves=3, steps=30, step_size=0.02)
    cells = [
        ("photo: coffee", coffee, None),
        ("default recipe", coffee, (DreamConfig(), {})),
        ("--keep-colors", coffee, (DreamConfig(keep_colors=True), {})),
        ("--smooth 1.5", coffee, (DreamConfig(smooth=1.5), {})),
        ("--tv 0.5", coffee, (DreamConfig(tv=0.5), {})),
        ("--guide sample:chelsea", coffee,
         (DreamConfig(layers="block13,block16", objective="guide"), {"guide": cat})),
        ("--mask (right half)", astro, (DreamConfig(), {"mask": half})),
        ("--tile 96 (seamless)", cat, (DreamConfig(tile=96, tile_overlap=32), {})),
        ("noise, block12:20", noise, (DreamConfig(layers="block12:20", **feature), {})),
        ("... --grad-norm laplacian", noise,
         (DreamConfig(layers="block12:20", grad_norm="laplacian", **feature), {})),
        ("noise, block16:7", noise,
         (DreamConfig(layers="block16:7", grad_norm="laplacian", **feature), {})),
        ("grey, neuron block9:5@8,8", grey,
         (DreamConfig(layers="block9:5@8,8", jitter=0, **feature), {})),
        ("noise, --class 963 (pizza)", noise,
         (DreamConfig(layers="logits:963", grad_norm="laplacian", **feature), {})),
    ]  # fmt: skip
    font = ImageFont.load_default(size=14)
    cols = 5
    rows = (len(cells) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (CELL + 8), rows * (CELL + 26)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (label, start, recipe) in enumerate(cells):
        img = start if recipe is None else dream_tensor(start, model, recipe[0], **recipe[1])
        pil = LoadedImage(img).to_pil()
        pil.thumbnail((CELL, CELL))
        x, y = (k % cols) * (CELL + 8), (k // cols) * (CELL + 26)
        sheet.paste(pil, (x, y))
        draw.text((x + 2, y + pil.height + 4), label, fill="black", font=font)
        print(f"{k + 1}/{len(cells)} {label}", flush=True)
    sheet.save(HERE / "techniques.jpg", quality=85)


if __name__ == "__main__":
    main()
