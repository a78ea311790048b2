from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from inceptionism.engine.ascent import normalize_gradient, objective_gradient, random_shift
from inceptionism.ops.objectives import Objective
from inceptionism.ops.octaves import octave_shapes, photo_detail, resize


def test_octave_shapes_follow_the_keras_seed():
    # Keras: int(dim / scale**i) for i in 1..n-1, reversed, original last
    assert octave_shapes(300, 400, 3, 1.4) == [(153, 204), (214, 285), (300, 400)]
    assert octave_shapes(300, 400, 1, 1.4) == [(300, 400)]
    # levels smaller than 16 px are left out, the original always stays
    assert octave_shapes(40, 60, 5, 1.5) == [(17, 26), (26, 40), (40, 60)]
    assert octave_shapes(10, 10, 3, 2.0) == [(10, 10)]


@pytest.mark.parametrize("src, dst", [((20, 30), (37, 41)), ((50, 40), (21, 33)), ((9, 9), (9, 9))])
def test_resize_matches_scipy_zoom_order_1(src, dst):
    x = torch.rand(1, 3, *src, dtype=torch.float64)
    ours = resize(x, dst)[0].numpy()
    factors = (1, dst[0] / src[0], dst[1] / src[1])
    ref = ndimage.zoom(x[0].numpy(), factors, order=1)
    np.testing.assert_allclose(ours, ref, atol=1e-10)


def test_photo_detail_is_what_shrinking_lost():
    original = torch.rand(1, 3, 40, 50)
    detail = photo_detail(original, (20, 25), (40, 50))
    assert torch.allclose(resize(resize(original, (20, 25)), (40, 50)) + detail, original)
    assert torch.equal(photo_detail(original, (40, 50), (40, 50)), torch.zeros_like(original))


def test_gradient_normalisations():
    g = torch.randn(1, 3, 20, 20) * 7 + 1
    assert float(normalize_gradient(g, "l1").abs().mean()) == pytest.approx(1.0, rel=1e-5)
    assert float(normalize_gradient(g, "std").std(correction=0)) == pytest.approx(1.0, rel=1e-5)
    zero = torch.zeros(1, 3, 4, 4)
    assert torch.isfinite(normalize_gradient(zero, "l1")).all()


def test_random_shift_is_seeded_and_bounded():
    a = [random_shift(5, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert a[0] == a[1]
    gen = torch.Generator().manual_seed(0)
    shifts = [random_shift(5, gen) for _ in range(200)]
    assert all(-5 <= s <= 5 for pair in shifts for s in pair)
    assert {s for pair in shifts for s in pair} == set(range(-5, 6))
    assert random_shift(0, gen) == (0, 0)


def test_jittered_gradient_is_rolled_back_into_place(lite0):
    """The gradient at a rolled image, rolled back, equals the gradient of the rolled objective."""
    x = torch.rand(1, 3, 48, 48)
    obj = Objective.parse("block5")
    _, g = objective_gradient(lite0, x, obj, "mean", 0, shift=(7, -3))
    xr = torch.roll(x, (7, -3), dims=(-2, -1)).requires_grad_(True)
    obj(lite0.activations(xr, obj.layers), "mean", 0).backward()
    assert torch.allclose(g, torch.roll(xr.grad, (-7, 3), dims=(-2, -1)))
