"""Run modes: one code path, three sizes.

The mode is read from the environment variable ``BOOK_MODE`` in one place, :func:`get_mode`:

- ``smoke``   — what CI and nbval run: tiny sizes, every code path, seconds per notebook;
- ``default`` — what a reader and the book build get (also when ``BOOK_MODE`` is unset):
  cheap experiments train live, expensive ones load committed full-scale results;
- ``full``    — retrain everything at the scale the chapter's claims need (GPU recommended).

An experiment declares its sizes per mode next to its code with :func:`by_mode`::

    SIZES = by_mode(smoke=dict(steps=20), default=dict(steps=2_000), full=dict(steps=50_000))

Used in: every notebook's configuration cell, and every ``python -m helpers.<chapter>`` command.
"""
from __future__ import annotations

import os
from typing import Any, TypeVar

MODES = ("smoke", "default", "full")
ENV_VAR = "BOOK_MODE"
PROGRESS_ENV_VAR = "BOOK_PROGRESS"

T = TypeVar("T")


def check_mode(mode: Any) -> str:
    """Return ``mode`` normalised (lower case, stripped) or raise a clear ``ValueError``."""
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {MODES}; got {type(mode).__name__} {mode!r}")
    normalised = mode.strip().lower()
    if normalised not in MODES:
        raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
    return normalised


def get_mode() -> str:
    """The current run mode, from ``BOOK_MODE`` (unset or empty means ``'default'``).

    Raises ``ValueError`` naming ``BOOK_MODE`` and the valid values when it holds anything else.
    """
    raw = os.environ.get(ENV_VAR, "")
    if raw.strip() == "":
        return "default"
    try:
        return check_mode(raw)
    except ValueError:
        raise ValueError(
            f"environment variable {ENV_VAR} must be one of {MODES} (or unset for 'default'); got {raw!r}"
        ) from None


def show_progress() -> bool:
    """Whether training shows progress bars when the caller does not say: not in smoke mode, and
    not when ``BOOK_PROGRESS=0``. The book's build command sets ``BOOK_PROGRESS=0``, so that the
    built pages carry no progress bars (widgets that a static page cannot show).

    Raises ``ValueError`` naming ``BOOK_PROGRESS`` when it holds anything but ``0``, ``1`` or nothing.
    """
    raw = os.environ.get(PROGRESS_ENV_VAR, "").strip()
    if raw not in ("", "0", "1"):
        raise ValueError(f"environment variable {PROGRESS_ENV_VAR} must be 0, 1 or unset; got {raw!r}")
    return raw != "0" and get_mode() != "smoke"


def set_mode(mode: str) -> str:
    """Set the run mode for this process (and the kernels it starts); returns the normalised mode."""
    mode = check_mode(mode)
    os.environ[ENV_VAR] = mode
    return mode


def by_mode(*, smoke: T, default: T, full: T, mode: str | None = None) -> T:
    """Pick the value declared for the current mode (or for ``mode`` if given).

    All three values are required, so a reader sees every size an experiment can run at.
    """
    chosen = get_mode() if mode is None else check_mode(mode)
    return {"smoke": smoke, "default": default, "full": full}[chosen]
