"""Keras application weight files (the legacy HDF5 layout the Keras seed downloads) converted onto
our torchvision-layout InceptionV3, VGG16 and VGG19. Needs only ``h5py``, not Keras.

The layout: the file's root (or its ``model_weights`` group, in a whole-model file) lists
``layer_names``; each layer's group lists its ``weight_names`` in Keras's order (kernel then bias;
BatchNorm gamma, beta, moving mean, moving variance, with no gamma when ``scale=False`` as in
InceptionV3). Weights are read in that order, not by name: the names differ between Keras
versions (``block1_conv1_W_1:0``, ``conv2d_1/kernel:0``, ``conv2d/kernel``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inceptionism.errors import WeightsError, install_hint
from inceptionism.models.blocks import ConvBN
from inceptionism.models.inception import Inception3
from inceptionism.models.vgg import build
from inceptionism.models.weights import Weights

# What a converter returns: the state dict in our key layout, and how the file's weights entry
# differs from the model's (its normalisation, its build keywords).
Converted = tuple[dict[str, torch.Tensor], dict[str, Any]]

# Keras's VGG was trained on Caffe's input: BGR, minus these means on 0-255, no scaling. The
# first convolution is flipped to take RGB, and this is the same transform on [0, 1] RGB pixels.
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)
CAFFE_NORM = {"mean": tuple(m / 255 for m in CAFFE_MEAN_RGB), "std": (1 / 255,) * 3}


def convert_keras_file(
    path: Path, model_name: str, entry: Weights
) -> tuple[dict[str, torch.Tensor], Weights]:
    """A Keras file's state dict in our key layout and its weights entry: the model's entry
    (``entry``) with this file, Keras's input normalisation and build keywords."""
    if not path.is_file():  # a wrong name is the first thing to fix (before h5py or model)
        raise WeightsError(f"weights file not found: {path}")
    converters = {"inception_v3": _inception_v3, "vgg16": _vgg, "vgg19": _vgg}
    if model_name not in converters:
        raise WeightsError(
            f"{path}: Keras weight files are converted for {', '.join(converters)}, "
            f"not {model_name}"
        )
    try:
        import h5py
    except ImportError:
        hint = install_hint("keras")
        raise WeightsError(f"reading Keras .h5 weights needs h5py: {hint}") from None
    try:
        with h5py.File(path, "r") as f:
            layers = _read_layers(f)
    except (OSError, KeyError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable Keras HDF5 weight file ({e})") from e
    if not layers:
        raise WeightsError(f"{path}: no layers with weights in this HDF5 file")
    state, changes = converters[model_name](layers, path, model_name)
    return state, entry.with_file(path, format="keras", **changes)


def _text(value: Any) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _read_layers(f: Any) -> dict[str, list[np.ndarray]]:
    """Layer name -> its weight arrays in Keras's order, for layers that have weights."""
    root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
    if "layer_names" not in root.attrs:
        raise KeyError("no 'layer_names' attribute: not the Keras legacy HDF5 layout")
    layers = {}
    for name in map(_text, root.attrs["layer_names"]):
        group = root[name]
        weights = [np.asarray(group[_text(w)]) for w in group.attrs.get("weight_names", [])]
        if weights:
            layers[name] = weights
    return layers


def _conv(kernel: np.ndarray) -> torch.Tensor:
    """Keras (kh, kw, in, out) -> torch (out, in, kh, kw)."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def _dense(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.T)).float()


def _vector(v: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(v)).float()


def _check(state: dict[str, torch.Tensor], net: nn.Module, path: Path, model: str) -> None:
    expected = net.state_dict()
    for key, value in state.items():
        if key in expected and value.shape != expected[key].shape:
            raise WeightsError(
                f"{path} does not fit {model}: {key} would get shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)} (a file for another network?)"
            )


def _numbered(layers: dict[str, list[np.ndarray]], kind: str) -> list[str]:
    """Layers named ``kind``, ``kind_1``, ``kind_2``, ... in the order Keras created them (the
    number; none counts as 0), whatever order the file lists them in."""
    pattern = re.compile(rf"^{kind}(?:_(\d+))?$")
    found = [(int(m.group(1) or 0), n) for n in layers if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def _inception_v3(layers: dict[str, list[np.ndarray]], path: Path, model: str) -> Converted:
    head = "predictions" in layers
    net = Inception3(aux_logits=False, head=head, keras_pooling=True)
    # Keras's conv2d_bn makes one convolution then one BatchNorm, in the same order as the
    # attributes of our blocks (the order torchvision's blocks also follow).
    ours = [n for n, m in net.named_modules() if isinstance(m, ConvBN)]
    convs, norms = _numbered(layers, "conv2d"), _numbered(layers, "batch_normalization")
    if len(convs) != len(ours) or len(norms) != len(ours):
        raise WeightsError(
            f"{path} does not fit {model}: {len(convs)} convolutions and {len(norms)} "
            f"BatchNorm layers, expected {len(ours)} of each (a file for another network?)"
        )
    state: dict[str, torch.Tensor] = {}
    for name, conv, bn in zip(ours, convs, norms):
        (kernel, *bias) = layers[conv]
        if kernel.ndim != 4 or bias:
            raise WeightsError(f"{path}: {conv} is not a bias-free 2-D convolution")
        state[f"{name}.conv.weight"] = _conv(kernel)
        values = layers[bn]
        if len(values) == 3:  # scale=False: no gamma
            values = [np.ones_like(values[0]), *values]
        if len(values) != 4:
            raise WeightsError(f"{path}: {bn} has {len(values)} weights, not a BatchNorm")
        for key, v in zip(("weight", "bias", "running_mean", "running_var"), values):
            state[f"{name}.bn.{key}"] = _vector(v)
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    if head:
        fc_kernel, fc_bias = layers["predictions"]
        state["fc.weight"], state["fc.bias"] = _dense(fc_kernel), _vector(fc_bias)
    _check(state, net, path, model)
    return state, {"build": (("keras_pooling", True),)}


def _vgg(layers: dict[str, list[np.ndarray]], path: Path, model: str) -> Converted:
    net = build(model)
    taps = [(name, i) for name, i, _, _ in net.taps if name.startswith("block") and "_conv" in name]
    convs = [(name, i - 1) for name, i in taps if not name.endswith(".pre")]  # conv index
    missing = [name for name, _ in convs if name not in layers]
    extra = [n for n in layers if n.startswith("block") and n not in dict(convs)]
    if missing or extra:
        raise WeightsError(
            f"{path} does not fit {model}: "
            + "; ".join(
                f"{label} {', '.join(items[:4])}"
                for label, items in (("missing layers", missing), ("unexpected layers", extra))
                if items
            )
        )
    state: dict[str, torch.Tensor] = {}
    for name, index in convs:
        kernel, bias = layers[name]
        state[f"features.{index}.weight"] = _conv(kernel)
        state[f"features.{index}.bias"] = _vector(bias)
    # Keras feeds BGR: flip the first convolution's input channels so it takes RGB.
    state["features.0.weight"] = state["features.0.weight"].flip(1).contiguous()
    head = all(n in layers for n in ("fc1", "fc2", "predictions"))
    if head:
        kernel, bias = layers["fc1"]
        # Keras flattens the 7x7x512 map as (row, column, channel), torch as (channel, row, col)
        w = kernel.reshape(7, 7, 512, -1).transpose(2, 0, 1, 3).reshape(7 * 7 * 512, -1)
        state["classifier.0.weight"], state["classifier.0.bias"] = _dense(w), _vector(bias)
        for keras_name, index in (("fc2", 3), ("predictions", 6)):
            kernel, bias = layers[keras_name]
            state[f"classifier.{index}.weight"] = _dense(kernel)
            state[f"classifier.{index}.bias"] = _vector(bias)
    _check(state, net, path, model)
    return state, CAFFE_NORM
