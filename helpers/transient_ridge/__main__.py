"""Chapter 3's full run: ``python -m helpers.transient_ridge --mode full``.

Trains the sweep over task diversity M (one grouped model) and the curriculum, estimates the LLC,
fits the joint trajectory PCA (:func:`~helpers.transient_ridge.train.full_run`), judges the
chapter's claims (:func:`~helpers.transient_ridge.claims.evaluate`) and writes
``results/transient_ridge/`` (full mode) or ``.scratch/<mode>/transient_ridge/``. Uses the GPU
when there is one.
"""
import sys

from ..cli import run_main
from . import claims, train


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.transient_ridge", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
