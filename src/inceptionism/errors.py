"""Errors a user can cause and fix. The CLI turns each into one line on stderr and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


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
        super().__init__(f'{what} needs the {extra} extra: pip install "inceptionism[{extra}]"')


class ToolError(InceptionismError):
    """An outside tool failed (ffmpeg crashing): not the user's input, so exit code 1."""

    exit_code = 1
