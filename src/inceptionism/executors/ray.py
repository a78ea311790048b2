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
import dataclasses
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inceptionism.errors import ConfigError, ImageError, InceptionismError, MissingExtraError
from inceptionism.executors.base import MAX_ATTEMPTS, Done, Executor, Tally
from inceptionism.io.image import LoadedImage, from_uint8, save_image, to_uint8
from inceptionism.jobs.job import FileRef, Job, Start
from inceptionism.jobs.run import Frames, RunContext, dream_job, fit_frame
from inceptionism.models.weights import sha256_file

CLUSTER_CPUS_PER_WORKER = 4  # torch threads of one CPU worker on a cluster


SHIP_LIMIT = 256 << 20  # bytes of one file the driver sends to a worker that cannot see it


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("--executor ray (Ray)", "cluster") from None
    return ray


@dataclass(frozen=True)
class ModelKey:
    """What a worker loads: the model by name, its weights (path and hash), your own network's
    input format, and the device request. Workers are kept per key."""

    name: str
    weights_path: str | None
    weights_sha256: str | None
    weights_given: bool = False
    input_norm: str | None = None
    input_range: str | None = None
    device: str = "auto"

    @classmethod
    def of(cls, ctx: RunContext, device: str = "auto") -> ModelKey:
        model, origin = ctx.model, ctx.model.spec.origin or {}
        path = str(model.weights_path) if model.weights_path else None
        return cls(model.name, path, model.weights_sha256, ctx.weights_file is not None,
                   origin.get("input_norm"), origin.get("input_range"), device)  # fmt: skip


class StreamingFrames(Frames):
    """Video frames read forward through one open decoder per video (a worker gets frames in
    rising order), instead of decoding from the start for every frame."""

    def __init__(self) -> None:
        super().__init__()
        self._readers: dict[tuple[Any, ...], tuple[int, Iterator[np.ndarray]]] = {}
        self._recent: dict[tuple[Any, ...], np.ndarray] = {}  # the last two frames (the flow)

    def source_frame(self, start: Start, k: int) -> np.ndarray:
        assert start.source is not None
        key = (start.source.path, start.t_start, start.t_end, start.max_size)
        if (*key, k) not in self._recent:
            self._recent = {
                **{n: v for n, v in self._recent.items() if n[-1] == k - 1},
                (*key, k): self._decode(start, key, k),
            }
        return self._recent[(*key, k)]

    def _decode(self, start: Start, key: tuple[Any, ...], k: int) -> np.ndarray:
        from inceptionism.io.video import probe, read_frames

        assert start.source is not None
        pos, it = self._readers.get(key, (0, iter(())))
        if pos >= k or pos == 0:
            path = start.source.local()
            info = probe(path)
            if info.width * info.height > start.max_pixels:
                raise ImageError(f"{path}: {info.width}x{info.height} frames are over the limit "
                                 f"of {start.max_pixels} pixels")  # fmt: skip
            pos, it = 0, read_frames(path, info, start.t_start, start.t_end)
        rgb = None
        while pos < k:
            rgb = next(it, None)
            if rgb is None:
                break
            pos += 1
        if pos != k or rgb is None:
            self._readers.pop(key, None)
            raise ImageError(f"{start.source.path}: has no frame {k} in the recorded time range")
        self._readers[key] = (pos, it)
        return fit_frame(rgb, start.max_size)


class Worker:
    """A model loaded once and the jobs given to it, dreamed without writing anything: the
    plain-Python core of a Ray actor (and testable without Ray)."""

    def __init__(self, key: ModelKey, threads: int | None = None):
        from inceptionism.configure import device_for
        from inceptionism.models import get_model
        from inceptionism.models.custom import is_network, register_network
        from inceptionism.models.registry import list_models
        from inceptionism.ops.threads import fix_threads

        if threads:
            fix_threads(threads)
        if is_network(key.name) and key.name not in list_models():
            register_network(key.name, key.input_norm, key.input_range)
        device = device_for(key.device)
        weights = key.weights_path if key.weights_given else None
        if weights is not None and not Path(weights).is_file():
            raise ImageError(f"--weights {weights}: not visible to the worker on "
                             f"{socket.gethostname()}; put it on the shared folder")  # fmt: skip
        self.model = get_model(key.name, weights=weights, device=device)
        if self.model.weights_sha256 != key.weights_sha256:
            raise ImageError(f"the worker on {socket.gethostname()} has other weights for "
                             f"{key.name} than the driver (sha256 differs)")  # fmt: skip
        self.ctx = RunContext(self.model, Path(weights) if weights else None, StreamingFrames())
        self.host = socket.gethostname()
        self._shipped = Path(tempfile.mkdtemp(prefix="inceptionism-shipped-"))

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "host": self.host, "device": str(self.model.device),
                "threads": torch.get_num_threads()}  # fmt: skip

    def _visible(self, ref: FileRef) -> bool:
        path = ref.local()
        if not path.is_file():
            return False
        return ref.sha256 is None or sha256_file(path) == ref.sha256

    def _local_ref(self, ref: FileRef | None, shipped: dict[str, bytes], need: list[str],
                   video: bool = False) -> FileRef | None:  # fmt: skip
        if ref is None or self._visible(ref):
            return ref
        data = shipped.get(ref.path)
        if data is None:
            if video:
                raise ImageError(f"{ref.path}: the video is not visible to the worker on "
                                 f"{self.host}; put it on the shared folder")  # fmt: skip
            need.append(ref.path)
            return ref
        if ref.sha256 is not None and hashlib.sha256(data).hexdigest() != ref.sha256:
            raise ImageError(f"{ref.path}: the bytes sent do not match the recorded sha256")
        name = (ref.sha256 or hashlib.sha256(data).hexdigest()) + Path(ref.path).suffix
        local = self._shipped / name
        if not local.exists():
            local.write_bytes(data)
        return FileRef(ref.input, str(local), ref.sha256)

    def dream(self, recipe_text: str, octaves: int = 0,
              shipped: dict[str, bytes] | None = None) -> dict[str, Any]:  # fmt: skip
        """Dream the job a recipe describes. Returns ``{"need": [paths]}`` when an input is not
        visible here (send its bytes), ``{"error": (kind, message)}`` for a user error, else the
        result: ``rgb`` (H, W, 3) uint8, ``alpha`` (H, W) uint8 or None, ``octaves``."""
        from inceptionism.jobs.recipes import read_job

        began = time.perf_counter()
        try:
            job = read_job(json.loads(recipe_text)).job
            shipped = shipped or {}
            need: list[Any] = []
            s = job.start
            start = dataclasses.replace(
                s,
                source=self._local_ref(s.source, shipped, need, video=s.kind == "video"),
                previous=self._local_ref(s.previous, shipped, need),
            )
            guide = self._local_ref(job.guide, shipped, need)
            mask = self._local_ref(job.mask, shipped, need)
            if need:
                return {"need": need}
            job = job.replace(start=start, guide=guide, mask=mask)
            kept: list[tuple[np.ndarray, np.ndarray | None]] = []

            def octave(k: int, image: LoadedImage) -> None:
                if k <= octaves:
                    kept.append(_pack(image))

            rgb, alpha = _pack(dream_job(job, self.ctx, None, octave))
        except InceptionismError as e:
            return {"error": (type(e).__name__, str(e))}
        seconds = time.perf_counter() - began
        return {"rgb": rgb, "alpha": alpha, "octaves": kept, "device": str(self.model.device),
                "seconds": seconds, "worker": f"{self.host}:{os.getpid()}",
                "threads": torch.get_num_threads()}  # fmt: skip

    def dream_chain(self, texts: list[str], keep_from: int = 0) -> dict[str, Any]:
        """Video frames dreamed in order, each starting from the dream before it (held here in
        memory, as the 8-bit frame it is saved as). ``texts[:keep_from]`` are dreamed and
        dropped (the part of a burn-in the driver does not keep). Returns ``frames``: 8-bit RGB
        of ``texts[keep_from:]``."""
        from inceptionism.jobs.recipes import read_job

        began = time.perf_counter()
        try:
            prev: np.ndarray | None = None
            out = []
            for i, text in enumerate(texts):
                job = read_job(json.loads(text)).job
                s = job.start
                source = self._local_ref(s.source, {}, [], video=True)
                previous = s.previous
                if previous is not None and prev is not None:
                    self.ctx.frames.dreams = {previous.path: prev}
                elif previous is not None:  # a chain resumed after a frame on disk
                    need: list[str] = []
                    previous = self._local_ref(previous, {}, need)
                    if need:
                        raise ImageError(f"{need[0]}: not visible to the worker on {self.host}; "
                                         "put the frames on the shared folder")  # fmt: skip
                    self.ctx.frames.dreams = {}
                job = job.replace(start=dataclasses.replace(s, source=source, previous=previous))
                prev = _pack(dream_job(job, self.ctx))[0]
                if i >= keep_from:
                    out.append(prev)
        except InceptionismError as e:
            return {"error": (type(e).__name__, str(e))}
        seconds = time.perf_counter() - began
        worker = f"{self.host}:{os.getpid()}"
        return {"frames": out, "device": str(self.model.device), "seconds": seconds,
                "worker": worker, "threads": torch.get_num_threads()}  # fmt: skip


def executor_record(reply: dict[str, Any]) -> dict[str, Any]:
    """What a recipe written from a worker's result adds: the worker's device, and the executor
    with the worker and its torch threads (informative: pixels do not depend on the thread
    count, see numerics.py)."""
    executor = {"kind": "ray", "worker": reply["worker"], "threads": reply["threads"]}
    return {"device": reply["device"], "executor": executor}


def _pack(image: LoadedImage) -> tuple[np.ndarray, np.ndarray | None]:
    """An image as the 8-bit planes its file will hold (the conversion ``to_pil`` makes)."""
    alpha = None
    if image.alpha is not None:
        alpha = to_uint8(image.alpha[None].expand(3, -1, -1))[..., 0]
    return to_uint8(image.rgb), alpha


def _unpack(rgb: np.ndarray, alpha: np.ndarray | None) -> LoadedImage:
    """Planes from the object store are read-only views: copied before torch sees them."""
    a = None if alpha is None else torch.from_numpy(alpha.astype(np.float32) / 255.0)
    return LoadedImage(from_uint8(np.array(rgb)), a)


def write_outputs(job: Job, image: LoadedImage, octaves: list[LoadedImage],
                  recipe: dict[str, Any]) -> None:  # fmt: skip
    """What :func:`jobs.run_job` writes, from a result dreamed elsewhere: the octave files, then
    the output, each atomically with the recipe."""
    for k, im in enumerate(octaves[: len(job.octave_files)], 1):
        save_image(im, job.octave_files[k - 1], {**recipe, "octave": k})
    if job.output is not None:
        save_image(image, job.output, recipe=recipe)


_ERRORS = {c.__name__: c for c in (ImageError, ConfigError)}


def _error(kind: str, message: str) -> InceptionismError:
    error = _ERRORS.get(kind, ImageError)(message)
    return error


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

    def pool(self, ctx: RunContext, jobs: int = 1 << 30) -> list[Any]:
        """The actors for ``ctx``'s model, started (and their model loaded) once."""
        key = ModelKey.of(ctx, self.device)
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

    def worker_pids(self, ctx: RunContext) -> list[int]:
        return [i["pid"] for i in self._ray.get([a.info.remote() for a in self.pool(ctx)])]

    # running

    def run(self, jobs, ctx, on_done=None, live=None):  # type: ignore[override]
        from inceptionism.jobs.recipes import job_recipe

        self.open()
        ray = self._ray
        if not jobs:
            return []
        actors = list(self.pool(ctx, len(jobs)))
        recipes = [job_recipe(job, ctx.model, ctx.weights_file) for job in jobs]
        texts = [json.dumps(r, sort_keys=True) for r in recipes]
        queue = deque(range(len(jobs)))
        attempts = [0] * len(jobs)
        pending: dict[Any, tuple[int, Any]] = {}
        written: set[int] = set()
        results: list[Done] = []
        failed, t0 = 0, time.perf_counter()
        shipped_bytes = 0

        def submit(actor: Any, i: int, shipped: dict[str, bytes] | None = None) -> None:
            attempts[i] += 1
            octaves = len(jobs[i].octave_files)
            pending[actor.dream.remote(texts[i], octaves, shipped)] = (i, actor)

        def finish(done: Done) -> None:
            nonlocal failed
            failed += done.error is not None
            results.append(done)
            if on_done is not None:
                on_done(done, Tally(len(results), len(jobs), failed, time.perf_counter() - t0))

        try:
            for actor in actors:
                if queue:
                    submit(actor, queue.popleft())
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                i, actor = pending.pop(ref)
                try:
                    reply = ray.get(ref)
                except Exception as e:  # the actor died past its restarts, or a bug
                    if _actor_died(ray, e):
                        actors = [a for a in actors if a is not actor]
                    if attempts[i] < MAX_ATTEMPTS and actors:
                        queue.appendleft(i)
                    else:
                        finish(Done(i, jobs[i], None, ImageError(
                            f"{jobs[i].label or jobs[i].output}: failed on the workers: "
                            f"{_cause(e)}")))  # fmt: skip
                    if not actors and (queue or pending):
                        raise ImageError("every Ray worker died; finished outputs are kept, "
                                         "the same command resumes") from None  # fmt: skip
                    if queue and actors and actor in actors:
                        submit(actor, queue.popleft())
                    elif queue and actors:
                        idle = [a for a in actors if a not in {b for _, b in pending.values()}]
                        for a in idle:
                            if queue:
                                submit(a, queue.popleft())
                    continue
                if "need" in reply:
                    shipped = _read_files(reply["need"], jobs[i])
                    shipped_bytes += sum(len(b) for b in shipped.values())
                    attempts[i] -= 1  # not a failure: the same job again, with its files
                    submit(actor, i, shipped)
                    continue
                if queue:
                    submit(actor, queue.popleft())
                if "error" in reply:
                    finish(Done(i, jobs[i], None, _error(*reply["error"])))
                    continue
                image = _unpack(reply["rgb"], reply["alpha"])
                octaves = [_unpack(*o) for o in reply["octaves"]]
                recipe = {**recipes[i], **executor_record(reply)}
                if i not in written:  # a job's result arrives once; written once regardless
                    write_outputs(jobs[i], image, octaves, recipe)
                    written.add(i)
                finish(Done(i, jobs[i], image, None, reply["seconds"], reply["worker"]))
        finally:
            for ref in pending:  # Ctrl-C or an error: stop what is still running
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
        self.stats["shipped_bytes"] = float(shipped_bytes)
        return results

    def run_chains(
        self,
        chains: Sequence[tuple[Sequence[Job], int]],
        ctx: RunContext,
        on_chain: Callable[[int, dict[str, Any]], Any],
    ) -> None:
        """Run ``chains`` (each a list of frame jobs and how many of them to drop) on the
        workers, one chain a task; ``on_chain(i, reply)`` gets each chain's frames as it ends (the
        caller writes them). A chain whose worker died past its restarts is run again elsewhere."""
        from inceptionism.jobs.recipes import job_recipe

        self.open()
        ray = self._ray
        actors = list(self.pool(ctx, len(chains)))
        texts = [[json.dumps(job_recipe(j, ctx.model, ctx.weights_file)) for j in jobs]
                 for jobs, _ in chains]  # fmt: skip
        queue, attempts = deque(range(len(chains))), [0] * len(chains)
        pending: dict[Any, tuple[int, Any]] = {}

        def submit(actor: Any) -> None:
            if queue:
                i = queue.popleft()
                attempts[i] += 1
                pending[actor.dream_chain.remote(texts[i], chains[i][1])] = (i, actor)

        try:
            for actor in actors:
                submit(actor)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                i, actor = pending.pop(ready[0])
                try:
                    reply = ray.get(ready[0])
                except Exception as e:
                    if _actor_died(ray, e):
                        actors = [a for a in actors if a is not actor]
                    if attempts[i] >= MAX_ATTEMPTS or not actors:
                        raise ImageError(
                            f"a chunk of frames failed on the workers: {_cause(e)}; finished "
                            "frames are kept, the same command resumes"
                        ) from None
                    queue.appendleft(i)
                    busy = {b for _, b in pending.values()}
                    for a in actors:
                        if a not in busy:
                            submit(a)
                    continue
                submit(actor)
                if "error" in reply:
                    raise _error(*reply["error"])
                on_chain(i, reply)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)


def quiet_ray_logs() -> None:
    """Ray's start-up notices (token authentication, the local instance) are warnings and info
    lines on its ``ray`` logger, which Ray sets up at import with its own stderr handler; they
    would land between our progress lines. When we start or join Ray ourselves, its logger
    shows errors only."""
    logging.getLogger("ray").setLevel(logging.ERROR)


def _read_files(paths: list[str], job: Job) -> dict[str, bytes]:
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
