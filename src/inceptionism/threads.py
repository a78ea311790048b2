"""Thread count and OpenMP wait policy, decided before torch starts.

PyTorch's OpenMP threads spin while they wait for work. On a machine where other processes run
(other dreams, a browser, a build) the spinning threads fight them for the cores, and a step
that takes 0.6 s alone took 6-11 s. ``OMP_WAIT_POLICY=PASSIVE`` makes waiting threads sleep: beside
a spinning process two passive threads took 0.31 s a step where spinning ones took 3.7 s
(benchmarks/bench_threads.py, which also times the quiet case). Both settings are
read once, when torch loads its OpenMP runtime, so :func:`configure_threads` must run before the
first ``import torch``; afterwards it can still set the thread count, not the wait policy.

Explicit environment variables win over the defaults here: a user who exported
``OMP_NUM_THREADS`` or ``OMP_WAIT_POLICY`` gets what they asked for unless ``threads`` is given.
"""

from __future__ import annotations

import os
import sys

__all__ = ["available_cores", "configure_threads", "default_threads", "prefer_passive_wait"]

THREADS_ENV = "INCEPTIONISM_THREADS"  # the default thread count, where no --threads is given
WAIT_POLICIES = ("passive", "active")


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    try:  # cgroup v2: "max 100000" or "200000 100000" (quota, period)
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_threads() -> int:
    """``$INCEPTIONISM_THREADS``, else ``$OMP_NUM_THREADS``, else every available core."""
    for var in (THREADS_ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return available_cores()


def prefer_passive_wait() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless the environment says otherwise. ``import
    inceptionism`` calls it when torch is not loaded yet, so every entry point gets it."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def configure_threads(threads: int | None = None, wait_policy: str | None = None) -> int:
    """Set the intra-op thread count (``threads``, or :func:`default_threads`) and the OpenMP
    wait policy (default passive) for this process; returns the thread count.

    Call it before importing torch (the CLI's entry point does, from ``--threads``). If torch
    is already loaded the thread count still applies; the wait policy then does not.
    """
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    n = int(threads) if threads is not None else default_threads()
    if wait_policy is not None:
        if wait_policy.lower() not in WAIT_POLICIES:
            raise ValueError(f"wait_policy must be one of {', '.join(WAIT_POLICIES)}")
        os.environ["OMP_WAIT_POLICY"] = wait_policy.upper()
    else:
        prefer_passive_wait()
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(n)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n
