"""A one-line progress bar for dreams: octave, step, loss, elapsed and ETA."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from inceptionism.engine.loop import Progress


def format_seconds(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = int(round(s))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )


class ProgressBar:
    """Redraws one line on a terminal; on a pipe or file prints one line per finished octave."""

    def __init__(self, label: str = "", stream: TextIO | None = None, width: int = 24):
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last = 0.0

    def line(self, p: Progress) -> str:
        filled = int(round(p.fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        note = " (max-loss stop)" if p.stopped_early else ""
        return (
            f"{self.label}octave {p.octave}/{p.octaves} step {p.step:>3}/{p.steps} "
            f"loss {p.loss:8.4f} [{bar}] {p.fraction * 100:3.0f}% "
            f"{format_seconds(p.elapsed)} ETA {format_seconds(p.eta)}{note}"
        )

    def __call__(self, p: Progress) -> None:
        if self.tty:
            now = time.monotonic()
            if p.octave_done or now - self._last > 0.1:
                self._last = now
                self.stream.write("\r\x1b[2K" + self.line(p))
                if p.octave_done and p.octave == p.octaves:
                    self.stream.write("\n")
                self.stream.flush()
        elif p.octave_done:
            self.stream.write(self.line(p) + "\n")
            self.stream.flush()


def frame_lines(quiet: bool) -> Callable[[Any], None]:
    """A line per finished (or reused) frame: frame k/n, its time, the ETA."""

    def show(p: Any) -> None:
        if quiet:
            return
        what = "reused" if p.reused else f"{p.seconds:.1f} s"
        sys.stderr.write(f"frame {p.k}/{p.n} {what}  ETA {format_seconds(p.eta)}\n")
        sys.stderr.flush()

    return show


def frame_bars(quiet: bool, total: int) -> Callable[[int], ProgressBar] | None:
    """The live step line inside each frame (on a terminal), as `dream` has."""
    if quiet or not sys.stderr.isatty():
        return None
    return lambda k: ProgressBar(label=f"frame {k}/{total} ")
