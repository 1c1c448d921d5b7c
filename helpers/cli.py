"""The command line shared by every chapter's full run: ``python -m helpers.<chapter> --mode full``.

A chapter's ``__main__`` only wires its parts together::

    run_main("helpers.tree_cot", __doc__, full_run=train.full_run, evaluate=claims.evaluate,
             store=train.store, argv=argv)

``full_run(mode, progress=…)`` returns a :class:`~helpers.results.RunOutput`; ``evaluate(metrics)``
returns the chapter's claims; ``store(root)`` is the chapter's :class:`~helpers.results.ResultStore`.
``--claims-only`` re-judges the stored run with the current claims (no training); ``--out`` writes
somewhere else than ``results/`` (full mode) or the smoke output folder.

Bad input stops the command before any work, with a one-line error on stderr and exit status 2:
an unknown option or mode, an output folder that cannot be written, a folder that holds another
chapter's results, or (``--claims-only``) stored results that are missing, corrupt or of another
schema. A full run replaces the chapter's folder whole (:meth:`~helpers.results.ResultStore.save_run`).

A chapter may add options of its own (``options(parser)``; their values reach ``full_run`` as
keyword arguments), refuse a combination of options before any work (``check(args)`` raises
:class:`BadInput`), re-derive stored metrics before ``--claims-only`` re-judges them
(``refresh(store)``), and save partial results while it runs (``partial=True``: ``full_run`` gets
``save(run)``, which writes the results so far with their claims).

Used in: ``helpers/<chapter>/__main__.py``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Callable

from .claims import Claim
from .modes import MODES, set_mode
from .results import ResultError, ResultStore, RunOutput, git_commit, output_root

EXIT_BAD_INPUT = 2


def minutes(text: str) -> float:
    """An ``argparse`` type for a time limit in minutes: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number of minutes > 0; got {text!r}")
    return value


class BadInput(Exception):
    """Input the command refuses: reported on one line, exit status :data:`EXIT_BAD_INPUT`."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not the usage block
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _check_output(out: ResultStore, claims_only: bool) -> None:
    """Refuse, before any work, an output that cannot be used (see the module docstring)."""
    try:
        out.check_writable()
    except OSError as e:
        raise BadInput(str(e)) from None
    run_json = out.path("run.json")
    if run_json.is_file():
        try:
            chapter = json.loads(run_json.read_text()).get("chapter")
        except (ValueError, AttributeError):
            chapter = None  # a damaged run.json: a full run replaces it; --claims-only reports it below
        if chapter not in (None, out.chapter):
            raise BadInput(f"{out.shown(out.dir)} holds the results of chapter {chapter!r}, not {out.chapter!r}")
    if claims_only:
        try:
            out.read_run()
        except ResultError as e:
            raise BadInput(str(e)) from None


def run_main(module: str, doc: str, *, full_run: Callable[..., RunOutput], evaluate: Callable[[dict], list[Claim]],
             store: Callable[..., ResultStore], argv: list[str] | None = None,
             options: Callable[[argparse.ArgumentParser], None] | None = None,
             refresh: Callable[[ResultStore], None] | None = None, partial: bool = False,
             check: Callable[[argparse.Namespace], None] | None = None,
             folder: Callable[[argparse.Namespace], str | None] | None = None) -> int:
    """Parse ``--mode`` / ``--no-progress`` / ``--claims-only`` / ``--out`` (and the chapter's
    ``options``), run, save, print the claims table."""
    parser = _Parser(prog=f"python -m {module}", description=doc.strip().splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="full", help="sizes to run at (default: full)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--claims-only", action="store_true",
                        help="re-judge the stored run's metrics.json with the current claims; no training")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="folder to hold <chapter>/ (or the chapter's folder for these options, "
                             "e.g. transient_ridge_cpu/; default: results/ in full mode, the smoke folder "
                             "in smoke mode)")
    own = set()
    if options is not None:
        before = {a.dest for a in parser._actions}
        options(parser)
        own = {a.dest for a in parser._actions} - before
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    root = args.out if args.out is not None else output_root(args.mode)
    named = folder(args) if folder is not None else None   # a folder other than the chapter's, for these options
    out = store(root, named) if named else store(root)
    try:
        if check is not None:
            check(args)
        _check_output(out, args.claims_only)
    except BadInput as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
