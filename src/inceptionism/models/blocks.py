"""Building blocks shared by the torchvision-layout networks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from inceptionism.models.fuse import conv_act, hooked, sibling_pointwise


class ConvBN(nn.Module):
    """Convolution without bias, BatchNorm, ReLU: torchvision's ``BasicConv2d`` key layout
    (``conv.weight``, ``bn.*``). The ReLU is a module of its own so that both the pre-ReLU
    (``bn``) and the post-ReLU (the block itself) activations can be tapped."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        eps: float = 1e-3,
    ):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=eps)
        self.relu = nn.ReLU()
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Its output feeds convolutions, pools and concatenations only (Inception, GoogLeNet):
        # the ReLU's backward may overwrite the gradient it is given.
        return conv_act(x, self.conv, self.bn, self.relu, grad_inplace=True)


def sibling_branches(x: torch.Tensor, branches: Sequence[nn.Module]) -> list[torch.Tensor]:
    """``[branch(x) for branch in branches]`` for branches that all read ``x``. Where every one
    is a 1x1 ConvBN with its BatchNorm folded and nothing tapped inside it, they run as one
    convolution (:func:`fuse.sibling_pointwise`): the same values, one pass over ``x``."""
    folded = [b for b in branches if isinstance(b, ConvBN) and _foldable(b)]
    if len(folded) == len(branches):
        merged = sibling_pointwise(x, [b.conv for b in folded], "relu")
        if merged is not None:
            return merged
    return [b(x) for b in branches]


def _foldable(b: ConvBN) -> bool:
    """Its BatchNorm folded away, its activation a ReLU, nothing tapped inside it."""
    return (
        isinstance(b.bn, nn.Identity)
        and type(b.relu) is nn.ReLU
        and not hooked(b, b.conv, b.bn, b.relu)
    )


def convbn_pairs(net: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) paths of every ConvBN inside ``net``, for BatchNorm folding."""
    return [(f"{n}.conv", f"{n}.bn") for n, m in net.named_modules() if isinstance(m, ConvBN)]


def init_random(net: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """He-initialised convolutions and non-trivial BatchNorm statistics: a random net whose
    activations neither explode nor vanish, for tests and synthetic checkpoints."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
                if m.bias is not None:
                    m.bias.normal_(0, 0.01, generator=generator)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=generator)
                m.bias.normal_(0, 0.1, generator=generator)
                assert m.running_mean is not None and m.running_var is not None  # tracked
                m.running_mean.normal_(0, 0.1, generator=generator)
                m.running_var.uniform_(0.5, 1.5, generator=generator)
    return net
