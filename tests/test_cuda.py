"""The CUDA path: channels_last, cuDNN autotuning and autocast. Runs only where CUDA exists."""

from __future__ import annotations

import pytest
import torch

from inceptionism import DreamConfig, dream_tensor
from inceptionism.engine.ascent import objective_gradient
from inceptionism.ops.objectives import Objective

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double().cpu(), b.flatten().double().cpu()
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.fixture(scope="module")
def lite0_cuda():
    from inceptionism import get_model

    return get_model("efficientnet_lite0", device="cuda")


def test_cuda_gradient_matches_the_cpu_one(lite0, lite0_cuda):
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(0))
    obj = Objective.parse("block9=1,block5:3=0.5")
    loss_cpu, g_cpu = objective_gradient(lite0, x, obj, "l2", 2, (3, -5))
    loss_gpu, g_gpu = objective_gradient(lite0_cuda, x.cuda(), obj, "l2", 2, (3, -5))
    assert g_gpu.is_cuda and abs(loss_gpu - loss_cpu) < 1e-3 * abs(loss_cpu)
    assert _cos(g_gpu, g_cpu) > 0.9999


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_keeps_the_objective_in_float32(lite0_cuda, precision):
    x = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1)).cuda()
    obj = Objective.parse("block9")
    _, g32 = objective_gradient(lite0_cuda, x, obj)
    reduced = lite0_cuda.with_precision(precision)
    acts = reduced.activations(x, ["block9"])
    assert acts["block9"].dtype == torch.float32
    _, g = objective_gradient(reduced, x, obj)
    assert g.dtype == torch.float32 and _cos(g, g32) > 0.95


def test_cuda_dream_with_tiles_stays_on_the_device(lite0_cuda):
    x = torch.rand(1, 3, 160, 200, generator=torch.Generator().manual_seed(2)).cuda()
    cfg = DreamConfig(model=lite0_cuda.name, steps=2, octaves=2, tile=96, tile_overlap=16)
    out = dream_tensor(x, lite0_cuda, cfg)
    assert out.is_cuda and out.shape == x.shape and torch.backends.cudnn.benchmark
    assert float((out - x).abs().mean()) > 0
