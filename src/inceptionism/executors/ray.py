"""Executors: where a list of jobs is dreamed. :class:`LocalExecutor` runs them one after the
other in this process (the default, today's behaviour); :class:`RayExecutor` hands them to Ray
actors, on this machine or on a cluster, and writes what comes back.

What travels and what stays:

* A job travels as its recipe (JSON text: paths, hashes, the whole config), never as decoded
  pixels. A worker reads its inputs from the recorded paths: a **shared filesystem is assumed**
  (the same paths on every node). When a worker cannot see a photo, guide or mask at its path,
  or the file there has another hash, it says so and the driver sends that file's bytes (checked
  against the recorded sha256 on arrival); a video source is never shipped (too big: put it on
  the shared folder).
* A worker is an actor that loads the model once (keyed by model name, weights path and hash)
  and keeps it for every job it gets; on a GPU when the cluster has them, else on CPU with torch
  threads split so the workers of one machine do not oversubscribe its cores.
* The result (8-bit RGB, alpha, and octave images if asked) comes back to the driver, which
  writes it atomically with the job's recipe, as the local executor does; the recipe records
  ``executor: ray`` and the worker's device. Randomness comes from the job (its config's seed),
  so a job gives the same pixels on any worker, and the same as locally on the same kind of
  device.
* Faults: an actor whose process dies is restarted and its task retried by Ray
  (``max_restarts``/``max_task_retries``); past that the driver gives the job to another
  worker. Each output is written once, by the driver, when its result arrives; an interrupted
  driver leaves only complete outputs (the writes are atomic), and a re-run skips them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inceptionism.errors import ConfigError, ImageError, MissingExtraError
from inceptionism.executors.base import MAX_ATTEMPTS, Done, Executor, Live, OnDone, Tally
from inceptionism.executors.worker import Chain, Dreamed, Failed, ModelKey, NeedFiles, Worker
from inceptionism.jobs.job import Job
from inceptionism.jobs.recipes import job_recipe
from inceptionism.jobs.run import RunContext
from inceptionism.jobs.write import write_dream

CLUSTER_CPUS_PER_WORKER = 4  # torch threads of one CPU worker on a cluster


SHIP_LIMIT = 256 << 20  # bytes of one file the driver sends to a worker that cannot see it


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--executor ray (Ray)", "cluster") from None
    return ray


class RayExecutor(Executor):
    """Jobs on Ray actors: a local instance (``address`` None) with ``workers`` workers (default
    one per core), or a running cluster (``auto`` or ``ray://HOST:PORT``)."""

    name = "ray"
    parallel = True

    def __init__(self, address: str | None = None, workers: int | None = None,
                 device: str = "auto", text: str = "ray",
                 connect_timeout: float = 5.0):  # fmt: skip
        self.address, self.workers, self.device, self.text = address, workers, device, text
        self.connect_timeout = connect_timeout
        self._ray: Any = None
        self._started = False
        self._pools: dict[ModelKey, list[Any]] = {}
        self.stats: dict[str, float] = {}

    # connecting

    def _preflight(self) -> None:
        """A ray:// address that nothing answers on fails in seconds, not after Ray's retries."""
        if self.address is None or not self.address.startswith("ray://"):
            return
        host, _, port = self.address[len("ray://") :].rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), self.connect_timeout).close()
        except OSError as e:
            reason = e.strerror or type(e).__name__
            raise ConfigError(f"--executor {self.text}: no Ray cluster answers at {host}:{port} "
                              f"({reason})") from None  # fmt: skip

    def open(self) -> RayExecutor:
        if self._ray is not None:
            return self
        ray = import_ray()
        self._preflight()
        began = time.perf_counter()
        if ray.is_initialized():  # the caller's own Ray session (tests, notebooks): use it
            self._ray = ray
            self.stats["connect_s"] = 0.0
            return self
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}  # fmt: skip
        quiet_ray_logs()
        try:
            if self.address is None:
                ray.init(address="local", num_cpus=_cores(), _node_ip_address="127.0.0.1",
                         **kwargs)  # fmt: skip
            else:
                ray.init(address=self.address, **kwargs)
        except Exception as e:  # Ray raises ConnectionError, ValueError, RuntimeError, ...
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ConfigError(
                f"--executor {self.text}: cannot start or join Ray ({first})"
            ) from None
        self._ray, self._started = ray, True
        self.stats["connect_s"] = time.perf_counter() - began
        return self

    def close(self) -> None:
        ray = self._ray
        if ray is None:
            return
        for pool in self._pools.values():
            for actor in pool:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        self._pools.clear()
        if self._started:
            with contextlib.suppress(Exception):
                ray.shutdown()
        self._ray, self._started = None, False

    # workers

    def _plan(self, jobs: int) -> tuple[int, float, float, int]:
        """(workers, CPUs each, GPUs each, torch threads each) for this cluster."""
        resources = self._ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        if self.device == "cpu":
            gpus = 0
        if gpus:
            n = min(self.workers or gpus, gpus)
            return max(1, min(n, jobs)), 1.0, 1.0, 1
        if self.address is None:  # this machine: split its cores between the workers
            n = self.workers or max(1, int(cpus))
            share = cpus / n
        else:
            share = min(CLUSTER_CPUS_PER_WORKER, cpus)
            n = self.workers or max(1, int(cpus // share))
        return max(1, min(n, jobs)), share, 0.0, max(1, int(share))

    def pool(self, context: RunContext, jobs: int = 1 << 30) -> list[Any]:
        """The actors for ``context``'s model, started (and their model loaded) once."""
        key = ModelKey.of(context, self.device)
        if key not in self._pools:
            ray = self._ray
            n, cpus, gpus, threads = self._plan(jobs)
            began = time.perf_counter()
            cls = ray.remote(Worker).options(
                num_cpus=cpus, num_gpus=gpus, max_restarts=MAX_ATTEMPTS,
                max_task_retries=MAX_ATTEMPTS,
            )  # fmt: skip
            actors = [cls.remote(key, threads) for _ in range(n)]
            try:
                self.infos = ray.get([a.info.remote() for a in actors])
            except Exception as e:
                for a in actors:
                    with contextlib.suppress(Exception):
                        ray.kill(a)
                raise ConfigError(f"--executor {self.text}: workers could not load "
                                  f"{key.name}: {_cause(e)}") from None  # fmt: skip
            self.stats["workers_start_s"] = time.perf_counter() - began
            self._pools[key] = actors
        return self._pools[key]

    def worker_pids(self, context: RunContext) -> list[int]:
        return [i.pid for i in self._ray.get([a.info.remote() for a in self.pool(context)])]

    # running

    def _drive(
        self,
        actors: list[Any],
        count: int,
        call: Callable[[Any, int, dict[str, bytes] | None], Any],
        on_reply: Callable[[int, Any], Any],
        give_up: Callable[[int, str], Any],
        ship: Callable[[int, NeedFiles], dict[str, bytes]] | None = None,
    ) -> None:
        """Tasks ``0..count-1`` on ``actors``, one per actor at a time, as ``call(actor, i,
        shipped)`` (an object ref). Each reply goes to ``on_reply(i, reply)`` after the actor has
        its next task; a :class:`NeedFiles` reply is answered with ``ship(i, reply)``'s bytes and
        the task sent again (not an attempt). A task whose worker failed (the actor died past
        Ray's restarts, or a bug) goes to another worker, up to ``MAX_ATTEMPTS`` times, then to
        ``give_up(i, cause)``. Whatever still runs when this returns or raises (Ctrl-C) is
        cancelled."""
        ray = self._ray
        queue, attempts = deque(range(count)), [0] * count
        pending: dict[Any, tuple[int, Any]] = {}

        def submit(actor: Any, i: int, shipped: dict[str, bytes] | None = None) -> None:
            attempts[i] += shipped is None
            pending[call(actor, i, shipped)] = (i, actor)

        def fill() -> None:
            busy = {id(a) for _, a in pending.values()}
            for actor in actors:
                if queue and id(actor) not in busy:
                    submit(actor, queue.popleft())

        try:
            fill()
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                i, actor = pending.pop(ready[0])
                try:
                    reply = ray.get(ready[0])
                except Exception as e:  # the actor died past its restarts, or a bug
                    if _actor_died(ray, e):
                        actors = [a for a in actors if a is not actor]
                    if attempts[i] < MAX_ATTEMPTS and actors:
                        queue.appendleft(i)
                    else:
                        give_up(i, _cause(e))
                    if not actors and (queue or pending):
                        raise ImageError("every Ray worker died; finished outputs are kept, "
                                         "the same command resumes") from None  # fmt: skip
                    fill()
                    continue
                if isinstance(reply, NeedFiles) and ship is not None:
                    submit(actor, i, ship(i, reply))
                    continue
                fill()
                on_reply(i, reply)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def run(
        self,
        jobs: Sequence[Job],
        context: RunContext,
        on_done: OnDone | None = None,
        live: Live | None = None,
    ) -> list[Done]:
        self.open()
        if not jobs:
            return []
        actors = list(self.pool(context, len(jobs)))
        recipes = [job_recipe(job, context.model, context.weights_file) for job in jobs]
        texts = [json.dumps(r, sort_keys=True) for r in recipes]
        written: set[int] = set()
        results: list[Done] = []
        failed, t0 = 0, time.perf_counter()
        shipped_bytes = 0

        def finish(done: Done) -> None:
            nonlocal failed
            failed += done.error is not None
            results.append(done)
            if on_done is not None:
                on_done(done, Tally(len(results), len(jobs), failed, time.perf_counter() - t0))

        def call(actor: Any, i: int, shipped: dict[str, bytes] | None) -> Any:
            return actor.dream.remote(texts[i], len(jobs[i].octave_files), shipped)

        def ship(i: int, need: NeedFiles) -> dict[str, bytes]:
            nonlocal shipped_bytes
            shipped = _read_files(need.paths, jobs[i])
            shipped_bytes += sum(len(b) for b in shipped.values())
            return shipped

        def on_reply(i: int, reply: Dreamed | Failed) -> None:
            if isinstance(reply, Failed):
                finish(Done(i, jobs[i], None, reply.error()))
                return
            image = reply.planes.image()
            if i not in written:  # a job's result arrives once; written once regardless
                octaves = [o.image() for o in reply.octaves]
                write_dream(jobs[i], image, {**recipes[i], **reply.where.record()}, octaves)
                written.add(i)
            finish(Done(i, jobs[i], image, None, reply.where.seconds, reply.where.worker))

        def give_up(i: int, cause: str) -> None:
            label = jobs[i].label or jobs[i].output
            finish(Done(i, jobs[i], None, ImageError(f"{label}: failed on the workers: {cause}")))

        self._drive(actors, len(jobs), call, on_reply, give_up, ship)
        self.stats["shipped_bytes"] = float(shipped_bytes)
        return results

    def run_chains(
        self,
        chains: Sequence[tuple[Sequence[Job], int]],
        context: RunContext,
        on_chain: Callable[[int, Chain], Any],
    ) -> None:
        """Run ``chains`` (each a list of frame jobs and how many of them to drop) on the
        workers, one chain a task; ``on_chain(i, chain)`` gets each chain's frames as it ends
        (the caller writes them). A chain whose worker died past its restarts is run again
        elsewhere; a user error stops the run."""
        self.open()
        actors = list(self.pool(context, len(chains)))
        texts = [[json.dumps(job_recipe(j, context.model, context.weights_file)) for j in jobs]
                 for jobs, _ in chains]  # fmt: skip

        def call(actor: Any, i: int, _shipped: dict[str, bytes] | None) -> Any:
            return actor.dream_chain.remote(texts[i], chains[i][1])

        def on_reply(i: int, reply: Chain | Failed) -> None:
            if isinstance(reply, Failed):
                raise reply.error()
            on_chain(i, reply)

        def give_up(i: int, cause: str) -> None:
            raise ImageError(f"a chunk of frames failed on the workers: {cause}; finished "
                             "frames are kept, the same command resumes")  # fmt: skip

        self._drive(actors, len(chains), call, on_reply, give_up)


def quiet_ray_logs() -> None:
    """Ray's start-up notices (token authentication, the local instance) are warnings and info
    lines on its ``ray`` logger, which Ray sets up at import with its own stderr handler; they
    would land between our progress lines. When we start or join Ray ourselves, its logger
    shows errors only."""
    logging.getLogger("ray").setLevel(logging.ERROR)


def _read_files(paths: Sequence[str], job: Job) -> dict[str, bytes]:
    """The bytes of a job's inputs a worker cannot see (only files the job names)."""
    allowed = {str(p) for p in job.reads}
    out = {}
    for p in paths:
        if p not in allowed:
            raise ImageError(f"a worker asked for {p}, which the job does not read")
        size = Path(p).stat().st_size
        if size > SHIP_LIMIT:
            raise ImageError(f"{p}: {size} bytes is too large to send to a worker that cannot "
                             "see it; put it on the shared folder")  # fmt: skip
        out[p] = Path(p).read_bytes()
    return out


def _actor_died(ray: Any, e: Exception) -> bool:
    exc = getattr(ray, "exceptions", None)
    kinds = tuple(getattr(exc, n) for n in ("ActorDiedError", "RayActorError") if hasattr(exc, n))
    return bool(kinds) and isinstance(e, kinds)


def _cause(e: BaseException) -> str:
    cause = getattr(e, "cause", None) or e
    text = str(cause).strip().splitlines()
    return text[-1] if text else type(cause).__name__


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
