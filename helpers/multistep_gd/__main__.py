"""Chapter 2's full run: ``python -m helpers.multistep_gd --mode full``.

Trains every model of the chapter at the mode's sizes (:func:`helpers.multistep_gd.train.full_run`),
judges the claims (:func:`helpers.multistep_gd.claims.evaluate`) and writes ``results/multistep_gd/``
(full mode) or ``.scratch/<mode>/multistep_gd/``: ``metrics.json``, ``weights.npz``, ``claims.json``,
``run.json``. ``--claims-only`` re-judges the stored metrics without training.
"""
from __future__ import annotations

import sys

from ..cli import run_main
from . import claims, train


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.multistep_gd", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
