"""How a weight is written in a layer spec (``block12=0.5``): its shortest exact text. Kept apart
from objectives.py, which needs torch, so the presets' table reads without it."""

from __future__ import annotations


def format_weight(w: float) -> str:
    """Shortest exact text for a weight: 1, 0.5, 0.123456789 (no rounding)."""
    text = repr(float(w))
    return text[:-2] if text.endswith(".0") else text
