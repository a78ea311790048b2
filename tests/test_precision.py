"""Reduced precision (opt-in) and the oneDNN fast path of the convolutions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inceptionism import DreamConfig, dream_tensor
from inceptionism.engine.ascent import objective_gradient
from inceptionism.errors import ConfigError
from inceptionism.models.fuse import conv_act
from inceptionism.ops.objectives import Objective
from inceptionism.ops.precision import check_precision

BF16 = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


def test_fp32_is_the_model_itself_and_the_default(lite0):
    assert DreamConfig().precision == "fp32"
    assert lite0.with_precision("fp32") is lite0


def test_unknown_and_impossible_precisions_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="precision must be one of"):
        DreamConfig(precision="int8")
    with pytest.raises(ConfigError, match="CUDA only"):
        check_precision("fp16", torch.device("cpu"))


@pytest.mark.skipif(not BF16, reason="this CPU has no bf16 dot products")
def test_bf16_gradient_points_the_same_way_and_stays_float32(lite0):
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    obj = Objective.parse("block9=1,block5:3=0.5")
    loss32, g32 = objective_gradient(lite0, x, obj, "l2", 2, (3, -5))
    reduced = lite0.with_precision("bf16")
    assert reduced is lite0.with_precision("bf16")  # made once
    assert reduced.activations(x, ["block9"])["block9"].dtype == torch.float32
    loss16, g16 = objective_gradient(reduced, x, obj, "l2", 2, (3, -5))
    assert g16.dtype == torch.float32 and _cos(g16, g32) > 0.9
    assert abs(loss16 - loss32) < 0.05 * abs(loss32)
    out = dream_tensor(
        x, lite0, DreamConfig(model=lite0.name, steps=2, octaves=1, precision="bf16")
    )
    assert out.dtype == torch.float32 and float((out - x).abs().mean()) > 0


@pytest.mark.skipif(BF16, reason="this CPU has bf16 dot products")
def test_bf16_is_refused_where_the_cpu_cannot(lite0):
    with pytest.raises(ConfigError, match="no bfloat16"):
        lite0.with_precision("bf16")


@pytest.mark.parametrize(
    "cin,cout,kernel,stride,padding,act",
    [(16, 24, 1, 1, 0, nn.ReLU), (16, 24, 3, 1, 1, nn.ReLU6), (16, 16, 3, 2, 0, nn.ReLU),
     (24, 8, (1, 7), 1, (0, 3), nn.ReLU)],
)  # fmt: skip
def test_fused_convolution_matches_the_modules(cin, cout, kernel, stride, padding, act):
    g = torch.Generator().manual_seed(0)
    conv = nn.Conv2d(cin, cout, kernel, stride, padding).requires_grad_(False)
    with torch.no_grad():
        conv.weight.normal_(generator=g)
    x = torch.randn(1, cin, 19, 23, generator=g).contiguous(memory_format=torch.channels_last)
    ref_x, fast_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = act()(conv(ref_x))
    fast = conv_act(fast_x, conv, nn.Identity(), act())
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)
    up = torch.randn(ref.shape, generator=g)
    (g_ref,) = torch.autograd.grad(ref, ref_x, up)
    (g_fast,) = torch.autograd.grad(fast, fast_x, up)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)


def test_a_tapped_activation_still_runs_as_a_module():
    conv = nn.Conv2d(4, 4, 1, bias=True).requires_grad_(False)
    act, seen = nn.ReLU(), []
    handle = act.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        y = conv_act(torch.randn(1, 4, 5, 5), conv, nn.Identity(), act)
    finally:
        handle.remove()
    assert len(seen) == 1 and torch.equal(seen[0], y)


@pytest.mark.parametrize("act,kind", [(nn.ReLU, "relu"), (nn.ReLU6, "relu6")])
@pytest.mark.parametrize("groups", [1, 8])
def test_activation_post_op_equals_the_two_pass_path_bit_for_bit(act, kind, groups, monkeypatch):
    import inceptionism.models.fuse as fuse

    g = torch.Generator().manual_seed(1)
    conv = nn.Conv2d(8, 16, 3, padding=1, groups=groups).requires_grad_(False)
    with torch.no_grad():
        conv.weight.normal_(generator=g)
    x = (3 * torch.randn(1, 8, 21, 17, generator=g)).contiguous(memory_format=torch.channels_last)
    fused = fuse.conv2d(x, conv, act=kind)
    monkeypatch.setattr(fuse, "_POINTWISE", None)  # the convolution, then relu_ / clamp_
    two_pass = fuse.conv2d(x, conv, act=kind)
    assert torch.equal(fused, two_pass) and float(fused.min()) == 0.0
    assert kind == "relu" or float(fused.max()) == 6.0


def _chain(x, convs, grad_inplace):
    h = x
    for conv in convs:
        h = conv_act(h, conv, nn.Identity(), nn.ReLU(), grad_inplace=grad_inplace)
    return h


@pytest.mark.parametrize("statistic", ["sum", "mean", "slice"])
def test_in_place_activation_backward_gives_the_same_gradient(statistic):
    """Dense gradients from the next convolution are overwritten, broadcast ones (a mean's)
    and views (a slice's) are not; either way the numbers are those of the fresh path."""
    g = torch.Generator().manual_seed(2)
    convs = [nn.Conv2d(c, d, k, padding=k // 2).requires_grad_(False)
             for c, d, k in ((3, 8, 3), (8, 8, 1), (8, 6, 3))]  # fmt: skip
    for conv in convs:
        with torch.no_grad():
            conv.weight.normal_(generator=g)
    x = torch.randn(1, 3, 20, 24, generator=g).contiguous(memory_format=torch.channels_last)
    grads = []
    for inplace in (False, True):
        xi = x.clone().requires_grad_()
        y = _chain(xi, convs, inplace)
        if statistic == "sum":
            loss = (y * y).sum()
        else:
            loss = y.mean() if statistic == "mean" else y[:, 2:5].square().sum()
        grads.append(torch.autograd.grad(loss, xi)[0])
    assert torch.equal(grads[0], grads[1])


def test_same_padding_equals_f_pad_and_its_gradient():
    from inceptionism.models.efficientnet_lite import SameConv2d

    conv = SameConv2d(4, 4, 3, 2, groups=4)
    x = torch.randn(1, 4, 10, 13).contiguous(memory_format=torch.channels_last)
    ours, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    padded, _ = conv.same(ours)
    expected = torch.nn.functional.pad(ref, [1, 1, 0, 1])  # TF "same": any odd pixel at the end
    assert torch.equal(padded, expected) and padded.is_contiguous(memory_format=torch.channels_last)
    up = torch.randn(expected.shape)
    assert torch.equal(torch.autograd.grad(padded, ours, up)[0],
                       torch.autograd.grad(expected, ref, up)[0])  # fmt: skip


@pytest.mark.parametrize("count_pad", [True, False])
@pytest.mark.parametrize("size", [(1, 1), (1, 5), (2, 3), (9, 14)])
def test_average_pool_backward_as_a_pool_equals_torchs(count_pad, size):
    from inceptionism.models.inception import AvgPool3

    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 6, *size, dtype=torch.float64, generator=g)
    up = torch.randn(1, 6, *size, dtype=torch.float64, generator=g)
    ref_x, ours_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = torch.nn.functional.avg_pool2d(ref_x, 3, 1, 1, count_include_pad=count_pad)
    ours = AvgPool3(count_pad)(ours_x)
    assert torch.equal(ours, ref)
    (g_ref,) = torch.autograd.grad(ref, ref_x, up)
    (g_ours,) = torch.autograd.grad(ours, ours_x, up)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("count_pad", [True, False])
def test_pool_branch_convolves_before_pooling_with_the_same_result(count_pad):
    """relu(W avg(x) + b) computed as relu(avg(W x) + b) on the fast path: equal up to
    rounding, gradient too; tapped, it runs as the modules do."""
    from inceptionism.models.blocks import ConvBN
    from inceptionism.models.fuse import fold_batchnorm
    from inceptionism.models.inception import AvgPool3, pool_branch

    g = torch.Generator().manual_seed(4)
    branch = ConvBN(24, 8, 1)
    with torch.no_grad():
        branch.conv.weight.normal_(0, 0.3, generator=g)
        branch.bn.bias.normal_(0, 1.0, generator=g)
    fold_batchnorm(branch, [("conv", "bn")])
    branch.requires_grad_(False).to(memory_format=torch.channels_last)
    pool = AvgPool3(count_pad)
    x = torch.rand(1, 24, 13, 17, generator=g).contiguous(memory_format=torch.channels_last)
    up = torch.randn(1, 8, 13, 17, generator=g)
    ref_x, ours_x = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = branch(pool(ref_x))
    ours = pool_branch(ours_x, pool, branch)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
    assert 0 < float((ref > 0).float().mean()) < 1  # the ReLU cuts somewhere
    (g_ref,) = torch.autograd.grad(ref, ref_x, up)
    (g_ours,) = torch.autograd.grad(ours, ours_x, up)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)
    seen = []
    handle = branch.register_forward_hook(lambda m, i, o: seen.append(o))
    try:
        tapped = pool_branch(x, pool, branch)
    finally:
        handle.remove()
    assert len(seen) == 1 and torch.equal(tapped, branch(pool(x)))


def _folded_branches(cin, couts, g):
    from inceptionism.models.blocks import ConvBN
    from inceptionism.models.fuse import fold_batchnorm

    branches = []
    for cout in couts:
        b = ConvBN(cin, cout, 1)
        with torch.no_grad():
            b.conv.weight.normal_(0, 0.3, generator=g)
            b.bn.bias.normal_(0, 1.0, generator=g)
        fold_batchnorm(b, [("conv", "bn")])
        branches.append(b.requires_grad_(False).to(memory_format=torch.channels_last))
    return branches


def test_sibling_1x1_branches_run_as_one_convolution_with_the_same_values():
    """Three 1x1 ConvBNs of one input as one stacked convolution: outputs and the input's
    gradient equal the separate modules' up to rounding; a tapped branch, a changed weight
    and float64 each take the path that is right for them."""
    from inceptionism.models import fuse
    from inceptionism.models.blocks import sibling_branches

    g = torch.Generator().manual_seed(5)
    branches = _folded_branches(24, (8, 5, 12), g)
    x = torch.rand(1, 24, 11, 9, generator=g).contiguous(memory_format=torch.channels_last)
    ups = [torch.randn(1, c, 11, 9, generator=g) for c in (8, 5, 12)]

    def run(fn):
        xg = x.clone().requires_grad_()
        outs = fn(xg)
        loss = sum((o * u).sum() for o, u in zip(outs, ups))
        return [o.detach() for o in outs], torch.autograd.grad(loss, xg)[0]

    ref, g_ref = run(lambda xg: [b(xg) for b in branches])
    calls = []
    real = fuse._Split.apply
    fuse._Split.apply = lambda *a: calls.append(1) or real(*a)
    try:
        ours, g_ours = run(lambda xg: sibling_branches(xg, branches))
        assert calls, "the branches did not run as one convolution"
        for a, b in zip(ours, ref):
            assert a.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5)
        assert all(0 < float((r > 0).float().mean()) < 1 for r in ref)  # the ReLUs cut
        # a weight changed in place after the first call: the stacked copy follows it
        with torch.no_grad():
            branches[1].conv.weight.mul_(-2)
        changed, _ = run(lambda xg: sibling_branches(xg, branches))
        torch.testing.assert_close(changed[1], branches[1](x), rtol=1e-5, atol=1e-5)
        # new data under the same Parameter (as module.to(dtype) gives): no version bump
        branches[0].conv.weight.data = torch.randn(8, 24, 1, 1, generator=g)
        moved, _ = run(lambda xg: sibling_branches(xg, branches))
        torch.testing.assert_close(moved[0], branches[0](x), rtol=1e-5, atol=1e-5)
        # a tap inside one branch: every branch runs as its own module and the tap sees it
        calls.clear()
        seen = []
        handle = branches[2].register_forward_hook(lambda m, i, o: seen.append(o))
        try:
            tapped = sibling_branches(x, branches)
        finally:
            handle.remove()
        assert not calls and len(seen) == 1
        torch.testing.assert_close(tapped[2], seen[0])
        # float64 (the transcription tests' precision) keeps PyTorch's own convolutions
        doubles = [b.double() for b in branches]
        sibling_branches(x.double(), doubles)
        assert not calls
    finally:
        fuse._Split.apply = real


def test_a_1x1_convolution_gradient_follows_its_weights_when_they_change():
    """The input gradient of a fast-path 1x1 convolution uses the transposed weights made once
    per weight tensor; changed in place (as loading a checkpoint does) or given new data, the
    next gradient uses the new weights."""
    from inceptionism.models.fuse import conv2d

    g = torch.Generator().manual_seed(6)
    conv = nn.Conv2d(16, 24, 1).requires_grad_(False)
    x = torch.rand(1, 16, 7, 9, generator=g).contiguous(memory_format=torch.channels_last)
    up = torch.randn(1, 24, 7, 9, generator=g)

    def grads():
        ours_x, ref_x = x.clone().requires_grad_(), x.clone().requires_grad_()
        (ours,) = torch.autograd.grad(conv2d(ours_x, conv, act="relu"), ours_x, up)
        ref = torch.relu(nn.functional.conv2d(ref_x, conv.weight, conv.bias))
        return ours, torch.autograd.grad(ref, ref_x, up)[0]

    first, ref = grads()
    torch.testing.assert_close(first, ref, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(24, 16, 1, 1, generator=g))
    second, ref = grads()
    torch.testing.assert_close(second, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first, second)
    # the same Parameter given new data (what module.to(dtype) does): no version bump
    conv.weight.data = torch.randn(24, 16, 1, 1, generator=g)
    third, ref = grads()
    torch.testing.assert_close(third, ref, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(second, third)
