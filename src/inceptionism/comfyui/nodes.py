"""The pack's model loader and its still-picture nodes, Dream and Feature visualisation (the
motion nodes are in motion_nodes.py), and the widgets they share. Each node is a thin shell: it
turns its widgets into a :class:`DreamConfig` (or a :class:`FeatureVisConfig`), its tensors into
the files a :class:`Job` reads, and hands the jobs to the job layer (``dream_job``,
``render_featurevis``), inside :func:`host.gradients` since ComfyUI runs nodes under
``torch.inference_mode()``.

Every picture comes with its recipe (the ``INCEPTIONISM_RECIPE`` output): the Save node writes
it into the PNG, and ``inceptionism replay`` re-creates the picture from it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from inceptionism.comfyui import host
from inceptionism.comfyui.host import NodeInputError
from inceptionism.engine.config import MAX_SEED, MAX_STEPS, PRESETS, DreamConfig
from inceptionism.engine.loop import resolve_objective
from inceptionism.featurevis.render import (
    FEATUREVIS_PRESETS,
    MAX_RENDER_PIXELS,
    FeatureVisConfig,
    Rendering,
)
from inceptionism.jobs.job import Job, blank_start, photo_start
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import RunContext, dream_job, render_featurevis
from inceptionism.models import DreamModel, get_model, list_models
from inceptionism.motion.frames import MOTION_DEFAULTS

CATEGORY = "inceptionism"
MODEL = "INCEPTIONISM_MODEL"
RECIPE = "INCEPTIONISM_RECIPE"
FROM_LOADER = "(loader's)"
_LOADED: dict[tuple[str, str], DreamModel] = {}  # models stay loaded between runs


@dataclass(frozen=True)
class ModelHandle:
    """What the loader hands on: a loaded model and the preset the dreaming nodes default to."""

    model: DreamModel
    preset: str = "default"


@dataclass(frozen=True)
class Recipes:
    """One recipe per picture of a batch, with the hash of the 8-bit pixels it makes: the Save
    node writes a recipe only into the picture it belongs to."""

    items: tuple[tuple[dict[str, Any], str], ...]

    @classmethod
    def of(cls, recipes: list[dict[str, Any]], images: list[torch.Tensor]) -> Recipes:
        return cls(tuple((r, host.pixels_sha(im)) for r, im in zip(recipes, images)))


def handle_of(value: Any) -> ModelHandle:
    if not isinstance(value, ModelHandle):
        raise NodeInputError(f"model: expected the output of 'Load DeepDream model', got "
                             f"{type(value).__name__}")  # fmt: skip
    return value


# --- widgets -------------------------------------------------------------------------------------

# 0 (or -1 for jitter) means "the preset's value": a preset's step size may be in 0-255 units.
_PRESET_FIELDS = {
    "steps": ("INT", {"default": 0, "min": 0, "max": MAX_STEPS, "tooltip": "0: the preset's"}),
    "octaves": ("INT", {"default": 0, "min": 0, "max": 32, "tooltip": "0: the preset's"}),
    "octave_scale": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 4.0, "step": 0.05,
                               "tooltip": "0: the preset's"}),
    "step_size": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 100.0, "step": 0.001,
                            "tooltip": "pixel change per step; 0: the preset's"}),
    "jitter": ("INT", {"default": -1, "min": -1, "max": 1024, "tooltip": "-1: the preset's"}),
}  # fmt: skip


def common_inputs(motion: bool = False) -> dict[str, Any]:
    fields = dict(_PRESET_FIELDS)
    if motion:  # a frame needs less than a still (MOTION_DEFAULTS), as on the command line
        fields = {k: (t, {**o, "tooltip": f"0: {MOTION_DEFAULTS[k]}"} if k in MOTION_DEFAULTS
                      else o) for k, (t, o) in fields.items()}  # fmt: skip
    return {
        "preset": ([FROM_LOADER, *PRESETS],),
        "layers": ("STRING", {"default": "", "tooltip": 'objective, e.g. "block12,block14:37=2";'
                              " empty: the model's curated layers"}),
        **fields,
        "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED}),
    }  # fmt: skip


def dream_config(
    handle: ModelHandle,
    preset: str,
    layers: str,
    values: dict[str, Any],
    defaults: dict[str, Any] | None = None,
    base: DreamConfig | None = None,
    **fixed: Any,
) -> DreamConfig:
    """The widgets' config: ``base`` (a loaded recipe's) or the preset's, then ``defaults``,
    then every widget not left at "the preset's"; checked against the model's layer table."""
    name = handle.model.name
    if base is None or base.model != name:
        base = DreamConfig.preset(handle.preset if preset == FROM_LOADER else preset, model=name)
    changes: dict[str, Any] = dict(defaults or {})
    for key, value in values.items():
        unset = value == -1 if key == "jitter" else value == 0
        if not unset:
            changes[key] = value
    if layers.strip():
        changes["layers"] = layers.strip()
    config = base.replace(**changes, **fixed)
    resolve_objective(handle.model, config)
    return config


def preset_values(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The preset-backed widgets among a node's keyword inputs (anything else is refused)."""
    unknown = sorted(set(kwargs) - set(_PRESET_FIELDS))
    if unknown:
        raise NodeInputError(f"unknown inputs {unknown}; valid: {', '.join(_PRESET_FIELDS)}")
    return kwargs


# --- nodes ---------------------------------------------------------------------------------------


class LoadModel:
    """A registered network with its embedded or cached weights, built once and kept loaded."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"model": (list_models(), {"default": DreamConfig().model}),
                         "preset": (list(PRESETS), {"default": "default"})},
            "optional": {"model_id": ("STRING", {"default": "", "tooltip": "any model name "
                                      "the command line takes (hf:ORG/NAME where the Hub is "
                                      "supported); wins over the list"})},
        }  # fmt: skip

    RETURN_TYPES = (MODEL,)
    RETURN_NAMES = ("model",)
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, model: str, preset: str = "default", model_id: str = "") -> tuple[ModelHandle]:
        if preset not in PRESETS:
            DreamConfig.preset(preset)  # the error lists the presets
        model = model_id.strip() or model
        device = host.torch_device()
        key = (model, str(device))
        if key not in _LOADED:
            with host.gradients():  # a model built under inference mode gives no gradients
                _LOADED[key] = get_model(model, device=device)
        return (ModelHandle(_LOADED[key], preset),)


class Dream:
    """DeepDream every picture of an IMAGE batch; optional guide image and mask."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"model": (MODEL,), "image": ("IMAGE",), **common_inputs()},
            "optional": {
                "guide": ("IMAGE", {"tooltip": "dream towards this picture's features"}),
                "mask": ("MASK", {"tooltip": "dream where the mask is white"}),
                "keep_colors": ("BOOLEAN", {"default": False}),
                "recipe": (RECIPE, {"tooltip": "a loaded recipe: its settings are the base"}),
            },
        }

    RETURN_TYPES = ("IMAGE", RECIPE)
    RETURN_NAMES = ("images", "recipe")
    FUNCTION = "dream"
    CATEGORY = CATEGORY

    def dream(
        self,
        model: Any,
        image: Any,
        preset: str = FROM_LOADER,
        layers: str = "",
        seed: int = 0,
        guide: Any = None,
        mask: Any = None,
        keep_colors: bool = False,
        recipe: Any = None,
        **values: Any,
    ) -> tuple[torch.Tensor, Recipes]:
        handle = handle_of(model)
        with host.gradients():
            images = host.image_batch(image)
            guides = host.image_batch(guide, "guide") if guide is not None else None
            masks = host.mask_batch(mask) if mask is not None else None
            base = _recipe_config(recipe)
            fixed: dict[str, Any] = {"seed": seed, "keep_colors": keep_colors}
            if guides is not None:
                fixed["objective"] = "guide"
            config = dream_config(handle, preset, layers, preset_values(values), base=base, **fixed)
            context = RunContext(handle.model)
            bar = host.StepBar(len(images), config.octaves * config.steps)
            results, recipes = [], []
            for i in range(len(images)):
                start = photo_start(host.store_image(images[i]).path)
                job = Job(config, start, label="comfyui",
                          guide=host.store_image(host.pick(guides, i), "guide")
                          if guides is not None else None,
                          mask=host.store_mask(host.pick(masks, i))
                          if masks is not None else None)  # fmt: skip
                results.append(dream_job(job, context, bar.job(i)).rgb)
                recipes.append(job_recipe(job, handle.model))
            bar.advance(bar.total)
            return host.to_bhwc(results), Recipes.of(recipes, results)


def _recipe_config(recipe: Any) -> DreamConfig | None:
    if recipe is None:
        return None
    if not isinstance(recipe, Recipes) or not recipe.items:
        raise NodeInputError("recipe: expected the output of 'Load recipe from PNG'")
    config = DreamConfig.from_dict(recipe.items[0][0]["config"])
    if config.objective == "guide":  # the guide is an input of its own; without one, the default
        config = config.replace(objective=DreamConfig.objective)
    return config


_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_channels(text: str) -> list[int]:
    """ "0-7", "3, 5, 9" or a mix: channel numbers in the order given."""
    channels: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        m = _RANGE.match(part)
        if m:
            lo, hi = int(m[1]), int(m[2])
            if hi < lo or hi - lo >= 256:
                raise NodeInputError(f"channels: {part!r} is not a range of 1 to 256 channels")
            channels.extend(range(lo, hi + 1))
        elif part.isdigit():
            channels.append(int(part))
        else:
            raise NodeInputError(f"channels: {part!r} is not a number or a range such as 0-7")
    if not channels:
        raise NodeInputError("channels: name at least one, e.g. 0-7")
    return channels


def unit_of(model: DreamModel, spec: str) -> str:
    """A unit checked against the model's layer table, in canonical form."""
    return str(resolve_objective(model, DreamConfig(model=model.name, layers=spec)))


class FeatureVis:
    """One picture per channel of a layer, rendered from noise with the lucid recipe (Fourier
    parameterisation, decorrelated colour, robustness transforms, Adam): what the unit sees."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {
            "model": (MODEL,),
            "layer": ("STRING", {"default": "block6"}),
            "channels": ("STRING", {"default": "0-3", "tooltip": '"0-7" or "3, 5, 9"'}),
            "preset": (list(FEATUREVIS_PRESETS), {"default": "lucid"}),
            "steps": ("INT", {"default": 0, "min": 0, "max": 10_000, "tooltip": "0: preset's"}),
            "size": ("INT", {"default": 128, "min": 16, "max": 1024, "step": 16}),
            "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED}),
        }}  # fmt: skip

    RETURN_TYPES = ("IMAGE", RECIPE)
    RETURN_NAMES = ("images", "recipe")
    FUNCTION = "render"
    CATEGORY = CATEGORY

    def render(
        self,
        model: Any,
        layer: str = "block6",
        channels: str = "0-3",
        preset: str = "lucid",
        steps: int = 0,
        size: int = 128,
        seed: int = 0,
    ) -> tuple[torch.Tensor, Recipes]:
        handle = handle_of(model)
        name = handle.model.name
        units = [unit_of(handle.model, f"{layer.strip()}:{c}") for c in parse_channels(channels)]
        # as many units per pass as the preset's batch, the pixel bound and the units allow
        batch = min(FEATUREVIS_PRESETS.get(preset, FeatureVisConfig()).batch, len(units),
                    MAX_RENDER_PIXELS // size**2)  # fmt: skip
        overrides: dict[str, Any] = {"size": size, "seed": seed, "batch": max(1, batch)}
        if steps:
            overrides["steps"] = steps
        fv = FeatureVisConfig.preset(preset, **overrides)
        start = blank_start("noise", (size, size))
        jobs = [
            Job(
                DreamConfig(model=name, layers=unit, seed=seed),
                start,
                label=unit,
                index=i,
                featurevis=Rendering(fv, tuple(units), i),
            )
            for i, unit in enumerate(units)
        ]
        with host.gradients():
            bar = host.StepBar(1, -(-len(units) // fv.batch) * fv.steps)
            images = render_featurevis(jobs, RunContext(handle.model), bar.job(0))
            rgbs = [im.rgb for im in images]
            bar.advance(bar.total)
            recipes = [job_recipe(job, handle.model) for job in jobs]
            return host.to_bhwc(rgbs), Recipes.of(recipes, rgbs)
