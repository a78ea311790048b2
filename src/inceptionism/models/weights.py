"""Finding weight files and loading them with strict, explained key and shape checks."""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import WeightsError


@dataclass(frozen=True)
class PackagedWeights:
    """A state dict shipped inside a Python package (no network needed)."""

    package: str  # the pip name, for messages
    module: str  # the import name
    filename: str

    def path(self) -> Path:
        try:
            mod = importlib.import_module(self.module)
        except ImportError as e:
            raise WeightsError(
                f"the weights package {self.package!r} is not installed "
                f"(pip install {self.package}), or pass --weights FILE"
            ) from e
        path = Path(mod.__file__).parent / "models" / self.filename
        if not path.is_file():
            raise WeightsError(f"{self.package} is installed but {path} is missing; reinstall it")
        return path

    def describe(self) -> str:
        return f"packaged ({self.package})"


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, remembered per (path, size, mtime) so recipes cost one hash per file."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a state dict from a .pth file safely (tensors only), with a clear error if broken."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for truncated or foreign files
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise WeightsError(f"cannot read weights file {path}: {type(e).__name__}: {first}") from e
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path} does not hold a state dict of tensors")
    return obj


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with an error that names the keys and shapes that differ."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("wrong shape", shapes)):
        if items:
            more = f" and {len(items) - 5} more" if len(items) > 5 else ""
            problems.append(f"{label} {len(items)}: {', '.join(items[:5])}{more}")
    if problems:
        raise WeightsError(f"weights {source} do not fit this architecture: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
