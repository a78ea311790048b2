"""Thread count and OpenMP wait policy (configured before torch loads; no timing here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from inceptionism import threads


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


def test_importing_the_package_first_makes_waiting_threads_sleep():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, inceptionism, torch; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE"


_FAULTS = """
import resource, sys, torch, inceptionism
from inceptionism.threads import keep_freed_memory
managed = keep_freed_memory(sys.argv[1] == "keep")
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
counts = []
for _ in range(5):  # a 64 MB buffer made and freed, five times: the fewest faults of one
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
