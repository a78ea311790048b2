"""Errors a user can cause and fix. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlparse


class InceptionismError(Exception):
    """Base class for every error that is the user's input, not a bug."""

    exit_code = 2


class UnknownNameError(InceptionismError, KeyError):
    """An unknown model, layer or preset name; the message lists the valid choices."""

    def __init__(
        self, kind: str, name: str, choices: Iterable[str], where: str = "", hint: str = ""
    ):
        self.kind, self.name, self.choices = kind, name, list(choices)
        super().__init__(unknown_name_message(kind, name, self.choices, where, hint=hint))

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0])


class ImageError(InceptionismError):
    """An input that is not a readable image (missing, truncated, oversized, not an image)."""


class WeightsError(InceptionismError):
    """Weights that cannot be found, or do not fit the architecture."""


class ConfigError(InceptionismError, ValueError):
    """A configuration value out of its valid range, or a malformed spec string."""


def unknown_name_message(
    kind: str, name: str, choices: list[str], where: str = "", limit: int = 120, hint: str = ""
) -> str:
    """One line: what was unknown, a hint (another model has it) or a "did you mean", and the
    valid choices."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.6)
    if hint:
        hint = " " + hint
    elif close:
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?"
    shown = ", ".join(choices[:limit]) + (
        f", ... ({len(choices)} in all)" if len(choices) > limit else ""
    )
    where = f" of {where}" if where else ""
    return f"unknown {kind} {name!r}{where}.{hint} Valid: {shown}"


class MissingExtraError(InceptionismError):
    """An optional part that is not installed; the message names the extra to install."""

    def __init__(self, what: str, extra: str):
        super().__init__(f"{what} needs the {extra} extra: {install_hint(extra)}")


def install_hint(extra: str) -> str:
    """The pip command that adds ``extra`` to this installation: from a clone (an editable
    install, or the package run from its source tree) ``pip install -e ".[extra]"`` there, from
    a local folder that folder, else the published package."""
    how, where = install_origin()
    if how == "editable":
        return f'pip install -e ".[{extra}]" (in {where})'
    if how == "folder":
        return f'pip install "{where}[{extra}]"'
    return f'pip install "inceptionism[{extra}]"'


@functools.lru_cache(maxsize=1)
def install_origin() -> tuple[str, str | None]:
    """How this package was installed: ("editable", clone), ("folder", source folder) or
    ("index", None), from its ``direct_url.json`` (PEP 610) and where its files live."""
    try:
        from importlib.metadata import distribution

        text = distribution("inceptionism").read_text("direct_url.json")
    except Exception:  # no metadata: run from a source tree with PYTHONPATH
        text = None
    return origin_of(text, Path(__file__).resolve().parent)


def origin_of(direct_url: str | None, package_dir: Path) -> tuple[str, str | None]:
    """:func:`install_origin` from a ``direct_url.json`` text (or None) and the package's
    folder."""
    try:
        info = json.loads(direct_url) if direct_url else {}
    except ValueError:
        info = {}
    url = info.get("url") if isinstance(info, dict) else None
    dir_info = info.get("dir_info") if isinstance(info, dict) else None
    if isinstance(url, str) and url.startswith("file:") and isinstance(dir_info, dict):
        folder = unquote(urlparse(url).path)
        return ("editable" if dir_info.get("editable") else "folder"), folder
    installed = any(p in ("site-packages", "dist-packages") for p in package_dir.parts)
    root = package_dir.parent.parent if package_dir.parent.name == "src" else package_dir.parent
    if not installed and (root / "pyproject.toml").is_file():
        return "editable", str(root)
    return "index", None


class InceptionismWarning(UserWarning):
    """Something the user should know about a result that was still written (the command
    line shows it as one line once the command has succeeded)."""


class ToolError(InceptionismError):
    """An outside tool failed (ffmpeg crashing): not the user's input, so exit code 1."""

    exit_code = 1
