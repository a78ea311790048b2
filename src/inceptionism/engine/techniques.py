"""Steering helpers around the loop: start images, guide features, masks, colour keeping."""

from __future__ import annotations

import torch

from inceptionism.errors import ConfigError
from inceptionism.models import DreamModel
from inceptionism.ops.gradients import gaussian_blur
from inceptionism.ops.octaves import resize

GUIDE_MAX_SIDE = 512  # guide images are looked at no larger than this (long side)


def start_image(init: str, height: int, width: int, seed: int) -> torch.Tensor:
    """A (1, 3, H, W) start: ``noise`` is the seeds' ``uniform(0, 1) + 100`` on 0-255 (a grey
    with faint noise), seeded; ``grey`` is flat mid-grey."""
    if height < 1 or width < 1:
        raise ConfigError(f"start image size must be positive, got {width}x{height}")
    if init == "noise":
        gen = torch.Generator().manual_seed(seed)
        return (torch.rand(1, 3, height, width, generator=gen) + 100.0) / 255.0
    if init == "grey":
        return torch.full((1, 3, height, width), 0.5)
    raise ConfigError(f"no start image for init {init!r} (use noise or grey, or give a photo)")


@torch.no_grad()
def guide_features(
    model: DreamModel, guide: torch.Tensor, layers: list[str]
) -> dict[str, torch.Tensor]:
    """Each layer's activation vectors of the guide image, (M, C), computed once per dream."""
    h, w = guide.shape[-2:]
    if max(h, w) > GUIDE_MAX_SIDE:
        k = GUIDE_MAX_SIDE / max(h, w)
        guide = torch.nn.functional.interpolate(
            guide, size=(max(1, round(h * k)), max(1, round(w * k))), mode="area"
        )
    acts = model.activations(guide.to(model.device, model.mean.dtype), layers)  # type: ignore[arg-type]
    feats = {}
    for name, a in acts.items():
        if a.ndim != 4:
            raise ConfigError(f"layer {name!r} has no spatial grid; a guide needs grid layers")
        feats[name] = a.flatten(2).transpose(1, 2).reshape(-1, a.shape[1]).contiguous()
    return feats


def prepare_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A (1, 1, H, W) weight in [0, 1] from a mask image (white = dream), softened a little so
    the dream fades in rather than stopping at a hard edge."""
    if mask.ndim == 3:
        mask = mask[None]
    if mask.shape[1] == 3:  # luminance of an RGB mask
        mask = 0.299 * mask[:, 0:1] + 0.587 * mask[:, 1:2] + 0.114 * mask[:, 2:3]
    mask = resize(mask.float(), (height, width)).clamp(0, 1)
    sigma = max(1.0, 0.005 * (height**2 + width**2) ** 0.5)
    return gaussian_blur(mask, sigma).clamp(0, 1)


_RGB_TO_YCC = torch.tensor(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]]
)


def keep_colors(dreamed: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """The dream's luminance (Y) with the photo's chroma (Cb, Cr), BT.601 YCbCr."""
    m = _RGB_TO_YCC.to(dreamed)
    y = torch.einsum("ij,njhw->nihw", m[:1], dreamed)
    cbcr = torch.einsum("ij,njhw->nihw", m[1:], photo.to(dreamed))
    out = torch.einsum("ij,njhw->nihw", torch.linalg.inv(m), torch.cat([y, cbcr], dim=1))
    return out.clamp(0, 1)
