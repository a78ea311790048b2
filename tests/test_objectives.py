"""The objective grammar and the value of each kind of term."""

from __future__ import annotations

import pytest
import torch

from inceptionism.errors import ConfigError
from inceptionism.ops.objectives import Context, Objective, Term, layer_statistic, neuron_position


def test_grammar_covers_layers_channels_neurons_and_weights():
    obj = Objective.parse("block12=1.0,block14:37=2.0,block10:5@12,9=0.5, head:1+2+3 ,x.dw=-1")
    assert obj.terms == (
        Term("block12", 1.0),
        Term("block14", 2.0, channels=(37,)),
        Term("block10", 0.5, channels=(5,), neuron=(12, 9)),
        Term("head", 1.0, channels=(1, 2, 3)),
        Term("x.dw", -1.0),
    )
    assert obj.layers == ["block12", "block14", "block10", "head", "x.dw"]
    assert Objective.parse(str(obj)) == obj  # the canonical string round-trips


@pytest.mark.parametrize(
    "spec, match",
    [("", "empty objective"), ("a=1,,b", "cannot parse"), ("=2", "cannot parse '=2'"),
     ("a=x", "bad weight 'x'"), ("a=nan", "must be finite"), ("a:", "cannot parse"),
     ("a:3@4", "cannot parse"), ("a:b", "cannot parse 'a:b'"), ("a=1,", "trailing comma")],
)  # fmt: skip
def test_bad_specs_point_at_the_bad_part(spec, match):
    with pytest.raises(ConfigError, match=match):
        Objective.parse(spec)


def test_objectives_add_and_scale():
    a, b = Objective.parse("x=1"), Objective.parse("y:0=2")
    assert str(a + 2 * b) == "x=1,y:0=4"
    assert (a - b).terms == (Term("x", 1.0), Term("y", -2.0, channels=(0,)))
    acts = {"x": torch.ones(1, 2, 5, 5), "y": torch.full((1, 1, 5, 5), 2.0)}
    assert float((a + b)(acts, "mean")) == pytest.approx(1 + 2 * 2)
    assert float((-a)(acts, "mean")) == pytest.approx(-1)
    assert Objective.of({"x": 2.0, "y:0": 1.0}) == Objective.parse("x=2,y:0=1")


def test_l2_excludes_the_border_and_scales_by_full_size():
    a = torch.zeros(1, 3, 8, 10)
    a[..., 2:-2, 2:-2] = 2.0
    a[..., 0, :] = 100.0  # border pixels must not count
    expected = (3 * 4 * 6 * 4.0) / a.numel()
    assert float(layer_statistic(a, "l2", border=2)) == pytest.approx(expected)
    assert float(layer_statistic(a, "l2", border=0)) == pytest.approx(
        float(a.square().sum()) / a.numel()
    )
    tiny = torch.ones(1, 1, 3, 3)  # too small to lose a 2-pixel border: kept whole
    assert float(layer_statistic(tiny, "l2", border=2)) == pytest.approx(1.0)
    assert float(layer_statistic(a, "mean")) == pytest.approx(float(a.mean()))
    with pytest.raises(ConfigError):
        layer_statistic(a, "l3")


def test_channel_neuron_and_logit_terms_read_the_right_values():
    a = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2 * 1, 3, 4, 5)[:1]
    acts = {"L": a, "logits": torch.tensor([[0.5, -3.0, 7.0]])}
    assert float(Objective.parse("L:1")(acts, "mean")) == pytest.approx(float(a[:, 1].mean()))
    assert float(Objective.parse("L:0+2")(acts, "mean")) == pytest.approx(
        float(a[:, [0, 2]].mean())
    )
    # a neuron: channel 2 at column 3, row 1; raw value whatever the statistic
    assert float(Objective.parse("L:2@3,1")(acts, "l2")) == float(a[0, 2, 1, 3])
    # a logit is maximised as its raw value, negative ones included
    assert float(Objective.parse("logits:1")(acts, "l2")) == -3.0
    with pytest.raises(ConfigError, match="channel 5 of 'L' is out of range"):
        Objective.parse("L:5")(acts, "mean")


def test_neuron_follows_its_image_point_across_levels_jitter_and_tiles():
    term = Term("L", channels=(0,), neuron=(6, 2))
    full = Context(strides={"L": 4}, full_size=(40, 64))  # full grid 10 x 16
    assert neuron_position(term, (10, 16), full) == (2, 6)
    half = Context(strides={"L": 4}, full_size=(40, 64), level_size=(20, 32))  # grid 5 x 8
    assert neuron_position(term, (5, 8), half) == (1, 3)
    rolled = Context(strides={"L": 4}, full_size=(40, 64), shift=(8, -4))  # 2 rows down, 1 left
    assert neuron_position(term, (10, 16), rolled) == (4, 5)
    tile = Context(strides={"L": 4}, full_size=(40, 64), level_size=(40, 64), offset=(0, 32))
    assert neuron_position(term, (10, 8), tile) is None  # lives in the other tile
    with pytest.raises(ConfigError, match="outside its 16x10 grid"):
        neuron_position(Term("L", neuron=(16, 0)), (10, 16), full)


@pytest.mark.parametrize("interior", [(False,) * 4, (True, False, False, True), (True,) * 4])
def test_l2_gradient_is_autograds_bit_for_bit_in_the_activation_layout(interior):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, 6, 11, 9, generator=g).contiguous(memory_format=torch.channels_last)
    ours, ref = a.clone().requires_grad_(), a.clone().requires_grad_()
    value = 0.7 * layer_statistic(ours, "l2", 2, interior)
    top, bottom, left, right = (0 if inner else 2 for inner in interior)
    expected = 0.7 * (ref[..., top : 11 - bottom, left : 9 - right].square().sum() / ref.numel())
    assert torch.equal(value, expected)
    (g_ours,) = torch.autograd.grad(value, ours)
    (g_ref,) = torch.autograd.grad(expected, ref)
    assert torch.equal(g_ours, g_ref)
    assert g_ours.is_contiguous(memory_format=torch.channels_last)
