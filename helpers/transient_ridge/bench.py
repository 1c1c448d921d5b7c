"""Speed of the chapter's training step on the current device: ``python -m helpers.transient_ridge.bench``.

Times one training step of the sweep's grouped model (batch drawn on the device, forward,
backward, Adam) and of the same G models stepped one after another, at a run's sizes
(``--mode``, ``--scale``), for each ``--precision``; reports milliseconds per step, the speed-up,
and the achieved TFLOP/s from the analytic FLOP count (:meth:`~.train.Sizes.flops_per_step`).
It then projects the whole full run's time (:func:`projected_seconds`) from the measured step
time — or, with ``--assume-tflops R --assume-overhead-ms O``, from a stated throughput, for a
device that is not at hand.

Used in: the chapter's GPU run (:mod:`~helpers.transient_ridge.gpu`) and its documentation.
"""
from __future__ import annotations

import argparse
import json
import sys

from ..device import device_name, pick_device
from ..results import git_commit
from .models import forward_flops
from .train import PRECISIONS, SCALES, Sizes, sizes, time_grouped_vs_separate


def projected_seconds(S: Sizes, step_seconds: float, tflops: float, single_step_seconds: float) -> dict:
    """The full run's time, stage by stage, for the sizes ``S``: the sweep from the grouped step
    time ``step_seconds``; evaluations (forward passes on every checkpoint's OOD, in-distribution and
    probe sets) and SGLD steps (forward + backward) from their FLOPs at ``tflops`` TFLOP/s; the
    single-model SGLD chains of the cross-check (ours and devinterp's) and the one-by-one timing
    from ``single_step_seconds`` per small step (launch-bound on a GPU)."""
    G = len(S.sweep_config().groups)
    f = forward_flops(S.model)
    rate = tflops * 1e12
    sgld_steps = S.llc.num_chains * (S.llc.num_burnin + S.llc.num_draws)
    out = {
        "sweep": S.steps * step_seconds,
        "evaluation": len(S.checkpoints()) * G * (2 * S.eval_n + S.n_probe) * f / rate,
        "llc": sgld_steps * 3 * f * S.llc_batch * (G + S.n_snapshots) / rate,
        "crosscheck": 2 * sgld_steps * max(single_step_seconds, 3 * f * S.llc_batch / rate),
        "timing": (S.timing_steps + 3) * (step_seconds + G * single_step_seconds),
        "curriculum": S.steps * step_seconds * len(S.curriculum_config().groups) / G,
    }
    out["total"] = sum(out.values())
    out["total_without_curriculum"] = out["total"] - out["curriculum"]
    return out


def bench(mode: str = "full", scale: str | None = None, steps: int = 20, precisions=("fp32",),
          separate: bool = True, compile: bool | str = False) -> dict:
    """Measure the step at ``mode``/``scale`` sizes for each precision (the grouped model through
    ``torch.compile`` if ``compile``); returns a JSON-able record."""
    S = sizes(mode, scale)
    device = pick_device()
    cfg = S.sweep_config()
    rows = []
    for p in precisions:
        t = time_grouped_vs_separate(cfg, steps=steps, device=device, precision_mode=p, separate=separate,
                                     compile=compile)
        single = t["separate_s_per_step"] / t["groups"] if separate else float("nan")
        achieved = S.flops_per_step() / t["grouped_s_per_step"] / 1e12
        rows.append({"precision": p, "compile": t["compile"], "grouped_ms_per_step": 1e3 * t["grouped_s_per_step"],
                     "separate_ms_per_step": 1e3 * t["separate_s_per_step"] if separate else None,
                     "speedup": t["speedup"] if separate else None,
                     "achieved_tflops": achieved,
                     # without the one-by-one timing the stages that step single models are unknown (NaN)
                     "projected_seconds": projected_seconds(S, t["grouped_s_per_step"], achieved, single)})
    commit, dirty = git_commit()
    return {"device": device_name(device), "git_commit": commit, "git_dirty": dirty, "mode": mode, "scale": scale,
            "groups": len(cfg.groups), "flops_per_step": S.flops_per_step(), "steps_timed": steps, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.transient_ridge.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("smoke", "default", "full"), default="full")
    parser.add_argument("--scale", choices=SCALES, default=None)
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    parser.add_argument("--precision", nargs="+", choices=PRECISIONS, default=["fp32"])
    parser.add_argument("--no-separate", action="store_true", help="time the grouped model only")
    parser.add_argument("--compile", nargs="?", const=True, default=False, metavar="MODE",
                        help="time the grouped model through torch.compile (optionally a mode, e.g. reduce-overhead)")
    parser.add_argument("--assume-tflops", type=float, default=None, metavar="R",
                        help="only project the full run's time at R achieved TFLOP/s (no timing)")
    parser.add_argument("--assume-overhead-ms", type=float, default=1.0, metavar="O",
                        help="with --assume-tflops: fixed cost of one training step, ms (kernel launches)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the record here")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be >= 1; got {args.steps}")
    S = sizes(args.mode, args.scale)
    if args.assume_tflops is not None:
        if args.assume_tflops <= 0 or args.assume_overhead_ms < 0:
            parser.error("--assume-tflops must be > 0 and --assume-overhead-ms >= 0")
        step = S.flops_per_step() / (args.assume_tflops * 1e12) + args.assume_overhead_ms / 1e3
        record = {"assumed_tflops": args.assume_tflops, "assumed_overhead_ms": args.assume_overhead_ms,
                  "flops_per_step": S.flops_per_step(), "step_ms": 1e3 * step,
                  "projected_seconds": projected_seconds(S, step, args.assume_tflops, args.assume_overhead_ms / 1e3)}
    else:
        record = bench(args.mode, args.scale, args.steps, tuple(args.precision), not args.no_separate, args.compile)
    text = json.dumps(record, indent=1, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
