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
from typing import Any, cast

import torch
from torch import nn

from inceptionism.errors import UnknownNameError
from inceptionism.models.fuse import SteadyConvolutions
from inceptionism.models.weights import (
    Weights,
    sha256_file,
)
from inceptionism.ops.precision import autocast_dtype, check_precision, compute_dtype

# What a layer is in its network. The main line (stem, pool, block, stage, head) runs in depth
# order and its stride never shrinks; a branch (a block's inner conv, a pre-activation tap, an
# expansion) lies beside it. Seed recipes map their layers by relative depth among the blocks.
LAYER_KINDS = ("stem", "pool", "block", "stage", "branch", "head")


@dataclass(frozen=True)
class LayerInfo:
    """A targetable activation: readable name, module path inside the net, channels, stride
    (0 for layers without a spatial grid, such as class logits), aliases and kind (one of
    LAYER_KINDS)."""

    name: str
    module: str
    channels: int
    stride: int
    aliases: tuple[str, ...] = ()
    kind: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """Everything that travels with a registered network."""

    name: str
    description: str
    build: Callable[..., nn.Module]
    weights: Weights  # the default entry: source, normalisation, build keywords
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
    table: Callable[[nn.Module | None], list[LayerInfo]] | None = None
    # How a network given by the user was loaded (input format, dry-run size), for recipes.
    origin: dict | None = None
    # A Hub model's repo, revision asked for, commit read and architecture (models/hub.py).
    hub: dict[str, str] | None = None

    @property
    def mean(self) -> tuple[float, ...]:
        return self.weights.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.weights.std


_REGISTRY: dict[str, ModelSpec] = {}


_ALIASES: dict[str, str] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add a network to the registry. A given table (your network's) is checked now, an
    architecture's own on its first use (check_table; building every skeleton at import would
    slow each command's start)."""
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    if spec.table is not None:
        check_table(spec.name, spec.table(None))
    _REGISTRY[spec.name] = spec
    for alias in spec.aliases:
        _ALIASES[alias] = spec.name
    return spec


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, optionally filtered by a glob pattern (``"efficientnet*"``)."""
    names = list(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


# name prefix -> a function that registers (and returns) the spec of a name registered on
# first use (``hf:ORG/NAME``: models/hub.py adds itself when the package is imported)
_RESOLVERS: dict[str, Callable[[str], ModelSpec]] = {}


def register_resolver(prefix: str, resolve: Callable[[str], ModelSpec]) -> None:
    _RESOLVERS[prefix] = resolve


def get_spec(name: str) -> ModelSpec:
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        for prefix, resolve in _RESOLVERS.items():
            if name.startswith(prefix):
                return resolve(name)
    if key not in _REGISTRY:
        raise UnknownNameError("model", name, list_models())
    return _REGISTRY[key]


class _StopForward(Exception):
    """Raised by a hook once every requested activation is captured: nothing deeper runs."""


class DreamModel(nn.Module):
    """A frozen network with its normalisation and layer table.

    Takes RGB images in [0, 1] of shape (N, 3, H, W); any H, W the architecture accepts.
    """

    mean: torch.Tensor  # buffers: (1, 3, 1, 1)
    std: torch.Tensor
    net: Any  # the architecture (or a TorchScript wrapper): its own methods are read by name

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
            tapped = self.net.tap(self.normalize(x), list(wanted))
            return {n: tapped[self.layer(n).module] for n in names}
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
            with SteadyConvolutions():
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
        with SteadyConvolutions():
            return self.net(self.normalize(x))


def layer_index(layers: Sequence[LayerInfo]) -> dict[str, LayerInfo]:
    """Look-up by name and by alias (``Mixed_5b`` finds ``mixed0``)."""
    index: dict[str, LayerInfo] = {}
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
    if spec.table is not None:
        return list(spec.table(None))
    if spec.name not in _TABLES:
        net = _skeleton(spec)
        check_table(spec.name, _own_table(net), net)
        _TABLES[spec.name] = _own_table(net)
    return list(_TABLES[spec.name])


def _own_table(net: nn.Module) -> list[LayerInfo]:
    """A registered architecture's own ``layer_table()``."""
    table = cast(Callable[[], list[LayerInfo]], net.layer_table)
    return table()


_TABLES: dict[str, list[LayerInfo]] = {}  # checked tables of the registered architectures


def block_layers(name: str) -> list[str]:
    """The model's blocks (kind ``block``) in depth order: the scale seed recipes map onto."""
    table = layer_table(name)
    return [i.name for i in table if i.kind == "block"] or [i.name for i in table if i.stride]


def depth_groups(name: str) -> list[tuple[str, str, list[str]]]:
    """The model's blocks in thirds by depth, each with what it tends to give a dream."""
    blocks = block_layers(name)
    if len(blocks) < 3:
        return []
    cut = [0, round(len(blocks) / 3), round(2 * len(blocks) / 3), len(blocks)]
    hints = (("early", "edges and textures"), ("middle", "patterns and parts"),
             ("late", "objects, eyes, faces"))  # fmt: skip
    return [(label, hint, blocks[a:b]) for (label, hint), a, b in zip(hints, cut, cut[1:]) if b > a]


def check_table(model: str, table: Sequence[LayerInfo], net: nn.Module | None = None) -> None:
    """A layer table as a network registers it: known kinds, unique names and aliases, positive
    channels, modules that exist in ``net`` (when given), strides that never shrink along the
    main line (no branch coarser than its deepest layer) and grid-less layers only in the head."""

    def bad(info: LayerInfo, why: str) -> ValueError:
        return ValueError(f"{model}: layer table entry {info.name!r}: {why}")

    seen: set[str] = set()
    main = [i for i in table if i.kind != "branch" and i.stride > 0]
    for info in table:
        if info.kind not in LAYER_KINDS:
            raise bad(info, f"kind {info.kind!r} is not one of {', '.join(LAYER_KINDS)}")
        for key in (info.name, *info.aliases):
            if key in seen:
                raise bad(info, f"the name {key!r} is used twice")
            seen.add(key)
        if info.channels <= 0 or info.stride < 0:
            raise bad(info, f"channels {info.channels} and stride {info.stride}")
        if info.stride == 0 and info.kind != "head":
            raise bad(info, "only a head layer may have no spatial grid (stride 0)")
        if net is not None:
            try:
                net.get_submodule(info.module)
            except AttributeError:
                raise bad(info, f"no module {info.module!r} in the network") from None
    for before, after in zip(main, main[1:]):
        if after.stride < before.stride:
            raise bad(after, f"stride {after.stride} after {before.name}'s {before.stride}")
    deepest = main[-1].stride if main else 0
    for info in table:
        if info.kind == "branch" and info.stride > deepest:
            raise bad(info, f"a branch coarser (stride {info.stride}) than the main line")
