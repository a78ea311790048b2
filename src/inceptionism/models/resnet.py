"""ResNet-50 in torchvision's key layout, so ``resnet50-0676ba61.pth`` (and the V2 weights,
``resnet50-11ad3fa6.pth``: the same keys) load with strict key checks.

Layers: ``conv1`` (after its ReLU; ``conv1.pre`` before), ``maxpool``, ``layer1`` … ``layer4`` and
each bottleneck block's output (``layer3.5``), with the block's inner activations
``layer3.5.conv1`` / ``.conv2`` (after their ReLU) and ``layer3.5.conv3`` (before the residual
sum). torchvision's bottleneck reuses one ReLU three times; here each use is its own module
(no parameters, so the checkpoint is unchanged) so every tap is unambiguous.
"""

from __future__ import annotations

import torch
from torch import nn

from inceptionism.models.registry import LayerInfo

BN_EPS = 1e-5
DEPTHS = {"resnet50": (3, 4, 6, 3)}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width, eps=BN_EPS)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.relu = nn.ReLU()
        if stride != 1 or cin != cout:
            self.downsample: nn.Sequential | None = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout, eps=BN_EPS)
            )
        else:
            self.downsample = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        h = self.relu2(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(h + skip)

    def conv_bn_pairs(self, prefix: str) -> list[tuple[str, str]]:
        pairs = [(f"{prefix}conv{i}", f"{prefix}bn{i}") for i in (1, 2, 3)]
        if self.downsample is not None:
            pairs.append((f"{prefix}downsample.0", f"{prefix}downsample.1"))
        return pairs


class ResNet(nn.Module):
    def __init__(self, depths: tuple[int, ...], num_classes: int = 1000, head: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        cin = 64
        for i, (n, width) in enumerate(zip(depths, (64, 128, 256, 512)), 1):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(cin, width, stride=2 if j == 0 and i > 1 else 1))
                cin = width * Bottleneck.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.head = head
        if head:
            self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits; without a head, pooled features."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
        x = x.mean(dim=(2, 3))
        return self.fc(x) if self.head else x

    def conv_bn_pairs(self) -> list[tuple[str, str]]:
        pairs = [("conv1", "bn1")]
        for i in range(1, 5):
            for j, block in enumerate(getattr(self, f"layer{i}")):
                pairs += block.conv_bn_pairs(f"layer{i}.{j}.")
        return pairs

    def layer_table(self) -> list[LayerInfo]:
        rows: list[LayerInfo] = [
            LayerInfo("conv1.pre", "bn1", 64, 2, kind="branch"),
            LayerInfo("conv1", "relu", 64, 2, kind="stem"),
            LayerInfo("maxpool", "maxpool", 64, 4, kind="pool"),
        ]
        stride = 4
        for i in range(1, 5):
            layer = getattr(self, f"layer{i}")
            for j, block in enumerate(layer):
                inner = stride
                stride *= block.conv2.stride[0]
                p = f"layer{i}.{j}"
                width = block.conv1.out_channels
                out = block.conv3.out_channels
                rows += [
                    LayerInfo(f"{p}.conv1", f"{p}.relu1", width, inner, kind="branch"),
                    LayerInfo(f"{p}.conv2", f"{p}.relu2", width, stride, kind="branch"),
                    LayerInfo(f"{p}.conv3", f"{p}.bn3", out, stride, kind="branch"),
                    LayerInfo(p, p, out, stride, kind="block"),
                ]
            out = layer[-1].conv3.out_channels
            rows.append(LayerInfo(f"layer{i}", f"layer{i}", out, stride, kind="stage"))
        if self.head:
            rows.append(LayerInfo("logits", "fc", self.fc.out_features, 0, kind="head"))
        return rows


def build(name: str, head: bool = True) -> ResNet:
    return ResNet(DEPTHS[name], head=head)
