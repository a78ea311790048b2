"""Image files in and out: orientation, odd modes, alpha, recipes in PNG chunks, atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin

from .errors import ImageError

INPUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
RECIPE_KEY = "inceptionism"
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


@dataclass(frozen=True)
class LoadedImage:
    """RGB as a (1, 3, H, W) float tensor in [0, 1], plus the alpha plane (H, W) if any."""

    rgb: torch.Tensor
    alpha: torch.Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)"""
        return int(self.rgb.shape[-1]), int(self.rgb.shape[-2])

    @classmethod
    def from_pil(cls, im: Image.Image) -> LoadedImage:
        """Any Pillow mode: greyscale, palette, 16-bit, float, CMYK, with or without alpha."""
        alpha = None
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            im = im.convert("RGBA")
            alpha = torch.from_numpy(np.asarray(im)[..., 3].astype(np.float32) / 255.0)
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            grey = np.asarray(im).astype(np.float32)
            grey /= 65535.0 if im.mode.startswith("I;16") or grey.max() > 255 else 255.0
            arr = np.repeat(grey[..., None], 3, axis=2)
        elif im.mode == "F":
            arr = np.repeat(np.asarray(im, dtype=np.float32)[..., None], 3, axis=2)
        else:  # 8-bit: convert on the uint8 tensor, one float copy only
            u8 = torch.from_numpy(np.asarray(im.convert("RGB")).copy())
            rgb = u8.permute(2, 0, 1)[None].float().div_(255.0)
            return cls(rgb.contiguous(), alpha)
        rgb = torch.from_numpy(np.ascontiguousarray(arr.clip(0, 1))).permute(2, 0, 1)[None]
        return cls(rgb.contiguous(), alpha)

    def with_rgb(self, rgb: torch.Tensor) -> LoadedImage:
        return LoadedImage(rgb, self.alpha)

    def as_mask(self) -> torch.Tensor:
        """(1, 1, H, W) mask weight: luminance, times alpha where the image has one (so a
        transparent area counts as black)."""
        r, g, b = self.rgb[:, 0:1], self.rgb[:, 1:2], self.rgb[:, 2:3]
        lum = 0.299 * r + 0.587 * g + 0.114 * b
        return lum if self.alpha is None else lum * self.alpha[None, None]

    def with_alpha_fitted(self) -> LoadedImage:
        """The alpha plane resized to the RGB's size (octave images are smaller)."""
        if self.alpha is None or self.alpha.shape == self.rgb.shape[-2:]:
            return self
        a = torch.nn.functional.interpolate(
            self.alpha[None, None], size=self.rgb.shape[-2:], mode="bilinear", align_corners=False
        )
        return LoadedImage(self.rgb, a[0, 0])

    def resized_to_fit(self, max_side: int | None) -> LoadedImage:
        """Downscale (area-averaged) so the long side is at most ``max_side``; never upscale."""
        w, h = self.size
        if not max_side or max(w, h) <= max_side:
            return self
        k = max_side / max(w, h)
        shape = (max(1, round(h * k)), max(1, round(w * k)))
        rgb = torch.nn.functional.interpolate(self.rgb, size=shape, mode="area")
        alpha = None
        if self.alpha is not None:
            a = self.alpha[None, None]
            alpha = torch.nn.functional.interpolate(a, size=shape, mode="area")[0, 0]
        return LoadedImage(rgb, alpha)

    def to_pil(self) -> Image.Image:
        rgb = self.rgb[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        arr = (rgb * 255.0 + 0.5).astype(np.uint8)
        if self.alpha is not None:
            a = (self.alpha.clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
            return Image.fromarray(np.dstack([arr, a]), "RGBA")
        return Image.fromarray(arr, "RGB")


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file, EXIF orientation applied; any failure is one :class:`ImageError`."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    try:
        with _pillow_unlimited(), Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{path}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels}; "
                    "refusing a possible decompression bomb (raise it with --max-pixels)"
                )
            im.load()
            im = ImageOps.exif_transpose(im)
            return LoadedImage.from_pil(im)
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"{path}: cannot decode image ({_one_line(e)})") from None


_PILLOW_LIMIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _pillow_unlimited():
    """Pillow's own pixel limit off while we apply ours (its global, hence the lock)."""
    with _PILLOW_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        valid = ", ".join(OUTPUT_FORMATS)
        raise ImageError(f"{path}: unsupported output type {suffix or '(none)'!r}; use {valid}")
    return OUTPUT_FORMATS[suffix]


def save_image(
    image: LoadedImage | Image.Image,
    path: str | os.PathLike,
    recipe: dict[str, Any] | None = None,
    quality: int = 95,
) -> Path:
    """Write atomically (temporary file in the same folder, then rename).

    PNG keeps alpha and carries ``recipe`` as JSON in a text chunk; JPEG drops alpha.
    """
    path = Path(path)
    fmt = output_format(path)
    im = image.to_pil() if isinstance(image, LoadedImage) else image
    kwargs: dict[str, Any] = {}
    if fmt == "PNG":
        if recipe is not None:
            info = PngImagePlugin.PngInfo()
            info.add_itxt(RECIPE_KEY, json.dumps(recipe, sort_keys=True))
            kwargs["pnginfo"] = info
    elif fmt == "JPEG":
        im = im.convert("RGB")
        kwargs["quality"] = quality
    else:
        kwargs["quality"] = quality
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            im.save(f, format=fmt, **kwargs)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The recipe JSON stored in a PNG written by :func:`save_image`."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with _pillow_unlimited(), Image.open(path) as im:
            text = dict(getattr(im, "text", {}) or {})
    except Exception as e:  # any unreadable file is the user's input, not our bug
        raise ImageError(f"{path}: cannot read ({_one_line(e)})") from None
    if RECIPE_KEY not in text:
        raise ImageError(f"{path}: holds no inceptionism recipe (only PNGs written by it do)")
    try:
        recipe = json.loads(text[RECIPE_KEY])
    except json.JSONDecodeError as e:
        raise ImageError(f"{path}: recipe is not valid JSON ({e})") from None
    if not isinstance(recipe, dict):
        raise ImageError(f"{path}: recipe is not a JSON object")
    return recipe
