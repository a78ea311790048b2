"""Inception v3 in torchvision's key layout, so ``inception_v3_google-0cc3c7bd.pth`` (TensorFlow's
weights, with the ``AuxLogits`` head) loads with strict key checks, and Keras's InceptionV3 weight
files convert onto it (``keras_weights.py``).

Layers carry the Keras names the classic DeepDream recipes use, ``mixed0`` … ``mixed10``, with
torchvision's ``Mixed_5b`` … ``Mixed_7c`` as aliases. One numerical difference between the two
definitions matters: the 3x3 average pools inside the blocks count the zero padding at the
border in torchvision and do not in Keras (TensorFlow's "same" pooling). ``keras_pooling``
picks the Keras behaviour; it is set when Keras weights are loaded.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from inceptionism.models.blocks import ConvBN, convbn_pairs, sibling_branches
from inceptionism.models.fuse import conv2d, fast_path, hooked
from inceptionism.models.registry import LayerInfo


class AvgPool3(nn.Module):
    """The blocks' 3x3, stride 1 average pool; ``count_pad=False`` divides by the pixels that
    are inside the image, as TensorFlow does."""

    def __init__(self, count_pad: bool = True):
        super().__init__()
        self.count_pad = count_pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:
            return _AvgPool3.apply(x, self.count_pad)
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=self.count_pad)


def _nine_over_count(g: torch.Tensor) -> torch.Tensor:
    """(1, 1, H, W): 9 over the number of in-image pixels in each 3x3 window (9 inside, 6 on
    an edge, 4 in a corner)."""
    return _nine_over_count_for(*g.shape[-2:], g.dtype, g.device)


@functools.lru_cache(maxsize=64)  # one per grid size and dtype: a few per dream
def _nine_over_count_for(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    rows = torch.full((h,), 3.0, dtype=dtype, device=device)
    cols = torch.full((w,), 3.0, dtype=dtype, device=device)
    rows[0] -= 1
    rows[-1] -= 1
    cols[0] -= 1
    cols[-1] -= 1
    return (9.0 / (rows[:, None] * cols[None, :]))[None, None]


class _AvgPool3(torch.autograd.Function):
    """The 3x3, stride 1, padding 1 average pool with a backward that is itself an average pool.

    The window is symmetric, so the input's gradient is the sum of the output gradient over
    each pixel's window: ``avg_pool(g)`` when the padding counts (every window divides by 9),
    ``avg_pool(g * 9 / count)`` when it does not. PyTorch's own backward for a channels_last
    image zero-fills its output and then runs on one thread (it splits the work by batch
    only); the forward pool it becomes here is one pass, split over every core.
    """

    @staticmethod
    def forward(ctx, x, count_pad):  # type: ignore[override]
        ctx.count_pad = count_pad
        return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=count_pad)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        if not ctx.count_pad:
            g = g * _nine_over_count(g)
        return F.avg_pool2d(g, 3, stride=1, padding=1, count_include_pad=True), None


def pool_branch(x: torch.Tensor, pool: AvgPool3, branch: ConvBN) -> torch.Tensor:
    """``branch(pool(x))``: a block's average pool, then its 1x1 ConvBN.

    Both the pool and the 1x1 convolution are linear, one over pixels and one over channels,
    so they commute: with the BatchNorm folded, ``relu(W avg(x) + b) = relu(avg(W x) + b)``
    (the bias stays after the pool, whatever the pool's divisor). Pooling after the
    convolution pools its 32-192 output channels instead of the block's 192-768 inputs: the
    pool's forward and backward do 1/4 to 1/9 of the work. Where the branch is tapped, or the
    weights are not on the fast path (float64, trainable), it runs as written.
    """
    conv, bn, relu, bias = branch.conv, branch.bn, branch.relu, branch.conv.bias
    folded = isinstance(bn, nn.Identity) and isinstance(relu, nn.ReLU)
    if bias is None or not folded or hooked(pool, branch, conv, bn, relu) or not fast_path(x, conv):
        return branch(pool(x))
    y = pool(conv2d(x, conv, bias=False))
    return y.add_(bias.view(1, -1, 1, 1)).relu_()


class MixedA(nn.Module):  # Mixed_5b/c/d: 35x35 grid
    def __init__(self, cin: int, pool_features: int, count_pad: bool):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 64, 1)
        self.branch5x5_1 = ConvBN(cin, 48, 1)
        self.branch5x5_2 = ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, padding=1)
        self.pool = AvgPool3(count_pad)
        self.branch_pool = ConvBN(cin, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b5, b3 = sibling_branches(x, [self.branch1x1, self.branch5x5_1, self.branch3x3dbl_1])
        b5 = self.branch5x5_2(b5)
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(b3))
        pooled = pool_branch(x, self.pool, self.branch_pool)
        return torch.cat([b1, b5, b3, pooled], 1)


class MixedB(nn.Module):  # Mixed_6a: 35x35 -> 17x17
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = ConvBN(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBN(cin, 64, 1)
        self.branch3x3dbl_2 = ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBN(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class MixedC(nn.Module):  # Mixed_6b..6e: 17x17 grid, factorised 7x7
    def __init__(self, cin: int, c7: int, count_pad: bool):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 192, 1)
        self.branch7x7_1 = ConvBN(cin, c7, 1)
        self.branch7x7_2 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBN(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBN(cin, c7, 1)
        self.branch7x7dbl_2 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBN(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBN(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBN(c7, 192, (1, 7), padding=(0, 3))
        self.pool = AvgPool3(count_pad)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b7, d = sibling_branches(x, [self.branch1x1, self.branch7x7_1, self.branch7x7dbl_1])
        b7 = self.branch7x7_3(self.branch7x7_2(b7))
        for i in range(2, 6):
            d = getattr(self, f"branch7x7dbl_{i}")(d)
        return torch.cat([b1, b7, d, pool_branch(x, self.pool, self.branch_pool)], 1)


class MixedD(nn.Module):  # Mixed_7a: 17x17 -> 8x8
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = ConvBN(cin, 192, 1)
        self.branch3x3_2 = ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBN(cin, 192, 1)
        self.branch7x7x3_2 = ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBN(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3, b7 = sibling_branches(x, [self.branch3x3_1, self.branch7x7x3_1])
        b3 = self.branch3x3_2(b3)
        for i in range(2, 5):
            b7 = getattr(self, f"branch7x7x3_{i}")(b7)
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class MixedE(nn.Module):  # Mixed_7b/c: 8x8 grid, expanded filter banks
    def __init__(self, cin: int, count_pad: bool):
        super().__init__()
        self.branch1x1 = ConvBN(cin, 320, 1)
        self.branch3x3_1 = ConvBN(cin, 384, 1)
        self.branch3x3_2a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBN(cin, 448, 1)
        self.branch3x3dbl_2 = ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.pool = AvgPool3(count_pad)
        self.branch_pool = ConvBN(cin, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1, b3, d = sibling_branches(x, [self.branch1x1, self.branch3x3_1, self.branch3x3dbl_1])
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        d = self.branch3x3dbl_2(d)
        d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
        return torch.cat([b1, b3, d, pool_branch(x, self.pool, self.branch_pool)], 1)


class AuxLogits(nn.Module):
    """The auxiliary classifier on Mixed_6e: for training only, never run here."""

    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.conv0 = ConvBN(cin, 128, 1)
        self.conv1 = ConvBN(128, 768, 5)
        self.fc = nn.Linear(768, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(F.avg_pool2d(x, 5, stride=3)))
        return self.fc(x.mean(dim=(2, 3)))


# (torchvision name, Keras name, channels, stride)
MIXED = (
    ("Mixed_5b", "mixed0", 256, 8),
    ("Mixed_5c", "mixed1", 288, 8),
    ("Mixed_5d", "mixed2", 288, 8),
    ("Mixed_6a", "mixed3", 768, 16),
    ("Mixed_6b", "mixed4", 768, 16),
    ("Mixed_6c", "mixed5", 768, 16),
    ("Mixed_6d", "mixed6", 768, 16),
    ("Mixed_6e", "mixed7", 768, 16),
    ("Mixed_7a", "mixed8", 1280, 32),
    ("Mixed_7b", "mixed9", 2048, 32),
    ("Mixed_7c", "mixed10", 2048, 32),
)
STEM = (  # (name, channels, stride)
    ("Conv2d_1a_3x3", 32, 2),
    ("Conv2d_2a_3x3", 32, 2),
    ("Conv2d_2b_3x3", 64, 2),
    ("maxpool1", 64, 4),
    ("Conv2d_3b_1x1", 80, 4),
    ("Conv2d_4a_3x3", 192, 4),
    ("maxpool2", 192, 8),
)


class Inception3(nn.Module):
    def __init__(
        self,
        num_classes: int = 1000,
        aux_logits: bool = True,
        head: bool = True,
        keras_pooling: bool = False,
    ):
        super().__init__()
        pad = not keras_pooling
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.maxpool1 = nn.MaxPool2d(3, stride=2)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2)
        self.Mixed_5b = MixedA(192, 32, pad)
        self.Mixed_5c = MixedA(256, 64, pad)
        self.Mixed_5d = MixedA(288, 64, pad)
        self.Mixed_6a = MixedB(288)
        self.Mixed_6b = MixedC(768, 128, pad)
        self.Mixed_6c = MixedC(768, 160, pad)
        self.Mixed_6d = MixedC(768, 160, pad)
        self.Mixed_6e = MixedC(768, 192, pad)
        if aux_logits:
            self.AuxLogits = AuxLogits(768, num_classes)
        self.Mixed_7a = MixedD(768)
        self.Mixed_7b = MixedE(1280, pad)
        self.Mixed_7c = MixedE(2048, pad)
        self.head = head
        if head:
            self.fc = nn.Linear(2048, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for name, *_ in STEM + MIXED:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (AuxLogits is never run); without a head, pooled features."""
        x = self.features(x).mean(dim=(2, 3))
        return self.fc(x) if self.head else x

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        return [p for p in convbn_pairs(self) if not p[0].startswith("AuxLogits")]

    def layer_table(self) -> list[LayerInfo]:
        rows: list[LayerInfo] = []
        for name, channels, stride in STEM:
            if name.startswith("Conv"):
                rows.append(LayerInfo(f"{name}.pre", f"{name}.bn", channels, stride, (), "branch"))
            kind = "stem" if name.startswith("Conv") else "pool"
            rows.append(LayerInfo(name, name, channels, stride, kind=kind))
        before = STEM[-1][2]
        for torch_name, keras_name, channels, stride in MIXED:
            block = getattr(self, torch_name)
            for sub, module in block.named_children():
                if isinstance(module, ConvBN):  # only a branch's last conv strides, if any
                    sub_stride = before * module.conv.stride[0]
                    name = f"{keras_name}.{sub}"
                    rows.append(LayerInfo(name, f"{torch_name}.{sub}", module.out_channels,
                                          sub_stride, kind="branch"))  # fmt: skip
            rows.append(LayerInfo(keras_name, torch_name, channels, stride, (torch_name,), "block"))
            before = stride
        if self.head:
            rows.append(LayerInfo("logits", "fc", self.fc.out_features, 0, kind="head"))
        return rows


def build(
    name: str = "inception_v3",
    aux_logits: bool = True,
    head: bool = True,
    keras_pooling: bool = False,
) -> Inception3:
    return Inception3(aux_logits=aux_logits, head=head, keras_pooling=keras_pooling)
