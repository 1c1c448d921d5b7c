"""Argument checks shared by the chapters' helpers: clear errors that name the argument and its range."""
from __future__ import annotations

import numbers


def check_int(name: str, value, low: int) -> int:
    """``value`` as an ``int`` if it is an integer ``>= low`` (Python or NumPy); else
    ``TypeError``/``ValueError`` naming ``name`` and the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {low}; got {type(value).__name__} {value!r}")
    value = int(value)   # NumPy integers (e.g. from np.arange) are ints too
    if value < low:
        raise ValueError(f"{name} must be an int >= {low}; got {value}")
    return value
