"""The closing chapter's full run: ``python -m helpers.one_lens --mode full``.

Trains chapter 1's theory model and chapter 2's two models with dense checkpoints, estimates their
LLC over training, reads chapter 3's committed CPU run (:func:`helpers.one_lens.train.full_run`),
judges the claims (:func:`helpers.one_lens.claims.evaluate`) and writes ``results/one_lens/``
(full mode) or ``.scratch/<mode>/one_lens/``: ``metrics.json``, ``claims.json``, ``run.json``.
``--claims-only`` re-judges the stored metrics without training.
"""
from __future__ import annotations

import sys

from ..cli import run_main
from . import claims, train


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.one_lens", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
