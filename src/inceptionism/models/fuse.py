"""Fold inference BatchNorm into the preceding convolution: the same function, ~15% fewer FLOPs
and memory passes per gradient step (see benchmarks/)."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from inceptionism.ops.threads import one_thread


@torch.no_grad()
def fold_batchnorm(net: nn.Module, pairs: list[tuple[str, str]]) -> None:
    """For each (conv, bn) name pair: scale the conv, give it a bias, replace the bn by Identity."""
    for conv_name, bn_name in pairs:
        conv = net.get_submodule(conv_name)
        bn = net.get_submodule(bn_name)
        if not isinstance(conv, nn.Conv2d) or not isinstance(bn, nn.BatchNorm2d):
            raise TypeError(f"cannot fold {bn_name} into {conv_name}")
        if bn.running_var is None or bn.running_mean is None:
            raise TypeError(f"cannot fold {bn_name}: it keeps no running statistics")
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter(bias)
        parent_name, _, attr = bn_name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        setattr(parent, attr, nn.Identity())


_ONEDNN = torch.backends.mkldnn.is_available()
_ONEDNN_DTYPES = (torch.float32, torch.bfloat16)


def fast_path(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """oneDNN handles float32 and bfloat16 on CPU; float64 (the transcription tests), other
    devices and trainable weights keep PyTorch's own dispatch and autograd."""
    return (
        _ONEDNN
        and x.device.type == "cpu"
        and x.dtype in _ONEDNN_DTYPES
        and x.dtype == conv.weight.dtype
        and not conv.weight.requires_grad
        and not isinstance(conv.padding, str)
    )


# oneDNN's convolution with a fused activation (the op torch.compile's CPU backend uses). Its
# output equals mkldnn_convolution's followed by relu_ / clamp_(0, 6) bit for bit
# (tests/test_models.py checks); absent from a build, the two-pass path stays.
_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)
_POST_OPS: dict[str, tuple[str, list[float]]] = {
    "relu": ("relu", []),
    "relu6": ("hardtanh", [0.0, 6.0]),
}


_RELU_BACKWARD = torch.ops.aten.threshold_backward
_RELU6_BACKWARD = torch.ops.aten.hardtanh_backward


def _same_dense_layout(g: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``g`` is dense in ``y``'s memory layout (strides of size-1 dimensions aside)."""
    for layout in (torch.channels_last, torch.contiguous_format):
        if y.is_contiguous(memory_format=layout):
            return g.is_contiguous(memory_format=layout)
    return False


def _fingerprint(params: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, int]]:
    """What a copy made from ``params`` depends on: each tensor's storage (held, so that its
    address cannot be reused while the copy lives) and its version (bumped by in-place
    changes). ``module.to(dtype)`` and ``param.data = ...`` keep the Parameter but move it."""
    return [(p.detach(), p._version) for p in params]


def _unchanged(fingerprint: list[tuple[torch.Tensor, int]], params: Sequence[torch.Tensor]) -> bool:
    return len(fingerprint) == len(params) and all(
        held.data_ptr() == p.data_ptr() and held.dtype == p.dtype and held.shape == p.shape
        and version == p._version
        for (held, version), p in zip(fingerprint, params)
    )  # fmt: skip


# (id(owner), kind) -> (a weak reference to the owner, the fingerprint of the tensors the
# copy was made from, the copy); an entry goes when its owner does
_DERIVED: dict[tuple[int, str], tuple[weakref.ref, list[tuple[torch.Tensor, int]], Any]] = {}


def _derived(owner: object, kind: str, params: Sequence[torch.Tensor], make: Callable[[], Any]):
    """``make()`` (weights rearranged for oneDNN), made once per ``owner`` and remade when
    any of ``params`` changes (see :func:`_fingerprint`)."""
    key = (id(owner), kind)
    entry = _DERIVED.get(key)
    if entry is not None and entry[0]() is owner and _unchanged(entry[1], params):
        return entry[2]
    with torch.no_grad():
        value = make()

    def forget(_: weakref.ref, key: tuple[int, str] = key) -> None:
        _DERIVED.pop(key, None)

    _DERIVED[key] = (weakref.ref(owner, forget), _fingerprint(params), value)
    return value


def _transposed(weight: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution's weights with the in and out channels swapped (the weights of its
    input gradient)."""
    return _derived(weight, "transposed", [weight], lambda: weight.transpose(0, 1).contiguous())


class _ConvAct(torch.autograd.Function):
    """Convolution through oneDNN, the activation applied in place on its output, and a
    backward that gives the input's gradient only (the weights are frozen).

    Why: PyTorch sends a 1x1, stride-1 convolution of one image on one thread (forward and
    backward) to its slow fallback kernel; oneDNN is 1.3-2x faster there. The input gradient
    of a 1x1 convolution is the 1x1 convolution of the output gradient with the transposed
    weights, so it goes through oneDNN too. Activations differentiate from their output, so
    the pre-activation tensor is never kept; a 1x1 convolution does not keep its input either.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, act, grad_inplace):  # type: ignore[override]
        if act and _POINTWISE is not None:  # the activation as oneDNN's post-op: one pass less
            name, scalars = _POST_OPS[act]
            y = _POINTWISE(x, weight, bias, padding, stride, dilation, groups, name, scalars, "")
        else:
            y = torch.mkldnn_convolution(x, weight, bias, padding, stride, dilation, groups)
            if act == "relu":
                y.relu_()
            elif act == "relu6":
                y.clamp_(0.0, 6.0)
        pointwise = weight.shape[-2:] == (1, 1) and groups == 1 and list(stride) == [1, 1]
        pointwise = pointwise and list(padding) == [0, 0]
        ctx.conv = (stride, padding, dilation, groups, act, pointwise, grad_inplace)
        ctx.save_for_backward(weight, y if act else None, None if pointwise else x)
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        weight, y, x = ctx.saved_tensors
        stride, padding, dilation, groups, act, pointwise, grad_inplace = ctx.conv
        # Overwrite g where the caller vouches that nobody else reads it and it is dense in
        # y's layout (a view or a broadcast one gets a fresh, dense tensor): no allocation,
        # no page faults, the same numbers.
        out = {"grad_input": g} if act and grad_inplace and _same_dense_layout(g, y) else None
        if act == "relu":
            g = _RELU_BACKWARD(g, y, 0, **out) if out else _RELU_BACKWARD(g, y, 0)
        elif act == "relu6":
            g = _RELU6_BACKWARD(g, y, 0.0, 6.0, **out) if out else _RELU6_BACKWARD(g, y, 0.0, 6.0)
        if pointwise:
            gx = torch.mkldnn_convolution(g, _transposed(weight), None, [0, 0], [1, 1], [1, 1], 1)
        elif x.shape[1] <= _FEW_CHANNELS:  # the image's gradient: a thin output
            gx = _one_thread_input_grad(g, x, weight, stride, padding, dilation, groups)
        elif list(dilation) == [1, 1] and weight.shape[1] > 1:  # not depthwise
            gx = conv_input_grad(g, weight, stride, padding, groups, x)
        else:
            gx = torch.ops.aten.convolution_backward(
                g, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
                [True, False, False],
            )[0]  # fmt: skip
        return gx, None, None, None, None, None, None, None, None


_FEW_CHANNELS = 4  # an input with this few channels is the image (RGB, maybe alpha or grey)


def _one_thread_input_grad(g, x, weight, stride, padding, dilation, groups) -> torch.Tensor:
    """oneDNN's own backward of a convolution whose input is the image, run on one thread:
    one thread's work split is the same whatever the process's count, so its rounding is
    too. Forward convolutions with a 3-channel output (what :func:`conv_input_grad` would
    run) are slow in oneDNN: Lite2's stem at 1024x768 took 0.11 s that way against 0.045 s
    here on one thread; at two threads this costs the stem's second thread only."""
    with one_thread():
        return torch.ops.aten.convolution_backward(
            g, x, weight, None, stride, padding, dilation, False, [0, 0], groups,
            [True, False, False],
        )[0]  # fmt: skip


def _phase_weights(weight: torch.Tensor, stride: Sequence[int], groups: int) -> list:
    """For each output phase (ry, rx) of a strided convolution's input gradient: the taps
    that reach it, flipped and with in and out channels swapped (a forward convolution's
    weights), or None where no tap does (a kernel smaller than the stride)."""
    sy, sx = stride
    out_c, in_per_group, kh, kw = weight.shape
    # (groups, out/groups, in/groups, kh, kw) -> (in, out/groups, kh, kw): the transposed weights
    swapped = weight.view(groups, out_c // groups, in_per_group, kh, kw).transpose(1, 2)
    swapped = swapped.reshape(groups * in_per_group, out_c // groups, kh, kw)
    phases: list[torch.Tensor | None] = []
    for ry in range(sy):
        for rx in range(sx):
            taps = swapped[:, :, ry::sy, rx::sx]
            if taps.shape[-2] == 0 or taps.shape[-1] == 0:
                phases.append(None)
            else:
                phases.append(taps.flip(-2, -1).contiguous(memory_format=torch.channels_last))
    return phases


def conv_input_grad(
    g: torch.Tensor,
    weight: torch.Tensor,
    stride: Sequence[int],
    padding: Sequence[int],
    groups: int,
    x: torch.Tensor,
) -> torch.Tensor:
    """The input gradient of a convolution (dilation 1) as forward convolutions: at stride 1,
    one convolution of the output gradient with the weights flipped and their in and out
    channels swapped; at stride s, one per phase of the stride (input pixel ``u`` with
    ``(u + pad) % s == r`` receives only the taps ``r, r + s, ...``, each from output
    ``(u + pad - r) // s - m``: a stride-1 correlation with those taps flipped).

    Why: oneDNN's own backward of a convolution splits its work by the thread count where
    the map is small or the stride is not 1 (``thread_probe`` found it in GoogLeNet's and
    ResNet's stems, ResNet's stride-2 3x3 convolutions, and a 3x3 convolution on a 3x3 map)
    and rounds differently there; its forward convolutions never did. The work is the same
    as the backward's. Depthwise convolutions keep oneDNN's backward: it gave the same bits
    at 1-4 threads, and their phase kernels (2x2, 2x1, ...) would leave its fast depthwise
    path.
    """
    sy, sx = stride
    py, px = padding
    h, w = x.shape[-2:]
    gh, gw = g.shape[-2:]
    kh, kw = weight.shape[-2:]
    if (sy, sx) == (1, 1) and kh - 1 >= py and kw - 1 >= px:  # one phase: padding does it
        (taps,) = _derived(weight, f"phases1x1/{groups}", [weight],
                           lambda: _phase_weights(weight, stride, groups))  # fmt: skip
        assert taps is not None
        ty, tx = kh - 1 - py, kw - 1 - px
        if ty > py or tx > px:  # padded beyond half the kernel: oneDNN would pick a kernel
            # whose rounding follows the thread count (measured); zeros laid in by hand instead
            g, ty, tx = torch.nn.functional.pad(g, [tx, tx, ty, ty]), 0, 0
        return torch.mkldnn_convolution(g, taps, None, [ty, tx], [1, 1], [1, 1], groups)
    layout = (
        torch.channels_last
        if g.is_contiguous(memory_format=torch.channels_last)
        else torch.contiguous_format
    )
    gx = g.new_zeros(x.shape).contiguous(memory_format=layout)
    phases = _derived(weight, f"phases{sy}x{sx}/{groups}", [weight],
                      lambda: _phase_weights(weight, stride, groups))  # fmt: skip
    # Each phase reads the output gradient with its own zero border (top and left: its taps
    # less one; bottom and right: as far as its last input row and column reach). One padded
    # copy holds every phase's border; each phase cuts its own window out of it, the same
    # values the phase's own padding gave.
    spans = []
    for index, taps in enumerate(phases):
        if taps is None:
            continue
        ry, rx = divmod(index, sx)
        my, mx = taps.shape[-2:]
        # rows u = s*U + r - pad inside the input: U from u0 to u1 (inclusive)
        u0, u1 = -((ry - py) // sy), (h - 1 + py - ry) // sy
        v0, v1 = -((rx - px) // sx), (w - 1 + px - rx) // sx
        if u1 < u0 or v1 < v0:
            continue
        border = (my - 1, max(0, u1 + 1 - gh), mx - 1, max(0, v1 + 1 - gw))
        spans.append((taps, ry, rx, u0, u1, v0, v1, border))
    if not spans:
        return gx
    top, bottom, left, right = (max(span[-1][i] for span in spans) for i in range(4))
    padded = torch.nn.functional.pad(g, [left, right, top, bottom])
    for taps, ry, rx, u0, u1, v0, v1, (above, below, before, after) in spans:
        # a view: oneDNN lays it out densely, as it did each phase's own padded copy
        window = padded[..., top - above : top + gh + below, left - before : left + gw + after]
        part = torch.mkldnn_convolution(window, taps, None, [0, 0], [1, 1], [1, 1], groups)
        first_y, first_x = sy * u0 + ry - py, sx * v0 + rx - px
        gx[..., first_y::sy, first_x::sx] = part[..., u0 : u1 + 1, v0 : v1 + 1]
    return gx


def conv2d(
    x: torch.Tensor,
    conv: nn.Conv2d,
    padding: tuple[int, int] | list[int] | None = None,
    act: str | None = None,
    grad_inplace: bool = False,
    bias: bool = True,
) -> torch.Tensor:
    """``conv(x)`` with the module's weights (then ``act``: None, "relu" or "relu6"), through
    oneDNN (:class:`_ConvAct`) on CPU. ``padding`` overrides the module's (for "same");
    ``bias=False`` leaves the module's bias out.

    ``grad_inplace``: the activation's backward may overwrite the output's gradient. Only for
    an output whose consumers' backward passes return gradients of their own (convolutions,
    pooling, concatenation, the objective), never one that hands the same gradient to two
    inputs (an addition, e.g. a residual sum of two activated convolutions)."""
    given = conv.padding if padding is None else padding  # a module's may be "same"/"valid"
    pad: str | list[int] = given if isinstance(given, str) else [int(p) for p in given]
    b = conv.bias if bias else None
    if not fast_path(x, conv) or isinstance(pad, str):
        y = torch.nn.functional.conv2d(x, conv.weight, b, conv.stride, pad, conv.dilation,
                                       conv.groups)  # fmt: skip
        if act == "relu":
            return torch.relu(y)
        return torch.nn.functional.relu6(y) if act == "relu6" else y
    return _ConvAct.apply(
        x, conv.weight, b, list(conv.stride), pad, list(conv.dilation), conv.groups, act,
        grad_inplace,
    )  # fmt: skip


def _pair(value: Any) -> list[int]:
    return [int(v) for v in value] if isinstance(value, (tuple, list)) else [int(value)] * 2


class SteadyConvolutions(TorchFunctionMode):
    """Every 2-D convolution on the CPU in float32 or bfloat16 (frozen weights, numeric
    padding) through oneDNN, as :class:`_ConvAct`: same numbers whatever the thread count.

    Why: PyTorch picks its kernel for a 1x1, stride-1 convolution of a small batch by the
    thread count (its own slow kernel on one thread, oneDNN on more), and the two round
    differently, so a network made of ``nn.Conv2d`` modules (ResNet-50, VGG, a user's own)
    gave other gradients when the count changed. Within this mode the models' own fast path
    and the plain modules meet the same kernels. Hooks still see every module's output.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        if func is torch.conv2d and len(args) >= 2:
            names = ("bias", "stride", "padding", "dilation", "groups")
            given = dict(zip(names, args[2:]), **kwargs)
            x, weight = args[0], args[1]
            padding = given.get("padding", 0)
            if (
                _ONEDNN
                and isinstance(x, torch.Tensor)
                and x.device.type == "cpu"
                and x.ndim == 4
                and x.dtype in _ONEDNN_DTYPES
                and x.dtype == weight.dtype
                and not weight.requires_grad
                and not isinstance(padding, str)
            ):
                return _ConvAct.apply(
                    x, weight, given.get("bias"), _pair(given.get("stride", 1)),
                    _pair(padding), _pair(given.get("dilation", 1)), int(given.get("groups", 1)),
                    None, False,
                )  # fmt: skip
        return func(*args, **kwargs)


class _Split(torch.autograd.Function):
    """``y`` cut into channel groups, each a dense tensor in ``y``'s layout. The backward
    concatenates the groups' gradients into one: autograd's own slicing would zero-fill a
    gradient of ``y``'s full size for every group and add them up."""

    @staticmethod
    def forward(ctx, y, sizes):  # type: ignore[override]
        cl = y.is_contiguous(memory_format=torch.channels_last)
        layout = torch.channels_last if cl else torch.contiguous_format
        return tuple(part.clone(memory_format=layout) for part in y.split(sizes, 1))

    @staticmethod
    def backward(ctx, *grads):  # type: ignore[override]
        return torch.cat(grads, 1), None


def _pointwise(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    return (
        tuple(conv.kernel_size) == (1, 1)
        and tuple(conv.stride) == (1, 1)
        and tuple(conv.padding) == (0, 0)
        and tuple(conv.dilation) == (1, 1)
        and conv.groups == 1
        and conv.bias is not None
        and fast_path(x, conv)
    )


def _merged_weights(convs: Sequence[nn.Conv2d]) -> tuple[torch.Tensor, torch.Tensor]:
    """The convolutions' weights and biases stacked along the output channels."""
    weights = [c.weight for c in convs]
    biases = [c.bias for c in convs if c.bias is not None]  # every one has a bias (_pointwise)
    params = [p for pair in zip(weights, biases) for p in pair]
    return _derived(convs[0], "stacked", params, lambda: (torch.cat(weights), torch.cat(biases)))


def sibling_pointwise(
    x: torch.Tensor, convs: Sequence[nn.Conv2d], act: str | None = None
) -> list[torch.Tensor] | None:
    """``[act(conv(x)) for conv in convs]`` for 1x1 convolutions (with bias) that all read
    ``x``, as one oneDNN convolution with their filters stacked, cut into one dense tensor
    per convolution; None where any of them is off the fast path.

    Why: Inception v3's blocks open two or three branches with 1x1 convolutions of the same
    input. One wider convolution is one pass over ``x`` instead of three, its backward is one
    transposed convolution, and autograd no longer adds three input gradients into one. The
    concatenated weights are kept and rebuilt when a weight is replaced or changed in place.
    """
    if len(convs) < 2 or not all(_pointwise(x, c) for c in convs):
        return None
    weight, bias = _merged_weights(convs)
    y = _ConvAct.apply(x, weight, bias, [1, 1], [0, 0], [1, 1], 1, act, act is not None)
    return list(_Split.apply(y, [c.out_channels for c in convs]))


def hooked(*modules: nn.Module) -> bool:
    """Whether any of ``modules`` carries a forward hook (an activation tap): then it must run
    as a module of its own, so the hook sees its output."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


_ACTS = {nn.ReLU: "relu", nn.ReLU6: "relu6"}


def conv_act(
    x: torch.Tensor,
    conv: nn.Conv2d,
    bn: nn.Module,
    act: nn.Module,
    padding: tuple[int, int] | list[int] | None = None,
    grad_inplace: bool = False,
) -> torch.Tensor:
    """``act(bn(conv(x)))``; with the BatchNorm folded away and nothing tapped in between, one
    fused :class:`_ConvAct` call (the activation as the convolution's post-op); for
    ``grad_inplace`` see :func:`conv2d`."""
    kind = _ACTS.get(type(act))
    if not isinstance(bn, nn.Identity) or kind is None or hooked(conv, bn, act):
        y = conv(x) if padding is None else conv2d(x, conv, padding)
        return act(bn(y))
    return conv2d(x, conv, padding, kind, grad_inplace)
