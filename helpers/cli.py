"""The command line shared by every chapter's full run: ``python -m helpers.<chapter> --mode full``.

Used in: ``helpers/<chapter>/__main__.py``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from .device import device_name
from .modes import MODES
from .results import ResultStore


def run_main(prog: str, description: str, run: Callable[..., ResultStore], argv: list[str] | None = None) -> int:
    """Parse ``--mode`` / ``--no-progress``, call ``run(mode, progress=…)``, print the claims table."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--mode", choices=MODES, default="full", help="sizes to run at (default: full)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    out = run(args.mode, progress=not args.no_progress)
    table = out.load_claims()
    print(table)
    held = sum(c.holds for c in table.claims)
    print(f"\n{held}/{len(table)} claims hold. Wrote {out.dir} in {time.perf_counter() - t0:.0f} s "
          f"on {device_name(torch.device('cpu'))}.")
    return 0
