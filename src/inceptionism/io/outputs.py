"""Planning a run's files before any work: which images go in, which files come out, and every
refusal (an input about to be overwritten, an existing output without --force, two jobs writing
one file, an output folder that cannot be written).

Every path is compared the way the final rename will see it: made absolute, its folders'
symlinks resolved and ``..`` taken after the folders that do not exist yet
(``photos/new/../in.png`` *is* ``photos/in.png``), and an existing file also by its inode (hard
links). The planned paths are the resolved ones, so what was checked is what is written.

An output named by a symlink, dangling or not, is an existing file: refused without ``--force``,
refused always when it points at an input, and with ``--force`` the rename replaces the link
itself. A write never follows a link out of what the user named (a dangling link's target is
never created).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from inceptionism.errors import ImageError
from inceptionism.io.image import INPUT_SUFFIXES, OUTPUT_FORMATS, output_format
from inceptionism.io.samples import is_sample, sample_path

_IMAGE_SUFFIXES = {*INPUT_SUFFIXES, *OUTPUT_FORMATS, ".gif", ".avif", ".heic", ".jxl", ".mp4"}


def final_path(path: str | os.PathLike) -> Path:
    """Where a write to ``path`` lands once its missing folders are created and it is renamed
    into place: absolute, the folders' symlinks resolved, ``..`` applied after the missing
    folders. The last name stays as it is, a symlink included: a rename replaces the link."""
    absolute = os.path.abspath(path)
    folder, name = os.path.split(absolute)
    if name in ("", ".", ".."):
        return Path(os.path.realpath(absolute))
    return Path(os.path.realpath(folder)) / name


def link_target(path: str | os.PathLike) -> Path:
    """What ``path`` names once every symlink is followed, the last one included."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _dangling(path: Path) -> bool:
    return os.path.islink(path) and not path.exists()


def _same_inode(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def is_same(a: Path, b: Path) -> bool:
    return link_target(a) == link_target(b) or _same_inode(a, b)


@dataclass(frozen=True)
class Source:
    label: str  # what the user wrote (a path or sample:NAME)
    path: Path


def expand_inputs(inputs: Iterable[str]) -> tuple[list[Source], list[Path], bool]:
    """The images named (folders listed), the input folders, and whether the run is a batch."""
    inputs = list(inputs)
    found: list[Source] = []
    folders: list[Path] = []
    for text in inputs:
        if is_sample(text):
            found.append(Source(text, sample_path(text)))
            continue
        path = Path(text)
        if path.is_dir():
            folders.append(path)
            images = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES
            )
            if not images:
                raise ImageError(f"{path}: folder holds no images ({', '.join(INPUT_SUFFIXES)})")
            found += [Source(str(p), p) for p in images]
        elif not path.exists():
            raise ImageError(f"{path}: no such file")
        else:
            found.append(Source(text, path))
    return found, folders, len(inputs) > 1 or bool(folders)


def octave_file(dst: Path, k: int) -> Path:
    return dst.with_name(f"{dst.stem}.octave{k}{dst.suffix}")


def check_writable(path: Path) -> None:
    """The first existing ancestor of ``path``'s folder must be a folder we may write into."""
    folder = final_path(path).parent
    while not folder.exists():
        if folder.parent == folder:
            break
        folder = folder.parent
    if not folder.is_dir():
        raise ImageError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ImageError(f"cannot write {path}: no permission to write in {folder}")


def check_outputs(
    writes: Iterable[Path],
    reads: Iterable[Path],
    force: bool,
    reusable: Callable[[Path], bool] | None = None,
) -> list[Path]:
    """Refuse, before any work, a plan that would write an input (never, even with --force),
    write one file twice, replace an existing file without ``force`` (unless ``reusable`` says
    it is our own by-product), or write where it cannot. Returns the resolved paths."""
    reads = [Path(p) for p in reads]
    read_keys = {k for p in reads for k in (final_path(p), link_target(p))}
    seen: dict[Path, Path] = {}
    planned = []
    for path in writes:
        key = final_path(path)
        if key in seen:
            raise ImageError(f"{seen[key]} and {path} are the same file; each output needs its own")
        seen[key] = Path(path)
        if {key, link_target(key)} & read_keys or any(_same_inode(key, r) for r in reads):
            raise ImageError(f"{path} is an input; refusing to overwrite it, even with --force")
        if key.is_dir():
            raise ImageError(f"{path}: is a folder")
        check_writable(key)
        if os.path.lexists(key) and not force and not (reusable and reusable(key)):
            raise exists_error(path)
        planned.append(key)
    return planned


def exists_error(path: str | os.PathLike) -> ImageError:
    """An output that exists (a symlink too, dangling or not) and no --force."""
    path = Path(path)
    if _dangling(path):
        return ImageError(
            f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; pass "
            "--force to replace the link (its target is never created)"
        )
    if os.path.islink(path):
        return ImageError(
            f"{path} exists (a symbolic link to {os.readlink(path)}); pass --force to replace "
            "the link with the output"
        )
    return ImageError(f"{path} exists; pass --force to overwrite it")


@dataclass
class Planned:
    label: str
    src: Path | None  # None: the dream starts from noise or grey
    dst: Path
    octave_files: list[Path]


def plan_batch(
    inputs: tuple[str, ...],
    out: str,
    *,
    fmt_suffix: str,
    octaves: int,
    save_octaves: bool,
    force: bool,
    start: str = "noise",
    protected: tuple[Path, ...] = (),
    is_ours: Callable[[Path], bool] | None = None,
) -> tuple[list[Planned], list[str]]:
    """The outputs of ``dream``, and notes on inputs skipped because their output exists.

    One input: ``out`` is the output file (or a folder to put ``<stem><suffix>`` in). Several
    inputs or a folder: ``out`` is a folder. No input: one dream from ``start`` (noise, grey).
    ``protected`` are other files the run reads (guide, mask): never written either. A batch
    skips an input whose output exists (so a re-run resumes); a single dream refuses.
    """
    sources, folders, batch = expand_inputs(inputs)
    out_path = Path(out)
    as_folder = batch or out_path.is_dir() or out.endswith(("/", os.sep))
    if as_folder:
        if _dangling(out_path):
            raise ImageError(f"{out_path}: is a symbolic link to a missing folder")
        if out_path.exists() and not out_path.is_dir():
            raise ImageError(f"{out_path}: exists and is not a folder")
        if not out_path.exists() and out_path.suffix.lower() in _IMAGE_SUFFIXES and batch:
            raise ImageError(f"{out_path}: several inputs need an output folder, not a file name")
        for folder in folders:
            if is_same(folder, out_path):
                raise ImageError(f"{out}: is an input folder; write the dreams elsewhere")
    else:
        output_format(out_path)
    if not sources:
        plans = [Planned(start, None, out_path / f"{start}{fmt_suffix}" if as_folder else out_path,
                         [])]  # fmt: skip
    elif not as_folder:
        plans = [Planned(sources[0].label, sources[0].path, out_path, [])]
    else:
        plans = [Planned(s.label, s.path, out_path / (s.path.stem + fmt_suffix), [])
                 for s in sources]  # fmt: skip
    for plan in plans:
        output_format(plan.dst)
        if save_octaves:
            plan.octave_files = [octave_file(plan.dst, k) for k in range(1, octaves)]

    _check_collisions(plans)
    reads = [*(s.path for s in sources), *protected]
    todo, notes = [], []
    # inputs, duplicates and writability for every plan first (existing files: below)
    resolved = iter(check_outputs([p for plan in plans for p in (plan.dst, *plan.octave_files)],
                                  reads, force=True))  # fmt: skip
    for plan in plans:
        plan.dst, plan.octave_files = next(resolved), [next(resolved) for _ in plan.octave_files]
    for plan in plans:
        blocked = [] if force or not os.path.lexists(plan.dst) else [plan.dst]
        blocked += [
            p for p in plan.octave_files
            if os.path.lexists(p) and not force and not (is_ours and is_ours(p))
        ]  # fmt: skip
        if not blocked:
            todo.append(plan)
        elif not batch:
            raise exists_error(blocked[0])
        else:
            notes.append(f"skip {plan.label}: its output exists")
    return todo, notes


def _check_collisions(plans: list[Planned]) -> None:
    """Two inputs whose outputs share a name (``a/x.png`` and ``b/x.jpg`` both give ``x.png``):
    one line naming both inputs and the file."""
    owners: dict[Path, Planned] = {}
    for plan in plans:
        for path in (plan.dst, *plan.octave_files):
            other = owners.setdefault(final_path(path), plan)
            if other is plan:
                continue
            if other.label == plan.label:
                raise ImageError(f"{plan.label} is named twice; give each input once")
            raise ImageError(
                f"inputs {other.label} and {plan.label} would both be written to {path}; rename "
                "one or dream them into separate output folders"
            )
