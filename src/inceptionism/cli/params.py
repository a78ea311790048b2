"""Option values as click reads them: ranges shown readably and refusing NaN, callbacks that
refuse numbers no network could use (thousands of digits, infinities), ``--class``'s type."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import click

from inceptionism.errors import ConfigError


def shortened(value: Any, limit: int = 40, keep: int = 16) -> str:
    """A value as an error shows it: thousands of digits cut to their start and count."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:keep]}... ({len(text)} characters)"


def size_text(_ctx: Any, param: Any, value: Any) -> Any:
    """Callback for ``--size WxH``: a text of thousands of digits refused before int() (which
    raises past 4300 digits) sees it."""
    if isinstance(value, str) and len(value) > 32:
        raise click.BadParameter(f"expected WxH, e.g. 512x384; got {shortened(value)}", param=param)
    return value


def parsed_by(parse: Callable[[str], Any]) -> Callable:
    def convert(_ctx: Any, param: Any, value: Any) -> Any:
        if value is None or not isinstance(value, str):
            return value
        if len(value) > 64:  # a number or a word: never this long (int() stops at 4300 digits)
            raise click.BadParameter(f"{shortened(value)} is too long", param=param)
        try:
            parsed = parse(value)
        except ConfigError as e:
            raise click.BadParameter(str(e), param=param) from None
        if isinstance(parsed, float) and not math.isfinite(parsed):
            raise click.BadParameter(f"{value!r} is not a finite number", param=param)
        return parsed

    return convert


def finite_numbers(_ctx: Any, param: Any, value: Any) -> Any:
    """Callback for options whose text holds numbers among other things (``DX,DY``,
    ``MEAN/STD``, ``scale=0.1,rotate=10``, ``NAME=V1,V2``): each number must be finite."""
    if not isinstance(value, str):
        return value  # None, or a multiple option's tuple (checked item by item below)
    for token in _NUMBER_SPLIT.split(value):
        try:
            number = float(token)
        except ValueError:
            continue  # a name, not a number
        if not math.isfinite(number):
            raise click.BadParameter(f"{shortened(token)} is not a finite number", param=param)
    return value


def finite_each(ctx: Any, param: Any, values: Any) -> Any:
    """:func:`finite_numbers` for an option given several times."""
    for value in values or ():
        finite_numbers(ctx, param, value)
    return values


_NUMBER_SPLIT = re.compile(r"[,;/=:@\s]+")


def parse_floats(text: str, count: int, what: str) -> tuple[float, ...]:
    """``count`` finite numbers separated by commas (``"3,-1.5"``), or one line saying what was
    expected (``what``, e.g. "DX,DY in pixels")."""
    parts = text.split(",")
    try:
        values = tuple(float(v) for v in parts)
    except ValueError:
        values = ()
    if len(values) != count:
        raise click.BadParameter(f"expected {what}, got {shortened(repr(text))}")
    if not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"expected finite numbers ({what}), got {shortened(repr(text))}")
    return values


def shown_default(value: Any) -> Any:
    return "none" if value is None else True


def readable(x: float) -> str:
    """A bound as --help shows it: integers as integers (178,956,970, not 1.78957e+08)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return f"{int(x):,}" if abs(x) >= 100_000 else str(int(x))
    return f"{x:g}"


class _Readable:
    """Ranges in --help as "0-10000" or ">= 0" (not 0<=x<=9223372036854775807) after a short
    metavar (N or X, not "INTEGER RANGE"); a value that is no usable number gets one short
    line."""

    symbol = "N"

    def _describe_range(self) -> str:
        lo, hi = self.min, self.max  # type: ignore[attr-defined]
        if lo is None and hi is None:
            return ""
        if hi is None or hi >= 1e15:
            return f">= {readable(lo)}"
        if lo is None:
            return f"<= {readable(hi)}"
        return f"{readable(lo)}{' to ' if lo < 0 else '-'}{readable(hi)}"

    def get_metavar(self, param: Any, ctx: Any = None) -> str | None:
        return self.symbol

    def _refuse(self, message: str, param: Any, ctx: Any) -> None:
        self.fail(message, param, ctx)  # type: ignore[attr-defined]


class IntRange(_Readable, click.IntRange):
    """click's IntRange; a value of thousands of digits (which int() refuses past 4300) gets a
    short line, not the whole number."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and len(value.strip()) > 40:
            where = self._describe_range()
            self._refuse(f"{shortened(value)} is too long for {where or 'an integer'}", param, ctx)
        return super().convert(value, param, ctx)


class FloatRange(_Readable, click.FloatRange):
    """click's FloatRange, refusing NaN and infinity (which pass its comparisons)."""

    symbol = "X"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self._refuse(f"{shortened(value)} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


class ClassValue(click.ParamType):
    """--class: a number (0 or more) or a trained network's class name."""

    name = "class"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        text = str(value).strip()
        if text.isdigit() and len(text) > 9:  # no network has a billion classes
            self.fail(f"{text[:16]}... ({len(text)} digits) is too large for a class", param, ctx)
        if text.isdigit():
            return int(text)
        if not text or text.lstrip("-").isdigit():
            self.fail(f"{value!r} is not a class number (0 or more) or a class name", param, ctx)
        return text


def echo_error(message: str) -> None:
    """One line on stderr; a word of hundreds of characters (a number of thousands of digits
    quoted back) is cut to its start and length."""
    words = (shortened(w, limit=200, keep=60) for w in str(message).split())
    click.echo(f"inceptionism: error: {' '.join(words)}", err=True)


def note(message: str, quiet: bool = False) -> None:
    if not quiet:
        click.echo(message, err=True)


def examples(*lines: str) -> str:
    """A command's epilog: its example command lines, kept as written (click's \\b)."""
    return "\b\nExamples:\n" + "\n".join(f"  inceptionism {line}" for line in lines)


def table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    cells = [tuple(str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
