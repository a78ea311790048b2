"""Building a registered model with its weights: the file read (``.pth``, ``.safetensors``,
Keras ``.h5``), the parts present, strict loading, BatchNorm folding, the layer table."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch

from inceptionism.errors import WeightsError
from inceptionism.models.fuse import fold_batchnorm
from inceptionism.models.hub import (
    canonical_keys,  # timm's key layouts of the project's architectures
)
from inceptionism.models.keras_weights import convert_keras_file
from inceptionism.models.registry import DreamModel, ModelSpec, _own_table, get_spec
from inceptionism.models.weights import (
    SAFETENSORS_SUFFIX,
    RemoteWeights,
    Weights,
    load_strict,
    read_safetensors,
    read_state_dict,
)


def get_model(
    name: str,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    fuse: bool = True,
    channels_last: bool = True,
) -> DreamModel:
    """Build a registered model with its weights, frozen and ready to dream.

    ``weights`` overrides the spec's weight source (its entry: ``weights_entry``). ``fuse`` folds
    BatchNorm into convolutions and ``channels_last`` picks the faster memory layout; both leave
    the function unchanged.
    """
    spec = get_spec(name)
    path = Path(weights) if weights is not None else spec.weights.path()
    if path is None:  # weights inside the network itself (TorchScript) or its factory's own
        net, entry = spec.build(), spec.weights
    else:
        try:
            state, entry = read_weights(path, spec)
        except WeightsError as e:
            if weights is None and isinstance(spec.weights.source, RemoteWeights):
                raise WeightsError(f"{e} (the cached copy; delete it to download it again)") from e
            raise
        net = spec.build(**parts_present(spec, state), **dict(entry.build))
        load_strict(getattr(net, "script", net), state, str(path))
    if fuse and hasattr(net, "conv_bn_pairs"):
        fold_batchnorm(net, cast(Any, net).conv_bn_pairs())
    layers = spec.table(net) if spec.table else _own_table(net)
    model = DreamModel(
        spec,
        net,
        layers,
        weights_path=path,
        channels_last=channels_last,
        mean=entry.mean,
        std=entry.std,
    )
    return model.to(device)


KERAS_SUFFIXES = (".h5", ".hdf5")


def read_weights(path: Path, spec: ModelSpec) -> tuple[dict[str, torch.Tensor], Weights]:
    """A weights file's state dict in the architecture's own key layout, and its weights entry:
    the model's own with this file, or for a Keras file Keras's normalisation and build
    keywords (its InceptionV3 pools without the padding)."""
    if path.suffix.lower() in KERAS_SUFFIXES:
        return convert_keras_file(path, spec.name, spec.weights)

    safe = path.suffix.lower() == SAFETENSORS_SUFFIX
    state = read_safetensors(path) if safe else read_state_dict(path)
    architecture = spec.hub["architecture"] if spec.hub else spec.name
    return canonical_keys(architecture, state), spec.weights.with_file(path)


def parts_present(spec: ModelSpec, state: dict[str, torch.Tensor]) -> dict[str, bool]:
    """Build keywords for the optional parts: False for each part the file has no key of."""
    return {
        kwarg: any(k.startswith(prefixes) for k in state) for kwarg, prefixes in spec.optional_parts
    }
