"""The web studio's logic: :class:`Studio`, what the Gradio page (studio/app.py) calls.

It is usable without a browser or Gradio (the tests call it directly): one loaded model per
name, reused; one dream at a time (Gradio's queue, and a lock per model); previews at every
octave's end; cancel per visitor; results written as PNGs with their recipe (through
jobs/write) into a folder the studio owns and removes on exit; a recipe (pasted JSON or a
dropped PNG) turned back into the controls' values. Uploads arrive as files in Gradio's own
cache and are read with the project's loader and its pixel limit: no path from the browser is
ever opened.

The parts: studio/controls.py (what the page sends, the bounds), studio/base.py (models, the
job, a dream, cancel), studio/sheets.py (sweep, atlas, channels), studio/motion.py (zoom,
video), studio/recipe.py (recipes in and out), studio/trained.py (trained networks offered).
"""

from __future__ import annotations

import os

from inceptionism.studio.controls import (
    ADVANCED,
    MAX_CELLS,
    MAX_FRAMES,
    PRESET_FIELDS,
    RECIPE_FIELDS,
    RESULT_LIFETIME,
    SLIDERS,
    SOURCES,
    Controls,
    Limits,
)
from inceptionism.studio.motion import Motion
from inceptionism.studio.recipe import controls_from_recipe, public, scrubbed
from inceptionism.studio.sheets import Sheets

__all__ = [
    "ADVANCED", "MAX_CELLS", "MAX_FRAMES", "PRESET_FIELDS", "RECIPE_FIELDS", "RESULT_LIFETIME",
    "SLIDERS", "SOURCES", "Controls", "Limits", "Studio", "public", "scrubbed",
]  # fmt: skip


class Studio(Sheets, Motion):
    """``Studio(limits, device, trained=[...])``: ``trained`` names checkpoints written by
    `inceptionism train` (``mynet.pt`` with ``mynet.json``), or folders holding them, offered
    in the model list by their metadata's name."""

    def controls_from_recipe(self, png: str | None, text: str | None) -> Controls:
        """The controls that re-create a recipe: from a dropped PNG or pasted JSON, checked
        against the recipe schema (a recipe never names code the studio would run)."""
        return controls_from_recipe(png, text, self.limits.max_side, self.offers)


os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
