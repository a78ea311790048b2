"""inceptionism: DeepDream on PyTorch, offline out of the box.

>>> from inceptionism import dream, DreamConfig
>>> out = dream("photo.jpg", config=DreamConfig(steps=10))       # doctest: +SKIP
>>> out.save("dream.png")                                          # doctest: +SKIP
"""

from __future__ import annotations

import sys as _sys

from inceptionism._version import __version__

if "torch" not in _sys.modules:  # OpenMP reads how threads wait once, when torch loads it
    from inceptionism.ops.threads import prefer_short_wait

    prefer_short_wait()

from inceptionism.engine.api import dream  # noqa: E402
from inceptionism.engine.config import DEFAULT_MODEL, PRESETS, DreamConfig  # noqa: E402
from inceptionism.engine.loop import Progress, dream_tensor  # noqa: E402
from inceptionism.featurevis.render import FeatureVisConfig, render, render_channels  # noqa: E402
from inceptionism.models import DreamModel, get_model, list_models  # noqa: E402
from inceptionism.ops.objectives import Objective  # noqa: E402

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
