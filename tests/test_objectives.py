from __future__ import annotations

import pytest
import torch

from inceptionism.errors import ConfigError
from inceptionism.objectives import Objective, Term, layer_statistic


def test_parse_weights_and_defaults():
    obj = Objective.parse("block9=0.5, block12.dw ,head=-1")
    assert obj.pairs() == (("block9", 0.5), ("block12.dw", 1.0), ("head", -1.0))
    assert obj.layers == ["block9", "block12.dw", "head"]
    assert Objective.parse(str(obj)) == obj


@pytest.mark.parametrize(
    "spec, match",
    [("", "empty layer"), ("a=1,,b", "empty layer"), ("=2", "missing layer name"),
     ("a=x", "bad weight 'x'"), ("a=nan", "must be finite")],
)  # fmt: skip
def test_bad_specs_point_at_the_bad_part(spec, match):
    with pytest.raises(ConfigError, match=match):
        Objective.parse(spec)


def test_objectives_add_and_scale():
    a, b = Objective.parse("x=1"), Objective.parse("y=2")
    assert (a + 2 * b).pairs() == (("x", 1.0), ("y", 4.0))
    assert (a - b).terms == (Term("x", 1.0), Term("y", -2.0))
    acts = {"x": torch.ones(1, 2, 5, 5), "y": torch.full((1, 1, 5, 5), 2.0)}
    assert float((a + b)(acts, "mean")) == pytest.approx(1 + 2 * 2)
    assert float((-a)(acts, "mean")) == pytest.approx(-1)


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
