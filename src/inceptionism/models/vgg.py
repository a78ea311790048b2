"""VGG16 and VGG19 in torchvision's key layout (``features.N``, ``classifier.N``), so
``vgg16-397923af.pth`` and ``vgg19-dcbb9e9d.pth`` load with strict key checks, and Keras's VGG
weight files convert onto them (``keras_weights.py``).

Layers carry Keras's names: ``block1_conv1`` … ``block5_conv3`` (``block5_conv4`` on VGG19) are
the outputs after the ReLU, as Keras's convolutions include it; ``.pre`` is the value before;
``block1_pool`` … ``block5_pool`` the max pools. torchvision's names (``features.N``) are aliases.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from inceptionism.models.registry import LayerInfo

# convolutions per block
CONFIGS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)


class VGG(nn.Module):
    def __init__(self, convs: tuple[int, ...], num_classes: int = 1000, head: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        self.taps: list[tuple] = []  # (name, index in features, channels, stride)
        cin, stride = 3, 1
        for b, (n, width) in enumerate(zip(convs, WIDTHS), 1):
            for c in range(1, n + 1):
                self.taps.append((f"block{b}_conv{c}.pre", len(layers), width, stride))
                layers.append(nn.Conv2d(cin, width, 3, padding=1))
                self.taps.append((f"block{b}_conv{c}", len(layers), width, stride))
                layers.append(nn.ReLU())  # not in place: its input may be tapped
                cin = width
            stride *= 2
            self.taps.append((f"block{b}_pool", len(layers), width, stride))
            layers.append(nn.MaxPool2d(2, stride=2))
        self.features = nn.Sequential(*layers)
        self.head = head
        if head:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, 4096),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(4096, 4096),
                nn.ReLU(),
                nn.Dropout(0.5),
                nn.Linear(4096, num_classes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (on the 7x7 average-pooled map, as torchvision); without a head, the
        last feature map."""
        x = self.features(x)
        if not self.head:
            return x
        x = nn.functional.adaptive_avg_pool2d(x, 7).flatten(1)
        return self.classifier(x)

    def layer_table(self) -> list[LayerInfo]:
        def kind(name: str) -> str:
            if name.endswith(".pre"):
                return "branch"
            return "pool" if name.endswith("_pool") else "block"

        rows = [
            LayerInfo(name, f"features.{i}", c, s,
                      () if name.endswith(".pre") else (f"features.{i}",), kind(name))
            for name, i, c, s in self.taps
        ]  # fmt: skip
        if self.head:
            logits = int(cast(Any, self.classifier[6]).out_features)
            rows.append(LayerInfo("logits", "classifier.6", logits, 0, kind="head"))
        return rows


def build(name: str, head: bool = True) -> VGG:
    return VGG(CONFIGS[name], head=head)
