"""Chapter 3's full run: ``python -m helpers.transient_ridge --mode full [--scale gpu|cpu] [--max-minutes N]``.

Trains the sweep over task diversity M (one grouped model), fits the joint trajectory PCA,
estimates the LLC, cross-checks it, times grouped training and trains the curriculum
(:func:`~helpers.transient_ridge.train.full_run`), judges the chapter's claims
(:func:`~helpers.transient_ridge.claims.evaluate`) and writes ``results/transient_ridge/`` (full
mode; ``results/transient_ridge_cpu/`` with ``--scale cpu``), ``.scratch/<mode>/transient_ridge/``
or ``--out DIR``; partial results are written as it
goes, so a run cut short leaves a complete smaller result. Uses the GPU when there is one.
``--scale cpu`` (D = 4, K = 8, one seed) takes about 80 minutes on a 2-core CPU. On a machine
without a GPU, a full run without ``--scale`` is refused, because its default is the GPU
configuration: give ``--scale cpu``, or ``--scale gpu`` to run the GPU configuration anyway.
"""
import sys

from ..cli import BadInput, minutes, run_main
from ..device import pick_device
from . import claims, train


def options(parser) -> None:
    parser.add_argument("--scale", choices=train.SCALES, default=None,
                        help="gpu: the paper's task size (the full run's default; refused on a CPU unless "
                             "given); cpu: D=4, K=8, one seed, about 80 min on 2 CPU cores")
    parser.add_argument("--max-minutes", type=minutes, default=None, metavar="N",
                        help="stop the sweep early so the whole run ends within about N minutes (N > 0)")


def check(args) -> None:
    """Refuse a full run without ``--scale`` on a CPU: its default is the GPU configuration."""
    if args.mode == "full" and args.scale is None and not args.claims_only and pick_device().type == "cpu":
        raise BadInput("the default full run is the GPU configuration, and this machine has no GPU; "
                       "give --scale cpu for the CPU configuration (about 80 minutes on 2 CPU cores), "
                       "or --scale gpu to run the GPU configuration anyway")


def folder(args) -> str | None:
    """The CPU configuration's full run has a folder of its own (``transient_ridge_cpu/``), beside
    the chapter's main run, the GPU configuration's."""
    return train.CPU_FOLDER if args.mode == "full" and args.scale == "cpu" else None


def main(argv: list[str] | None = None) -> int:
    return run_main("helpers.transient_ridge", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
                    store=train.store, argv=argv, options=options, refresh=train.refresh_metrics, partial=True,
                    check=check, folder=folder)


if __name__ == "__main__":
    sys.exit(main())
