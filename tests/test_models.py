"""Embedded models: parity with the reference implementation, real classification, layer tables,
strict loading, early stop, frozen weights."""

from __future__ import annotations

import math

import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from inceptionism.errors import UnknownNameError, WeightsError
from inceptionism.io.image import load_image
from inceptionism.models import get_model, get_spec, layer_table, list_models
from inceptionism.models.weights import load_strict, read_state_dict

ESPRESSO, CUP = 967, 968


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", list_models("efficientnet_lite*"))
@pytest.mark.parametrize("fuse", [True, False])
def test_logits_match_reference_implementation(name, fuse):
    ours = get_model(name, fuse=fuse, channels_last=fuse)
    ref = EfficientNet.from_name(name.replace("_", "-"), image_size=None)  # dynamic same padding
    ref.load_state_dict(read_state_dict(ours.weights_path), strict=True)
    ref.eval()
    gen = torch.Generator().manual_seed(0)
    for h, w in [(224, 224), (131, 197)]:  # the training size, and an odd size
        x = torch.rand(2, 3, h, w, generator=gen)
        with torch.no_grad():
            a = ours(x)
            b = ref((x * 255 - 127) / 128)  # the TF port's own input scaling
        assert a.shape == b.shape == (2, 1000)
        assert _rel_err(a, b) < 1e-4


def test_classifies_a_real_photo(lite0, coffee_path):
    x = load_image(coffee_path).rgb
    x = torch.nn.functional.interpolate(x, size=(224, 224), mode="area")
    with torch.no_grad():
        top3 = lite0(x)[0].topk(3).indices.tolist()
    assert ESPRESSO in top3 or CUP in top3


@pytest.mark.parametrize("name", list_models("efficientnet_lite*"))  # the zoo: test_zoo.py
def test_layer_table_matches_a_dry_forward(name):
    model = get_model(name)
    table = layer_table(name)
    assert [i.name for i in table] == [i.name for i in model.layer_list]
    h, w = 96, 80
    acts = model.activations(torch.rand(1, 3, h, w), [i.name for i in table])
    for info in table:
        a = acts[info.name]
        assert a.shape[1] == info.channels, info.name
        if info.stride == 0:  # no grid: the class logits
            assert a.shape == (1, info.channels)
        else:
            assert a.shape[-2:] == (math.ceil(h / info.stride), math.ceil(w / info.stride))


@pytest.mark.parametrize("name", list_models())
def test_default_layers_exist(name):
    names = {i.name for i in layer_table(name)}
    assert {layer for layer, _ in get_spec(name).default_layers} <= names


def test_forward_stops_after_deepest_requested_layer(lite0):
    ran = []
    handles = [
        lite0.net.get_submodule(p).register_forward_hook(lambda *_, p=p: ran.append(p))
        for p in ("_blocks.3", "_blocks.4", "_blocks.12", "_conv_head", "_fc")
    ]
    try:
        acts = lite0.activations(torch.rand(1, 3, 64, 64), ["block3", "block4"])
    finally:
        for h in handles:
            h.remove()
    assert set(acts) == {"block3", "block4"}
    assert ran == ["_blocks.3", "_blocks.4"]
    # the hooks were scoped to the call
    assert all(not m._forward_hooks for m in lite0.net.modules())


def test_weights_never_get_gradients(lite0):
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    lite0.activations(x, ["block9"])["block9"].square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in lite0.parameters())


def test_unknown_model_and_layer_names_suggest(lite0):
    with pytest.raises(UnknownNameError, match="Did you mean 'efficientnet_lite2'"):
        get_spec("efficientnet_lite")
    with pytest.raises(UnknownNameError, match="Did you mean 'block9'"):
        lite0.layer("blok9")


@pytest.fixture(scope="module")
def lite0_state():
    return read_state_dict(get_model("efficientnet_lite0").weights_path)


def test_strict_loading_names_what_differs(lite0_state):
    net = get_spec("efficientnet_lite0").build()
    missing = dict(lite0_state)
    del missing["_fc.bias"]
    with pytest.raises(WeightsError, match=r"missing 1: _fc\.bias"):
        load_strict(net, missing, "test")
    extra = {**lite0_state, "_bogus.weight": torch.zeros(1)}
    with pytest.raises(WeightsError, match=r"unexpected 1: _bogus\.weight"):
        load_strict(net, extra, "test")
    shaped = {**lite0_state, "_fc.bias": torch.zeros(10)}
    with pytest.raises(
        WeightsError, match=r"wrong shape 1: _fc\.bias \(10,\) \(expected \(1000,\)\)"
    ):
        load_strict(net, shaped, "test")


def test_wrong_architecture_and_broken_files_are_refused(tmp_path, lite0_state):
    lite2_file = get_model("efficientnet_lite2").weights_path
    with pytest.raises(WeightsError, match="wrong shape"):
        get_model("efficientnet_lite0", weights=lite2_file)
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(lite2_file.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="cannot read weights file"):
        get_model("efficientnet_lite2", weights=truncated)
    with pytest.raises(WeightsError, match="not found"):
        get_model("efficientnet_lite2", weights=tmp_path / "absent.pth")


def test_layer_tables_are_typed_and_checked():
    """Every registered table passes the registration check against its real modules: known
    kinds, a main line whose stride never shrinks, branches beside it, no grid only in the head."""
    from inceptionism.models import block_layers
    from inceptionism.models.registry import LAYER_KINDS, _skeleton, check_table

    for name in list_models():
        net = _skeleton(get_spec(name))
        table = layer_table(name)
        check_table(name, table, net)
        assert {i.kind for i in table} <= set(LAYER_KINDS)
        assert block_layers(name) and all(
            next(i for i in table if i.name == b).kind == "block" for b in block_layers(name)
        )


def test_bad_layer_tables_are_refused_at_registration():
    from dataclasses import replace

    from inceptionism.models import LayerInfo, register_model
    from inceptionism.models.registry import _skeleton, check_table

    net = _skeleton(get_spec("efficientnet_lite0"))
    table = layer_table("efficientnet_lite0")
    shrinking = [*table[:8], replace(table[8], stride=1), *table[9:]]  # block2 at stride 1
    with pytest.raises(ValueError, match="stride 1 after"):
        check_table("lite0", shrinking, net)
    with pytest.raises(ValueError, match="no module 'nowhere'"):
        check_table("lite0", [*table, LayerInfo("x", "nowhere", 8, 32, kind="branch")], net)
    with pytest.raises(ValueError, match="kind 'layer'"):
        check_table("lite0", [replace(table[0], kind="layer")], net)
    with pytest.raises(ValueError, match="used twice"):
        check_table("lite0", [*table, replace(table[3], kind="branch")], net)
    with pytest.raises(ValueError, match="only a head"):
        check_table("lite0", [replace(table[3], stride=0)], net)
    spec = replace(get_spec("efficientnet_lite0"), name="broken-table", aliases=(),
                   table=lambda _net: shrinking)  # fmt: skip
    with pytest.raises(ValueError, match="broken-table"):
        register_model(spec)
    assert "broken-table" not in list_models()


def test_a_keras_file_is_a_weights_entry_of_its_own():
    """The model's entry carries its normalisation; a file read for it is an entry with the
    file as source (and for Keras files, Keras's normalisation and build keywords)."""
    from pathlib import Path

    from inceptionism.models.builder import read_weights

    spec = get_spec("efficientnet_lite0")
    path = spec.weights.path()
    state, entry = read_weights(path, spec)
    assert entry.source.path() == path and entry.describe() == f"present: {path}"
    assert (entry.mean, entry.std, entry.build) == (spec.mean, spec.std, ())
    assert set(state) == set(read_state_dict(path))
    assert isinstance(entry.source.file, Path)
