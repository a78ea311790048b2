"""The recipe nodes: save pictures as PNGs that carry their recipes (``inceptionism replay``
re-creates them pixel for pixel), and load a PNG's picture and recipe back into a workflow."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import torch

from inceptionism.comfyui import host
from inceptionism.comfyui.host import NodeInputError
from inceptionism.comfyui.nodes import CATEGORY, RECIPE, Recipes
from inceptionism.errors import ImageError
from inceptionism.io.image import LoadedImage, load_image, read_recipe, save_image
from inceptionism.jobs.recipes import read_job
from inceptionism.jobs.write import write_image

log = logging.getLogger(__name__)


class SaveWithRecipe:
    """Write each picture as a PNG into ComfyUI's output folder, with its recipe where the
    picture is still the one the recipe makes (a picture changed since is saved without one)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {"images": ("IMAGE",),
                         "filename_prefix": ("STRING", {"default": "inceptionism/dream"})},
            "optional": {"recipe": (RECIPE,)},
        }  # fmt: skip

    RETURN_TYPES = ()
    FUNCTION = "save"
    OUTPUT_NODE = True
    CATEGORY = CATEGORY

    def save(
        self, images: Any, filename_prefix: str = "inceptionism/dream", recipe: Any = None
    ) -> dict[str, Any]:
        batch = host.image_batch(images, "images")
        if recipe is not None and not isinstance(recipe, Recipes):
            raise NodeInputError(f"recipe: expected an {RECIPE}, got {type(recipe).__name__}")
        items = recipe.items if recipe is not None else ()
        folder, name, counter, subfolder = save_path(filename_prefix, batch)
        shown = []
        for i in range(len(batch)):
            rgb = host.to_nchw(batch[i])
            data = None
            if i < len(items):
                data, pixels = items[i]
                if host.pixels_sha(rgb) != pixels:
                    log.warning("inceptionism: picture %d changed since it was dreamed; saved "
                                "without its recipe", i + 1)  # fmt: skip
                    data = None
            file = f"{name}_{counter + i:05}_.png"
            target, picture = Path(folder) / file, LoadedImage(rgb)
            if data is None:  # a picture without its recipe: a plain PNG
                save_image(picture, target)
            else:
                write_image(target, picture, data)
            shown.append({"filename": file, "subfolder": subfolder, "type": "output"})
        return {"ui": {"images": shown}}


def save_path(prefix: str, batch: torch.Tensor) -> tuple[str, str, int, str]:
    """ComfyUI's (folder, name, counter, subfolder) for a prefix in its output folder."""
    import folder_paths  # ComfyUI's; present wherever the node runs

    h, w = batch.shape[1:3]
    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        prefix, folder_paths.get_output_directory(), w, h
    )
    Path(folder).mkdir(parents=True, exist_ok=True)
    return folder, name, counter, subfolder


class LoadRecipe:
    """A PNG made by inceptionism (in ComfyUI's input folder): its picture, its recipe (the
    base of a Dream node's settings, or saved again) and the recipe as JSON text."""

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {"required": {"image": (input_pngs(), {"image_upload": True})}}

    RETURN_TYPES = ("IMAGE", RECIPE, "STRING")
    RETURN_NAMES = ("image", "recipe", "settings")
    FUNCTION = "load"
    CATEGORY = CATEGORY

    def load(self, image: str) -> tuple[torch.Tensor, Recipes, str]:
        path = input_path(image)
        data = read_recipe(path)
        read_job(data, path)  # checked against the schema before anything uses it
        rgb = load_image(path).rgb
        return host.to_bhwc([rgb]), Recipes.of([data], [rgb]), json.dumps(data, indent=1)

    @classmethod
    def IS_CHANGED(cls, image: str) -> str:
        return hashlib.sha256(input_path(image).read_bytes()).hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, image: str) -> bool | str:
        try:
            input_path(image)
        except ImageError as e:
            return str(e)
        return True


def input_pngs() -> list[str]:
    """The PNGs in ComfyUI's input folder (ComfyUI's own LoadImage lists every picture)."""
    try:
        import folder_paths
    except ImportError:
        return []
    base = Path(folder_paths.get_input_directory())
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def input_path(name: str) -> Path:
    """A file named by the widget, found the way ComfyUI finds its inputs."""
    import folder_paths

    if not isinstance(name, str) or not folder_paths.exists_annotated_filepath(name):
        raise ImageError(f"{name}: no such file in ComfyUI's input folder")
    return Path(folder_paths.get_annotated_filepath(name))
