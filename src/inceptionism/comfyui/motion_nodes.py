"""The pack's motion nodes: a zoom loop from a picture, and the frames of a video dreamed in
order with the previous dream mixed into each start. Both hand their frames to the job layer
(``FrameRun``/``zoom_loop``, ``video_start``, ``dream_job``) as the command line does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import torch

from inceptionism.comfyui import host
from inceptionism.comfyui.nodes import (
    CATEGORY,
    FROM_LOADER,
    MODEL,
    RECIPE,
    Recipes,
    common_inputs,
    dream_config,
    handle_of,
    preset_values,
)
from inceptionism.engine.loop import Progress
from inceptionism.io.image import load_image, read_recipe, to_uint8
from inceptionism.io.video import frame_numbers
from inceptionism.jobs.job import FileRef, Job, Start, photo_start
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import Frames, RunContext, dream_job, video_start
from inceptionism.motion.frames import MOTION_DEFAULTS, FrameRun, frame_config, run_settings
from inceptionism.motion.sequential import zoom_loop


class ZoomLoop:
    """Frame 1 is the picture dreamed; frame k+1 is frame k zoomed, rotated and shifted, then
    dreamed. The frames are written with their recipes into output/inceptionism/zoom-*/."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": (MODEL,), "image": ("IMAGE",),
            "frames": ("INT", {"default": 8, "min": 1, "max": 10_000}),
            "zoom": ("FLOAT", {"default": 1.05, "min": 0.5, "max": 2.0, "step": 0.01}),
            "rotate": ("FLOAT", {"default": 0.0, "min": -180.0, "max": 180.0, "step": 0.5}),
            "shift_x": ("FLOAT", {"default": 0.0, "min": -512.0, "max": 512.0, "step": 0.5}),
            "shift_y": ("FLOAT", {"default": 0.0, "min": -512.0, "max": 512.0, "step": 0.5}),
            **common_inputs(motion=True),
        }}  # fmt: skip

    RETURN_TYPES = ("IMAGE", RECIPE)
    RETURN_NAMES = ("frames", "recipe")
    FUNCTION = "zoom"
    CATEGORY = CATEGORY

    def zoom(
        self,
        model: Any,
        image: Any,
        frames: int = 8,
        zoom: float = 1.05,
        rotate: float = 0.0,
        shift_x: float = 0.0,
        shift_y: float = 0.0,
        preset: str = FROM_LOADER,
        layers: str = "",
        seed: int = 0,
        **values: Any,
    ) -> tuple[torch.Tensor, Recipes]:
        handle = handle_of(model)
        shift = (float(shift_x), float(shift_y))
        with host.gradients():
            images = host.image_batch(image)
            config = dream_config(handle, preset, layers, preset_values(values), MOTION_DEFAULTS,
                                  seed=seed)  # fmt: skip
            context = RunContext(handle.model)
            bar = host.StepBar(len(images) * frames, config.octaves * config.steps)
            out: list[torch.Tensor] = []
            recipes: list[dict[str, Any]] = []
            for i in range(len(images)):
                first = photo_start(host.store_image(images[i]).path, quantize=True)
                assert first.source is not None
                settings = run_settings("zoom", config, context, source=first.source.input,
                                        source_sha256=first.source.sha256,
                                        size=list(first.size or ()), zoom=zoom, rotate=rotate,
                                        shift=list(shift))  # fmt: skip
                folder = host.folder("output") / f"zoom-{uuid.uuid4().hex[:12]}"
                live = _offset(bar, i * frames - 1)
                run = FrameRun(folder, frames, settings, context, live=live)
                zoom_loop(first, config, run, zoom, rotate, shift)
                _read_frames(run, out, recipes)
            bar.advance(bar.total)
            return host.to_bhwc(out), Recipes.of(recipes, out)


def _offset(bar: host.StepBar, offset: int) -> Callable[[int], Callable[[Progress], None]]:
    """Frame k's progress callback: the bar's job ``offset + k``."""
    return lambda k: bar.job(offset + k)


def _read_frames(run: FrameRun, out: list[torch.Tensor], recipes: list[dict[str, Any]]) -> None:
    """A finished frames folder read back: each frame as saved (8-bit) and its recipe."""
    for k in frame_numbers(run.folder):
        path = run.path(k)
        out.append(load_image(path).rgb)
        recipes.append(read_recipe(path))


class DreamFrames:
    """Dream the frames of a video (an IMAGE batch, one frame each), in order: each start mixes
    in the previous dream by ``blend`` (with ``flow``: its detail moved along the optical flow,
    which needs OpenCV), so the dream holds still where the scene does."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "model": (MODEL,), "frames": ("IMAGE",),
                "blend": ("FLOAT", {"default": 0.5, "min": 0.0, "max": 1.0, "step": 0.05}),
                "flow": ("BOOLEAN", {"default": False}),
                **common_inputs(motion=True),
            },
            "optional": {"mask": ("MASK",)},
        }  # fmt: skip

    RETURN_TYPES = ("IMAGE", RECIPE)
    RETURN_NAMES = ("frames", "recipe")
    FUNCTION = "dream_frames"
    CATEGORY = CATEGORY

    def dream_frames(
        self,
        model: Any,
        frames: Any,
        blend: float = 0.5,
        flow: bool = False,
        preset: str = FROM_LOADER,
        layers: str = "",
        seed: int = 0,
        mask: Any = None,
        **values: Any,
    ) -> tuple[torch.Tensor, Recipes]:
        handle = handle_of(model)
        with host.gradients():
            clip = host.image_batch(frames, "frames")
            masks = host.mask_batch(mask) if mask is not None else None
            config = dream_config(handle, preset, layers, preset_values(values), MOTION_DEFAULTS,
                                  seed=seed)  # fmt: skip
            context = RunContext(handle.model)
            settings = run_settings("video", config, context, blend=blend, flow=flow,
                                    frames=len(clip))  # fmt: skip
            bar = host.StepBar(len(clip), config.octaves * config.steps)
            held = Frames()  # the source frames and the last dream, for the job layer's mix
            source = FileRef("comfyui frames", f"comfyui-frames-{uuid.uuid4().hex}")
            out: list[torch.Tensor] = []
            recipes: list[dict[str, Any]] = []
            for k in range(1, len(clip) + 1):
                held.video[(source.path, k)] = host.u8_of(clip[k - 1])
                held.video.pop((source.path, k - 2), None)
                start_rgb = clip[k - 1]
                if k > 1 and blend > 0:
                    previous = FileRef("previous dream", "comfyui-previous")
                    held.dreams = {previous.path: to_uint8(out[-1])}
                    h, w = clip.shape[1:3]
                    video = Start("video", source, (w, h), frame=k, previous=previous,
                                  blend=blend, flow=flow)  # fmt: skip
                    start_rgb = video_start(video, held)[0].permute(1, 2, 0)
                start = photo_start(host.store_image(start_rgb, "frame").path)
                job = Job(frame_config(config, k), start, kind="frame", label=f"frame {k}",
                          index=k, motion=settings,
                          mask=host.store_mask(host.pick(masks, k - 1))
                          if masks is not None else None)  # fmt: skip
                out.append(dream_job(job, context, bar.job(k - 1)).rgb)
                recipes.append(job_recipe(job, handle.model))
            bar.advance(bar.total)
            return host.to_bhwc(out), Recipes.of(recipes, out)
