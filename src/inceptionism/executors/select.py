"""``--executor`` text (local, ray, ray:N, ray:auto, ray://HOST:PORT) to an executor."""

from __future__ import annotations

from dataclasses import dataclass

from inceptionism.errors import ConfigError
from inceptionism.executors.base import Executor, LocalExecutor
from inceptionism.executors.ray import RayExecutor


@dataclass(frozen=True)
class ExecutorSpec:
    """A parsed --executor: ``kind`` local or ray; for ray the ``address`` (None: start a local
    instance) and the number of local ``workers`` (None: one per core)."""

    kind: str
    address: str | None = None
    workers: int | None = None
    text: str = "local"


def parse_executor(text: str) -> ExecutorSpec:
    """``local``, ``ray``, ``ray:N``, ``ray:auto`` or ``ray://HOST:PORT``; anything else is one
    line of error."""
    t = text.strip()
    if t == "local":
        return ExecutorSpec("local", text=t)
    if t == "ray":
        return ExecutorSpec("ray", text=t)
    if t == "ray:auto":
        return ExecutorSpec("ray", "auto", text=t)
    if t.startswith("ray://"):
        host, sep, port = t[len("ray://") :].rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--executor {text!r}: expected ray://HOST:PORT (e.g. "
                              "ray://10.0.0.1:10001)")  # fmt: skip
        return ExecutorSpec("ray", t, text=t)
    if t.startswith("ray:") and t[4:].isdigit() and 0 < int(t[4:]) <= 1024:
        return ExecutorSpec("ray", workers=int(t[4:]), text=t)
    raise ConfigError(
        f"--executor {text!r}: expected local, ray, ray:N, ray:auto or ray://HOST:PORT"
    )


def make_executor(text: str | ExecutorSpec, device: str = "auto") -> Executor:
    spec = text if isinstance(text, ExecutorSpec) else parse_executor(text)
    if spec.kind == "local":
        return LocalExecutor()
    return RayExecutor(spec.address, spec.workers, device=device, text=spec.text)
