"""A worker: a model loaded once and the jobs given to it, dreamed without writing anything,
each answered with a typed reply. The plain-Python core of a Ray actor (``executors/ray.py``),
testable without Ray: it reads a job from its recipe text, fetches inputs it cannot see from
the bytes the driver sends, and hands back 8-bit planes (what the files will hold) with where
and how it ran."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inceptionism.configure import device_for
from inceptionism.errors import ConfigError, ImageError, InceptionismError
from inceptionism.io.image import LoadedImage, from_uint8, to_uint8
from inceptionism.io.video import probe, read_frames
from inceptionism.jobs.job import FileRef, Start
from inceptionism.jobs.recipes import read_job
from inceptionism.jobs.run import Frames, RunContext, dream_job, fit_frame
from inceptionism.models import get_model
from inceptionism.models.custom import is_network, register_network
from inceptionism.models.registry import list_models
from inceptionism.models.weights import sha256_file
from inceptionism.ops.threads import fix_threads


@dataclass(frozen=True)
class Planes:
    """An image as the 8-bit planes its file will hold: RGB (H, W, 3), alpha (H, W) or None."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None

    def image(self) -> LoadedImage:
        """Planes from the object store are read-only views: copied before torch sees them."""
        a = None if self.alpha is None else torch.from_numpy(self.alpha.astype(np.float32) / 255)
        return LoadedImage(from_uint8(np.array(self.rgb)), a)


def _pack(image: LoadedImage) -> Planes:
    """The conversion ``to_pil`` makes when the file is written."""
    alpha = None
    if image.alpha is not None:
        alpha = to_uint8(image.alpha[None].expand(3, -1, -1))[..., 0]
    return Planes(to_uint8(image.rgb), alpha)


@dataclass(frozen=True)
class Where:
    """Where and how a reply was made: the worker's device, ``host:pid``, torch threads, and the
    seconds it took there."""

    device: str
    worker: str
    threads: int
    seconds: float

    def record(self) -> dict[str, Any]:
        """What a recipe written from this result adds: the device, and the executor with the
        worker and its threads (informative: pixels do not depend on the thread count)."""
        executor = {"kind": "ray", "worker": self.worker, "threads": self.threads}
        return {"device": self.device, "executor": executor}


@dataclass(frozen=True)
class WorkerInfo:
    pid: int
    host: str
    device: str
    threads: int


@dataclass(frozen=True)
class Dreamed:
    """One job's result: its picture and the octave pictures asked for."""

    planes: Planes
    octaves: tuple[Planes, ...]
    where: Where


@dataclass(frozen=True)
class Chain:
    """A chain of video frames' results, in order."""

    frames: tuple[np.ndarray, ...]
    where: Where


@dataclass(frozen=True)
class NeedFiles:
    """The job's inputs this worker cannot see: the driver sends their bytes and asks again."""

    paths: tuple[str, ...]


_ERRORS = {c.__name__: c for c in (ImageError, ConfigError)}


@dataclass(frozen=True)
class Failed:
    """A user error the job raised on the worker (a bad input, a limit), by kind and message."""

    kind: str
    message: str

    def error(self) -> InceptionismError:
        return _ERRORS.get(self.kind, ImageError)(self.message)


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
    def of(cls, context: RunContext, device: str = "auto") -> ModelKey:
        model, origin = context.model, context.model.spec.origin or {}
        path = str(model.weights_path) if model.weights_path else None
        return cls(model.name, path, model.weights_sha256, context.weights_file is not None,
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
        self.context = RunContext(self.model, Path(weights) if weights else None, StreamingFrames())
        self.host = socket.gethostname()
        self._shipped = Path(tempfile.mkdtemp(prefix="inceptionism-shipped-"))

    def info(self) -> WorkerInfo:
        return WorkerInfo(os.getpid(), self.host, str(self.model.device),
                          torch.get_num_threads())  # fmt: skip

    def _where(self, began: float) -> Where:
        return Where(str(self.model.device), f"{self.host}:{os.getpid()}",
                     torch.get_num_threads(), time.perf_counter() - began)  # fmt: skip

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
              shipped: dict[str, bytes] | None = None) -> Dreamed | NeedFiles | Failed:  # fmt: skip
        """Dream the job a recipe describes: :class:`NeedFiles` when an input is not visible
        here (send its bytes), :class:`Failed` for a user error, else :class:`Dreamed`."""
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
                return NeedFiles(tuple(need))
            job = job.replace(start=start, guide=guide, mask=mask)
            kept: list[Planes] = []

            def octave(k: int, image: LoadedImage) -> None:
                if k <= octaves:
                    kept.append(_pack(image))

            planes = _pack(dream_job(job, self.context, None, octave))
        except InceptionismError as e:
            return Failed(type(e).__name__, str(e))
        return Dreamed(planes, tuple(kept), self._where(began))

    def dream_chain(self, texts: list[str], keep_from: int = 0) -> Chain | Failed:
        """Video frames dreamed in order, each starting from the dream before it (held here in
        memory, as the 8-bit frame it is saved as). ``texts[:keep_from]`` are dreamed and
        dropped (the part of a burn-in the driver does not keep). The :class:`Chain` holds the
        8-bit RGB of ``texts[keep_from:]``."""
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
                    self.context.frames.dreams = {previous.path: prev}
                elif previous is not None:  # a chain resumed after a frame on disk
                    need: list[str] = []
                    previous = self._local_ref(previous, {}, need)
                    if need:
                        raise ImageError(f"{need[0]}: not visible to the worker on {self.host}; "
                                         "put the frames on the shared folder")  # fmt: skip
                    self.context.frames.dreams = {}
                job = job.replace(start=dataclasses.replace(s, source=source, previous=previous))
                prev = _pack(dream_job(job, self.context)).rgb
                if i >= keep_from:
                    out.append(prev)
        except InceptionismError as e:
            return Failed(type(e).__name__, str(e))
        return Chain(tuple(out), self._where(began))
