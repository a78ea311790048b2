"""Thread count and OpenMP wait policy (configured before torch loads; no timing here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from inceptionism.ops import threads


def test_explicit_threads_win_and_reach_torch(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    before = torch.get_num_threads()
    try:
        assert threads.configure_threads(1) == 1
        assert os.environ["OMP_NUM_THREADS"] == "1" and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_defaults_follow_the_environment_then_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv(threads.THREADS_ENV, "3")
    assert threads.default_threads() == 3
    monkeypatch.delenv(threads.THREADS_ENV)
    assert threads.default_threads() == threads.available_cores() >= 1


def test_bad_values_are_refused():
    with pytest.raises(ValueError):
        threads.configure_threads(0)
    with pytest.raises(ValueError):
        threads.configure_threads(2, wait_policy="spin")


def test_importing_the_package_first_makes_waiting_threads_spin_briefly():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, inceptionism, torch; e = os.environ.get; "
    code += "print(e('GOMP_SPINCOUNT'), e('OMP_WAIT_POLICY'))"

    def run(**extra):
        out = subprocess.run([sys.executable, "-c", code], env={**env, **extra},
                             capture_output=True, text=True, check=True)  # fmt: skip
        return out.stdout.split()

    assert run() == [threads.SPIN_COUNT, "None"]
    assert run(OMP_WAIT_POLICY="PASSIVE") == ["None", "PASSIVE"]  # the user's own setting wins
    assert run(GOMP_SPINCOUNT="5") == ["5", "None"]


class _Machine:
    """A scripted /proc/stat and clock (others' CPU use per second, this process's own), given
    to a fresh CoreShare put in place of the process's (``threads.sharing``)."""

    def __init__(self, monkeypatch, cores=2, user_threads=False):
        self.t, self.busy, self.own, self.cores = 0.0, 0.0, 0.0, cores
        share = threads.CoreShare(sample=lambda: (self.busy, self.own, self.cores),
                                  clock=lambda: self.t, cores=lambda: cores,
                                  user_threads=user_threads)  # fmt: skip
        monkeypatch.setattr(threads, "sharing", share)

    def run(self, seconds, others, ours):
        self.t += seconds
        self.busy += (others + ours) * seconds
        self.own += ours * seconds
        return threads.share_cores()


def test_threads_follow_the_cores_other_processes_leave_free(monkeypatch):
    before = torch.get_num_threads()
    unset = ("OMP_NUM_THREADS", threads.THREADS_ENV)  # configure_threads() writes the environment
    env = {k: v for k, v in os.environ.items() if k not in unset}
    monkeypatch.setattr(threads.os, "environ", env)
    try:
        torch.set_num_threads(2)
        m = _Machine(monkeypatch)
        assert m.run(0, 0, 0) is None  # first sample
        assert m.run(0.25, 0, 2) is None  # too soon to measure again
        assert m.run(1.0, 0.0, 2) is None and torch.get_num_threads() == 2  # quiet: all
        assert m.run(1.0, 0.8, 1.2) == 1 and torch.get_num_threads() == 1  # a busy neighbour
        assert m.run(1.0, 1.0, 1.0) is None  # still busy: stays at one
        assert m.run(1.0, 0.1, 1.0) == 2 and torch.get_num_threads() == 2  # it left
        assert m.run(1.0, 1.0, 1.0) == 1
        threads.configure_threads()  # the next command's default count (the CLI's load_run)
        assert m.run(1.0, 1.0, 1.0) == 1  # still shared: busy again, one thread again
    finally:
        torch.set_num_threads(before)


def test_a_count_the_user_chose_is_never_changed(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads.os, "environ", dict(os.environ))  # configure_threads writes it
    try:
        m = _Machine(monkeypatch)
        threads.configure_threads(2)  # --threads 2
        assert m.run(0, 0, 0) is None and m.run(1.0, 1.5, 0.5) is None
        assert torch.get_num_threads() == 2
        m = _Machine(monkeypatch)
        torch.set_num_threads(2)
        m.run(0, 0, 0)
        torch.set_num_threads(2 if torch.get_num_threads() != 2 else 1)  # set by someone else
        chosen = torch.get_num_threads()
        assert m.run(1.0, 1.5, 0.5) is None and torch.get_num_threads() == chosen
        m = _Machine(monkeypatch, cores=2)
        m.cores = 64  # /proc/stat counts the host's CPUs (a container): nothing to go by
        assert m.run(0, 0, 0) is None and m.run(1.0, 1.5, 0.5) is None
        m = _Machine(monkeypatch, user_threads=True)  # $OMP_NUM_THREADS was set
        assert m.run(0, 0, 0) is None and m.run(1.0, 1.5, 0.5) is None
        m = _Machine(monkeypatch)
        threads.fix_threads(2)  # a Ray actor's share, given by the executor
        assert m.run(0, 0, 0) is None and m.run(1.0, 1.5, 0.5) is None
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


_FAULTS = """
import resource, sys, torch
import inceptionism.models  # what a dream has loaded (the heap's layout depends on it)
from inceptionism.ops.threads import keep_freed_memory
if sys.argv[1] == "dream":  # a dream keeps memory on its untiled level, gives it back after
    from inceptionism import DreamConfig, dream_tensor, get_model
    from inceptionism.ops.threads import ProcessPolicy
    dream_tensor(torch.rand(1, 3, 64, 64), get_model("efficientnet_lite0"),
                 DreamConfig(steps=1, octaves=1, tile=0), hooks=ProcessPolicy())
    managed = True
else:
    managed = keep_freed_memory(sys.argv[1] == "keep")
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
# A 64 MB buffer made and freed, 24 times: the fewest faults of one. With kept memory the heap
# serves a buffer from freed ones within a few rounds (the first may need fresh pages: an
# aligned request is a little larger than the chunk just freed); released, every one faults.
for _ in range(24):
    before = faults()
    torch.ones(64 * 2**20 // 4)
    counts.append(faults() - before)
print(managed, min(counts))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_freed_buffers_are_kept_for_reuse_and_released_on_request():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop(threads.MALLOC_ENV, None)

    def faults(mode, **extra):
        out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env={**env, **extra},
                             capture_output=True, text=True, check=True)  # fmt: skip
        managed, per_buffer = out.stdout.split()
        return managed == "True", float(per_buffer)

    pages = 64 * 2**20 / os.sysconf("SC_PAGE_SIZE")
    managed, kept = faults("keep")
    assert managed and kept < 0.05 * pages  # the freed 64 MB served the next buffer
    managed, released = faults("release")
    assert managed and released > 0.5 * pages  # mapped afresh: every page faulted in again
    managed, system = faults("keep", INCEPTIONISM_MALLOC="system")
    assert not managed and system > 0.5 * pages  # glibc's own behaviour, untouched
    _, after = faults("dream")
    assert after > 0.5 * pages  # the dream gave its heap back when it ended
