"""The command line shared by every chapter's full run: ``python -m helpers.<chapter> --mode full``.

A chapter's ``__main__`` only wires its parts together::

    run_main("helpers.tree_cot", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
             store=train.store, argv=argv)

``full_run(mode, progress=…)`` returns a :class:`~helpers.results.RunOutput`; ``evaluate(metrics)``
returns the chapter's claims; ``store(root)`` is the chapter's :class:`~helpers.results.ResultStore`.
``--claims-only`` re-judges the stored run with the current claims (no training); ``--out`` writes
somewhere else than ``results/`` (full mode) or the smoke output folder.

A chapter may add options of its own (``options(parser)``; their values reach ``full_run`` as
keyword arguments), re-derive stored metrics before ``--claims-only`` re-judges them
(``refresh(store)``), and save partial results while it runs (``partial=True``: ``full_run`` gets
``save(run)``, which writes the results so far with their claims).

Used in: ``helpers/<chapter>/__main__.py``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

from .modes import MODES, set_mode
from .claims import Claim
from .results import ResultStore, RunOutput, git_commit, output_root


def run_main(module: str, doc: str, *, full_run: Callable[..., RunOutput], evaluate: Callable[[dict], list[Claim]],
             store: Callable[..., ResultStore], argv: list[str] | None = None,
             options: Callable[[argparse.ArgumentParser], None] | None = None,
             refresh: Callable[[ResultStore], None] | None = None, partial: bool = False) -> int:
    """Parse ``--mode`` / ``--no-progress`` / ``--claims-only`` / ``--out`` (and the chapter's
    ``options``), run, save, print the claims table."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="full", help="sizes to run at (default: full)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--claims-only", action="store_true",
                        help="re-judge the stored run's metrics.json with the current claims; no training")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder to hold <chapter>/ (default: results/ in full mode, the smoke folder in smoke mode)")
    own = set()
    if options is not None:
        before = {a.dest for a in parser._actions}
        options(parser)
        own = {a.dest for a in parser._actions} - before
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = store(args.out if args.out is not None else output_root(args.mode))
    if args.claims_only:
        if refresh is not None:
            refresh(out)
        out.rederive_claims(evaluate)
    else:
        set_mode(args.mode)
        git = git_commit()  # the code that runs is the code at the start
        kwargs = {k: getattr(args, k) for k in own}
        if partial:
            def save(run: RunOutput) -> None:
                run.git = run.git or git
                out.save_run(run, evaluate(run.metrics), mode=args.mode)
            kwargs["save"] = save
        run = full_run(args.mode, progress=not args.no_progress, **kwargs)
        run.git = run.git or git
        out.save_run(run, evaluate(run.metrics), mode=args.mode)
    table = out.load_claims()
    print(table)
    held = sum(c.holds for c in table.claims)
    print(f"\n{held}/{len(table)} claims hold. Wrote {out.dir} in {time.perf_counter() - t0:.0f} s.")
    return 0
