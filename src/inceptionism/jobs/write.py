"""The one writer of a dream's files: its picture with its recipe, its octave pictures with
theirs, a contact sheet with its index. Every path that puts a dream on disk (a local run, a
result from a Ray worker, chunked video, sweeps and atlases, the studio, ComfyUI) calls these,
so each file is written the same way: atomically (a complete file or none), PNG with the recipe
as JSON in a text chunk.

Observers (:func:`watching`) are told of each file once it is in place; tests use them to count
writes or to stop a run between two files, as a crash or Ctrl-C would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from inceptionism.io.image import LoadedImage, save_image
from inceptionism.jobs.job import Job

Written = Callable[[Path, dict[str, Any]], Any]
_observers: list[Written] = []


@contextlib.contextmanager
def watching(observer: Written) -> Iterator[None]:
    """Call ``observer(path, recipe)`` after each file this process writes, while the block
    runs. An exception it raises propagates to the run (the file is already complete)."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def write_image(path: str | Path, image: LoadedImage | Image.Image, recipe: dict[str, Any]) -> Path:
    """``image`` at ``path`` with ``recipe`` (PNG keeps it; JPEG and WebP carry none)."""
    written = save_image(image, path, recipe=recipe)
    for observer in list(_observers):
        observer(Path(path), recipe)
    return written


def write_octave(job: Job, k: int, image: LoadedImage, recipe: dict[str, Any]) -> None:
    """Octave ``k``'s picture, if the job keeps that octave: its recipe is the dream's with the
    octave's number (replaying it re-creates that octave's picture)."""
    if 1 <= k <= len(job.octave_files):
        write_image(job.octave_files[k - 1], image, {**recipe, "octave": k})


def write_dream(
    job: Job,
    image: LoadedImage,
    recipe: dict[str, Any],
    octaves: Sequence[LoadedImage] = (),
) -> None:
    """A finished job's files: its octave pictures first, then its output (when it has one).
    An octave file re-created on its own (``job.octave``) records its octave number."""
    for k, octave in enumerate(octaves, 1):
        write_octave(job, k, octave, recipe)
    if job.output is not None:
        if job.octave is not None:
            recipe = {**recipe, "octave": job.octave}
        write_image(job.output, image, recipe)


def write_sheet(path: str | Path, sheet: Image.Image, info: dict[str, Any], model: str) -> Path:
    """A contact sheet (sweep, atlas, channels): its recipe is the sheet's index, the cells'
    own recipes being in their files."""
    return write_image(path, sheet, {"sheet": info, "model": model})
