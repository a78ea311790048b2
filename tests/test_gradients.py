"""Gradient processing against references: the Gaussian blur against SciPy, the l1 and std
normalisations against their NumPy formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from inceptionism.ops.gradients import gaussian_blur, normalize_gradient


@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
def test_gaussian_blur_matches_scipy(sigma):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 40, 52))
    ours = gaussian_blur(torch.from_numpy(x), sigma).numpy()
    # torch's "reflect" padding leaves the edge pixel out: SciPy's "mirror"; the same radius
    ref = np.stack([ndimage.gaussian_filter(x[0, c], sigma, mode="mirror", truncate=3.0)
                    for c in range(3)])[None]  # fmt: skip
    assert np.abs(ours - ref).max() < 1e-12


def test_normalisations_match_their_formulas():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((1, 3, 16, 16)) * 1e-3
    t = torch.from_numpy(g)
    assert np.allclose(normalize_gradient(t, "l1").numpy(), g / np.abs(g).mean(), rtol=1e-12)
    assert np.allclose(normalize_gradient(t, "std").numpy(), g / (g.std() + 1e-8), rtol=1e-12)
    tiny = t * 1e-9  # below Keras's floor: divided by the floor, not by mean |g|
    assert np.allclose(normalize_gradient(tiny, "l1").numpy(), tiny.numpy() / 1e-7, rtol=1e-12)
    assert np.allclose(
        normalize_gradient(tiny, "l1", eps=1e-20).numpy(),
        tiny.numpy() / np.abs(tiny.numpy()).mean(),
        rtol=1e-12,
    )
