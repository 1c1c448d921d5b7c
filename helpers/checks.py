"""Argument checks shared by the chapters' helpers: clear errors that name the argument and its range."""
from __future__ import annotations


def check_int(name: str, value, low: int) -> int:
    """``value`` if it is an int ``>= low``; else ``TypeError``/``ValueError`` naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {low}; got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value}")
    return value
