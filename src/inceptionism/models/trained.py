"""Networks trained on your own pictures (``inceptionism train``): a weights file plus a JSON
metadata file beside it, loaded as a model like any other (``--model mynet.pt``).

The weights are tensors only: safetensors where that package is installed, else a torch state
dict read with ``weights_only=True``; nothing in either file can run code. The metadata (class
names, base model, normalisation, input size, training recipe, data hashes) rebuilds the
architecture: the base model with a new head for the user's classes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.models.registry import (
    _ALIASES,
    _REGISTRY,
    LayerInfo,
    ModelSpec,
    get_spec,
    layer_table,
    register_model,
)
from inceptionism.models.weights import LocalWeights, Norm, Weights, sha256_file

KIND = "inceptionism-trained"  # the metadata's "kind": what marks a trained network
META_VERSION = 1
WEIGHT_SUFFIXES = (".pt", ".pth")  # what --model sends to custom.register_network

_CLASSES: dict[str, list[str]] = {}  # registered trained model -> its class names


def meta_path(weights: str | os.PathLike) -> Path:
    """The metadata file beside a weights file: ``mynet.pt`` -> ``mynet.json``."""
    return Path(weights).with_suffix(".json")


def is_trained(text: str) -> bool:
    """Whether a --model value is a weights file with trained-network metadata beside it."""
    path = Path(text)
    if path.suffix.lower() not in WEIGHT_SUFFIXES or not meta_path(path).is_file():
        return False
    try:
        return read_meta(path).get("kind") == KIND
    except ConfigError:
        return False


def trained_file(name: str) -> str | None:
    """``--model mynet``: ``mynet.pt`` (or ``.pth``) in the current folder when its metadata
    names it ``mynet``; None for a registered model or anything else."""
    if name in _REGISTRY or name in _ALIASES or Path(name).suffix or "/" in name:
        return None
    for suffix in WEIGHT_SUFFIXES:
        path = name + suffix
        if is_trained(path) and read_meta(path).get("name") == name:
            return path
    return None


def read_meta(weights: str | os.PathLike) -> dict[str, Any]:
    path = meta_path(weights)
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"{path}: not readable trained-network metadata ({e})") from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: trained-network metadata must be a JSON object")
    return meta


def _checked(meta: dict[str, Any], where: Path) -> tuple[str, list[str], int]:
    """The metadata's base model, class names and input size, type-checked."""
    base, classes, size = meta.get("base_model"), meta.get("classes"), meta.get("input_size")
    ok = (
        isinstance(base, str)
        and isinstance(classes, list)
        and len(classes) >= 2
        and all(isinstance(c, str) and c for c in classes)
        and len(set(classes)) == len(classes)
        and isinstance(size, int)
        and 16 <= size <= 4096
    )
    if not ok:
        raise ConfigError(
            f"{where}: trained-network metadata needs base_model, two or more distinct classes "
            "and input_size from 16 to 4096"
        )
    assert isinstance(base, str) and isinstance(classes, list) and isinstance(size, int)
    return base, classes, size


def head_path(net: nn.Module) -> str:
    """The module path of a network's classifier: its last Linear layer."""
    linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"{type(net).__name__} has no Linear classifier to replace")
    return linears[-1]


def replace_head(net: nn.Module, classes: int) -> str:
    """Put a new Linear layer with ``classes`` outputs where the network's classifier was."""
    path = head_path(net)
    old = net.get_submodule(path)
    assert isinstance(old, nn.Linear)
    parent_path, _, attr = path.rpartition(".")
    parent = net.get_submodule(parent_path) if parent_path else net
    new = nn.Linear(old.in_features, classes, device=old.weight.device, dtype=old.weight.dtype)
    setattr(parent, attr, new)
    return path


def build_trained(base: str, classes: int) -> nn.Module:
    """The base architecture with a head for ``classes`` classes (weights uninitialised)."""
    net = get_spec(base).build()
    replace_head(net, classes)
    return net


def trained_table(base: str, classes: int) -> list[LayerInfo]:
    """The base's layer table with the logits of the new head."""
    with torch.device("meta"):
        head = head_path(get_spec(base).build())
    return [
        replace(i, channels=classes) if i.module == head and i.stride == 0 else i
        for i in layer_table(base)
    ]


def register_trained(weights: str, name: str | None = None) -> ModelSpec:
    """Register a trained network under ``name`` (default: the --model text), its metadata's
    name as an alias where that is free."""
    path = Path(weights)
    if not path.is_file():
        raise ConfigError(f"--model {weights}: no such file")
    meta = read_meta(path)
    base, classes, size = _checked(meta, meta_path(path))
    base_spec = get_spec(base)
    name = name or weights
    rows = trained_table(base_spec.name, len(classes))
    alias = meta.get("name")
    aliases = (alias,) if isinstance(alias, str) and alias and alias not in _taken(name) else ()

    def build(**_parts: Any) -> nn.Module:
        return build_trained(base_spec.name, len(classes))

    spec = ModelSpec(
        name=name,
        description=f"trained on {len(classes)} classes from {base_spec.name}",
        build=build,
        weights=Weights(LocalWeights(path), *_norm(meta, base_spec)),
        default_layers=base_spec.default_layers,
        train_size=size,
        labels="trained",
        aliases=aliases,
        preset=base_spec.preset,
        table=lambda _net: rows,
        origin={"size": size, "checkpoint": str(path.resolve())},
    )
    _REGISTRY.pop(name, None)
    _CLASSES[name] = list(classes)
    return register_model(spec)


def _norm(meta: dict[str, Any], base: ModelSpec) -> tuple[Norm, Norm]:
    """The metadata's normalisation (three numbers each), else the base model's."""
    pair = []
    for key, fallback in (("mean", base.mean), ("std", base.std)):
        value = meta.get(key)
        numbers = value if isinstance(value, list) and len(value) == 3 else []
        if numbers and all(isinstance(v, (int, float)) and 0 < abs(v) < 1e3 for v in numbers):
            pair.append(tuple(float(v) for v in numbers))
        else:
            pair.append(tuple(fallback))
    return cast(Norm, pair[0]), cast(Norm, pair[1])


def _taken(name: str) -> set[str]:
    return {n for n in _REGISTRY if n != name} | {a for a, n in _ALIASES.items() if n != name}


def class_names(model: str) -> list[str] | None:
    """A trained network's class names (None for a network without names)."""
    try:
        return _CLASSES.get(get_spec(model).name)
    except UnknownNameError:
        return None


def class_number(model: str, value: int | str) -> int:
    """``--class`` as a logit index: a number, or a trained network's class name."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.isdigit():
        return int(text)
    names = class_names(model)
    if names is None:
        raise ConfigError(f"--class {text!r}: {model} has no class names; give a class number")
    if text not in names:
        raise UnknownNameError("class", text, names, where=model)
    return names.index(text)


def trained_from_recipe(model: str, network: dict[str, Any], sha256: str | None) -> str | None:
    """Register the trained network a recipe names (by its recorded checkpoint, checked against
    its hash) and return its name; None when the recipe names no trained checkpoint."""
    recorded = network.get("checkpoint")
    if not isinstance(recorded, str):
        return None
    for candidate in (Path(recorded), Path(model)):
        found = candidate.is_file() and is_trained(str(candidate))
        if found and (sha256 is None or sha256_file(candidate) == sha256):
            return register_trained(str(candidate), name=model).name
    raise ConfigError(
        f"the recipe's trained network {recorded} (sha256 {str(sha256)[:12]}...) is not there "
        f"or has changed; pass --model FILE"
    )


# --- writing ---------------------------------------------------------------------------------


def has_safetensors() -> bool:
    import importlib.util

    return importlib.util.find_spec("safetensors") is not None


def write_trained(
    weights: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]
) -> dict[str, Any]:
    """Write the weights (safetensors where installed, else a tensors-only state dict) and the
    metadata beside them, each through a temporary file renamed into place. Returns the
    metadata as written (with the weights' format and sha256)."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    fmt = "safetensors" if has_safetensors() else "torch-state-dict"

    def save(tmp: Path) -> None:
        if fmt == "safetensors":
            from safetensors.torch import save_file

            save_file(state, str(tmp))
        else:
            torch.save(state, tmp)

    _atomic(weights, save)
    meta = {**meta, "kind": KIND, "version": META_VERSION, "weights_format": fmt,
            "weights_sha256": sha256_file(weights)}  # fmt: skip
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    _atomic(meta_path(weights), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return meta


def _atomic(dest: Path, write: Any) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
