"""Your own network: a TorchScript file (``--model net.pt``) or a factory in an importable module
(``--model package.module:factory`` with ``--weights state_dict.pth``).

Every named submodule becomes a targetable layer, listed with the channels and stride that a dry
forward pass at a given size finds. TorchScript modules take no Python hooks, so their layers are
tapped by rewriting a copy of the inlined forward graph to return the requested modules' outputs
(and nothing computed after the deepest one).
"""

from __future__ import annotations

import importlib
import math
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from inceptionism.errors import ConfigError, WeightsError
from inceptionism.models.registry import _REGISTRY, LayerInfo, ModelSpec, register_model
from inceptionism.models.trained import (  # a network from `inceptionism train`
    is_trained,
    register_trained,
)
from inceptionism.models.weights import NoWeights, Weights

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
SCRIPT_SUFFIXES = (".pt", ".pth", ".ts", ".jit", ".torchscript", ".zip")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DRY_SIZE = 224


def is_network(text: str) -> bool:
    """Whether a --model value names a file or a factory rather than a registered model."""
    return bool(FACTORY.match(text)) or Path(text).suffix.lower() in SCRIPT_SUFFIXES


@dataclass(frozen=True)
class InputFormat:
    """What pixels the network wants: values in ``range`` (lo, hi), then minus ``mean`` divided
    by ``std`` (both in the units of the range)."""

    range: tuple[float, float] = (0.0, 1.0)
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)  # three values
    std: tuple[float, ...] = (1.0, 1.0, 1.0)

    def on_unit_pixels(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The same transform as mean/std applied to [0, 1] pixels (what DreamModel takes)."""
        lo, hi = self.range
        span = hi - lo
        return tuple((m - lo) / span for m in self.mean), tuple(s / span for s in self.std)


def parse_input_format(norm: str | None, value_range: str | None) -> InputFormat:
    """``--input-range`` "0,1" | "0,255" | "-1,1" | "LO,HI"; ``--input-norm`` "none" |
    "imagenet" | "M,M,M/S,S,S" (in the range's units; one number stands for all three)."""
    rng = _numbers(value_range or "0,1", "--input-range", (2,))
    lo, hi = rng
    if not hi > lo:
        raise ConfigError(f"--input-range {value_range!r}: the upper end must exceed the lower")
    text = (norm or "none").strip().lower()
    if text == "none":
        return InputFormat((lo, hi))
    if text == "imagenet":  # torchvision's statistics, scaled to the range
        span = hi - lo
        mean = tuple(lo + m * span for m in IMAGENET_MEAN)
        return InputFormat((lo, hi), mean, tuple(s * span for s in IMAGENET_STD))
    mean_text, sep, std_text = text.partition("/")
    if not sep:
        raise ConfigError(
            f"--input-norm {norm!r}: expected none, imagenet or MEAN/STD such as "
            "0.485,0.456,0.406/0.229,0.224,0.225"
        )
    mean = _numbers(mean_text, "--input-norm mean", (1, 3))
    std = _numbers(std_text, "--input-norm std", (1, 3))
    mean, std = (mean * 3 if len(mean) == 1 else mean), (std * 3 if len(std) == 1 else std)
    if min(std) <= 0:
        raise ConfigError(f"--input-norm {norm!r}: std must be positive")
    return InputFormat((lo, hi), mean, std)


def _numbers(text: str, what: str, counts: tuple[int, ...]) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(values) not in counts or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{what} {text!r}: expected {' or '.join(map(str, counts))} numbers")
    return values


class ScriptedNet(nn.Module):
    """A loaded TorchScript module with ``tap``: the outputs of named submodules, computed by a
    rewritten copy of its forward graph that stops after the deepest one."""

    def __init__(self, script: torch.jit.ScriptModule):
        super().__init__()
        self.script = script
        self._graphs: dict[tuple[str, ...], tuple[Any, list[str]]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.script(x)

    def module_names(self) -> list[str]:
        return [name for name, _ in self.script.named_modules() if name]

    def tap(self, x: torch.Tensor, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        key = tuple(sorted(set(paths)))
        if key not in self._graphs:
            self._graphs[key] = _tap_function(self.script, key)
        fn, found = self._graphs[key]
        outputs = fn(self.script._c, x)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        return dict(zip(found, outputs))


def _hierarchy_path(node: torch._C.Node) -> str:
    """'layer1(Sequential).0(Block).SELF(Block)' -> 'layer1.0'."""
    parts = []
    for part in node.getModuleHierarchy().split("."):
        name = part.split("(")[0]
        if name in ("", "SELF", "UNKNOWN_INSTANCE"):
            break
        parts.append(name)
    return ".".join(parts)


def _inside(path: str, module: str) -> bool:
    return path == module or path.startswith(module + ".")


def _tap_function(script: torch.jit.ScriptModule, paths: Sequence[str]):
    """A function of (module, x) returning, for each path whose output is found, the first
    tensor computed inside that submodule and used outside it."""
    graph = cast(Any, script.forward).graph.copy()
    torch._C._jit_pass_inline(graph)
    taps: dict[str, torch._C.Value] = {}
    position: dict[str, tuple[int, int]] = {}
    for index, node in enumerate(graph.nodes()):
        where = _hierarchy_path(node)
        for path in paths:
            if path in taps or not _inside(where, path):
                continue
            for value in node.outputs():
                if not isinstance(value.type(), torch._C.TensorType):
                    continue
                users = [u.user for u in value.uses()]
                if any(
                    u.kind() == "prim::Return" or not _inside(_hierarchy_path(u), path)
                    for u in users
                ):
                    taps[path] = value
                    position[path] = (index, -path.count("."))  # a child before its parent
                    break
    found = sorted(taps, key=position.__getitem__)  # execution order, as hooks would see it
    values = [taps[p] for p in found]
    ret = graph.return_node()
    pack = graph.create("prim::TupleConstruct", values)
    pack.insertBefore(ret)
    pack.output().setType(torch._C.TupleType([v.type() for v in values]))
    ret.replaceInput(0, pack.output())
    torch._C._jit_pass_dce(graph)  # drop everything after the deepest tap
    return torch._C._create_function_from_graph("inceptionism_taps", graph), found


def load_torchscript(path: Path) -> ScriptedNet:
    if not path.is_file():
        raise ConfigError(f"--model {path}: no such file")
    try:
        with warnings.catch_warnings():  # torch 2.13 calls TorchScript deprecated; it still works
            warnings.simplefilter("ignore", DeprecationWarning)
            script = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # torch raises RuntimeError for files that are not TorchScript
        first = (str(e).strip().splitlines() or [""])[0][:160]
        raise WeightsError(
            f"--model {path}: not a TorchScript file ({first}); save one with "
            "torch.jit.script(net).save(path), or use --model package.module:factory "
            "with --weights"
        ) from e
    return ScriptedNet(script)


def load_factory(text: str) -> nn.Module:
    module_name, _, attr = text.partition(":")
    here = str(Path.cwd())
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)  # a module next to the user, as `python -m` would find it
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ConfigError(f"--model {text}: cannot import {module_name} ({e})") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"--model {text}: {module_name} has no callable {attr!r}")
    try:
        net = factory()
    except Exception as e:
        raise ConfigError(f"--model {text}: {attr}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(net, nn.Module):
        raise ConfigError(f"--model {text}: {attr}() returned {type(net).__name__}, not a Module")
    return net


def dry_layer_table(net: nn.Module, size: int = DRY_SIZE) -> list[LayerInfo]:
    """Every named submodule whose output is an (N, C, H, W) or (N, C) tensor, in the order
    they ran, with channels and stride (input size / output size; 0 without a grid). Kinds: a
    layer as coarse as any before it is on the main line (a block), a finer one a branch, one
    without a grid the head."""
    net = net.eval()
    x = torch.zeros(1, 3, size, size)
    shapes: dict[str, torch.Size] = {}
    try:
        with torch.no_grad():
            if isinstance(net, ScriptedNet):
                shapes = {k: v.shape for k, v in net.tap(x, net.module_names()).items()}
            else:
                handles = []
                for name, module in net.named_modules():
                    if name:

                        def hook(_m, _i, out, name=name):
                            if isinstance(out, torch.Tensor) and name not in shapes:
                                shapes[name] = out.shape

                        handles.append(module.register_forward_hook(hook))
                try:
                    net(x)
                finally:
                    for h in handles:
                        h.remove()
    except Exception as e:
        raise ConfigError(
            f"a dry forward pass at {size}x{size} failed ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:160] if str(e) else ''}); try another --size"
        ) from e
    rows, deepest = [], 0
    for name, shape in shapes.items():
        if len(shape) == 4:
            stride = max(1, round(size / max(shape[2], 1)))
            kind = "block" if stride >= deepest else "branch"
            deepest = max(deepest, stride)
            rows.append(LayerInfo(name, name, int(shape[1]), stride, kind=kind))
        elif len(shape) == 2:
            rows.append(LayerInfo(name, name, int(shape[1]), 0, kind="head"))
    return rows


def register_network(
    model: str,
    input_norm: str | None = None,
    input_range: str | None = None,
    size: int = DRY_SIZE,
) -> ModelSpec:
    """Register a user's network under its --model text (replacing an earlier registration with
    other options), its layer table found by a dry forward at ``size``."""
    if is_trained(model) and input_norm is None and input_range is None:
        return register_trained(model)
    fmt = parse_input_format(input_norm, input_range)
    scripted = not FACTORY.match(model)

    def build(**_parts) -> nn.Module:
        return load_torchscript(Path(model)) if scripted else load_factory(model)

    rows = dry_layer_table(build(), size)
    grid = [r for r in rows if r.stride > 0]
    if not grid:
        raise ConfigError(f"--model {model}: no submodule gives a feature map to dream with")
    # No curated choice for an unknown net: the deepest feature map at stride <= 16, the depth
    # at which the classic recipes dream.
    default = next((r for r in reversed(grid) if r.stride <= 16), grid[0]).name
    mean, std = fmt.on_unit_pixels()
    source = NoWeights("inside the TorchScript file" if scripted else "--weights FILE")
    spec = ModelSpec(
        name=model,
        description="your network (TorchScript)" if scripted else "your network (factory)",
        build=build,
        weights=Weights(source, mean, std),  # type: ignore[arg-type]
        default_layers=((default, 1.0),),
        train_size=size,
        table=lambda _net: rows,
        origin={"input_norm": input_norm, "input_range": input_range, "size": size},
    )
    _REGISTRY.pop(model, None)
    return register_model(spec)
