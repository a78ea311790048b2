"""DreamConfig (the whole recipe, frozen), its limits, and the named presets (engine/presets.py).

Pixel space is RGB in [0, 1] for every model (each model normalises its own input), so a step
size means the same thing whatever the network: the Keras seed's 0.01 in [-1, 1] is 0.005 here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from inceptionism.engine.presets import PRESETS
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.models import block_layers
from inceptionism.ops.objectives import STATISTICS, Objective

DEFAULT_MODEL = "efficientnet_lite2"
GRAD_NORMS = ("l1", "std", "laplacian", "laplacian-tf1")
INITS = ("photo", "noise", "grey")
OBJECTIVES = (*STATISTICS, "guide")
DETAIL_MODES = ("photo", "dream", "none")
# pixel_range names -> (low, high): the units a recipe's step size and epsilon are given in.
PIXEL_RANGES = {"unit": (0.0, 1.0), "signed": (-1.0, 1.0), "byte": (0.0, 255.0)}
OCTAVE_RESIZES = ("corners", "half-pixel", "tf1")
PRECISIONS = ("fp32", "bf16", "fp16")  # see precision.py
MAX_SEED = 2**63 - 1  # torch.Generator's range
MAX_JITTER = 100_000
MAX_STEPS = 10_000  # per octave; far beyond any recipe (the seeds use 10-100)
MAX_OCTAVES = 32  # levels under 16 px are dropped anyway; 1.4**32 is a 47,000x shrink
AUTO_TILE = 512  # tile="auto" size: at 2048x1536 a step took 2.4 s with 512, 5.1 s with 1024
AUTO_TILE_ABOVE = 1280  # ... used for levels whose long side exceeds this
MIN_TILE = 64
MAX_TILE = 1 << 16


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    lo: float | None = None,
    hi: float | None = None,
    integer: bool = False,
    flag: str | None = None,
    short: str | None = None,
    vary: bool = True,
    title: bool = False,
) -> Any:
    """A DreamConfig field with the metadata every shell derives its controls from: the help
    text, choices or a numeric range, the CLI spelling (``--step-size`` unless ``flag``), whether
    ``--vary`` may vary it and whether sheet titles show it. Ranges are checked on every config."""
    meta = {"help": help, "choices": choices, "lo": lo, "hi": hi, "integer": integer,
            "flag": flag, "short": short, "vary": vary, "title": title}  # fmt: skip
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class DreamConfig:
    """Every parameter of a dream. Defaults are the curated recipe for the default model."""

    model: str = option(
        DEFAULT_MODEL, "Network; see `inceptionism models` (or your own: FILE.pt, pkg.mod:fn).",
        short="-m", title=True,
    )  # fmt: skip
    # Objective spec "layer=w,layer:channel=w,layer:c@x,y=w" (see objectives.py); None means
    # the model's curated default layers. Stored in canonical form.
    layers: str | None = option(
        None, 'Objective: "LAYER[:C[+C..][@X,Y]][=WEIGHT],..." e.g. "block12,block14:37=2" '
        "(default: the model's curated layers).", short="-l", title=True,
    )  # fmt: skip
    # Per-layer statistic: "l2" (Keras: sum of squares, border excluded, / size), "mean", or
    # "guide" (Google: each activation vector towards its best-matching guide-image vector).
    objective: str = option(
        "l2",
        "Per-layer statistic (guide: needs --guide); mean by default with --init noise "
        "or grey and no --preset.",
        choices=OBJECTIVES,
        title=True,
    )
    # Activation pixels excluded at each edge by the l2 statistic (the Keras seed uses 2).
    border: int = option(
        2, "l2: activation pixels excluded at each edge.", lo=0, hi=1024, integer=True
    )
    # Gradient normalisation: "l1" divides by mean |g| (Keras, Google), "std" by its std (TF),
    # "laplacian" normalises each band of a Laplacian pyramid (TF notebook's lap_normalize,
    # with corrected borders, rescaled to mean |g| = 1); "laplacian-tf1" is the notebook's
    # lap_normalize exactly (zero "SAME" padding, no rescaling; see gradients.py).
    grad_norm: str = option("l1", "Gradient normalisation.", choices=GRAD_NORMS, title=True)
    # Levels of the Laplacian pyramid for the laplacian normalisations (TF notebook: 4).
    lap_levels: int = option(
        4, "Laplacian pyramid levels for --grad-norm laplacian(-tf1).", lo=1, hi=12, integer=True
    )
    # Gaussian smoothing of the gradient: sigma in pixels at the last octave, growing from
    # sigma/octaves at the first. 0: off.
    smooth: float = option(
        0.0, "Gaussian smoothing of the gradient: sigma in pixels at the last octave.",
        lo=0.0, hi=1000.0,
    )  # fmt: skip
    # Total-variation penalty, as a share of the objective gradient's size. 0: off.
    tv: float = option(
        0.0, "Total-variation penalty, relative to the objective gradient.", lo=0.0, hi=1000.0
    )
    # Pixel change per step, in [0, 1] units after normalisation.
    step_size: float = option(
        0.006, "Pixel change per step ([0,1] units).", lo=0.0, hi=100.0, title=True
    )
    # Gradient steps per octave.
    steps: int = option(20, "Gradient steps per octave.", lo=0, hi=MAX_STEPS, integer=True,
                        title=True)  # fmt: skip
    # Number of scales; the first is the smallest (original / octave_scale**(octaves-1)).
    octaves: int = option(4, "Number of scales.", lo=1, hi=MAX_OCTAVES, integer=True, title=True)
    octave_scale: float = option(
        1.4, "Size ratio between scales (below 1: levels larger than the photo).",
        lo=0.1, hi=100.0, title=True,
    )  # fmt: skip
    # Detail carried between octaves: "photo" re-injects the photo's detail lost by shrinking
    # (Keras seed, levels sized from the original); "dream" carries the dream's own detail up
    # to the next scale (Google, each level zoomed from the previous one); "none" resizes the
    # dream itself to the next level (TF2 tutorial; levels int(side * scale**n) in float32).
    detail: str = option(
        "dream", "Detail carried between octaves (none: the dream itself resized, TF2).",
        choices=DETAIL_MODES, title=True,
    )  # fmt: skip
    # Stop an octave early once the objective exceeds this (Keras seed: 10). None: never.
    max_loss: float | None = option(
        None, "Stop an octave once the loss exceeds this ('none': never).", title=True
    )
    # Random circular shift of up to this many pixels before each gradient (Google: 32).
    jitter: int = option(
        32, "Random roll in pixels before each step.", lo=0, hi=MAX_JITTER, integer=True,
        title=True,
    )  # fmt: skip
    # Keep pixels inside [0, 1] after every step.
    clip: bool = option(True, "Keep pixels in [0,1] after every step.", flag="--clip/--no-clip")
    # Seeds every random choice (the jitter, the noise start).
    seed: int = option(0, "Seed for every random choice.", lo=0, hi=MAX_SEED, integer=True,
                       title=True)  # fmt: skip
    # Start image: "photo" (the input), "noise" (the seeds' grey noise: uniform(0,1)+100 on
    # 0-255), or "grey" (flat mid-grey).
    init: str = option(
        "photo", "Start image (noise: the seeds' grey noise). No INPUT needed for noise/grey.",
        choices=INITS,
    )  # fmt: skip
    # Compute gradients tile by tile, tiles of at most this many pixels a side: memory is then
    # bounded by the tile, not the image. "auto": 512 for levels over 1280 px, else untiled.
    # 0: never tile.
    tile: int | str = option(
        "auto", "Tile side in pixels for the gradient, 'auto' (large images only) or 0 (never)."
    )
    # Pixels shared by neighbouring tiles, blended linearly so there are no seams.
    tile_overlap: int = option(
        64, "Pixels shared by neighbouring tiles (blended).", lo=0, hi=4096, integer=True
    )
    # Keep the photo's colours: the result takes the dream's luminance only.
    keep_colors: bool = option(
        False, "Keep the photo's colours; dream in luminance only.",
        flag="--keep-colors/--no-keep-colors",
    )  # fmt: skip
    # Units of step_size and grad_eps, the pixel range of the recipe reproduced: "unit" [0, 1]
    # (here), "signed" [-1, 1] (Keras and TF2 InceptionV3 inputs), "byte" 0-255 (Google, TF1).
    # The gradient is taken and normalised in these units; clipping stays the valid range.
    pixel_range: str = option(
        "unit", "Units of --step-size and --grad-eps: unit [0,1], signed [-1,1], byte 0-255.",
        choices=tuple(PIXEL_RANGES),
    )  # fmt: skip
    # Floor of the l1 normalisation, max(mean |g|, eps), or epsilon of std, std(g) + eps, in
    # pixel_range units (Keras: 1e-7, TF: 1e-8). 0: the normalisation's own (1e-7, 1e-8).
    grad_eps: float = option(
        0.0, "Floor of l1 / epsilon of std normalisation, in --pixel-range units (0: default).",
        lo=0.0, hi=1.0,
    )  # fmt: skip
    # Resize between octaves: "corners" (scipy.ndimage.zoom order=1, corner pixels to corners),
    # "half-pixel" (tf.image.resize, keras.ops.image.resize: bilinear, no antialias), "tf1"
    # (TF1's tf.image.resize_bilinear: output pixel i samples input i * in/out; with detail
    # "none" also TF1 render_lapnorm's level sizes, each int(float32(previous) * scale)).
    octave_resize: str = option(
        "corners", "Resize between octaves: corners (scipy zoom), half-pixel (tf/keras), tf1.",
        choices=OCTAVE_RESIZES,
    )  # fmt: skip
    # Octaves above the original size with detail "none" (the TF2 tutorial's range(-2, 3) is
    # octaves=3 and this 2); the result is resized back to the original size.
    octaves_above: int = option(
        0, "Octaves above the original size (with --detail none; TF2 tutorial: 2).",
        lo=0, hi=8, integer=True,
    )  # fmt: skip
    # A layer map too small to lose its l2 border counts whole (True), or not at all (False:
    # the Keras seed's a[:, 2:-2, 2:-2] is empty there).
    keep_small_maps: bool = option(
        True, "l2: a map too small to lose its border counts whole (or, off, not at all).",
        flag="--keep-small-maps/--drop-small-maps",
    )  # fmt: skip
    # Arithmetic of the network: "fp32", or "bf16" (CPUs with bf16 dot products, CUDA) and
    # "fp16" (CUDA) for speed; the objective, the gradient's normalisation and the image stay
    # float32. Unsupported devices are refused when the dream starts.
    precision: str = option(
        "fp32", "Network arithmetic: fp32, bf16 (CPUs with bf16 dot products, CUDA), fp16 (CUDA).",
        choices=PRECISIONS,
    )  # fmt: skip

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("model must be a non-empty name")
        if self.layers is not None:
            if not isinstance(self.layers, (str, tuple, list, dict)):
                raise ConfigError(f"layers must be a spec string, got {self.layers!r}")
            object.__setattr__(self, "layers", str(Objective.of(self.layers)))
            if not self.layers:
                raise ConfigError("layers must name at least one layer")
        for f in dataclasses.fields(self):
            meta, value = f.metadata, getattr(self, f.name)
            if meta.get("choices"):
                _check_choice(f.name, value, meta["choices"])
            elif meta.get("lo") is not None:
                _check_range(f.name, value, lo=meta["lo"], hi=meta["hi"] or math.inf,
                             integer=meta["integer"])  # fmt: skip
        for name in ("clip", "keep_colors", "keep_small_maps"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if self.octaves_above and self.detail != "none":
            raise ConfigError("octaves_above needs detail='none' (levels above the original)")
        if self.tile != "auto":
            _check_range("tile", self.tile, lo=0, hi=MAX_TILE, integer=True)
            assert isinstance(self.tile, int)
            if 0 < self.tile < MIN_TILE:
                raise ConfigError(f"tile must be 0, 'auto' or at least {MIN_TILE}; got {self.tile}")
        size = AUTO_TILE if isinstance(self.tile, str) else self.tile
        if size and size <= 2 * self.tile_overlap:
            raise ConfigError(
                f"tile ({size}{' for auto' if self.tile == 'auto' else ''}) must be more than "
                f"twice tile_overlap ({self.tile_overlap})"
            )
        if self.max_loss is not None:
            _check_range("max_loss", self.max_loss, lo=-math.inf, hi=math.inf)

    @property
    def largest_level_factor(self) -> float:
        """How much larger than the start the largest octave is (octave_scale < 1 enlarges)."""
        below = max(1.0, (1.0 / self.octave_scale) ** (self.octaves - 1))
        return below * self.octave_scale ** max(0, self.octaves_above)

    def replace(self, **changes: Any) -> DreamConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DreamConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown config fields {unknown}; valid: {', '.join(sorted(names))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"malformed config: {e}") from None

    @classmethod
    def preset(cls, name: str, model: str | None = None, **overrides: Any) -> DreamConfig:
        """A named preset for ``model`` (default: the default model), then ``overrides``."""
        if name not in PRESETS:
            raise UnknownNameError("preset", name, list(PRESETS))
        model = model or DEFAULT_MODEL
        base = PRESETS[name].make(model, lambda: block_layers(model))
        return cls(**{**base, "model": model, **overrides})


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{field} must be one of {', '.join(choices)}; got {value!r}")


def _check_range(
    field: str, value: Any, lo: float, hi: float = math.inf, integer: bool = False
) -> None:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{field} must be {kind}, got {value!r}")
    if not (math.isfinite(value) and lo <= value <= hi):
        if lo == -math.inf:
            raise ConfigError(f"{field} must be a finite number, got {value}")
        bound = f"between {lo:g} and {hi:g}" if hi != math.inf else f">= {lo:g}"
        raise ConfigError(f"{field} must be {bound}, got {value}")


DEFAULT_SIZE = (512, 512)  # (width, height) of a dream without a photo


MAX_SIDE = 1 << 16
