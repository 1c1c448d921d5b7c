"""What every exercise checker shares: the error it raises when an answer is not yet right.

A checker (``helpers.<chapter>.exercises.check_…``) runs the reader's function on small cases,
compares it with an independent computation, and raises :class:`ExerciseError` with a hint that
says what is wrong (a shape, a sign, a missing term). It returns a success message otherwise.

Used in: every chapter's ``exercises`` module and the exercise cells of the notebooks.
"""
from __future__ import annotations


class ExerciseError(AssertionError):
    """An exercise's answer is not right yet; the message is a hint about what to fix."""
