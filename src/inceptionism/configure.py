"""Option values into the objects the job layer takes: a DreamConfig (preset, a command's own
defaults, then what the user set), the network's spec, the device, sizes. The CLI, the studio,
replay and the API share these, so every shell reads a value the same way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from inceptionism.engine.config import DEFAULT_MODEL, DEFAULT_SIZE, MAX_SIDE, DreamConfig
from inceptionism.engine.presets import LUCID, PRESETS
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.featurevis.render import FeatureVisConfig
from inceptionism.models import ModelSpec, get_spec, layer_table, list_models
from inceptionism.models.custom import is_network, register_network
from inceptionism.models.trained import class_number, trained_file


def parse_max_loss(text: str) -> float | None:
    if text.strip().lower() in ("none", "off", "inf"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"expected a number or 'none', got {text!r}") from None


def parse_tile(text: str) -> int | str:
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"expected a number of pixels, 'auto' or 0, got {text!r}") from None


# Fields whose text needs more than a number or a choice (the CLI and --vary share these).
PARSERS: dict[str, Callable[[str], Any]] = {"max_loss": parse_max_loss, "tile": parse_tile}


def device_for(name: str) -> torch.device:
    """The device to dream on; a CUDA request on a machine without CUDA is a usage error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {name!r}; use cpu, cuda, cuda:N or auto")
    return device


@dataclass(frozen=True)
class Options:
    """A command's options, read once from its shell (click, the studio, the API): each value by
    its parameter name (``class_`` for ``--class``), and the names the user set (the rest are
    the command's defaults). Frozen: :meth:`replace` and :meth:`choose` give changed copies, so
    no step of a command can change what a later step reads."""

    values: Mapping[str, Any]
    given: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))
        object.__setattr__(self, "given", frozenset(self.given))

    @classmethod
    def of(cls, values: Mapping[str, Any], given: Iterable[str] | None = None) -> Options:
        """``values`` as options; without ``given``, every name with a value counts as set
        (the API and the studio, where nothing is a default)."""
        if given is None:
            given = (k for k, v in values.items() if v is not None)
        return cls(values, frozenset(given))

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __contains__(self, name: object) -> bool:
        return name in self.values

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def replace(self, **changes: Any) -> Options:
        """The command's own values for some options: no longer counted as the user's."""
        return Options({**self.values, **changes}, self.given - set(changes))

    def choose(self, **changes: Any) -> Options:
        """Values set as the user would (a sweep's cell): counted as given."""
        return Options({**self.values, **changes}, self.given | set(changes))

    @property
    def explicit(self) -> dict[str, Any]:
        """The DreamConfig fields the user set, with their values."""
        return {k: self.values[k] for k in sorted(self.given & CONFIG_FIELDS)
                if k in self.values}  # fmt: skip


def network_spec(
    name: str | None, input_norm: str | None = None, input_range: str | None = None
) -> ModelSpec:
    """The spec for --model: a registered name, or your own network (registered here with its
    --input-norm/--input-range); those two options are refused for a registered model."""
    if name is None:
        name = DEFAULT_MODEL
    if not str(name).strip():
        raise ConfigError("--model: empty name; see `inceptionism models`")
    name = trained_file(name) or name  # `--model mynet` finds mynet.pt beside you
    norm, rng = input_norm, input_range
    if is_network(name) and name not in list_models():
        return register_network(name, norm, rng)
    if norm is not None or rng is not None:
        raise ConfigError(
            f"--input-norm/--input-range are for your own network; {name} normalises its own input"
        )
    return get_spec(name)


def build_config(
    options: Options,
    defaults: dict[str, Any] | None = None,
    guide: bool = False,
    lucid: bool = False,
) -> DreamConfig:
    """The preset for the chosen model (or the command's ``defaults`` when none is named), then
    every config option the user set (:attr:`Options.explicit`), then ``--class``'s logit.
    ``lucid``: the command renders the lucid recipe (:func:`featurevis_config` reads that
    preset; the DreamConfig keeps the command's defaults); elsewhere it is no preset."""
    explicit = options.explicit
    if options.get("preset") == LUCID and not lucid:
        raise UnknownNameError("preset", LUCID, list(PRESETS))
    model = network_spec(explicit.get("model", options.get("model")),
                         options.get("input_norm"), options.get("input_range")).name  # fmt: skip
    fields = {k: v for k, v in explicit.items() if k != "model"}
    if guide:
        if fields.get("objective", "guide") != "guide":
            raise ConfigError(f"--guide needs --objective guide, not {fields['objective']}")
        fields["objective"] = "guide"
    preset = options.get("preset")
    if preset and preset != LUCID:
        config = DreamConfig.preset(preset, model=model, **fields)
    else:
        own = dict(defaults or {})
        if fields.get("init", own.get("init")) in ("noise", "grey") and "objective" not in fields:
            # from a flat start l2 (each unit's gradient weighted by its activation) locks onto
            # the first units it excites and grows lines across the image (README, measured)
            own.setdefault("objective", "mean")
        config = DreamConfig(**{**own, "model": model, **fields})
    class_ = options.get("class_")
    if class_ is not None:
        class_ = class_number(model, class_)  # a trained network's class name, or a number
        info = {i.name: i for i in layer_table(model)}.get("logits")
        if info is None:
            raise ConfigError(f"--class: {model} has no class head (no 'logits' layer)")
        if class_ >= info.channels:
            raise ConfigError(f"--class {class_}: {model} has {info.channels} classes")
        base = config.layers  # explicit --layers, or the preset's; None: the class alone
        term = f"logits:{class_}"
        config = config.replace(layers=f"{base},{term}" if base else term)
    return config


CONFIG_FIELDS = set(DreamConfig.__dataclass_fields__)

# The feature-visualisation recipe (featurevis.py) by its preset name, and the DreamConfig
# options that only a DeepDream reads (refused with it rather than silently ignored).
DREAM_ONLY = ("objective", "border", "grad_norm", "lap_levels", "smooth", "tv", "step_size",
              "octaves", "octave_scale", "detail", "jitter", "clip", "tile_overlap", "max_loss",
              "tile")  # fmt: skip


def class_from_noise(options: Options) -> bool:
    """Whether a dream is a class visualisation from noise (`--class N --init noise`)."""
    init = options.explicit.get("init", options.get("init"))
    return options.get("class_") is not None and init == "noise"


def featurevis_config(
    options: Options,
    size: tuple[int, int] | None,
    by_default: bool = False,
    photo: bool = False,
    **changes: Any,
) -> FeatureVisConfig | None:
    """The lucid recipe for a command, or None for a DeepDream: with ``--preset lucid``, or
    with no preset where the command makes it the default (``by_default``: `channels`, a
    class from noise). The command's DreamConfig keeps its own defaults then (build_config
    passes over the lucid preset: the config records the model, objective, seed and start);
    ``--steps`` and ``--seed`` carry over, DeepDream-only options are refused; ``size`` (w, h)
    must be square. ``photo``: the command starts from a photo, which the lucid recipe does not.
    """
    preset = options.get("preset")
    explicit = options.explicit
    if preset == LUCID and photo:
        raise ConfigError("--preset lucid renders from noise: start from noise, not a photo")
    if not (preset == LUCID or (preset is None and by_default)):
        if changes:
            flags = ", ".join(f"--{k}" for k in changes)
            raise ConfigError(f"{flags}: for the lucid recipe, not --preset")
        return None
    named = [k for k in DREAM_ONLY if k in explicit]
    if named:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in named)
        raise ConfigError(f"{names}: DeepDream options; add --preset default to use them")
    w, h = size or (128, 128)
    if w != h:
        raise ConfigError(
            f"--size {w}x{h}: the lucid recipe renders square images (or add --preset default)"
        )
    changes.update({k: explicit[k] for k in ("steps", "seed") if k in explicit})
    return FeatureVisConfig.preset(LUCID, size=w, **changes)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'WxH' -> (width, height)."""
    if text is None:
        return None
    w, sep, h = text.lower().partition("x")
    ok = sep and w.strip().isdigit() and h.strip().isdigit()
    if not ok or not (16 <= int(w) <= MAX_SIDE and 16 <= int(h) <= MAX_SIDE):
        raise ConfigError(
            f"--size: expected WxH from 16x16 to {MAX_SIDE}x{MAX_SIDE}, e.g. 512x384; got {text!r}"
        )
    return int(w), int(h)


def dream_featurevis(
    options: Options, size: tuple[int, int] | None, photo: bool
) -> FeatureVisConfig | None:
    """`dream`'s lucid recipe: with --preset lucid, or by default for a class from noise
    without a photo (`--class N --init noise`)."""
    by_default = class_from_noise(options) and not photo
    return featurevis_config(options, size or DEFAULT_SIZE, by_default, photo)
