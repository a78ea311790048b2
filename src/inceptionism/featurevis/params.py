"""Image parameterisations for feature visualisation: what the optimiser actually changes.

An image is ``valid(colour(basis()))``: a *basis* holds the optimised tensor and turns it into
raw channels (``PixelBasis``: the pixels themselves; ``FourierBasis``: a spectrum scaled by
1/frequency, so every frequency band moves at a comparable rate, Olah et al. 2017), an optional
*colour* map turns decorrelated channels into RGB (``ColourDecorrelation``, a square root of the
ImageNet colour covariance), and *valid* squashes into [0, 1] (``sigmoid`` or ``clamp``).
All random draws come from a ``torch.Generator``; nothing touches global random state.

    param = make_param("fft", (16, 3, 128, 128), generator=torch.Generator().manual_seed(0))
    image = param()           # (16, 3, 128, 128) in [0, 1], differentiable
    torch.optim.Adam(param.parameters(), lr=0.05)
"""

from __future__ import annotations

import math

import torch
from torch import nn

from inceptionism.errors import ConfigError

PARAMS = ("pixel", "fft")
VALID = ("sigmoid", "clamp")

# ImageNet's RGB covariance (pixels in [0, 1]) by its principal components: the eigenvalues and
# eigenvectors (columns) published with AlexNet's colour augmentation (Krizhevsky et al. 2012,
# as used in fb.resnet.torch). The covariance is U diag(eigval) U^T.
IMAGENET_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def imagenet_colour_covariance() -> torch.Tensor:
    """The (3, 3) RGB covariance ``U diag(eigval) U^T`` (float64)."""
    u = torch.tensor(IMAGENET_EIGVEC, dtype=torch.float64)
    return u @ torch.diag(torch.tensor(IMAGENET_EIGVAL, dtype=torch.float64)) @ u.T


def colour_sqrt(method: str = "svd", normalise: bool = True) -> torch.Tensor:
    """A square root ``A`` of the ImageNet colour covariance (``A @ A.T == C``), float64.

    ``svd``: ``U sqrt(S)`` (principal axes, what Lucid ships); ``cholesky``: the lower-triangular
    root. With ``normalise`` the matrix is divided by its largest column norm, so a unit step in
    the decorrelated space moves pixels by at most one unit (then ``A @ A.T`` is ``C`` scaled).
    """
    cov = imagenet_colour_covariance()
    if method == "svd":
        u, s, _ = torch.linalg.svd(cov)
        root = u * s.sqrt()
    elif method == "cholesky":
        root = torch.linalg.cholesky(cov)
    else:
        raise ConfigError(f"colour square root must be svd or cholesky, got {method!r}")
    if normalise:
        root = root / root.norm(dim=0).max()
    return root


class PixelBasis(nn.Module):
    """The raw channels are the optimised tensor itself, started at ``sd * randn``."""

    def __init__(self, shape: tuple[int, int, int, int], sd: float = 0.01, generator=None) -> None:
        super().__init__()
        self.shape = tuple(shape)
        generator = generator or torch.Generator().manual_seed(0)
        self.raw = nn.Parameter(sd * torch.randn(self.shape, generator=generator))

    def forward(self) -> torch.Tensor:
        return self.raw

    @torch.no_grad()
    def set_raw(self, raw: torch.Tensor) -> None:
        """Make ``forward()`` return ``raw`` (the inverse of the basis)."""
        self.raw.copy_(raw)


def spectrum_scale(height: int, width: int, decay_power: float = 1.0) -> torch.Tensor:
    """Per-frequency scale of the rfft2 grid, (H, W//2+1): ``1 / max(f, 1/max(H, W))**p``
    with ``f`` in cycles per pixel, so low frequencies (which carry most of a natural image's
    energy) get proportionally larger steps than high ones."""
    fy = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(width, dtype=torch.float64)[None, :]
    freq = torch.sqrt(fx**2 + fy**2)
    return (1.0 / freq.clamp(min=1.0 / max(height, width)) ** decay_power).float()


class FourierBasis(nn.Module):
    """The raw channels are the inverse real FFT (orthonormal) of a 1/f-scaled spectrum.

    The optimised tensor is the unscaled spectrum (real and imaginary parts), started at
    ``sd * randn``; ``scale`` divides the result so that a start of this size gives pixel values
    of a size comparable with the pixel basis (Lucid divides by 4 for the same reason).
    """

    freq_scale: torch.Tensor  # buffers, registered in __init__
    freq: torch.Tensor

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        sd: float = 0.01,
        decay_power: float = 1.0,
        scale: float = 4.0,
        generator=None,
    ) -> None:
        super().__init__()
        n, c, h, w = self.shape = tuple(shape)
        self.register_buffer("freq_scale", spectrum_scale(h, w, decay_power), persistent=False)
        self.divide = float(scale)
        generator = generator or torch.Generator().manual_seed(0)
        spec = sd * torch.randn(n, c, h, w // 2 + 1, 2, generator=generator)
        self.spectrum = nn.Parameter(spec)
        fy = torch.fft.fftfreq(h)[:, None]
        fx = torch.fft.rfftfreq(w)[None, :]
        self.register_buffer("freq", torch.sqrt(fx**2 + fy**2), persistent=False)
        self.cutoff: float | None = None  # cycles per pixel; None: the full spectrum

    def forward(self) -> torch.Tensor:
        h, w = self.shape[-2:]
        spec = torch.view_as_complex(self.spectrum) * self.freq_scale
        if self.cutoff is not None:
            spec = spec * (self.freq <= self.cutoff)
        return torch.fft.irfft2(spec, s=(h, w), norm="ortho") / self.divide

    @torch.no_grad()
    def set_raw(self, raw: torch.Tensor) -> None:
        """Set the spectrum so that ``forward()`` returns ``raw`` (exact up to rounding)."""
        spec = torch.fft.rfft2(raw.to(self.spectrum) * self.divide, norm="ortho")
        self.spectrum.copy_(torch.view_as_real(spec / self.freq_scale))


class ColourDecorrelation(nn.Module):
    """Decorrelated channels -> RGB by a square root of the ImageNet colour covariance: equal
    steps in each decorrelated channel move pixels along ImageNet's principal colour axes, in
    proportion to how much natural images vary along them."""

    matrix: torch.Tensor  # buffers, registered in __init__
    inverse: torch.Tensor

    def __init__(self, method: str = "svd") -> None:
        super().__init__()
        root = colour_sqrt(method)
        self.register_buffer("matrix", root.float(), persistent=False)
        self.register_buffer("inverse", torch.linalg.inv(root).float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", self.matrix, x)

    def invert(self, rgb: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ij,njhw->nihw", self.inverse, rgb)


class ValidRange(nn.Module):
    """Raw values -> [0, 1]: ``sigmoid`` (smooth, never stuck) or ``clamp`` of ``x + 0.5``."""

    def __init__(self, kind: str = "sigmoid") -> None:
        super().__init__()
        if kind not in VALID:
            raise ConfigError(f"valid range must be one of {', '.join(VALID)}, got {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) if self.kind == "sigmoid" else (x + 0.5).clamp(0.0, 1.0)

    def invert(self, image: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        image = image.clamp(eps, 1.0 - eps)
        return torch.logit(image) if self.kind == "sigmoid" else image - 0.5


class ImageParam(nn.Module):
    """``valid(colour(basis()))``: call it for the (N, 3, H, W) image in [0, 1]."""

    def __init__(
        self, basis: PixelBasis | FourierBasis, colour: ColourDecorrelation | None,
        valid: ValidRange,
    ) -> None:  # fmt: skip
        super().__init__()
        self.basis: PixelBasis | FourierBasis = basis
        self.colour, self.valid = colour, valid

    def forward(self) -> torch.Tensor:
        x = self.basis()
        if self.colour is not None:
            x = self.colour(x)
        return self.valid(x)

    @torch.no_grad()
    def set_image(self, image: torch.Tensor) -> None:
        """Start from ``image`` (N, 3, H, W) in [0, 1]: the parameter that renders it."""
        raw = self.valid.invert(image)
        if self.colour is not None:
            raw = self.colour.invert(raw)
        self.basis.set_raw(raw)


def make_param(
    kind: str,
    shape: tuple[int, int, int, int],
    decorrelate: bool = True,
    valid: str = "sigmoid",
    sd: float = 0.01,
    decay_power: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> ImageParam:
    """A parameterisation by name: ``pixel`` or ``fft``, colour-decorrelated or not."""
    if kind not in PARAMS:
        raise ConfigError(f"param must be one of {', '.join(PARAMS)}, got {kind!r}")
    if len(shape) != 4 or shape[1] != 3 or min(shape) < 1:
        raise ConfigError(f"param shape must be (N, 3, H, W), got {tuple(shape)}")
    if not (math.isfinite(sd) and sd >= 0):
        raise ConfigError(f"sd must be a non-negative number, got {sd}")
    if kind == "fft":
        basis: PixelBasis | FourierBasis = FourierBasis(shape, sd, decay_power, generator=generator)
    else:
        basis = PixelBasis(shape, sd, generator=generator)
    colour = ColourDecorrelation() if decorrelate else None
    return ImageParam(basis, colour, ValidRange(valid)).to(device)
