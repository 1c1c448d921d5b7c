"""The command line shared by every chapter's full run: ``python -m helpers.<chapter> --mode full``.

A chapter's ``__main__`` only wires its parts together::

    run_main("helpers.tree_cot", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
             store=train.store, argv=argv)

``full_run(mode, progress=…)`` returns a :class:`~helpers.results.RunOutput`; ``evaluate(metrics)``
returns the chapter's claims; ``store(root)`` is the chapter's :class:`~helpers.results.ResultStore`.
``--claims-only`` re-judges the stored run with the current claims (no training).

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
             store: Callable[..., ResultStore], argv: list[str] | None = None) -> int:
    """Parse ``--mode`` / ``--no-progress`` / ``--claims-only``, run, save, print the claims table."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="full", help="sizes to run at (default: full)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--claims-only", action="store_true",
                        help="re-judge the stored run's metrics.json with the current claims; no training")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = store(output_root(args.mode))
    if args.claims_only:
        out.rederive_claims(evaluate)
    else:
        set_mode(args.mode)
        git = git_commit()  # the code that runs is the code at the start
        run = full_run(args.mode, progress=not args.no_progress)
        run.git = run.git or git
        out.save_run(run, evaluate(run.metrics), mode=args.mode)
    table = out.load_claims()
    print(table)
    held = sum(c.holds for c in table.claims)
    print(f"\n{held}/{len(table)} claims hold. Wrote {out.dir} in {time.perf_counter() - t0:.0f} s.")
    return 0
