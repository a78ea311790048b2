"""inceptionism: DeepDream on PyTorch, offline out of the box.

>>> from inceptionism import dream, DreamConfig
>>> out = dream("photo.jpg", config=DreamConfig(steps=10))       # doctest: +SKIP
>>> out.save("dream.png")                                          # doctest: +SKIP
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
from typing import TYPE_CHECKING, Any

from inceptionism._version import __version__

if "torch" not in _sys.modules:  # OpenMP reads how threads wait once, when torch loads it
    from inceptionism.ops.threads import prefer_short_wait

    prefer_short_wait()

# The public names, each from the module that defines it; imported when first used (PEP 562),
# so `inceptionism --help` and the lists that need no network answer without loading torch.
_PUBLIC = {
    "dream": "inceptionism.engine.api",
    "DEFAULT_MODEL": "inceptionism.engine.config",
    "PRESETS": "inceptionism.engine.config",
    "DreamConfig": "inceptionism.engine.config",
    "Progress": "inceptionism.engine.loop",
    "dream_tensor": "inceptionism.engine.loop",
    "FeatureVisConfig": "inceptionism.featurevis.render",
    "render": "inceptionism.featurevis.render",
    "render_channels": "inceptionism.featurevis.render",
    "DreamModel": "inceptionism.models",
    "get_model": "inceptionism.models",
    "list_models": "inceptionism.models",
    "Objective": "inceptionism.ops.objectives",
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        try:  # a sub-package or module, as `inceptionism.models` (it imported them all before)
            return _importlib.import_module(f"inceptionism.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"inceptionism.{name}":
                raise
        raise AttributeError(f"module 'inceptionism' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


if TYPE_CHECKING:  # what the names are, for type checkers and editors
    from inceptionism.engine.api import dream
    from inceptionism.engine.config import DEFAULT_MODEL, PRESETS, DreamConfig
    from inceptionism.engine.loop import Progress, dream_tensor
    from inceptionism.featurevis.render import FeatureVisConfig, render, render_channels
    from inceptionism.models import DreamModel, get_model, list_models
    from inceptionism.ops.objectives import Objective

__all__ = [
    "DEFAULT_MODEL",
    "PRESETS",
    "DreamConfig",
    "DreamModel",
    "FeatureVisConfig",
    "Objective",
    "Progress",
    "__version__",
    "dream",
    "dream_tensor",
    "get_model",
    "list_models",
    "render",
    "render_channels",
]
