"""Chapter 1's full run: ``python -m helpers.tree_cot --mode full``.

Trains every model of the chapter at the mode's sizes and writes ``results/tree_cot/`` (full mode)
or ``.scratch/<mode>/tree_cot/`` (other modes): ``metrics.json``, ``arrays.npz`` (``H`` snapshots,
attention maps), ``claims.json`` and ``run.json``. ``--claims-only`` re-judges the stored metrics.

The models are tiny (one layer, a few thousand to a few tens of thousands of parameters) and the
sequences short, so the run uses the CPU by design: about 33 minutes on 2 CPU cores, 13 of them for
the symmetry-broken seeds trained four times as long, measured when those runs still repeated the
first 4000 steps (3 of the 13 minutes) that they now continue (the standard models' random trees
are drawn by a second process while they train).
"""
from __future__ import annotations

import sys

from ..cli import run_main
from . import claims, train


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.tree_cot", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
