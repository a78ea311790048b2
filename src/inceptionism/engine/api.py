"""The public ``dream()``: any kind of image in, the same kind out, on a cached model.

Below it is ``engine.dream_tensor`` (tensors in [0, 1]); the shells use the job layer instead.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from inceptionism.engine.config import DreamConfig
from inceptionism.engine.loop import ProgressFn, dream_tensor
from inceptionism.engine.techniques import start_image
from inceptionism.errors import ConfigError
from inceptionism.io.image import LoadedImage, load_image
from inceptionism.models import DreamModel, get_model
from inceptionism.ops.threads import ProcessPolicy


@functools.lru_cache(maxsize=4)
def cached_model(name: str, device: str = "cpu", weights: str | None = None) -> DreamModel:
    """A registered model loaded once per (name, device, weights file) and kept."""
    return get_model(name, weights=weights, device=device)


def as_tensor(image: Any) -> torch.Tensor:
    """Any image kind the API takes -> (1, C, H, W) float tensor in [0, 1] (C = 3, or 1 for a
    greyscale array/tensor). Paths are read with EXIF orientation applied."""
    if isinstance(image, (str, Path)):
        return load_image(image).rgb
    if isinstance(image, Image.Image):
        return LoadedImage.from_pil(image).rgb
    if isinstance(image, np.ndarray):
        arr = image[..., None] if image.ndim == 2 else image
        if arr.ndim != 3 or arr.shape[2] not in (1, 3):
            raise ConfigError(f"expected an (H, W, 3) or (H, W) array, got shape {image.shape}")
        scale = 255.0 if np.issubdtype(arr.dtype, np.integer) else 1.0
        return torch.from_numpy(arr.astype(np.float32) / scale).permute(2, 0, 1)[None]
    if isinstance(image, torch.Tensor):
        t = image[None, None] if image.ndim == 2 else image[None] if image.ndim == 3 else image
        if t.ndim != 4 or t.shape[1] not in (1, 3):
            raise ConfigError(
                f"expected a (C, H, W) or (1, C, H, W) tensor, got {tuple(image.shape)}"
            )
        return t.float()
    raise ConfigError(f"cannot use an object of type {type(image).__name__} as an image")


def _as_mask(mask: Any) -> torch.Tensor:
    """Mask images: luminance times alpha for PIL images and files that carry alpha."""
    if isinstance(mask, (str, Path)):
        return load_image(mask).as_mask()
    if isinstance(mask, Image.Image):
        return LoadedImage.from_pil(mask).as_mask()
    return as_tensor(mask)


def dream(
    image: Any = None,
    model: str | DreamModel | None = None,
    config: DreamConfig | None = None,
    on_progress: ProgressFn | None = None,
    guide: Any = None,
    mask: Any = None,
    size: tuple[int, int] = (512, 512),
    **overrides: Any,
) -> Any:
    """Dream an image; returns the same kind of image it was given.

    ``image``: a path, a PIL image, an (H, W, 3) array (uint8, or float in [0, 1]) or a
    (3, H, W) / (1, 3, H, W) tensor in [0, 1]; or None with ``init="noise"`` or ``"grey"``
    (then ``size`` = (width, height), and a PIL image comes back). With ``init`` noise or grey
    and an image, the start has the image's size and kind. ``model``: a registered name or a
    loaded :class:`DreamModel` (default: ``config.model``). ``guide`` (sets the objective to
    "guide") and ``mask``: images of any of those kinds. ``overrides`` replace config fields::

        from inceptionism import dream, DreamConfig
        out = dream("photo.jpg", config=DreamConfig.preset("keras-classic"), steps=10)
        pattern = dream(init="noise", layers="block12:20", objective="mean", size=(256, 256))
    """
    config = (
        (config or DreamConfig()).replace(**overrides) if overrides else config or DreamConfig()
    )
    if guide is not None and config.objective != "guide":
        config = config.replace(objective="guide")
    if isinstance(model, DreamModel):
        config = config.replace(model=model.name)
    else:
        model = cached_model(model or config.model)
        config = config.replace(model=model.name)
    extras = {
        "guide": None if guide is None else as_tensor(guide),
        "mask": None if mask is None else _as_mask(mask),
    }
    if image is None:
        if config.init == "photo":
            raise ConfigError("no image given; pass one, or use init='noise' or 'grey'")
        start = start_image(config.init, size[1], size[0], config.seed)
        return LoadedImage(
            dream_tensor(start, model, config, on_progress, **extras, hooks=ProcessPolicy()).cpu()
        ).to_pil()
    if isinstance(image, (str, Path)):
        image = load_image(image).to_pil()

    # (1, 3, H, W) start, and how to give the result back in the caller's kind
    if isinstance(image, Image.Image):
        loaded = LoadedImage.from_pil(image)
        start = loaded.rgb

        def back(t: torch.Tensor) -> Any:
            return loaded.with_rgb(t.cpu()).to_pil()

    elif isinstance(image, np.ndarray):
        start = as_tensor(image)
        if start.shape[1] != 3:
            raise ConfigError(f"expected an (H, W, 3) array, got shape {image.shape}")
        dtype = image.dtype

        def back(t: torch.Tensor) -> Any:
            arr = t[0].permute(1, 2, 0).cpu().numpy()
            is_int = np.issubdtype(dtype, np.integer)
            return (arr * 255 + 0.5).astype(dtype) if is_int else arr.astype(dtype)

    elif isinstance(image, torch.Tensor):
        batched = image.ndim == 4
        start = image if batched else image[None]

        def back(t: torch.Tensor) -> Any:
            return t if batched else t[0]

    else:
        raise ConfigError(f"cannot dream an object of type {type(image).__name__}")
    if config.init != "photo":  # a noise or grey start of the image's size, kept in float
        start = start_image(config.init, start.shape[-2], start.shape[-1], config.seed)
    return back(dream_tensor(start, model, config, on_progress, **extras, hooks=ProcessPolicy()))
