"""A feature-visualisation render's settings (:class:`FeatureVisConfig`, the presets) and
the record of one rendered picture (:class:`Rendering`), as a recipe holds them."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.featurevis.params import PARAMS, VALID
from inceptionism.featurevis.transforms import parse_transforms
from inceptionism.ops.objectives import Objective

# Pixels one render pass holds (batch x size x size), with every activation and gradient of
# the network for them: 64 images of 128 px, 16 of 256 or 4 of 512 (a few GB at most).
MAX_RENDER_PIXELS = 1 << 20


@dataclass(frozen=True)
class FeatureVisConfig:
    """Every parameter of a feature-visualisation render. Defaults: the ``lucid`` preset."""

    # Image parameterisation: "fft" (1/f-scaled Fourier spectrum) or "pixel".
    param: str = "fft"
    # Optimise colours in ImageNet's decorrelated colour space (params.ColourDecorrelation).
    decorrelate: bool = True
    # Squash into [0, 1]: "sigmoid" or "clamp".
    valid: str = "sigmoid"
    # Robustness transforms before every step: "standard" (Lucid's), "none" or a list. The
    # default drops Lucid's 12 px grey pad and its first 8 px jitter: at 128 px they cost about
    # 5% of the transformation-robust activation (benchmarks/bench_featurevis.py).
    transforms: str = "jitter=4,scale=0.1,rotate=10"
    # Adam steps (Lucid's tutorials: 512 at lr 0.05).
    steps: int = 256
    # Adam learning rate on the parameterisation (Lucid: 0.05; with ``damping`` the high
    # frequencies no longer take full Adam steps, so a larger rate is stable).
    lr: float = 0.3
    # Images per forward/backward pass.
    batch: int = 16
    # Rendered image side in pixels (square).
    size: int = 128
    # Weight of the diversity penalty (Gram-matrix similarity between a batch's images, in
    # ``diversity_layer``, default the units' first layer). 0: off.
    diversity: float = 0.0
    diversity_layer: str | None = None
    # Size of the random start in the parameter space, and the spectrum's decay exponent.
    sd: float = 0.01
    decay_power: float = 1.0
    # Coarse to fine: over the first share of the steps the Fourier basis's frequency cutoff
    # grows from a few cycles per image to the full spectrum (octaves, in the Fourier basis).
    # 0: off. On 16 block6 channels at 90 steps 0.5 scored 7% lower (benchmarks/).
    coarse_to_fine: float = 0.0
    # Adam's epsilon relative to each image's gradient, which is scaled to mean |g| = 1 before
    # Adam: coordinates whose gradient is well below the mean (mostly high frequencies) then
    # take proportionally smaller steps instead of Adam's full-size ones, which keeps the high
    # frequencies down. 0: plain Adam (Lucid).
    damping: float = 8.0
    # Seeds the starts (per unit, so batching does not change a unit's start) and the
    # transforms (per batch).
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("param", "valid"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a text, got {getattr(self, name)!r}"[:200])
        if not isinstance(self.transforms, str):
            raise ConfigError(f"transforms must be a text such as 'jitter=4,scale=0.1', got "
                              f"{self.transforms!r}"[:200])  # fmt: skip
        if self.diversity_layer is not None and not isinstance(self.diversity_layer, str):
            raise ConfigError(f"diversity_layer must be a layer name, got "
                              f"{self.diversity_layer!r}"[:200])  # fmt: skip
        if not isinstance(self.decorrelate, bool):
            raise ConfigError(f"decorrelate must be true or false, got {self.decorrelate!r}"[:200])
        if self.param not in PARAMS:
            raise ConfigError(f"param must be one of {', '.join(PARAMS)}, got {self.param!r}")
        if self.valid not in VALID:
            raise ConfigError(f"valid must be one of {', '.join(VALID)}, got {self.valid!r}")
        object.__setattr__(self, "transforms", str(parse_transforms(self.transforms)))
        bounds = (("steps", 0, 10_000), ("batch", 1, 256), ("size", 16, 4096),
                  ("seed", 0, 2**63 - 1))  # fmt: skip
        for name, lo, hi in bounds:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"{name} must be an integer from {lo} to {hi}, got {value!r}")
        for name in ("lr", "diversity", "sd", "decay_power", "damping", "coarse_to_fine"):
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not (ok and math.isfinite(value) and 0 <= value <= 1e6):
                raise ConfigError(f"{name} must be a number from 0 to 1e6, got {value!r}")
        if self.batch * self.size**2 > MAX_RENDER_PIXELS:
            raise ConfigError(
                f"a batch of {self.batch} images of {self.size}x{self.size} is "
                f"{self.batch * self.size**2} pixels in one pass; the limit is "
                f"{MAX_RENDER_PIXELS} (batch x size x size): lower --batch or --size"
            )

    def replace(self, **changes: Any) -> FeatureVisConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> FeatureVisConfig:
        if name not in FEATUREVIS_PRESETS:
            raise UnknownNameError("feature-visualisation preset", name, list(FEATUREVIS_PRESETS))
        return FEATUREVIS_PRESETS[name].replace(**overrides)


FEATUREVIS_PRESETS: dict[str, FeatureVisConfig] = {
    # Fourier + decorrelated colour + sigmoid + robustness transforms + Adam, tuned: damped
    # Adam at lr 0.3, no pad, Lucid's first jitter of 8 px left out.
    "lucid": FeatureVisConfig(),
    # The recipe as Lucid ships it: Lucid's standard transforms, plain Adam at lr 0.05.
    "lucid-paper": FeatureVisConfig(
        transforms="standard", lr=0.05, damping=0.0, coarse_to_fine=0.0
    ),
    # The same loop in plain pixel space without transforms (an ablation, not today's look:
    # that is the DeepDream-of-noise recipe, `channels --preset default`).
    "pixel": FeatureVisConfig(param="pixel", decorrelate=False, transforms="none"),
}


@dataclass(frozen=True)
class Rendering:
    """How one picture of a job is feature-visualised: the whole render it is part of (its
    config and every unit, since a batch shares its transform draws) and its index among the
    units, so that ``render(model, units, config)[index]`` re-creates it."""

    config: FeatureVisConfig
    units: tuple[str, ...]
    index: int = 0

    def __post_init__(self) -> None:
        if not all(isinstance(u, str) for u in self.units):
            raise ConfigError("a recorded render's units are objective specs (text)")
        object.__setattr__(self, "units", tuple(str(Objective.parse(u)) for u in self.units))
        if not 0 < len(self.units) <= 256:
            raise ConfigError("a render has 1 to 256 units")
        if not 0 <= self.index < len(self.units):
            raise ConfigError(f"index {self.index} is outside the render's {len(self.units)} units")

    @property
    def unit(self) -> str:
        return self.units[self.index]

    def to_dict(self) -> dict[str, Any]:
        """The recipe's section (the layout ``read_featurevis`` reads)."""
        return {"featurevis": self.config.to_dict(), "units": list(self.units),
                "index": self.index}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rendering:
        config, units, index = read_featurevis(data)
        return cls(config, tuple(units), index)


def read_featurevis(data: dict[str, Any]) -> tuple[FeatureVisConfig, list[str], int]:
    """A recorded render checked: (config, units, index); each violation one line (the
    recipe reader adds where it was)."""
    fields = data.get("featurevis")
    units: Any = data.get("units")
    index: Any = data.get("index")
    if not isinstance(fields, dict):
        raise ConfigError("'featurevis' must be an object")
    ok = isinstance(units, list) and 0 < len(units) <= 256
    if not ok or not all(isinstance(u, str) and len(u) < 200 for u in units):
        raise ConfigError("'units' must be a list of 1 to 256 unit specs")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(units):
        raise ConfigError(f"'index' must be an integer from 0 to {len(units) - 1}")
    known = {f.name for f in dataclasses.fields(FeatureVisConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"featurevis: unknown fields {unknown}")
    try:
        config = FeatureVisConfig(**fields)
    except (TypeError, ValueError) as e:  # ConfigError is a ValueError
        raise ConfigError(f"featurevis: {e}") from None
    return config, units, index
