"""Which operations give different bits at different thread counts: a harness.

:func:`record_ops` runs a function once at one thread and keeps every ATen operation it
dispatches (forward and backward) with copies of its inputs and outputs. :func:`thread_dependent`
then re-runs each recorded operation alone, on its recorded inputs, at other thread counts and
lists those whose outputs differ in any bit. Because each operation is replayed on the same
inputs, one run finds every culprit at once, not only the first (after the first difference,
everything downstream differs too).

An operation the code deliberately runs on one thread (inside ``threads.one_thread``, e.g.
``models.fuse``'s input gradient of a convolution reading the image) is not recorded: it runs
on one thread whatever the count.

It is how the loop's numerics were made thread-invariant (see :mod:`inceptionism.numerics`), and
``tests/test_same_pixels.py`` runs it over a step of every model family and technique::

    ops = record_ops(lambda: one_step(x))
    for finding in thread_dependent(ops, threads=(2, 3, 4)):
        print(finding)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from inceptionism.ops.threads import pinned

__all__ = ["Finding", "RecordedOp", "record_ops", "thread_dependent"]

# operations that only make, view or move memory: no arithmetic, nothing to compare
_SKIP = ("empty", "view", "as_strided", "_unsafe_view", "detach", "alias", "t.", "expand",
         "permute", "transpose", "unsqueeze", "squeeze", "select", "slice", "_to_copy",
         "lift_fresh", "resize_", "set_", "zeros", "ones", "new_", "full", "copy_", "clone",
         "fill_", "zero_", "split", "unbind", "contiguous", "_local_scalar_dense",
         # random draws advance their generator: a re-run draws other numbers by design
         "rand", "normal", "uniform", "bernoulli", "exponential", "multinomial")  # fmt: skip


@dataclass
class RecordedOp:
    """One dispatched operation: its overload, copies of its arguments, and its outputs."""

    func: Any
    args: tuple
    kwargs: dict
    outputs: list[torch.Tensor]

    @property
    def name(self) -> str:
        return str(self.func)

    def shapes(self) -> str:
        flat, _ = tree_flatten((self.args, self.kwargs))
        return " ".join(str(tuple(t.shape)) for t in flat if isinstance(t, torch.Tensor))


@dataclass(frozen=True)
class Finding:
    """An operation whose result depends on the thread count."""

    name: str
    shapes: str
    threads: int  # the first count (beside 1) that changed its bits
    max_diff: float  # the largest absolute difference against one thread

    def __str__(self) -> str:
        return f"{self.name} {self.shapes}: differs at {self.threads} threads by {self.max_diff:g}"


def _copy(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, torch.Tensor) else value


class _Recorder(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: list[RecordedOp] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        keep = not pinned() and not any(part in str(func) for part in _SKIP)
        saved = (tree_map(_copy, args), tree_map(_copy, kwargs)) if keep else None
        out = func(*args, **kwargs)
        if saved is not None:
            flat, _ = tree_flatten(out)
            outputs = [t.detach().clone() for t in flat if isinstance(t, torch.Tensor)]
            if outputs:
                self.ops.append(RecordedOp(func, saved[0], saved[1], outputs))
        return out


def record_ops(fn: Callable[[], Any]) -> list[RecordedOp]:
    """Run ``fn`` at one thread and return every arithmetic operation it dispatched."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    recorder = _Recorder()
    try:
        with recorder:
            fn()
    finally:
        torch.set_num_threads(before)
    return recorder.ops


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal in every bit (NaN payloads and signed zeros included)."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype == torch.bool or not a.numel():
        return bool(torch.equal(a, b))
    return bool(
        torch.equal(
            a.contiguous().flatten().view(torch.uint8), b.contiguous().flatten().view(torch.uint8)
        )
    )


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float((a.double() - b.double()).abs().nan_to_num(float("inf")).max()) if a.numel() else 0


def _rerun(op: RecordedOp, threads: int) -> list[torch.Tensor]:
    torch.set_num_threads(threads)
    args, kwargs = tree_map(_copy, op.args), tree_map(_copy, op.kwargs)  # in-place ops mutate
    out = op.func(*args, **kwargs)
    flat, _ = tree_flatten(out)
    return [t for t in flat if isinstance(t, torch.Tensor)]


def thread_dependent(
    ops: Iterable[RecordedOp], threads: Sequence[int] = (2, 3, 4)
) -> list[Finding]:
    """Re-run each recorded operation at each count in ``threads``; one :class:`Finding` per
    distinct (operation, shapes) whose outputs differ from the one-thread outputs in any bit."""
    before = torch.get_num_threads()
    findings: dict[tuple[str, str], Finding] = {}
    try:
        for op in ops:
            key = (op.name, op.shapes())
            if key in findings:
                continue
            for n in threads:
                outputs = _rerun(op, n)
                diffs = [_max_diff(a, b) for a, b in zip(op.outputs, outputs) if not _same(a, b)]
                if diffs or len(outputs) != len(op.outputs):
                    findings[key] = Finding(op.name, key[1], n, max(diffs, default=float("inf")))
                    break
    finally:
        torch.set_num_threads(before)
    return list(findings.values())
