"""Reductions whose bits do not depend on the thread count.

PyTorch's CPU reductions over a whole tensor (``sum``, ``mean``, ``std``, ``vector_norm``) split
the work into one piece per thread once the tensor has more than 32,768 elements and add the
pieces up: the rounding, and so the last bits of the result, follows the thread count. A dream
is a chaotic loop (each step's gradient normalisation feeds the next step), so one differing
bit becomes differing pixels within a few steps.

Here a tensor is read in its memory order as rows of :data:`ROW` elements: each row is reduced
on its own (PyTorch hands whole rows to threads, and a row's reduction does not depend on who
runs it), then the row results are reduced the same way again, until few enough remain to be
added on one thread. The order of every addition is fixed by the tensor's size alone.
``inceptionism.thread_probe`` checks it, and ``tests/test_same_pixels.py`` checks whole dreams.
The results are differentiable and differ from PyTorch's own in the last bits only.
"""

from __future__ import annotations

import torch

__all__ = [
    "ROW",
    "environment",
    "environment_difference",
    "fixed_abs_mean",
    "fixed_mean",
    "fixed_rms",
    "fixed_std",
    "fixed_sum",
    "onednn_isa",
]

ROW = 8192  # elements per row: well under PyTorch's 32,768-element grain for one thread


def _flat(t: torch.Tensor) -> torch.Tensor:
    """``t`` as one dimension in its memory order: a view for contiguous and channels-last
    tensors, a copy otherwise."""
    if t.is_contiguous():
        return t.view(-1)
    if t.ndim == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1).reshape(-1)
    return t.reshape(-1)


def _rows(flat: torch.Tensor, reduce) -> torch.Tensor:
    """``reduce(rows, dim=1)`` over the full rows of ``flat``, and ``reduce`` of the remainder
    appended: one value per row."""
    n = flat.numel()
    whole = n - n % ROW
    parts = []
    if whole:
        parts.append(reduce(flat[:whole].view(-1, ROW), 1))
    if whole < n:
        parts.append(reduce(flat[whole:].view(1, -1), 1))
    return torch.cat(parts) if len(parts) > 1 else parts[0]


def _sum(t: torch.Tensor, dim: int) -> torch.Tensor:
    return t.sum(dim)


def _abs_sum(t: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.linalg.vector_norm(t, 1, dim=dim)  # |t| summed without a buffer for |t|


def _fold(flat: torch.Tensor, reduce=_sum) -> torch.Tensor:
    if flat.numel() <= ROW:
        return reduce(flat, 0)
    return _fold(_rows(flat, reduce))  # the row results are added up plainly


def fixed_sum(t: torch.Tensor) -> torch.Tensor:
    """``t.sum()`` in an order fixed by ``t``'s size (a 0-dim tensor, differentiable)."""
    return _fold(_flat(t))


def fixed_mean(t: torch.Tensor) -> torch.Tensor:
    """``t.mean()`` in a fixed order."""
    return fixed_sum(t) / max(t.numel(), 1)


def fixed_abs_mean(t: torch.Tensor) -> torch.Tensor:
    """``t.abs().mean()`` in a fixed order, without making ``|t|``."""
    return _fold(_flat(t), _abs_sum) / max(t.numel(), 1)


def fixed_std(t: torch.Tensor) -> torch.Tensor:
    """The population standard deviation (``t.std(correction=0)``) in a fixed order."""
    centred = t - fixed_mean(t)
    return fixed_mean(centred.square()).sqrt()


def fixed_rms(t: torch.Tensor) -> torch.Tensor:
    """``sqrt(mean(t**2))`` in a fixed order."""
    return fixed_mean(t.square()).sqrt()


# --- what decides pixels beyond the recipe -------------------------------------------------------


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def onednn_isa(flags: set[str] | None = None) -> str:
    """The instruction-set family oneDNN picks its convolution kernels for on this CPU (its
    own names; ``$ONEDNN_MAX_CPU_ISA`` caps it), from the CPU's flags; the machine's
    architecture where the flags cannot be read (not Linux)."""
    import os
    import platform

    flags = _cpu_flags() if flags is None else flags
    if not flags:
        return platform.machine().lower() or "unknown"
    avx512 = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags
    if avx512 and {"amx_tile", "amx_bf16"} <= flags:
        isa = "avx512_core_amx"
    elif avx512 and "avx512_bf16" in flags:
        isa = "avx512_core_bf16"
    elif avx512 and "avx512_vnni" in flags:
        isa = "avx512_core_vnni"
    elif avx512:
        isa = "avx512_core"
    elif "avx2" in flags:
        isa = "avx2_vnni" if "avx_vnni" in flags else "avx2"
    elif "avx" in flags:
        isa = "avx"
    else:
        isa = "sse41" if "sse4_1" in flags else "default"
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    return f"{isa} (capped at {cap})" if cap else isa


def environment(device: torch.device | str) -> dict[str, str]:
    """What decides a dream's pixels that its recipe's config does not: the torch build, the
    device, and the instruction sets its kernels are chosen for (on a CPU: PyTorch's own
    vectorised kernels and oneDNN's). Same recipe and same environment: same pixels, whatever
    the thread count; another environment may round differently."""
    device = torch.device(device)
    env = {"torch": torch.__version__, "device": device.type}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = str(torch.version.cuda)
    else:
        env["cpu"] = torch.backends.cpu.get_cpu_capability().lower()
        env["onednn"] = onednn_isa() if torch.backends.mkldnn.is_available() else "none"
    return env


def environment_difference(recorded: object, current: dict[str, str]) -> str | None:
    """One line saying how a recipe's recorded environment differs from this one (None when it
    is the same; a recipe that recorded none says so)."""
    if not isinstance(recorded, dict):
        return (
            "note: the recipe does not record the environment it was made in (an older "
            "version); pixels are exact only on the same CPU family and torch build"
        )
    changed = [
        f"{key} {recorded.get(key)!s:.40} -> {value}"
        for key, value in current.items()
        if recorded.get(key) != value
    ]
    if not changed:
        return None
    return (
        "note: pixels may differ from the original: it was made in another environment ("
        + "; ".join(changed)
        + ")"
    )
