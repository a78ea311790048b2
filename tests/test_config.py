from __future__ import annotations

import dataclasses

import pytest

from inceptionism.engine.config import PRESETS, DreamConfig
from inceptionism.engine.presets import _GOOGLENET_BLOCKS, map_seed_layer
from inceptionism.errors import ConfigError, UnknownNameError
from inceptionism.models import block_layers


def test_config_is_frozen_and_round_trips():
    cfg = DreamConfig(layers="block9=0.5,block12", max_loss=3.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]
    assert cfg.layers == "block9=0.5,block12=1"  # canonical form
    assert DreamConfig(layers={"block9": 0.5, "block12:3@1,2": -1}).layers == (
        "block9=0.5,block12:3@1,2=-1"
    )
    assert DreamConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "field, value",
    [("steps", -1), ("octaves", 0), ("octave_scale", 0.0), ("step_size", -0.1),
     ("jitter", -2), ("objective", "l3"), ("grad_norm", "l2"), ("detail", "both"),
     ("steps", 2.5), ("max_loss", float("inf")), ("seed", -1)],
)  # fmt: skip
def test_invalid_values_are_refused(field, value):
    with pytest.raises(ConfigError, match=field):
        DreamConfig(**{field: value})


def test_from_dict_refuses_unknown_fields():
    with pytest.raises(ConfigError, match="unknown config fields"):
        DreamConfig.from_dict({"stepz": 3})


def test_keras_classic_carries_the_seed_parameters():
    cfg = DreamConfig.preset("keras-classic", model="efficientnet_lite2")
    assert (cfg.step_size, cfg.steps, cfg.octaves, cfg.octave_scale) == (0.01, 20, 3, 1.4)
    assert (cfg.detail, cfg.objective, cfg.border, cfg.grad_norm) == ("photo", "l2", 2, "l1")
    # the step and the 1e-7 floor are in the seed's own [-1, 1] pixels
    assert (cfg.pixel_range, cfg.grad_eps, cfg.keep_small_maps) == ("signed", 1e-7, False)
    assert cfg.octave_resize == "half-pixel"
    # max_loss 10 is in InceptionV3's activation units: off on other networks unless asked
    assert cfg.max_loss is None
    assert (
        DreamConfig.preset("keras-classic", model="efficientnet_lite2", max_loss=10).max_loss == 10
    )
    # on the seed's own network (its real layer table): the seed's layers, names and max_loss
    exact = PRESETS["keras-classic"].make("inception_v3", lambda: block_layers("inception_v3"))
    assert exact["max_loss"] == 10.0
    assert exact["layers"] == "mixed2=0.2,mixed3=0.5,mixed4=2,mixed5=1.5"
    assert cfg.jitter == 0 and cfg.clip is False
    # mixed2..mixed5 of InceptionV3's 11 blocks map to the same relative depth of Lite2's 21
    assert cfg.layers == "block5=0.2,block7=0.5,block9=2,block10=1.5"


@pytest.mark.parametrize("model", ["googlenet", "inception_v3", "vgg16", "resnet50",
                                   "efficientnet_lite0"])  # fmt: skip
def test_seed_layers_map_onto_blocks_at_the_same_depth(model):
    """On every real table the seed's mixed2..mixed5 land on blocks (never a stem, a pool or a
    stage), in depth order, in the middle of the net, as the seed's are in InceptionV3's 11."""
    from inceptionism.models import block_layers, layer_index, layer_table

    seed = [f"mixed{i}" for i in range(11)]
    blocks = block_layers(model)
    index = layer_index(layer_table(model))
    mapped = [map_seed_layer(f"mixed{i}", seed, blocks) for i in (2, 3, 4, 5)]
    assert all(index[n].kind == "block" for n in mapped), mapped
    depth = [blocks.index(n) / len(blocks) for n in mapped]
    assert depth == sorted(depth) and depth[0] >= 0.1 and depth[-1] < 0.7, (mapped, depth)


def test_keras_classic_on_resnet50_dreams_inside_its_stages():
    """The bug the layer kinds fix: ResNet's stem and first stage are not InceptionV3's
    mixed2..mixed5 (it mapped to maxpool and layer1)."""
    layers = DreamConfig.preset("keras-classic", model="resnet50").layers
    assert "maxpool" not in layers and "layer1" not in layers
    assert set(n.split("=")[0] for n in layers.split(",")) <= {
        f"layer{i}.{j}" for i in (2, 3) for j in range(6)
    }


def test_seed_layers_keep_their_names_where_the_model_has_them():
    from inceptionism.models import block_layers

    seed = [f"mixed{i}" for i in range(11)]
    assert map_seed_layer("mixed4", seed, block_layers("inception_v3")) == "mixed4"
    # googlenet's own blocks are the TF1 seed's: inception4d stays inception4d
    ours = block_layers("googlenet")
    assert map_seed_layer("inception4d", _GOOGLENET_BLOCKS, ours) == "inception4d"


def test_every_preset_builds_for_every_model():
    from inceptionism import list_models

    for name in PRESETS:
        for model in list_models():
            assert DreamConfig.preset(name, model=model, steps=1).steps == 1
    with pytest.raises(UnknownNameError, match="Did you mean 'keras-classic'"):
        DreamConfig.preset("keras-clasic")
