"""Image files in and out: orientation, odd modes, alpha, recipes in PNG chunks, atomic writes."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin

from inceptionism.errors import ImageError, InceptionismError
from inceptionism.io.pngdata import PNG_SIGNATURE, png_chunks, png_data_complete

INPUT_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
RECIPE_KEY = "inceptionism"
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485
# Pillow refuses outright (DecompressionBombError) above twice its limit; ours stays below it.
PILLOW_MAX_PIXELS = 2 * DEFAULT_MAX_PIXELS


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
    def from_pil(cls, im: Image.Image, where: str = "image") -> LoadedImage:
        """Any Pillow mode: greyscale, palette, 16-bit, float, CMYK, with or without alpha; a
        float image with NaN or infinite pixels is refused (``where`` names it)."""
        alpha = None
        if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
            im = im.convert("RGBA")
            alpha = torch.from_numpy(np.asarray(im)[..., 3].astype(np.float32) / 255.0)
        if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
            grey = np.asarray(im).astype(np.float32)
            grey /= 65535.0 if im.mode.startswith("I;16") or grey.max() > 255 else 255.0
            arr = np.repeat(grey[..., None], 3, axis=2)
        elif im.mode == "F":
            grey = np.asarray(im, dtype=np.float32)
            if not np.isfinite(grey).all():
                bad = int(grey.size - np.isfinite(grey).sum())
                raise ImageError(
                    f"{where}: {bad} of its float pixels are NaN or infinite; refusing to dream "
                    "holes (replace them, e.g. with 0, and save it again)"
                )
            arr = np.repeat(grey[..., None], 3, axis=2)
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
        arr = to_uint8(self.rgb)
        if self.alpha is not None:
            a = to_uint8(self.alpha[None].expand(3, -1, -1))[..., 0]
            return Image.fromarray(np.dstack([arr, a]), "RGBA")
        return Image.fromarray(arr, "RGB")


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read an image file, EXIF orientation applied; any failure is one :class:`ImageError`.

    The pixel limit is checked on the header, before anything is decoded; Pillow's own
    process-wide limit is left as it is (other threads may be decoding meanwhile)."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file")
    try:
        with _open_checked(path, max_pixels) as im:
            im.load()
            if im.format == "PNG" and not png_data_complete(path):
                raise ImageError(
                    f"{path}: the image data ends before the last row (a truncated or damaged "
                    "file); refusing to dream the missing part as black"
                )
            im = ImageOps.exif_transpose(im)
            return LoadedImage.from_pil(im, str(path))
    except ImageError:
        raise
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise ImageError(f"{path}: cannot decode image ({_one_line(e)})") from None


def _too_many(path: Path, w: int, h: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"{path}: {w}x{h} = {w * h} pixels is over the limit of {max_pixels}; "
        "refusing a possible decompression bomb (raise it with --max-pixels)"
    )


@contextlib.contextmanager
def _open_checked(path: Path, max_pixels: int) -> Iterator[Image.Image]:
    """``Image.open`` (header only) with our pixel limit applied before any decoding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except Image.DecompressionBombError as e:  # over twice Pillow's limit
            counts = [int(n) for n in re.findall(r"\d+", str(e))]
            pixels = counts[0] if counts else 0
            if pixels > max_pixels:
                raise ImageError(
                    f"{path}: {pixels} pixels is over the limit of {max_pixels}; refusing a "
                    "possible decompression bomb (raise it with --max-pixels)"
                ) from None
            raise ImageError(f"{path}: {pixels} pixels is over Pillow's own limit") from None
    with im:
        w, h = im.size
        if w * h > max_pixels:
            raise _too_many(path, w, h, max_pixels)
        yield im


def image_size(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[int, int]:
    """(width, height) from the header (EXIF rotation applied), checked against the limit."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with _open_checked(path, max_pixels) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1)
            return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
    except ImageError:
        raise
    except Exception as e:
        raise ImageError(f"{path}: not an image file Pillow can read ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def output_format(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        valid = ", ".join(OUTPUT_FORMATS)
        raise ImageError(f"{path}: unsupported output type {suffix or '(none)'!r}; use {valid}")
    return OUTPUT_FORMATS[suffix]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> (H, W, 3) uint8: the one 8-bit conversion (clamp,
    scale by 255, round half to even), used by every writer and by the motion state."""
    t = x[0] if x.ndim == 4 else x
    return (t.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def from_uint8(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div_(255.0)


PART_SUFFIX = ".part"
_PART_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.part(\.\w+)?$")
_OLD_PART_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.part$")
STALE_PART_SECONDS = 3600  # an old-style part file (no process id in its name) older than this
_CLEANED: set[str] = set()  # folders this process already cleared of stale parts


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Write a file atomically: ``write(f)`` into ``.NAME.PID.xxxx.part`` in the same folder,
    fsync, then rename onto ``path``. Interrupted at any moment, ``path`` is either the old file
    or the complete new one; a failure (disk full) names ``path``, not the temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = str(path.parent.resolve())
    if folder not in _CLEANED:  # once per folder and process, not at every frame
        _CLEANED.add(folder)
        remove_stale_parts(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=PART_SUFFIX
        )
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise OSError(e.errno, e.strerror, str(path)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def remove_stale_parts(folder: Path) -> list[Path]:
    """Remove our own temporary files left in ``folder`` by a process that died (kill -9):
    ``.NAME.PID.xxxx.part`` whose process is gone, or old-style parts over an hour old."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and PART_SUFFIX in name):
            continue
        m = _PART_RE.match(name)
        try:
            if m is not None:
                stale = not _alive(int(m.group("pid")))
            else:
                stale = bool(_OLD_PART_RE.match(name)) and (
                    now - entry.stat().st_mtime > STALE_PART_SECONDS
                )
            if stale and entry.is_file(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def save_image(
    image: LoadedImage | Image.Image,
    path: str | os.PathLike,
    recipe: dict[str, Any] | None = None,
    quality: int = 95,
) -> Path:
    """Write atomically (see :func:`atomic_write`). PNG keeps alpha and carries ``recipe`` as
    JSON in a text chunk; JPEG drops alpha; JPEG and WebP carry no recipe."""
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
    return atomic_write(path, lambda f: im.save(f, format=fmt, **kwargs))


def _read_umask() -> int:
    """The process's umask: from /proc where Linux shows it (nothing changed), else by setting
    and restoring it, once, when this module is imported (before any server thread)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _read_umask()


MAX_RECIPE_BYTES = 1 << 20  # a recipe chunk larger than this is refused unread


def read_recipe_text(path: str | os.PathLike) -> str:
    """The recipe chunk's text, read chunk by chunk from the PNG file: no pixel is decoded, the
    image data is skipped, and a chunk over :data:`MAX_RECIPE_BYTES` is refused."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            if f.read(8) != PNG_SIGNATURE:
                raise ImageError(f"{path}: holds no inceptionism recipe (not a PNG)")
            for kind, length in png_chunks(f):  # pixels and other chunks: skipped
                if kind != b"iTXt":
                    continue
                if length > MAX_RECIPE_BYTES:
                    if _keyword(f, length) == RECIPE_KEY.encode():
                        raise ImageError(
                            f"{path}: recipe is {length} bytes, over the limit of "
                            f"{MAX_RECIPE_BYTES}"
                        )
                    continue
                text = _itxt(f.read(length))
                if text is not None:
                    return text
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({_one_line(e)})") from None
    raise ImageError(f"{path}: holds no inceptionism recipe (only PNGs written by it do)")


def _keyword(f: Any, length: int) -> bytes:
    """An iTXt chunk's keyword, read from the start of its data (png_chunks skips the rest)."""
    return f.read(min(length, 80)).split(b"\0", 1)[0]


def _itxt(data: bytes) -> str | None:
    """The text of an iTXt chunk whose keyword is ours, else None."""
    key, _, rest = data.partition(b"\0")
    if key != RECIPE_KEY.encode() or len(rest) < 2:
        return None
    compressed, _method, rest = rest[0], rest[1], rest[2:]
    _lang, _, rest = rest.partition(b"\0")
    _tkey, _, text = rest.partition(b"\0")
    if compressed:
        d = zlib.decompressobj()
        try:
            text = d.decompress(text, MAX_RECIPE_BYTES)
        except zlib.error as e:
            raise ImageError(f"recipe chunk is corrupt ({e})") from None
        if d.unconsumed_tail:
            raise ImageError(f"recipe decompresses to over {MAX_RECIPE_BYTES} bytes")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError:
        raise ImageError("recipe text is not UTF-8") from None


def has_recipe(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG this tool wrote (it carries a readable recipe)."""
    try:
        read_recipe(path)
        return True
    except InceptionismError:
        return False


def read_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """The recipe JSON stored in a PNG written by :func:`save_image` (raw; see jobs/recipes.py for
    the checked, typed reading)."""
    return parse_recipe(read_recipe_text(path), f"{path}: ")


def parse_recipe(text: str, where: str = "") -> dict[str, Any]:
    """A recipe's JSON text as an object (size-capped, nesting caught), each failure one line."""
    if len(text) > MAX_RECIPE_BYTES:
        raise ImageError(f"{where}the recipe is over {MAX_RECIPE_BYTES} bytes")
    try:
        recipe = json.loads(text)
    except RecursionError:
        raise ImageError(f"{where}the recipe is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise ImageError(f"{where}the recipe is not valid JSON ({e.msg})") from None
    except ValueError:  # int() refuses over 4300 digits; no field of ours needs that many
        raise ImageError(f"{where}the recipe holds a number too long to read") from None
    if not isinstance(recipe, dict):
        raise ImageError(f"{where}the recipe is not a JSON object")
    return recipe
