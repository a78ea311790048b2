"""Networks trained with `inceptionism train` offered in the studio's model list: each
checkpoint (``mynet.pt`` with its metadata ``mynet.json`` beside it) registered under the name
its metadata gives (else its file name), so a dream with it records a recipe that
`inceptionism replay` re-creates from the recorded checkpoint."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from inceptionism.errors import InceptionismError
from inceptionism.models import get_spec
from inceptionism.models.trained import (
    WEIGHT_SUFFIXES,
    is_trained,
    meta_path,
    read_meta,
    register_trained,
)
from inceptionism.models.weights import sha256_file


def checkpoints(paths: Iterable[str | Path]) -> list[Path]:
    """The checkpoint files named, a folder standing for every weights file in it that has
    metadata beside it (other files in a folder are not checkpoints and are passed over)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            weights = [f for f in p.iterdir() if f.suffix.lower() in WEIGHT_SUFFIXES]
            found += sorted(f for f in weights if meta_path(f).is_file())
        else:
            found.append(p)
    return list(dict.fromkeys(found))


def register_checkpoints(paths: Iterable[str | Path]) -> dict[str, Path]:
    """Register every checkpoint of ``paths``; returns {name in the model list: checkpoint}.
    One that cannot be offered (missing, not a trained network, its weights changed since
    training, its name taken) is skipped with one line on stderr naming it."""
    names: dict[str, Path] = {}
    for path in checkpoints(paths):
        try:
            names[_register(path, set(names))] = path
        except InceptionismError as e:
            print(f"studio: skipping the trained network {path}: {e}", file=sys.stderr)
    return names


def _register(path: Path, ours: set[str]) -> str:
    if not path.is_file():
        raise InceptionismError("no such file")
    if not is_trained(str(path)):
        raise InceptionismError(
            f"not a network from `inceptionism train` (no trained-network {meta_path(path).name})"
        )
    meta = read_meta(path)
    if meta.get("weights_sha256") not in (None, sha256_file(path)):
        raise InceptionismError("its weights changed since it was trained (sha256 differs)")
    wanted = [n for n in (meta.get("name"), path.stem) if isinstance(n, str) and n.strip()]
    for name in wanted:
        if name not in ours and _free(name, path):
            return register_trained(str(path), name=name).name
    raise InceptionismError(f"its name {wanted[0]!r} is another model's")


def _free(name: str, path: Path) -> bool:
    """Whether ``name`` names no model, or this very checkpoint registered earlier."""
    try:
        spec = get_spec(name)
    except InceptionismError:
        return True
    origin = spec.origin or {}
    return spec.name == name and origin.get("checkpoint") == str(path.resolve())
