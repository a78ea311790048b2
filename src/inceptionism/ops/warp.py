"""Moving pictures between frames: a zoom/rotate/shift about the centre (zoom loops) and an
optical-flow warp of the dream's detail onto the next video frame."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def transform(
    image: torch.Tensor, zoom: float = 1.0, rotate: float = 0.0, shift: tuple[float, float] = (0, 0)
) -> torch.Tensor:
    """Zoom in by ``zoom``, rotate by ``rotate`` degrees (counter-clockwise) about the centre,
    then move the content by ``shift`` (dx, dy) pixels; borders are filled by reflection."""
    _, _, h, w = image.shape
    if zoom == 1 and rotate == 0 and shift == (0, 0):
        return image.clone()
    a = math.radians(rotate)
    cos, sin = math.cos(a) / zoom, math.sin(a) / zoom
    # output pixel -> input pixel, in normalised coordinates (x right, y down, [-1, 1])
    theta = torch.tensor(
        [[cos, sin * h / w, -2 * shift[0] / w], [-sin * w / h, cos, -2 * shift[1] / h]],
        dtype=image.dtype,
    ).unsqueeze(0)
    grid = F.affine_grid(theta, list(image.shape), align_corners=False)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection",
                         align_corners=False)  # fmt: skip


def flow_warp(detail: np.ndarray, prev_frame: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Move ``detail`` (H, W, C float, aligned with ``prev_frame``) to where the scene moved in
    ``frame``: Farneback optical flow from the new frame to the old, then a remap."""
    import cv2

    def grey(rgb: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)

    flow = cv2.calcOpticalFlowFarneback(  # type: ignore[call-overload]
        grey(frame), grey(prev_frame), None, 0.5, 3, 15, 3, 5, 1.2, 0
    )
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(detail.astype(np.float32), xs + flow[..., 0], ys + flow[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)  # fmt: skip
