"""Command-line value types: argparse turns their ``ValueError`` into one line naming the option (exit 2)."""

from __future__ import annotations

import math


def count(lo: int = 1, hi: int = 1 << 20):
    """A whole number in ``[lo, hi]`` (e.g. ``--jobs``, ``--limit``): ``0``, ``-3`` or ``2**63`` are refused."""

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise ValueError(f"not a whole number: {text!r}") from None
        if not lo <= v <= hi:
            raise ValueError(f"{v} is outside {lo}..{hi}")
        return v

    parse.__name__ = f"whole number {lo}..{hi}"
    return parse


def seconds(text: str) -> float:
    """A positive, finite number of seconds (``nan``, ``inf``, ``0`` and negatives refused)."""
    try:
        v = float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{text}: must be a positive, finite number of seconds")
    return v


seconds.__name__ = "positive number of seconds"
