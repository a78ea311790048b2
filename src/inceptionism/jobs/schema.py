"""The recipe's schema: every field each section may hold (anything else is refused by name:
a recipe from a newer version, or crafted, is not half-read), the motion settings' one
declaration, and the limits on a recipe's shape (nesting, list and text lengths)."""

from __future__ import annotations

import re
from typing import Any

from inceptionism.errors import ConfigError

RECIPE_FORMAT = 2
MAX_DEPTH = 8
MAX_OCTAVES = 64  # an octave file's number
# Every field a recipe may hold, per section; anything else is refused by name (a recipe from
# a newer version, or crafted, is not half-read).
TOP_FIELDS = frozenset({
    "format", "kind", "inceptionism", "torch", "model", "weights_sha256", "weights_file",
    "device", "environment", "network", "config", "start", "guide", "mask", "label", "index",
    "motion", "crossfade", "featurevis", "octave", "executor", "hub",
    "source",  # format 1
})  # fmt: skip
START_FIELDS = frozenset({
    "kind", "source", "size", "max_size", "max_pixels", "quantize", "previous", "frame",
    "t_start", "t_end", "blend", "flow", "zoom", "rotate", "shift",
})  # fmt: skip
REF_FIELDS = frozenset({"input", "path", "sha256"})
V1_SOURCE_FIELDS = REF_FIELDS | {"max_size", "max_pixels", "size"}
# What a zoom or video run records in each frame's recipe as ``motion``: the settings every
# frame shares, which a resumed run must match. One declaration: the recipe schema knows these
# fields, and motion.frames.run_settings refuses to write any other.
MOTION_SETTINGS = {
    "command": "zoom or video",
    "config": "the DreamConfig every frame shares (each frame adds its seed)",
    "model": "the network's name",
    "weights_sha256": "its weights' hash",
    "source": "the first frame's photo (zoom) or the video, as given",
    "source_sha256": "its hash",
    "size": "the zoom's frame size",
    "zoom": "the zoom factor per frame",
    "rotate": "degrees per frame",
    "shift": "pixels per frame, DX,DY",
    "blend": "the previous dream's weight in the next frame's start (video)",
    "flow": "whether the dream's detail follows the optical flow",
    "start": "the video's first second",
    "end": "its last",
    "max_size": "the frames' downscaled long side",
    "fps": "frames a second of the clip",
    "frames": "how many frames (a clip from ComfyUI)",
    "burn_in": "frames each chunk dreams early (a video dreamed in chunks)",
    "crossfade": "frames over which one chunk fades into the next",
}
MOTION_FIELDS = frozenset(MOTION_SETTINGS)
SECTION_FIELDS = {
    "network": frozenset({"input_norm", "input_range", "size", "checkpoint"}),
    "crossfade": frozenset({"weight", "previous"}),
    "executor": frozenset({"kind", "worker", "threads"}),
    "environment": frozenset({"torch", "device", "cpu", "onednn", "gpu", "cuda"}),
    "featurevis": frozenset({"featurevis", "units", "index"}),
    "motion": MOTION_FIELDS,
    "hub": frozenset({"repo", "revision", "commit", "architecture"}),  # a Hub model's origin
}
MAX_TEXT = 4096  # characters of any one string in a recipe
MAX_FRAME = 10_000_000
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class RecipeError(ConfigError):
    """A recipe that does not fit the schema."""

    def __init__(self, message: str):
        super().__init__(f"recipe: {message}")


def known(section: Any, allowed: frozenset[str], where: str) -> None:
    """Refuse, by name, a field the schema does not have (sections that are not objects are
    left to their own checks)."""
    if isinstance(section, dict):
        unknown = sorted(str(k) for k in section if k not in allowed)
        if unknown:
            shown = ", ".join(f"'{where}{k}'"[:80] for k in unknown[:3])
            more = f" (and {len(unknown) - 3} more)" if len(unknown) > 3 else ""
            raise RecipeError(f"unknown field {shown}{more}")


def check_fields(data: dict[str, Any]) -> None:
    """Every field of every section is one the schema knows."""
    known(data, TOP_FIELDS, "")
    for key, allowed in SECTION_FIELDS.items():
        known(data.get(key), allowed, f"{key}.")
    for key in ("guide", "mask"):
        known(data.get(key), REF_FIELDS, f"{key}.")
    start = data.get("start")
    known(start, START_FIELDS, "start.")
    if isinstance(start, dict):
        for key in ("source", "previous"):
            known(start.get(key), REF_FIELDS, f"start.{key}.")
    fade = data.get("crossfade")
    if isinstance(fade, dict):
        known(fade.get("previous"), REF_FIELDS, "crossfade.previous.")
    known(data.get("source"), V1_SOURCE_FIELDS, "source.")


def check_depth(obj: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise RecipeError(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(obj, dict):
        for v in obj.values():
            check_depth(v, depth + 1)
    elif isinstance(obj, list):
        if len(obj) > 1000:
            raise RecipeError("a list of over 1000 items")
        for v in obj:
            check_depth(v, depth + 1)
    elif isinstance(obj, str) and len(obj) > MAX_TEXT:
        raise RecipeError(f"a text of over {MAX_TEXT} characters")
