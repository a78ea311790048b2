"""Reduced precision for the network, float32 for everything around it.

``precision="bf16"`` runs the network's convolutions in bfloat16 (oneDNN on CPUs with bf16 dot
products, e.g. AVX-512 BF16; autocast on CUDA, where "fp16" is offered too); the image, the
normalisation, the objective (activations are cast back to float32 before any statistic), the
gradient's normalisation and the update stay float32. ``"fp32"`` changes nothing at all.
"""

from __future__ import annotations

import torch

from inceptionism.errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse, with one line, a precision this device cannot run fast (or at all)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise ConfigError(f"precision bf16: this GPU ({device}) has no bfloat16 support")
        return
    if device.type == "cpu":
        if precision == "fp16":
            raise ConfigError("precision fp16 runs on CUDA only; on a CPU use bf16 or fp32")
        onednn = torch.backends.mkldnn.is_available()
        if not onednn or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise ConfigError(
                "precision bf16: this CPU has no bfloat16 dot products (AVX-512 BF16 or AMX); "
                "use fp32"
            )
        return
    raise ConfigError(f"precision {precision} is not supported on {device.type}; use fp32")


def compute_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The dtype the network's weights are cast to (CPU), or None (fp32, or CUDA autocast)."""
    if precision == "fp32" or device.type == "cuda":
        return None
    return DTYPES[precision]


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype on CUDA (None elsewhere and for fp32)."""
    return DTYPES[precision] if precision != "fp32" and device.type == "cuda" else None


def tune_device(device: torch.device) -> None:
    """Device-wide settings worth having for dreams: on CUDA, cuDNN's autotuner (tile shapes
    repeat from step to step, so the first step's search pays off). Nothing on a CPU."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
