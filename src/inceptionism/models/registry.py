"""The model registry and :class:`DreamModel`, the one object the engine talks to.

A :class:`ModelSpec` carries everything that travels with a network: how to build it, where its
weights come from, how it wants its pixels normalised, its curated default layers. ``get_model``
turns a spec into a frozen, inference-optimised :class:`DreamModel` whose ``activations`` runs the
forward pass only as far as the deepest requested layer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import UnknownNameError, WeightsError
from .fuse import fold_batchnorm
from .weights import (
    PackagedWeights,
    RemoteWeights,
    load_strict,
    read_state_dict,
    sha256_file,
)


@dataclass(frozen=True)
class LayerInfo:
    """A targetable activation: readable name, module path inside the net, channels, stride
    (0 for layers without a spatial grid, such as class logits)."""

    name: str
    module: str
    channels: int
    stride: int
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelSpec:
    """Everything that travels with a registered network."""

    name: str
    description: str
    build: Callable[..., nn.Module]
    weights: PackagedWeights | RemoteWeights | Any  # anything with path() and describe()
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_layers: tuple[tuple[str, float], ...]
    train_size: int = 224
    labels: str = "imagenet1k"
    aliases: tuple[str, ...] = field(default=())
    # Parts a checkpoint may leave out as a whole (auxiliary heads, the classifier of a "notop"
    # file): build keyword -> state-dict key prefixes. A file with none of a part's keys builds
    # the net with that keyword False; a file with some but not all is refused by strict loading.
    optional_parts: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # The named recipe that suits this network best (`inceptionism models` shows it).
    preset: str = "default"
    # Layer table from a built net, for nets without a ``layer_table`` method (your own).
    table: Callable[[nn.Module], list[tuple]] | None = None
    # How a network given by the user was loaded (input format, dry-run size), for recipes.
    origin: dict | None = None


_REGISTRY: dict[str, ModelSpec] = {}
_ALIASES: dict[str, str] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a glob pattern (``"efficientnet*"``)."""
    names = list(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_spec(name: str) -> ModelSpec:
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise UnknownNameError("model", name, list_models())
    return _REGISTRY[key]


class _StopForward(Exception):
    """Raised by a hook once every requested activation is captured: nothing deeper runs."""


class DreamModel(nn.Module):
    """A frozen network with its normalisation and layer table.

    Takes RGB images in [0, 1] of shape (N, 3, H, W); any H, W the architecture accepts.
    """

    def __init__(
        self,
        spec: ModelSpec,
        net: nn.Module,
        layers: Sequence[LayerInfo],
        weights_path: Path | None = None,
        channels_last: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ):
        super().__init__()
        self.spec = spec
        self.net = net.eval().requires_grad_(False)
        self.layer_list = list(layers)
        self.layers = layer_index(self.layer_list)
        self.weights_path = weights_path
        self.channels_last = channels_last
        mean = spec.mean if mean is None else mean
        std = spec.std if std is None else std
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.precision = "fp32"
        self._reduced: dict[str, DreamModel] = {}

    def with_precision(self, precision: str) -> DreamModel:
        """This model (``"fp32"``) or a copy whose network runs in reduced precision (see
        :mod:`inceptionism.precision`); copies are made once and kept."""
        from ..precision import check_precision, compute_dtype

        check_precision(precision, self.device)
        if precision == "fp32":
            return self
        if precision not in self._reduced:
            import copy

            net = copy.deepcopy(self.net)
            dtype = compute_dtype(precision, self.device)
            if dtype is not None:
                net.to(dtype)
            reduced = DreamModel(
                self.spec, net, self.layer_list, self.weights_path, self.channels_last,
                self.mean.flatten().tolist(), self.std.flatten().tolist(),
            ).to(self.device)  # fmt: skip
            reduced.mean, reduced.std = self.mean, self.std
            reduced.precision = precision
            self._reduced[precision] = reduced
        return self._reduced[precision]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def device(self) -> torch.device:
        return self.mean.device

    @property
    def weights_sha256(self) -> str | None:
        return sha256_file(self.weights_path) if self.weights_path else None

    def layer(self, name: str) -> LayerInfo:
        if name not in self.layers:
            choices = [info.name for info in self.layer_list]
            raise UnknownNameError("layer", name, choices, where=self.name)
        return self.layers[name]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        if self.precision != "fp32" and self.device.type == "cpu":
            x = x.to(torch.bfloat16 if self.precision == "bf16" else torch.float16)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def activations(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations of the named layers for images ``x`` in [0, 1].

        Forward hooks are scoped to this call, and the pass stops as soon as the last of the
        requested layers has run. In reduced precision they come back as float32.
        """
        if self.precision == "fp32":
            return self._activations(x, names)
        if self.device.type == "cuda":
            from ..precision import autocast_dtype

            with torch.autocast("cuda", dtype=autocast_dtype(self.precision, self.device)):
                acts = self._activations(x, names)
        else:
            acts = self._activations(x, names)
        return {n: a.float() for n, a in acts.items()}

    def _activations(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        wanted: dict[str, list[str]] = {}  # module path -> requested names (aliases share one)
        for n in names:
            wanted.setdefault(self.layer(n).module, []).append(n)
        if hasattr(self.net, "tap"):  # TorchScript: no hooks, a rewritten graph instead
            found = self.net.tap(self.normalize(x), list(wanted))
            return {n: found[self.layer(n).module] for n in names}
        found: dict[str, torch.Tensor] = {}

        def make_hook(path: str):
            def hook(_module, _inputs, output):
                if path not in found:  # a module called twice counts its first call
                    found[path] = output
                if len(found) == len(wanted):
                    raise _StopForward

            return hook

        handles = [
            self.net.get_submodule(path).register_forward_hook(make_hook(path)) for path in wanted
        ]
        try:
            self.net(self.normalize(x))
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [ns[0] for path, ns in wanted.items() if path not in found]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in {self.name}'s forward pass")
        return {n: found[self.layer(n).module] for n in names}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for images in [0, 1]."""
        return self.net(self.normalize(x))


def get_model(
    name: str,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    fuse: bool = True,
    channels_last: bool = True,
) -> DreamModel:
    """Build a registered model with its weights, frozen and ready to dream.

    ``weights`` overrides the spec's weight source. ``fuse`` folds BatchNorm into convolutions
    and ``channels_last`` picks the faster memory layout; both leave the function unchanged.
    """
    spec = get_spec(name)
    path = Path(weights) if weights is not None else spec.weights.path()
    if path is None:  # weights inside the network itself (TorchScript) or its factory's own
        net, norm = spec.build(), None
    else:
        try:
            state, norm, options = read_weights(path, spec)
        except WeightsError as e:
            if weights is None and isinstance(spec.weights, RemoteWeights):
                raise WeightsError(f"{e} (the cached copy; delete it to download it again)") from e
            raise
        net = spec.build(**parts_present(spec, state), **options)
        load_strict(getattr(net, "script", net), state, str(path))
    if fuse and hasattr(net, "conv_bn_pairs"):
        fold_batchnorm(net, net.conv_bn_pairs())
    layers = [LayerInfo(*row) for row in (spec.table or _own_table)(net)]
    mean, std = norm if norm is not None else (None, None)
    model = DreamModel(
        spec, net, layers, weights_path=path, channels_last=channels_last, mean=mean, std=std
    )
    return model.to(device)


Normalization = tuple[tuple[float, ...], tuple[float, ...]]

KERAS_SUFFIXES = (".h5", ".hdf5")


def read_weights(
    path: Path, spec: ModelSpec
) -> tuple[dict[str, torch.Tensor], Normalization | None, dict[str, Any]]:
    """A state dict in the architecture's own key layout, the input normalisation the file was
    trained with when it differs from the spec's (None: the spec's), and build keywords the file
    needs (Keras's pooling for a Keras InceptionV3)."""
    if path.suffix.lower() in KERAS_SUFFIXES:
        from .keras_weights import convert_keras_file

        return convert_keras_file(path, spec.name)
    return read_state_dict(path), None, {}


def parts_present(spec: ModelSpec, state: dict[str, torch.Tensor]) -> dict[str, bool]:
    """Build keywords for the optional parts: False for each part the file has no key of."""
    return {
        kwarg: any(k.startswith(prefixes) for k in state) for kwarg, prefixes in spec.optional_parts
    }


def layer_index(layers: Sequence[LayerInfo]) -> dict[str, LayerInfo]:
    """Look-up by name and by alias (``Mixed_5b`` finds ``mixed0``)."""
    index = {}
    for info in layers:
        for key in (info.name, *info.aliases):
            index.setdefault(key, info)
    return index


def _skeleton(spec: ModelSpec) -> nn.Module:
    """The architecture on the meta device: shapes and structure, no memory, no initialisation
    (VGG's 138M parameters would otherwise take seconds to initialise for a listing)."""
    with torch.device("meta"):
        return spec.build()


def parameter_count(name: str) -> int:
    """Parameters of a registered architecture (built without loading weights)."""
    return sum(p.numel() for p in _skeleton(get_spec(name)).parameters())


def layer_table(name: str) -> list[LayerInfo]:
    """A registered model's targetable layers, without loading weights."""
    spec = get_spec(name)
    rows = spec.table(None) if spec.table else _skeleton(spec).layer_table()
    return [LayerInfo(*row) for row in rows]


def _own_table(net: nn.Module) -> list[tuple]:
    return net.layer_table()
