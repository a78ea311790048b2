"""inceptionism's ComfyUI node pack: DeepDream, zoom loops, dreamed video frames, feature
visualisation and recipes, as nodes over the same jobs the command line runs.

ComfyUI loads ``NODE_CLASS_MAPPINGS`` and ``NODE_DISPLAY_NAME_MAPPINGS`` from a folder in its
``custom_nodes/``; ``python -m inceptionism.comfyui install COMFYUI_FOLDER`` writes that folder
(see docs/comfyui.md). Importing this package needs no ComfyUI: its modules are looked up
when a node runs.
"""

from __future__ import annotations

from inceptionism.comfyui.motion_nodes import DreamFrames, ZoomLoop
from inceptionism.comfyui.nodes import Dream, FeatureVis, LoadModel, ModelHandle, Recipes
from inceptionism.comfyui.recipe_nodes import LoadRecipe, SaveWithRecipe

NODE_CLASS_MAPPINGS = {
    "InceptionismLoadModel": LoadModel,
    "InceptionismDream": Dream,
    "InceptionismZoomLoop": ZoomLoop,
    "InceptionismDreamFrames": DreamFrames,
    "InceptionismFeatureVis": FeatureVis,
    "InceptionismLoadRecipe": LoadRecipe,
    "InceptionismSaveWithRecipe": SaveWithRecipe,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "InceptionismLoadModel": "Load DeepDream model",
    "InceptionismDream": "DeepDream",
    "InceptionismZoomLoop": "DeepDream zoom loop",
    "InceptionismDreamFrames": "DeepDream video frames",
    "InceptionismFeatureVis": "Feature visualisation (lucid)",
    "InceptionismLoadRecipe": "Load recipe from PNG",
    "InceptionismSaveWithRecipe": "Save PNG with recipe",
}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "ModelHandle", "Recipes"]
