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

import torch
from torch import nn

from ..errors import UnknownNameError
from .fuse import fold_batchnorm
from .weights import PackagedWeights, load_strict, read_state_dict, sha256_file


@dataclass(frozen=True)
class LayerInfo:
    """A targetable activation: readable name, module path inside the net, channels, stride
    (0 for layers without a spatial grid, such as class logits)."""

    name: str
    module: str
    channels: int
    stride: int


@dataclass(frozen=True)
class ModelSpec:
    """Everything that travels with a registered network."""

    name: str
    description: str
    build: Callable[[], nn.Module]
    weights: PackagedWeights
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    default_layers: tuple[tuple[str, float], ...]
    train_size: int = 224
    labels: str = "imagenet1k"
    aliases: tuple[str, ...] = field(default=())


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
    ):
        super().__init__()
        self.spec = spec
        self.net = net.eval().requires_grad_(False)
        self.layers = {info.name: info for info in layers}
        self.weights_path = weights_path
        self.channels_last = channels_last
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        if channels_last:
            self.net.to(memory_format=torch.channels_last)

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
            raise UnknownNameError("layer", name, list(self.layers), where=self.name)
        return self.layers[name]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def activations(self, x: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        """Activations of the named layers for images ``x`` in [0, 1].

        Forward hooks are scoped to this call, and the pass stops as soon as the last of the
        requested layers has run.
        """
        wanted = {self.layer(n).module: n for n in names}
        found: dict[str, torch.Tensor] = {}

        def make_hook(layer_name: str):
            def hook(_module, _inputs, output):
                found[layer_name] = output
                if len(found) == len(wanted):
                    raise _StopForward

            return hook

        handles = [
            self.net.get_submodule(path).register_forward_hook(make_hook(n))
            for path, n in wanted.items()
        ]
        try:
            self.net(self.normalize(x))
        except _StopForward:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in wanted.values() if n not in found]
        if missing:
            raise RuntimeError(f"layers {missing} did not run in {self.name}'s forward pass")
        return {n: found[n] for n in names}

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
    net = spec.build()
    load_strict(net, read_state_dict(path), str(path))
    if fuse and hasattr(net, "conv_bn_pairs"):
        fold_batchnorm(net, net.conv_bn_pairs())
    layers = [LayerInfo(*row) for row in net.layer_table()]
    model = DreamModel(spec, net, layers, weights_path=path, channels_last=channels_last)
    return model.to(device)


def parameter_count(name: str) -> int:
    """Parameters of a registered architecture (built without loading weights)."""
    return sum(p.numel() for p in get_spec(name).build().parameters())


def layer_table(name: str) -> list[LayerInfo]:
    """A registered model's targetable layers, without loading weights."""
    return [LayerInfo(*row) for row in get_spec(name).build().layer_table()]
