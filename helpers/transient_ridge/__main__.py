"""Chapter 3's full run: ``python -m helpers.transient_ridge --mode full [--scale gpu|cpu] [--max-minutes N]``.

Trains the sweep over task diversity M (one grouped model), fits the joint trajectory PCA,
estimates the LLC, cross-checks it, times grouped training and trains the curriculum
(:func:`~helpers.transient_ridge.train.full_run`), judges the chapter's claims
(:func:`~helpers.transient_ridge.claims.evaluate`) and writes ``results/transient_ridge/`` (full
mode), ``.scratch/<mode>/transient_ridge/`` or ``--out DIR``; partial results are written as it
goes, so a run cut short leaves a complete smaller result. Uses the GPU when there is one.
``--scale cpu`` (D = 4, K = 8, one seed) takes about 80 minutes on a 2-core CPU.
"""
import sys

from ..cli import run_main
from . import claims, train


def options(parser) -> None:
    parser.add_argument("--scale", choices=train.SCALES, default=None,
                        help="gpu: the paper's task (the full run's default); "
                             "cpu: D=4, K=8, one seed, about 80 min on 2 CPU cores")
    parser.add_argument("--max-minutes", type=float, default=None, metavar="N",
                        help="stop the sweep early so the whole run ends within about N minutes")


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.transient_ridge", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv, options=options, refresh=train.refresh_metrics, partial=True)


if __name__ == "__main__":
    sys.exit(main())
