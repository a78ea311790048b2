"""What the nodes take from ComfyUI, in one place: its device, progress bar, interrupt check and
folders, each imported when a node runs (``import inceptionism.comfyui`` works without
ComfyUI; the tests put stand-ins into ``sys.modules``). Also the conversions between ComfyUI's
tensors (IMAGE ``[B, H, W, C]``, MASK ``[B, H, W]``, float 0..1) and the PNG files a job reads:
a job's inputs are files with hashes, so that its recipe replays on the command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inceptionism.engine.loop import Progress
from inceptionism.errors import InceptionismError
from inceptionism.io.image import atomic_write, to_uint8
from inceptionism.jobs.job import FileRef

SUBFOLDER = "inceptionism"  # our folder inside ComfyUI's input and output folders


class NodeInputError(InceptionismError, TypeError):
    """A node got a value of the wrong kind (an IMAGE where a MASK belongs, a list, ...)."""


def _module(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def torch_device() -> torch.device:
    """The device ComfyUI runs models on (the CPU without ComfyUI)."""
    mm = _module("comfy.model_management")
    return torch.device(mm.get_torch_device()) if mm is not None else torch.device("cpu")


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel."""
    mm = _module("comfy.model_management")
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def folder(kind: str) -> Path:
    """ComfyUI's ``input`` or ``output`` folder, our subfolder in it (created)."""
    fp = _module("folder_paths")
    if fp is not None:
        base = Path(getattr(fp, f"get_{kind}_directory")())
    else:
        base = Path(tempfile.gettempdir()) / f"comfyui-{kind}"
    path = base / SUBFOLDER
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def gradients() -> Iterator[None]:
    """ComfyUI runs nodes under ``torch.inference_mode()``: a dream needs gradients."""
    with torch.inference_mode(False), torch.enable_grad():
        yield


class StepBar:
    """ComfyUI's progress bar over ``total`` steps, and the interrupt check at every step.
    ``job(i)`` gives the engine's progress callback for the ``i``-th of the node's jobs, each
    ``per_job`` steps long."""

    def __init__(self, jobs: int, per_job: int):
        self.per_job = max(1, per_job)
        self.total = max(1, jobs * self.per_job)
        utils = _module("comfy.utils")
        self.bar = utils.ProgressBar(self.total) if utils is not None else None
        self.done = 0

    def job(self, index: int) -> Callable[[Progress], None]:
        base = index * self.per_job

        def on_progress(p: Progress) -> None:
            check_interrupt()
            if p.octave_done:
                return
            self.advance(base + min(self.per_job, (p.octave - 1) * p.steps + p.step))

        return on_progress

    def advance(self, at: int) -> None:
        self.done = max(self.done, min(at, self.total))
        if self.bar is not None:
            self.bar.update_absolute(self.done, self.total)


# --- tensors <-> files -------------------------------------------------------------------------


def image_batch(value: Any, name: str = "image") -> torch.Tensor:
    """A ComfyUI IMAGE checked: ``[B, H, W, 3]`` floats; returned as a (detached) clone."""
    if not isinstance(value, torch.Tensor):
        raise NodeInputError(f"{name}: expected an IMAGE (a [B, H, W, 3] tensor), got "
                             f"{type(value).__name__}")  # fmt: skip
    if value.ndim != 4 or value.shape[-1] != 3 or not value.is_floating_point():
        what = "a MASK" if value.ndim == 3 else f"shape {list(value.shape)}, {value.dtype}"
        raise NodeInputError(f"{name}: expected an IMAGE ([B, H, W, 3] floats in 0..1), got "
                             f"{what}")  # fmt: skip
    if min(value.shape[:3]) < 1:
        raise NodeInputError(f"{name}: an empty batch {list(value.shape)}")
    return value.detach().clone().float().cpu()


def mask_batch(value: Any, name: str = "mask") -> torch.Tensor:
    """A ComfyUI MASK checked: ``[B, H, W]`` (or ``[H, W]``) floats."""
    if not isinstance(value, torch.Tensor):
        raise NodeInputError(f"{name}: expected a MASK (a [B, H, W] tensor), got "
                             f"{type(value).__name__}")  # fmt: skip
    if value.ndim == 2:
        value = value[None]
    if value.ndim != 3 or not value.is_floating_point():
        raise NodeInputError(f"{name}: expected a MASK ([B, H, W] floats in 0..1), got shape "
                             f"{list(value.shape)}, {value.dtype}")  # fmt: skip
    return value.detach().clone().float().cpu()


def pick(batch: torch.Tensor, i: int) -> torch.Tensor:
    """Item ``i`` of a batch, the last one for a shorter batch (a single guide for all)."""
    return batch[min(i, batch.shape[0] - 1)]


def to_nchw(hwc: torch.Tensor) -> torch.Tensor:
    """``[H, W, 3]`` -> ``(1, 3, H, W)``."""
    return hwc.permute(2, 0, 1)[None].contiguous()


def to_bhwc(images: list[torch.Tensor]) -> torch.Tensor:
    """``(1, 3, H, W)`` pictures -> one ComfyUI IMAGE ``[B, H, W, 3]`` float32 in 0..1."""
    return torch.cat([im.detach().float().cpu().clamp(0, 1) for im in images]).permute(0, 2, 3, 1)


def u8_of(rgb: torch.Tensor) -> np.ndarray:
    """The 8-bit picture a PNG of ``rgb`` ((1, 3, H, W) or ``[H, W, 3]``) holds."""
    return to_uint8(rgb if rgb.ndim == 4 else to_nchw(rgb))


def pixels_sha(rgb: torch.Tensor) -> str:
    """The hash of a picture's 8-bit pixels (what a saved PNG holds)."""
    arr = u8_of(rgb)
    return hashlib.sha256(repr(arr.shape).encode() + arr.tobytes()).hexdigest()


def stored(arr: np.ndarray, kind: str) -> FileRef:
    """An 8-bit picture (``H, W, 3`` RGB or ``H, W`` grey) written once into our input folder,
    named by its content, as the file a job reads (path and hash)."""
    mode = "L" if arr.ndim == 2 else "RGB"
    digest = hashlib.sha256(mode.encode() + repr(arr.shape).encode() + arr.tobytes()).hexdigest()
    path = folder("input") / f"{kind}-{digest[:20]}.png"
    if not path.is_file():
        im = Image.fromarray(np.ascontiguousarray(arr), mode)
        atomic_write(path, lambda f: im.save(f, format="PNG"))
    return FileRef.of(path)


def store_image(hwc: torch.Tensor, kind: str = "start") -> FileRef:
    return stored(u8_of(hwc), kind)


def store_mask(hw: torch.Tensor) -> FileRef:
    grey = np.clip(np.rint(hw.numpy() * 255.0), 0, 255).astype(np.uint8)
    return stored(grey, "mask")
