"""Parameterisations: the Fourier basis round-trips an image, the colour square root is a
square root with a true inverse, starts are seeded, and images stay in [0, 1]."""

from __future__ import annotations

import pytest
import torch

from inceptionism.errors import ConfigError
from inceptionism.featurevis.params import (
    ColourDecorrelation,
    FourierBasis,
    colour_sqrt,
    imagenet_colour_covariance,
    make_param,
    spectrum_scale,
)


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 3, 33, 47), (1, 3, 20, 64)])
def test_fourier_basis_round_trips_an_image(shape):
    raw = torch.randn(shape)
    basis = FourierBasis(shape, generator=torch.Generator().manual_seed(1))
    basis.set_raw(raw)
    assert torch.allclose(basis(), raw, atol=1e-5)


@pytest.mark.parametrize("kind", ["pixel", "fft"])
@pytest.mark.parametrize("decorrelate", [True, False])
@pytest.mark.parametrize("valid", ["sigmoid", "clamp"])
def test_whole_parameterisation_round_trips_an_image(kind, decorrelate, valid):
    image = torch.rand(2, 3, 24, 30, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    param = make_param(kind, tuple(image.shape), decorrelate, valid)
    param.set_image(image)
    out = param()
    assert out.shape == image.shape
    assert torch.allclose(out, image, atol=1e-4)


def test_spectrum_scale_is_one_over_frequency():
    s = spectrum_scale(64, 64)
    assert s.shape == (64, 33)
    assert s[0, 0] == pytest.approx(64.0)  # the DC term is capped at 1 / (1 / max side)
    assert s[0, 16] == pytest.approx(1 / 0.25)  # 16 cycles per 64 px = 0.25 cycles per pixel
    assert s[8, 0] == pytest.approx(1 / 0.125)
    assert float(s[32, 32]) == pytest.approx(1 / (0.5 * 2**0.5), rel=1e-5)
    assert torch.allclose(spectrum_scale(64, 64, 2.0), s**2)


@pytest.mark.parametrize("method", ["svd", "cholesky"])
def test_colour_square_root_and_its_inverse(method):
    root = colour_sqrt(method, normalise=False)
    cov = imagenet_colour_covariance()
    assert torch.allclose(root @ root.T, cov, atol=1e-10)
    normalised = colour_sqrt(method)
    assert normalised.norm(dim=0).max() == pytest.approx(1.0)
    decor = ColourDecorrelation(method)
    assert torch.allclose(decor.matrix @ decor.inverse, torch.eye(3), atol=1e-5)
    assert torch.allclose(decor.inverse @ decor.matrix, torch.eye(3), atol=1e-5)
    x = torch.randn(2, 3, 5, 7)
    assert torch.allclose(decor.invert(decor(x)), x, atol=1e-5)


def test_svd_root_columns_are_orthogonal_principal_axes():
    root = colour_sqrt("svd", normalise=False)
    gram = root.T @ root  # U^T U diag(s): diagonal, the eigenvalues, largest first
    assert torch.allclose(gram, torch.diag(gram.diagonal()), atol=1e-10)
    assert gram.diagonal()[0] > gram.diagonal()[1] > gram.diagonal()[2] > 0
    # the first axis is luminance: all three channels with the same sign and similar size
    first = root[:, 0] / root[:, 0].norm()
    assert torch.allclose(first.abs(), torch.full((3,), 3**-0.5, dtype=first.dtype), atol=0.02)


def test_starts_are_seeded_and_global_random_state_is_untouched():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a = make_param("fft", (2, 3, 16, 16), generator=torch.Generator().manual_seed(5))()
    b = make_param("fft", (2, 3, 16, 16), generator=torch.Generator().manual_seed(5))()
    c = make_param("fft", (2, 3, 16, 16), generator=torch.Generator().manual_seed(6))()
    assert torch.equal(torch.rand(3), before)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_images_stay_in_range_and_carry_gradients():
    param = make_param("fft", (1, 3, 32, 32), sd=5.0)
    image = param()
    assert float(image.detach().min()) >= 0.0 and float(image.detach().max()) <= 1.0
    image.mean().backward()
    assert next(param.parameters()).grad.abs().sum() > 0


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="pixel, fft"):
        make_param("wavelet", (1, 3, 8, 8))
    with pytest.raises(ConfigError, match="sigmoid, clamp"):
        make_param("fft", (1, 3, 8, 8), valid="tanh")
    with pytest.raises(ConfigError, match="N, 3, H, W"):
        make_param("fft", (1, 4, 8, 8))
    with pytest.raises(ConfigError, match="svd or cholesky"):
        colour_sqrt("qr")
