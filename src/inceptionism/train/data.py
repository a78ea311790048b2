"""Pictures for training: an ImageFolder-style folder (one sub-folder per class), read once,
split into training and held-out sets, and augmented with a ``torch.Generator``.

Unreadable files are skipped and counted; a folder that cannot be trained on (one class, an
empty class, too few pictures to hold some out) is a :class:`ConfigError` with one line.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from inceptionism.errors import ConfigError, ImageError
from inceptionism.io.image import load_image
from inceptionism.models.weights import sha256_file

# Pictures are kept at this multiple of the training size (short side): room for random crops.
KEEP_SCALE = 1.15


@dataclass
class Picture:
    """One decoded picture: uint8 (3, H, W) with its short side at KEEP_SCALE x size."""

    pixels: torch.Tensor
    label: int
    path: Path


@dataclass
class Dataset:
    """A class folder read into memory."""

    classes: list[str]
    pictures: list[Picture]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # unreadable: (file, why)
    data_sha256: str = ""  # over every (class, file name, file sha256), sorted

    def counts(self) -> dict[str, int]:
        out = {c: 0 for c in self.classes}
        for p in self.pictures:
            out[self.classes[p.label]] += 1
        return out


def class_folders(folder: Path) -> list[Path]:
    """The class sub-folders (sorted by name; hidden ones left out); two or more needed."""
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no such folder (expected one sub-folder per class)")
    subs = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(subs) < 2:
        found = f"one ({subs[0].name})" if subs else "none"
        raise ConfigError(f"{folder}: training needs two or more class sub-folders, found {found}")
    return subs


def read_folder(folder: str | Path, size: int) -> Dataset:
    """Every readable picture of every class, resized for crops at ``size``."""
    folder = Path(folder)
    classes, pictures, skipped, hashes = [], [], [], []
    for label, sub in enumerate(class_folders(folder)):
        classes.append(sub.name)
        files = sorted(p for p in sub.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ConfigError(f"class folder {sub} is empty: put pictures in it or remove it")
        read = 0
        for file in files:
            try:
                pixels = _prepare(file, size)
            except (ImageError, OSError, ValueError) as e:
                skipped.append((file, str(e).splitlines()[0] if str(e) else type(e).__name__))
                continue
            pictures.append(Picture(pixels, label, file))
            hashes.append(f"{sub.name}/{file.relative_to(sub).as_posix()}:{sha256_file(file)}")
            read += 1
        if not read:
            raise ConfigError(f"class folder {sub} has no readable pictures ({len(files)} files)")
    digest = hashlib.sha256("\n".join(sorted(hashes)).encode()).hexdigest()
    return Dataset(classes, pictures, skipped, digest)


def _prepare(file: Path, size: int) -> torch.Tensor:
    rgb = load_image(file).rgb[0]  # (3, H, W) float in [0, 1]
    h, w = rgb.shape[-2:]
    scale = KEEP_SCALE * size / min(h, w)
    shape = (max(size, round(h * scale)), max(size, round(w * scale)))
    resized = F.interpolate(rgb[None], size=shape, mode="bilinear", antialias=True,
                            align_corners=False)[0]  # fmt: skip
    return (resized.clamp(0, 1) * 255).round().to(torch.uint8)


def split(data: Dataset, held_out: float, seed: int) -> tuple[list[Picture], list[Picture]]:
    """Training and held-out pictures: ``held_out`` of each class (at least one) held out, the
    choice drawn with ``seed``. Each class needs a picture on each side."""
    if not 0 < held_out < 1:
        raise ConfigError(f"--held-out {held_out}: expected a fraction between 0 and 1")
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for label, name in enumerate(data.classes):
        mine = [p for p in data.pictures if p.label == label]
        n_val = max(1, round(len(mine) * held_out))
        if len(mine) - n_val < 1:
            raise ConfigError(
                f"class {name!r} has {len(mine)} readable picture(s): a held-out split needs at "
                "least 2 per class"
            )
        order = torch.randperm(len(mine), generator=gen).tolist()
        val += [mine[i] for i in order[:n_val]]
        train += [mine[i] for i in order[n_val:]]
    return train, val


@dataclass(frozen=True)
class Augment:
    """Random crops (area and aspect ranges), horizontal flips and colour jitter."""

    scale: tuple[float, float] = (0.45, 1.0)  # crop area as a fraction of the picture
    ratio: tuple[float, float] = (3 / 4, 4 / 3)  # crop aspect ratio
    flip: float = 0.5  # probability of a horizontal flip
    brightness: float = 0.25  # jitter: factors drawn from [1 - j, 1 + j]
    contrast: float = 0.25
    saturation: float = 0.25


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand((), generator=gen))


def augmented(pic: Picture, size: int, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """A random training view of ``pic``: (3, size, size) float in [0, 1]."""
    x = pic.pixels.float() / 255
    h, w = x.shape[-2:]
    for _ in range(10):
        area = h * w * _uniform(gen, *aug.scale)
        ratio = math.exp(_uniform(gen, math.log(aug.ratio[0]), math.log(aug.ratio[1])))
        ch, cw = round(math.sqrt(area / ratio)), round(math.sqrt(area * ratio))
        if 0 < ch <= h and 0 < cw <= w:
            break
    else:
        ch = cw = min(h, w)
    top = int(torch.randint(0, h - ch + 1, (), generator=gen))
    left = int(torch.randint(0, w - cw + 1, (), generator=gen))
    x = _resize(x[:, top : top + ch, left : left + cw], size)
    if float(torch.rand((), generator=gen)) < aug.flip:
        x = x.flip(-1)
    x = x * _uniform(gen, 1 - aug.brightness, 1 + aug.brightness)
    mean = x.mean()
    x = (x - mean) * _uniform(gen, 1 - aug.contrast, 1 + aug.contrast) + mean
    grey = x.mean(dim=0, keepdim=True)
    x = (x - grey) * _uniform(gen, 1 - aug.saturation, 1 + aug.saturation) + grey
    return x.clamp(0, 1)


def centred(pic: Picture, size: int) -> torch.Tensor:
    """The held-out view: the centre square, resized to ``size``."""
    x = pic.pixels.float() / 255
    h, w = x.shape[-2:]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return _resize(x[:, top : top + s, left : left + s], size)


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x[None], size=(size, size), mode="bilinear", antialias=True,
                         align_corners=False)[0]  # fmt: skip
