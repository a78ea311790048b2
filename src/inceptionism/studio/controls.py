"""What the studio's page sends and what bounds it: :class:`Controls` (every value of one
dream), :class:`Limits` (the server's bounds) and the constants both sides read."""

from __future__ import annotations

from dataclasses import dataclass

from inceptionism.engine.config import DreamConfig

# "auto": the start follows what the visitor gave: an upload wins, else the sample, else noise
SOURCES = ("auto", "upload", "sample", "noise")
RESULT_LIFETIME = 3600  # seconds a result file is kept for download
MAX_CELLS = 36  # cells of one sweep
MAX_FRAMES = 120  # frames of one zoom loop
# The recipe fields the page has sliders for (a preset sets them) and the seed; their defaults
# are DreamConfig's.
SLIDERS = ("step_size", "octaves", "steps", "octave_scale", "jitter")
RECIPE_FIELDS = (*SLIDERS, "seed")
# DreamConfig fields the Dream tab has a control for beyond the sliders (widgets built from the
# field's metadata); None in Controls keeps the preset's (or the replayed recipe's) value.
ADVANCED = ("grad_norm", "detail", "tile", "keep_colors", "precision", "smooth", "tv")
PRESET_FIELDS = (*SLIDERS, *ADVANCED)
_D = DreamConfig()


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = 20.0
    max_pixels: int = 16_000_000  # decoded pixels of an upload
    max_side: int = 1024  # the largest dream the sliders allow
    max_queue: int = 16  # visitors waiting for a dream; more are turned away
    time_limit: float = 900.0  # seconds one dream may run before it is stopped


@dataclass
class Controls:
    """Every value the page sends for a dream."""

    source: str = "auto"
    upload: str | None = None  # a file in Gradio's upload cache
    sample: str = "sample:coffee"
    model: str = _D.model
    layers: list[str] | None = None
    objective: str = ""  # a full objective string (advanced); wins over ``layers`` when given
    preset: str = "default"
    step_size: float = _D.step_size
    octaves: int = _D.octaves
    steps: int = _D.steps
    octave_scale: float = _D.octave_scale
    jitter: int = _D.jitter
    seed: int = _D.seed
    size: int = 512  # long side of the dream
    guide: str | None = None  # a guide image (upload or sample:NAME): the objective "guide"
    mask: str | None = None  # where to dream (white) and where not (black)
    class_: str | None = None  # a class (number, or a trained network's class name)
    grad_norm: str | None = None
    detail: str | None = None
    tile: str | None = None
    keep_colors: bool | None = None
    precision: str | None = None
    smooth: float | None = None
    tv: float | None = None
    # a replayed recipe (JSON): its whole config, the base instead of the preset, so that the
    # fields without a control (detail, clip, pixel range, ...) come back too; and the size
    # of its noise start (a noise start may take a photo's shape)
    recipe: str = ""
