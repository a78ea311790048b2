"""Thread count, how idle OpenMP threads wait, and the allocator: process settings, most of them
decided before torch starts.

Waiting threads. PyTorch's OpenMP runtime (libgomp) lets a thread that has run out of work spin
for 300,000 iterations before it sleeps. On a machine where other processes run (other dreams, a
browser, a build) the spinning threads fight them for the cores: a step that takes 0.6 s alone
took 6-11 s. Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) fixed that but made a quiet
machine's two-thread step 1.07-1.19x slower (every parallel region has to wake its threads).
``import inceptionism`` now sets ``GOMP_SPINCOUNT=10000``: a short spin, then sleep
(benchmarks/bench_threads.py measures the settings side by side, quiet and beside a busy
process). It is read once, when torch loads its OpenMP runtime, so it must be set before the
first ``import torch``.

Sharing the cores (:func:`share_cores`): where the thread count is this process's own choice
(no ``--threads``, no ``$INCEPTIONISM_THREADS`` or ``$OMP_NUM_THREADS``), the job runner
(:class:`ProcessPolicy`) matches it, between steps, to the cores other processes leave free,
measured from ``/proc/stat``: beside a process busy on one of two cores a dream runs one
thread, which is faster than two fighting it, and two dreams on one machine settle on half the
cores each. Pixels do not depend on it (ops/numerics.py).

Explicit environment variables win over the defaults here: a user who exported
``OMP_NUM_THREADS``, ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` gets what they asked for unless
``threads`` is given.

The allocator (:func:`keep_freed_memory`): glibc maps each large buffer (over its mmap
threshold, which adapts up to 32 MB) on its own and unmaps it when it is freed. A gradient step
frees and re-makes dozens of them, so each step faulted its activations in afresh (78,000 page
faults per InceptionV3 step at 1024x768, each page zeroed by the kernel). Keeping freed memory
for reuse cut that to 4,000 and made the step 1.05-1.1x, a Lite2 step 1.2-1.3x faster
(benchmarks/bench_step.py). It can be switched at any time: the job runner keeps freed memory
while an untiled level runs and gives it back on tiled levels and when the dream ends, so a
process between dreams (the studio, a test run) holds no dream-sized heap.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "ProcessPolicy",
    "one_thread",
    "pinned",
    "available_cores",
    "configure_threads",
    "default_threads",
    "fix_threads",
    "keep_freed_memory",
    "prefer_short_wait",
    "share_cores",
]

THREADS_ENV = "INCEPTIONISM_THREADS"  # the default thread count, where no --threads is given
MALLOC_ENV = "INCEPTIONISM_MALLOC"  # "system": leave glibc's allocator settings alone
WAIT_POLICIES = ("passive", "active")
SPIN_COUNT = "10000"  # libgomp's spin before a waiting thread sleeps (its own default: 300000)
_WAIT_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
# whether the user fixed the thread count in the environment (read before anything sets it)
_USER_THREADS = any(os.environ.get(var, "").strip() for var in (THREADS_ENV, "OMP_NUM_THREADS"))


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


def prefer_short_wait() -> None:
    """``GOMP_SPINCOUNT`` = :data:`SPIN_COUNT` unless the environment chose how threads wait
    (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``). ``import inceptionism`` calls it when torch
    is not loaded yet, so every entry point gets it."""
    if not any(var in os.environ for var in _WAIT_VARS):
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT


def configure_threads(threads: int | None = None, wait_policy: str | None = None) -> int:
    """Set the intra-op thread count (``threads``, or :func:`default_threads`) and how waiting
    OpenMP threads behave (``wait_policy`` passive or active; by default a short spin) for
    this process; returns the thread count. ``threads`` given: :func:`share_cores` leaves the
    count alone.

    Call it before importing torch. If torch is already loaded (the CLI loads it before it
    reads ``--threads``), the thread count still applies; the wait policy then does not.
    """
    if threads is not None and (isinstance(threads, bool) or int(threads) < 1):
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    n = int(threads) if threads is not None else default_threads()
    if wait_policy is not None:
        if wait_policy.lower() not in WAIT_POLICIES:
            raise ValueError(f"wait_policy must be one of {', '.join(WAIT_POLICIES)}")
        os.environ["OMP_WAIT_POLICY"] = wait_policy.upper()
        os.environ.pop("GOMP_SPINCOUNT", None)  # libgomp would let it override the policy
    else:
        prefer_short_wait()
    if threads is not None:
        sharing.fix()
        os.environ["OMP_NUM_THREADS"] = str(n)
    else:
        os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
        sharing.chosen(n)
    return n


def fix_threads(n: int) -> None:
    """Exactly ``n`` torch threads from now on: :func:`share_cores` leaves them alone (a Ray
    actor's share, given by the executor). Unlike :func:`configure_threads` it leaves the
    environment as it is."""
    import torch

    torch.set_num_threads(int(n))
    sharing.fix()


def machine_sample() -> tuple[float, float, int] | None:
    """(busy CPU seconds of the whole machine, this process's CPU seconds, CPUs /proc/stat
    counts), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    fields = [int(v) for v in lines[0].split()[1:9]]  # user nice system idle iowait irq ...
    busy = sum(fields) - fields[3] - fields[4]
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, cpus


class CoreShare:
    """The state of :func:`share_cores`: the last sample, the count it set, and whether it may
    act at all. What it reads of the machine comes through ``sample`` (:func:`machine_sample`),
    ``clock`` and ``cores`` (:func:`available_cores`), so a test can script a busy machine by
    putting its own instance in :data:`sharing`."""

    def __init__(
        self,
        sample: Callable[[], tuple[float, float, int] | None] = machine_sample,
        clock: Callable[[], float] = time.monotonic,
        cores: Callable[[], int] = available_cores,
        user_threads: bool = _USER_THREADS,
    ):
        self.sample, self.clock, self.cores = sample, clock, cores
        self.fixed = user_threads  # a count the user chose (or an executor gave): never moved
        self.off = False  # /proc/stat counts other CPUs, or someone else set the count
        self.last: tuple[float, float, float] | None = None
        self.set: int | None = None  # the count this set last

    def fix(self) -> None:
        self.fixed = True

    def chosen(self, n: int) -> None:
        """``configure_threads`` set our own count again (not someone else's): keep sharing."""
        if self.set is not None:
            self.set = n

    def step(self, interval: float = 0.5) -> int | None:
        """:func:`share_cores`."""
        torch = sys.modules.get("torch")
        if torch is None or self.fixed or self.off:
            return None
        now = self.clock()
        last = self.last
        if last is not None and now - last[0] < interval:
            return None
        sample = self.sample()
        cores = self.cores()
        if sample is None or sample[2] != cores:
            self.off = True
            return None
        current = torch.get_num_threads()
        if self.set is None:
            self.set = current
        if self.set != current:  # someone else set it: theirs now
            self.off = True
            return None
        self.last = (now, sample[0], sample[1])
        if last is None:
            return None
        others = ((sample[0] - last[1]) - (sample[1] - last[2])) / max(now - last[0], 1e-9)
        n = max(1, min(cores, round(cores - max(others, 0.0))))
        if n == current:
            return None
        torch.set_num_threads(n)
        self.set = n
        return n


sharing = CoreShare()  # this process's; replaced whole by tests that script a machine


def share_cores(interval: float = 0.5) -> int | None:
    """Match this process's thread count to the cores other processes leave free; call it
    between steps (it measures at most once per ``interval`` seconds, a /proc/stat read).
    Returns the new count where it changed, else None.

    It acts only where the count is this process's own choice: not after
    ``configure_threads(n)`` (``--threads``), not with ``$INCEPTIONISM_THREADS`` or
    ``$OMP_NUM_THREADS`` in the environment, and never again once something else has called
    ``torch.set_num_threads``. It needs /proc/stat to count the same CPUs this process may use
    (in a container it may count the host's); otherwise it does nothing. The count moves
    between 1 and the cores available to this process: the others' average use over the last
    interval, rounded, is taken off.
    """
    return sharing.step(interval)


# mallopt(3) parameters (glibc's malloc.h); glibc's default mmap count, and the largest mmap
# threshold glibc's dynamic threshold reaches (64-bit), which setting any parameter freezes
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_DEFAULT_MMAP_MAX, _MAX_MMAP_THRESHOLD = 65536, 32 * 2**20
_MALLOC_VARS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                "MALLOC_TOP_PAD_")  # fmt: skip
_heap: dict = {}  # "libc": glibc, once found usable; "keep": the mode set last


def _glibc():
    """glibc's handle with mallopt/malloc_trim typed, or None where we leave malloc alone."""
    if "libc" in _heap:
        return _heap["libc"]
    libc = None
    unset = not any(var in os.environ for var in _MALLOC_VARS)
    if os.environ.get(MALLOC_ENV, "").strip().lower() != "system" and unset:
        import ctypes

        try:
            lib = ctypes.CDLL(None)
            if sys.platform.startswith("linux") and callable(lib.gnu_get_libc_version):
                lib.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
                lib.malloc_trim.argtypes = [ctypes.c_size_t]
                libc = lib
        except (OSError, AttributeError):  # not glibc (macOS, musl): its mallopt differs
            pass
    _heap["libc"] = libc
    return libc


def keep_freed_memory(keep: bool = True) -> bool:
    """``keep``: make glibc keep freed memory for reuse instead of returning it to the system
    (no ``mmap`` for large buffers, so a buffer freed by one step serves the next, and no
    trimming of the heap's top). ``keep=False``: glibc's own behaviour again, and the free
    memory the heap holds goes back to the system. Returns whether the mode is managed here.

    Why both: kept memory is reused well when one shape repeats (an untiled level), but a tiled
    level mixes image-sized buffers with tile-sized ones, and a heap that cannot give back
    pieces of freed image buffers grew the 4000x3000 dream's peak from 1495 to 1704 MB. The
    job runner keeps memory on untiled levels and releases it on tiled ones and at the end.

    Nothing is changed where ``$INCEPTIONISM_MALLOC`` is ``system``, where the environment
    already tunes glibc's malloc (``MALLOC_MMAP_MAX_`` and friends), or off glibc.
    """
    libc = _glibc()
    if libc is None:
        return False
    if _heap.get("keep") is not keep:
        # INT_MAX is the largest trim threshold mallopt takes. Released: buffers over 32 MB
        # are mapped and unmapped on their own, as glibc's adaptive threshold ends up doing
        libc.mallopt(_M_MMAP_MAX, 0 if keep else _DEFAULT_MMAP_MAX)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1 if keep else 2 * _MAX_MMAP_THRESHOLD)
        if not keep:
            libc.mallopt(_M_MMAP_THRESHOLD, _MAX_MMAP_THRESHOLD)
            libc.malloc_trim(0)
        _heap["keep"] = keep
    return True


class ProcessPolicy:
    """What a dream does to its process, between the loop's steps and levels: share the cores
    (:func:`share_cores`, between steps) and keep freed memory while an untiled level runs
    (:func:`keep_freed_memory`), giving it back when the dream ends. The loop itself stays
    pure: it calls these hooks where they are given (the job runner and ``dream()`` give this
    one); pixels do not depend on any of it."""

    def level(self, tiled: bool) -> None:
        keep_freed_memory(keep=not tiled)  # fast on one shape, lean when tiled

    def step(self) -> None:
        share_cores()

    def end(self) -> None:
        keep_freed_memory(keep=False)  # an idle process holds no dream-sized heap


_pin = threading.local()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block on one torch thread, whatever the process's count (for a kernel whose
    rounding would otherwise follow the count); :func:`pinned` says so inside it."""
    before = torch_threads()
    set_torch_threads(1)
    _pin.depth = getattr(_pin, "depth", 0) + 1
    try:
        yield
    finally:
        _pin.depth -= 1
        set_torch_threads(before)


def pinned() -> bool:
    """Whether this thread is inside :func:`one_thread` (``thread_probe`` skips what runs
    there: it runs on one thread by design)."""
    return getattr(_pin, "depth", 0) > 0


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)
