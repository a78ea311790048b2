"""Planning a run's files before any work: which images go in, which files come out, and every
refusal (an input about to be overwritten, an existing output without --force, two inputs
writing one file, an output folder that cannot be written)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImageError
from .image import INPUT_SUFFIXES, OUTPUT_FORMATS, output_format, read_recipe
from .samples import is_sample, sample_path

_IMAGE_SUFFIXES = {*INPUT_SUFFIXES, *OUTPUT_FORMATS, ".gif", ".avif", ".heic", ".jxl"}


@dataclass
class Job:
    label: str  # what the user wrote (a path or sample:NAME), or the start ("noise")
    src: Path | None  # None: no photo, the dream starts from noise or grey
    dst: Path
    octave_files: list[Path] = field(default_factory=list)  # dst.octave1.png, ...


def expand_inputs(inputs: tuple[str, ...]) -> tuple[list[tuple[str, Path]], list[Path], bool]:
    """[(label, path)], the input folders, and whether the run is a batch."""
    found: list[tuple[str, Path]] = []
    folders: list[Path] = []
    for text in inputs:
        if is_sample(text):
            found.append((text, sample_path(text)))
            continue
        path = Path(text)
        if path.is_dir():
            folders.append(path)
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
            )
            if not images:
                raise ImageError(f"{path}: folder holds no images ({', '.join(INPUT_SUFFIXES)})")
            found += [(str(p), p) for p in images]
        elif not path.exists():
            raise ImageError(f"{path}: no such file")
        else:
            found.append((text, path))
    return found, folders, len(inputs) > 1 or bool(folders)


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def octave_file(dst: Path, k: int) -> Path:
    return dst.with_name(f"{dst.stem}.octave{k}{dst.suffix}")


def _check_writable(path: Path) -> None:
    """The first existing ancestor of ``path``'s folder must be a folder we may write into."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ImageError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"cannot write {path}: no permission to write in {folder}")


def _is_ours(path: Path) -> bool:
    """A file this tool wrote (it carries a recipe): a by-product of an earlier run."""
    try:
        read_recipe(path)
        return True
    except ImageError:
        return False


def plan_jobs(
    inputs: tuple[str, ...],
    out: str,
    fmt_suffix: str,
    octaves: int,
    save_octaves: bool,
    force: bool,
    start: str = "noise",
    protected: tuple[Path, ...] = (),
) -> tuple[list[Job], list[str]]:
    """The jobs to run, and notes on inputs skipped because their output exists (batches).

    One input: ``out`` is the output file (or a folder to put ``<stem><suffix>`` in). Several
    inputs or a folder: ``out`` is a folder. No input: one dream from ``start`` (noise, grey).
    ``protected`` are other files the run reads (guide, mask): never written either.
    Raises :class:`ImageError` for every refusal.
    """
    sources, folders, batch = expand_inputs(inputs)
    out_path = Path(out)
    as_folder = batch or out_path.is_dir() or out.endswith(("/", os.sep))
    if not sources:
        jobs = [Job(start, None, out_path / f"{start}{fmt_suffix}" if as_folder else out_path)]
        if not as_folder:
            output_format(out_path)
    elif not as_folder:
        output_format(out_path)
        jobs = [Job(sources[0][0], sources[0][1], out_path)]
    else:
        if out_path.exists() and not out_path.is_dir():
            raise ImageError(f"{out_path}: exists and is not a folder")
        if not out_path.exists() and out_path.suffix.lower() in _IMAGE_SUFFIXES:
            raise ImageError(f"{out_path}: several inputs need an output folder, not a file name")
        for folder in folders:
            if same_file(folder, out_path):
                raise ImageError(f"{out_path}: is an input folder; write the dreams elsewhere")
        jobs = [Job(label, src, out_path / (src.stem + fmt_suffix)) for label, src in sources]
    if save_octaves:
        for job in jobs:
            job.octave_files = [octave_file(job.dst, k) for k in range(1, octaves)]

    writers: dict[Path, Path] = {}
    for job in jobs:
        for path in (job.dst, *job.octave_files):
            key = Path(os.path.abspath(path))
            if key in writers:
                raise ImageError(f"{writers[key]} and {job.src} would both be written to {path}")
            writers[key] = job.src
            if any(same_file(src, path) for src in [*(p for _, p in sources), *protected]):
                raise ImageError(f"{path} is an input; refusing to overwrite it, even with --force")
            _check_writable(path)

    todo, notes = [], []
    for job in jobs:
        blocked = []
        if job.dst.exists() and not force:
            blocked.append(job.dst)
        blocked += [p for p in job.octave_files if p.exists() and not force and not _is_ours(p)]
        if not blocked:
            todo.append(job)
        elif not batch:
            raise ImageError(f"{blocked[0]} exists; pass --force to overwrite it")
        else:
            notes.append(f"skip {job.label}: {blocked[0]} exists")
    return todo, notes
