"""GoogLeNet (Inception v1) in torchvision's key layout, so ``googlenet-1378be20.pth`` (a port of
the TensorFlow weights, auxiliary heads included) loads with strict key checks.

Layers carry the names users of Google's deepdream notebook know: ``inception4c`` (alias
``inception_4c/output``) and inside each block ``1x1``, ``3x3_reduce``, ``3x3``, ``5x5_reduce``,
``5x5`` and ``pool_proj`` after their ReLU, with ``.pre`` for the value before it. The TF1
notebook's Inception5h names are aliases: ``mixed4d`` is ``inception4d``,
``mixed4d_3x3_bottleneck_pre_relu`` is ``inception4d.3x3_reduce.pre``, ``conv2d0`` is ``conv1``
(same places and channel counts; the networks' weights differ). torchvision's
"5x5" branch is a 3x3 convolution (a known quirk kept for checkpoint compatibility), so
``inception4c.5x5`` is that 3x3 convolution here too.
"""

from __future__ import annotations

import torch
from torch import nn

from inceptionism.models.blocks import ConvBN, convbn_pairs
from inceptionism.models.registry import LayerInfo

# (name, in, 1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), then the pool after some
_BLOCKS = (
    ("inception3a", 192, 64, 96, 128, 16, 32, 32),
    ("inception3b", 256, 128, 128, 192, 32, 96, 64),
    ("maxpool3",),
    ("inception4a", 480, 192, 96, 208, 16, 48, 64),
    ("inception4b", 512, 160, 112, 224, 24, 64, 64),
    ("inception4c", 512, 128, 128, 256, 24, 64, 64),
    ("inception4d", 512, 112, 144, 288, 32, 64, 64),
    ("inception4e", 528, 256, 160, 320, 32, 128, 128),
    ("maxpool4",),
    ("inception5a", 832, 256, 160, 320, 32, 128, 128),
    ("inception5b", 832, 384, 192, 384, 48, 128, 128),
)
# (tap name, module path inside a block, index of its channel count in the block's row,
#  Inception5h's name for the tap)
_BRANCH_TAPS = (
    ("1x1", "branch1", 2, "1x1"),
    ("3x3_reduce", "branch2.0", 3, "3x3_bottleneck"),
    ("3x3", "branch2.1", 4, "3x3"),
    ("5x5_reduce", "branch3.0", 5, "5x5_bottleneck"),
    ("5x5", "branch3.1", 6, "5x5"),
    ("pool_proj", "branch4.1", 7, "pool_reduce"),
)
# Inception5h (the TF1 notebook's graph) names of the stem convolutions (its pools are left
# out: its "maxpool1" is torchvision's maxpool2, a name clash)
_STEM_5H = {"conv1": "conv2d0", "conv2": "conv2d1", "conv3": "conv2d2"}


class Inception(nn.Module):
    def __init__(self, cin: int, c1: int, c3r: int, c3: int, c5r: int, c5: int, pool: int):
        super().__init__()
        self.branch1 = ConvBN(cin, c1, 1)
        self.branch2 = nn.Sequential(ConvBN(cin, c3r, 1), ConvBN(c3r, c3, 3, padding=1))
        self.branch3 = nn.Sequential(ConvBN(cin, c5r, 1), ConvBN(c5r, c5, 3, padding=1))
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1, ceil_mode=True), ConvBN(cin, pool, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class AuxHead(nn.Module):
    """An auxiliary classifier: only for training, never run here; kept so checkpoints load."""

    def __init__(self, cin: int, num_classes: int):
        super().__init__()
        self.conv = ConvBN(cin, 128, 1)
        self.fc1 = nn.Linear(2048, 1024)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(nn.functional.adaptive_avg_pool2d(x, 4)).flatten(1)
        return self.fc2(nn.functional.relu(self.fc1(x)))


class GoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 1000, aux_logits: bool = True, head: bool = True):
        super().__init__()
        self.conv1 = ConvBN(3, 64, 7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = ConvBN(64, 64, 1)
        self.conv3 = ConvBN(64, 192, 3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        for row in _BLOCKS:
            if len(row) == 1:
                pool = nn.MaxPool2d(3 if row[0] == "maxpool3" else 2, stride=2, ceil_mode=True)
                setattr(self, row[0], pool)
            else:
                setattr(self, row[0], Inception(*row[1:]))
        if aux_logits:
            self.aux1 = AuxHead(512, num_classes)
            self.aux2 = AuxHead(528, num_classes)
        self.head = head
        if head:
            self.fc = nn.Linear(1024, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for name in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2"):
            x = getattr(self, name)(x)
        for row in _BLOCKS:
            x = getattr(self, row[0])(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (the auxiliary heads are never run); without a head, pooled features."""
        x = self.features(x).mean(dim=(2, 3))
        return self.fc(x) if self.head else x

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        return [p for p in convbn_pairs(self) if not p[0].startswith("aux")]

    def layer_table(self) -> list[LayerInfo]:
        rows: list[LayerInfo] = []
        for name, channels, stride in (("conv1", 64, 2), ("conv2", 64, 4), ("conv3", 192, 4)):
            tf = _STEM_5H[name]
            pre = (f"{tf}_pre_relu",)
            rows.append(LayerInfo(f"{name}.pre", f"{name}.bn", channels, stride, pre, "branch"))
            rows.append(LayerInfo(name, name, channels, stride, (tf,), "stem"))
            if name == "conv1":
                rows.append(LayerInfo("maxpool1", "maxpool1", 64, 4, kind="pool"))
        rows.append(LayerInfo("maxpool2", "maxpool2", 192, 8, kind="pool"))
        stride, channels = 8, 192
        for row in _BLOCKS:
            name = row[0]
            if len(row) == 1:
                stride *= 2
                rows.append(LayerInfo(name, name, channels, stride, kind="pool"))
                continue
            caffe, tf = f"inception_{name[-2:]}", f"mixed{name[-2:]}"
            for tap, path, index, tf_tap in _BRANCH_TAPS:
                c, pre = int(row[index]), (f"{tf}_{tf_tap}_pre_relu",)
                rows.append(
                    LayerInfo(f"{name}.{tap}.pre", f"{name}.{path}.bn", c, stride, pre, "branch")
                )
                aliases = (f"{caffe}/{tap}", f"{tf}_{tf_tap}")
                rows.append(LayerInfo(f"{name}.{tap}", f"{name}.{path}", c, stride, aliases,
                                      "branch"))  # fmt: skip
            channels = row[2] + row[4] + row[6] + row[7]
            rows.append(LayerInfo(name, name, channels, stride, (f"{caffe}/output", tf), "block"))
        if self.head:
            rows.append(LayerInfo("logits", "fc", self.fc.out_features, 0, kind="head"))
        return rows


def build(name: str = "googlenet", aux_logits: bool = True, head: bool = True) -> GoogLeNet:
    return GoogLeNet(aux_logits=aux_logits, head=head)
