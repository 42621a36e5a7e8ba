"""Argument checks with one-line messages, e.g. ``decay_steps must be a positive number, got 0``.

Pure Python (no TensorFlow, Keras or NumPy), so the CLI can check its flags before the heavy
imports. Each check returns the value unchanged or raises ``ValueError`` naming the argument,
the bad value and what is allowed. ``bool`` is never accepted as a number.
"""

from __future__ import annotations

import math
from numbers import Integral, Real


def _fail(name: str, value: object, allowed: str) -> None:
    shown = repr(value) if isinstance(value, str) else str(value)
    raise ValueError(f"{name} must be {allowed}, got {shown}")


def _is_number(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, Real):
        return False
    return isinstance(value, Integral) or math.isfinite(value)


def positive(name: str, value: object) -> float:
    if not (_is_number(value) and value > 0):
        _fail(name, value, "a positive number")
    return value


def non_negative(name: str, value: object) -> float:
    if not (_is_number(value) and value >= 0):
        _fail(name, value, "a non-negative number")
    return value


def in_range(name: str, value: object, lo: float, hi: float, *, open_lo: bool = False) -> float:
    """``lo <= value <= hi``; ``lo < value <= hi`` if ``open_lo``."""
    if not (_is_number(value) and (lo < value if open_lo else lo <= value) and value <= hi):
        _fail(name, value, f"a number in {'(' if open_lo else '['}{lo}, {hi}]")
    return value


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value <= 0:
        _fail(name, value, "a positive integer")
    return value


def non_negative_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        _fail(name, value, "a non-negative integer")
    return value


def boolean(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        _fail(name, value, "True or False")
    return value
