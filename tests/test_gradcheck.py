"""The package's hand-written backward passes against autograd's numbers.

Every ``torch.autograd.Function`` in the package goes through ``torch.autograd.gradcheck``
(finite differences against the Function's own backward). Those that run in float64 are
checked there, on small shapes. The convolutions (``_ConvAct`` and ``conv_input_grad``) run
through oneDNN, which takes float32 and bfloat16 only (float64 raises in
``mkldnn_convolution``): they are checked in float32 on small integers instead, where every
product and partial sum is an integer below 2**24, so any summation order gives the exact
result and the comparison can ask for equality (and finite differences of a linear map with
a step of 0.5 are exact too).
"""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

from inceptionism.models.efficientnet_lite import _ZeroPad
from inceptionism.models.fuse import _ONEDNN, _ConvAct, _Split, conv_input_grad
from inceptionism.models.inception import _AvgPool3
from inceptionism.ops.objectives import _BorderedSquares

needs_onednn = pytest.mark.skipif(not _ONEDNN, reason="oneDNN is not in this torch build")


def _double(*shape: int, seed: int, channels_last: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.requires_grad_(True)


def _integers(*shape: int, seed: int, low: int = -3, high: int = 4) -> torch.Tensor:
    """float32 holding small integers: exact under every summation order."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(low, high, shape, generator=gen).float()


# --- float64 Functions --------------------------------------------------------------------------


@pytest.mark.parametrize("border", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 3), (0, 3, 2, 0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_bordered_squares_gradcheck(border, channels_last):
    a = _double(1, 2, 7, 8, seed=sum(border), channels_last=channels_last)
    assert torch.autograd.gradcheck(lambda t: _BorderedSquares.apply(t, border), (a,))


def test_bordered_squares_gradient_is_zero_on_the_border_and_2a_inside():
    a = _double(1, 2, 6, 7, seed=3)
    (g,) = torch.autograd.grad(_BorderedSquares.apply(a, (1, 2, 3, 1)), a)
    inside = torch.zeros_like(a, dtype=torch.bool)
    inside[..., 1:4, 3:6] = True
    assert torch.equal(g[inside], 2 * a.detach()[inside])
    assert not g[~inside].any()


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("channels_last", [False, True])
def test_avg_pool3_gradcheck(count_pad, channels_last):
    """As Inception v3 calls it: ``_AvgPool3.apply(x, count_pad)`` on an (N, C, H, W) map,
    channels_last in the model."""
    x = _double(1, 3, 4, 5, seed=int(count_pad), channels_last=channels_last)
    assert torch.autograd.gradcheck(lambda t: _AvgPool3.apply(t, count_pad), (x,))


@pytest.mark.parametrize("count_pad", [True, False])
def test_avg_pool3_matches_torchs_pool(count_pad):
    x = _double(1, 2, 4, 5, seed=7)
    ours = _AvgPool3.apply(x, count_pad)
    ref = F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=count_pad)
    g = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(8))
    (g_ours,) = torch.autograd.grad(ours, x, g)
    (g_ref,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(ours, ref, rtol=0, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("sizes", [[1, 2, 3], [4], [2, 2]])
@pytest.mark.parametrize("channels_last", [False, True])
def test_split_gradcheck(sizes, channels_last):
    y = _double(2, sum(sizes), 3, 4, seed=len(sizes), channels_last=channels_last)
    parts = _Split.apply(y, sizes)
    assert [p.shape[1] for p in parts] == sizes
    assert torch.equal(torch.cat(parts, 1), y)
    assert torch.autograd.gradcheck(lambda t: _Split.apply(t, sizes), (y,))


@pytest.mark.parametrize("pad", [(0, 1, 0, 1), (1, 1, 1, 1), (2, 0, 0, 3), (0, 0, 0, 0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_zero_pad_gradcheck(pad, channels_last):
    """``pad`` is (top, bottom, left, right), as SameConv2d.same passes it."""
    x = _double(1, 3, 4, 5, seed=sum(pad), channels_last=channels_last)
    out = _ZeroPad.apply(x, pad)
    top, bottom, left, right = pad
    assert out.shape[-2:] == (4 + top + bottom, 5 + left + right)
    assert torch.equal(out, F.pad(x, [left, right, top, bottom]))
    assert torch.autograd.gradcheck(lambda t: _ZeroPad.apply(t, pad), (x,))


# --- the oneDNN convolutions (float32 on small integers) --------------------------------------

# (cin, cout, kernel, stride, padding, dilation, groups, h, w): one case per backward branch of
# _ConvAct (1x1 pointwise, an image of <= 4 channels, conv_input_grad at strides 1 and 2,
# depthwise and dilated through oneDNN's own backward)
CONV_CASES = [
    (6, 5, 1, 1, 0, 1, 1, 4, 5),  # pointwise: transposed 1x1 convolution
    (3, 4, 3, 2, 1, 1, 1, 6, 5),  # the image: oneDNN's backward on one thread
    (6, 4, 3, 1, 1, 1, 1, 4, 5),  # conv_input_grad, stride 1
    (6, 4, 3, 2, 0, 1, 1, 5, 6),  # conv_input_grad, stride 2
    (6, 4, 5, 1, 3, 1, 2, 4, 4),  # conv_input_grad, over-padded, grouped
    (6, 6, 3, 2, 1, 1, 6, 5, 6),  # depthwise: oneDNN's backward
    (6, 4, 3, 1, 2, 2, 1, 5, 4),  # dilated: oneDNN's backward
]


@needs_onednn
@pytest.mark.parametrize("cin,cout,k,stride,pad,dilation,groups,h,w", CONV_CASES)
def test_conv_act_gradcheck(cin, cout, k, stride, pad, dilation, groups, h, w):
    """``_ConvAct`` without an activation, called as ``conv2d`` calls it (channels_last input,
    frozen weights, list arguments). float32 only (see the module's docstring): on integers
    its map is linear and exact, so finite differences with a step of 0.5 are exact and the
    Jacobians must agree to the last bit (atol=rtol=0)."""
    x = _integers(1, cin, h, w, seed=k * 10 + stride).contiguous(memory_format=torch.channels_last)
    weight = _integers(cout, cin // groups, k, k, seed=cin + cout)
    weight = weight.contiguous(memory_format=torch.channels_last)
    bias = _integers(cout, seed=1)
    args = ([stride] * 2, [pad] * 2, [dilation] * 2, groups, None, False)

    def fn(t):
        return _ConvAct.apply(t, weight, bias, *args)

    ref = F.conv2d(x, weight, bias, stride, pad, dilation, groups)
    assert torch.equal(fn(x), ref)
    with warnings.catch_warnings():  # "not a double precision": on purpose, see above
        warnings.simplefilter("ignore", UserWarning)
        assert torch.autograd.gradcheck(fn, (x.requires_grad_(True),), eps=0.5, atol=0, rtol=0)


@needs_onednn
@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("grad_inplace", [False, True])
@pytest.mark.parametrize("cin,cout,k,stride,pad,dilation,groups,h,w", CONV_CASES)
def test_conv_act_backward_with_activation_is_exact(
    act, grad_inplace, cin, cout, k, stride, pad, dilation, groups, h, w
):
    """With the activation (its kink rules out finite differences): the backward against
    autograd's through float64 ``conv2d`` and ``relu``/``relu6``, exactly, on integers
    (pre-activations of exactly 0 and 6 included: both give a zero gradient there)."""
    x = _integers(1, cin, h, w, seed=k + stride).contiguous(memory_format=torch.channels_last)
    weight = _integers(cout, cin // groups, k, k, seed=cin * cout)
    weight = weight.contiguous(memory_format=torch.channels_last)
    bias = _integers(cout, seed=2)
    x64 = x.double().requires_grad_(True)
    pre = F.conv2d(x64, weight.double(), bias.double(), stride, pad, dilation, groups)
    ref = torch.relu(pre) if act == "relu" else F.relu6(pre)
    xs = x.clone().requires_grad_(True)
    ours = _ConvAct.apply(
        xs, weight, bias, [stride] * 2, [pad] * 2, [dilation] * 2, groups, act, grad_inplace
    )
    assert torch.equal(ours.double(), ref)
    g = _integers(*ref.shape, seed=5).contiguous(memory_format=torch.channels_last)
    (g_ref,) = torch.autograd.grad(ref, x64, g.double())
    (g_ours,) = torch.autograd.grad(ours, xs, g.clone())
    assert torch.equal(g_ours.double(), g_ref)


@needs_onednn
@pytest.mark.parametrize(
    "k,stride,pad,h,w",
    [(k, s, p, h, w) for k, s, p, (h, w) in itertools.product(
        [1, 2, 3, 5], [1, 2], [0, 1, 2, 4], [(1, 1), (6, 7), (9, 8)])
     if h + 2 * p >= k and w + 2 * p >= k],
)  # fmt: skip
@pytest.mark.parametrize("channels_last", [True, False])
def test_conv_input_grad_is_autograds_exactly(k, stride, pad, h, w, channels_last):
    """``conv_input_grad`` (groups 1, dilation 1) against ``torch.autograd.grad`` of float64
    ``F.conv2d``: strides 1 and 2; paddings from none to beyond the kernel (pad 4 on a 1x1 or
    3x3 kernel: the hand-padded paths); kernels smaller than the stride (phases no tap
    reaches); a 1x1 map. oneDNN takes no float64 (see the module's docstring), so the inputs
    are small integers in float32 and the answer must be exact, not merely within 1e-10."""
    cin, cout = 5, 6
    x = _integers(1, cin, h, w, seed=h * w)
    weight = _integers(cout, cin, k, k, seed=k * 7 + pad)
    x64 = x.double().requires_grad_(True)
    y = F.conv2d(x64, weight.double(), None, stride, pad)
    g = _integers(*y.shape, seed=stride * 3 + pad)
    (ref,) = torch.autograd.grad(y, x64, g.double())
    if channels_last:
        g = g.contiguous(memory_format=torch.channels_last)
    ours = conv_input_grad(g, weight, [stride] * 2, [pad] * 2, 1, x)
    assert ours.shape == x.shape
    if channels_last:  # the model's layout stays (a contiguous one may come back either way)
        assert ours.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(ours.double(), ref)
    # a comparison of zeros proves nothing, unless no tap reaches the input (k=1, s=2, pad=1
    # on a 1x1 map: every output reads padding)
    reached = F.conv2d(torch.ones(1, 1, h, w), torch.ones(1, 1, k, k), None, stride, pad)
    assert bool(ref.any()) == bool(reached.any())
