"""Robustness transforms: shapes, seeding, what each one does, and the spec grammar."""

from __future__ import annotations

import pytest
import torch

from inceptionism.errors import ConfigError
from inceptionism.featurevis.transforms import (
    Compose,
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    parse_transforms,
    standard_transforms,
)


def _image(h=40, w=56):
    return torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(0))


def test_pad_adds_a_grey_border():
    x = _image()
    y = Pad(5)(x)
    assert y.shape == (2, 3, 50, 66)
    assert torch.equal(y[..., 5:-5, 5:-5], x)
    assert torch.all(y[..., :5, :] == 0.5) and torch.all(y[..., :, -5:] == 0.5)


def test_jitter_is_a_crop_at_a_seeded_offset():
    x = _image()
    offsets = set()
    for seed in range(20):
        y = Jitter(4)(x, torch.Generator().manual_seed(seed))
        assert y.shape == (2, 3, 36, 52)
        found = [(oy, ox) for oy in range(5) for ox in range(5)
                 if torch.equal(y, x[..., oy : oy + 36, ox : ox + 52])]  # fmt: skip
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 5  # the offset varies with the seed


def test_scale_resizes_by_a_listed_factor():
    x = _image(50, 50)
    y = RandomScale((1.2,))(x)
    assert y.shape == (2, 3, 60, 60)
    sizes = {RandomScale.spread(0.1)(x, torch.Generator().manual_seed(s)).shape[-1]
             for s in range(40)}  # fmt: skip
    assert sizes <= {45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55} and len(sizes) > 3


def test_rotation_by_90_degrees_is_exact_and_0_is_identity():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert torch.allclose(RandomRotate((90,))(x), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)
    assert RandomRotate((0,))(x) is x
    y = RandomRotate((10,))(_image())
    assert y.shape == (2, 3, 40, 56) and not torch.allclose(y, _image())


def test_transforms_are_seeded_and_differentiable():
    chain = standard_transforms()
    x = _image().requires_grad_(True)
    a = chain(x, torch.Generator().manual_seed(3))
    b = chain(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    draws = {chain(x, torch.Generator().manual_seed(s)).shape for s in range(10)}
    assert len(draws) > 1


def test_spec_grammar():
    assert str(parse_transforms("standard")) == "pad=12,jitter=8,scale=0.1,rotate=10,jitter=4"
    assert len(parse_transforms("none")) == 0 and len(parse_transforms("")) == 0
    assert len(parse_transforms(None)) == 0
    chain = parse_transforms("pad, jitter=3, scale=0.2 ,rotate=5")
    assert chain == Compose((Pad(12), Jitter(3), RandomScale.spread(0.2), RandomRotate.spread(5)))
    assert parse_transforms(str(chain)) == chain
    x = _image()
    assert parse_transforms("none")(x) is x
    for bad, message in [("pad,blur", "unknown transform 'blur'"), ("jitter=x", "bad value"),
                         ("standard,pad", "stands alone"), ("scale=1.5", "bad value"),
                         ("pad,,jitter", "empty")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            parse_transforms(bad)
