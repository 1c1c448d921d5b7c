"""The chapter's GPU run in one command: ``python -m helpers.transient_ridge.gpu --out DIR``.

For a machine with PyTorch and a GPU (no Jupyter needed). In one output folder it writes

- ``device.json`` — the device, torch and CUDA versions;
- ``bench.json`` — :mod:`~helpers.transient_ridge.bench` at the run's sizes (ms/step, TFLOP/s,
  fp32 / tf32 / bf16, grouped against one by one) and the projected time of the run;
- ``precision.json`` — :func:`~.train.precision_check`: the OOD curves of a short sweep of the
  run's own model (:data:`CHECK_MS`, one seed, ``--check-steps``) in fp32, tf32 and bf16 on this
  device, and how far each departs from fp32's;
- ``transient_ridge/`` — the full run's results (``metrics.json``, ``claims.json``, ``run.json``,
  arrays, final weights), written as it goes, so a run stopped by ``--max-minutes`` or by the
  machine still leaves a complete, smaller result;
- ``log.txt`` — everything printed;
- with ``--checks``, first: ``checks.json`` and ``checks/`` — the unit tests that take a device
  (:data:`DEVICE_TESTS`, on the GPU) and every chapter's smoke pipeline (:data:`CHAPTERS`; the
  chapters other than this one train on the CPU, on spare cores), their logs and exit statuses
  (at most ``--checks-minutes``); the command's exit status is 1 if one of them failed;

and packs the folder into ``DIR.tar.gz`` (or ``--archive PATH``). Publish it as the chapter's
run, ``results/transient_ridge/`` (every page of chapter 3 shows it): the output's
``transient_ridge/`` becomes that folder, and the rest of the output goes into its ``call/``.

On a GPU machine with a copy of the repository but no git history, name the commit
(``BOOK_GIT_COMMIT=…``, see :func:`helpers.results.git_commit`) and install the package first
(``pip install --no-deps --no-build-isolation -e .``), then::

    python -m helpers.transient_ridge.gpu --checks --out run-gpu --max-minutes 7

The LLC cross-check needs ``devinterp`` (``pip install devinterp==1.3.2``, or from wheels carried
along with ``pip install --no-index --find-links WHEELS devinterp``); without it the run notes the
cross-check as skipped, and ``python -m helpers.transient_ridge --claims-only`` re-judges later.

Prove it anywhere at smoke size: ``python -m helpers.transient_ridge.gpu --mode smoke --out gpu-smoke``.

A run whose time limit left no time for its curriculum can be completed later, in place, by a
second call: ``python -m helpers.transient_ridge.gpu --finish-curriculum results/transient_ridge``
(:func:`~.train.finish_curriculum`; its ``run.json`` then records both calls).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import torch

from ..cli import minutes
from ..device import device_name, pick_device
from ..results import repo_root
from . import bench
from .__main__ import main as run_main
from .train import CHECK_MS, PRECISIONS, finish_curriculum, precision_check, sizes, store

DEVICE_TESTS = ("tests/test_device.py", "tests/test_training.py", "tests/test_results.py",
                "tests/test_transient_ridge.py", "tests/test_transient_ridge_model.py",
                "tests/test_transient_ridge_speed.py", "tests/test_transient_ridge_analysis.py")
CHAPTERS = ("tree_cot", "multistep_gd", "one_lens", "transient_ridge")


def chapter_command(chapter: str, out: Path) -> list[str]:
    """The smoke pipeline of ``chapter``, writing under ``out``."""
    return [sys.executable, "-m", f"helpers.{chapter}", "--mode", "smoke", "--no-progress", "--out", str(out)]


def run_checks(out: Path, tests=DEVICE_TESTS, chapters=CHAPTERS, timeout: float = 240.0) -> dict:
    """Run the unit tests ``tests`` (pytest, on this machine's device) while every chapter's smoke
    pipeline runs beside them (two CPU threads each); logs in ``out/checks/``. Returns, per check,
    its exit status (``None``: stopped after ``timeout`` seconds) and its seconds."""
    logs = out / "checks"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"}
    commands = {f"smoke {ch}": (chapter_command(ch, logs / "smoke"), f"smoke-{ch}.log", env) for ch in chapters}
    if tests:
        commands["unit tests"] = ([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                                   *tests], "pytest.log", {**env, "OMP_NUM_THREADS": "4"})
    result = {}
    with contextlib.ExitStack() as stack:
        jobs = {}
        for name, (cmd, log_name, job_env) in commands.items():
            log = stack.enter_context(open(logs / log_name, "w"))
            # a session of its own, so that a check stopped at the time limit goes with everything it started
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=repo_root(), env=job_env,
                                    start_new_session=True)
            stack.callback(_stop, proc)
            jobs[name] = (proc, time.perf_counter())
        deadline = time.perf_counter() + timeout
        while len(result) < len(jobs):
            for name, (proc, started) in jobs.items():
                if name not in result and (proc.poll() is not None or time.perf_counter() >= deadline):
                    result[name] = {"exit": proc.poll(), "seconds": round(time.perf_counter() - started, 1)}
            time.sleep(0.1)
    return {name: result[name] for name in commands}


def _stop(proc: subprocess.Popen) -> None:
    """End ``proc`` and every process it started (its session), if it is still running."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text):
        for s in self.streams:
            s.write(text)
            s.flush()
        return len(text)

    def flush(self):
        for s in self.streams:
            s.flush()


def finish(folder: Path) -> int:
    """``--finish-curriculum``: complete the stored run in ``folder`` (:func:`~.train.finish_curriculum`)."""
    from .claims import evaluate
    folder = folder.resolve()
    if not (folder / "run.json").is_file():
        print(f"--finish-curriculum: {folder} holds no run.json (give a run's folder, e.g. "
              f"results/transient_ridge)", file=sys.stderr)
        return 2
    out = store(folder.parent, folder.name)
    t0 = time.perf_counter()
    try:
        run = finish_curriculum(out, evaluate, progress=False,
                                command=f"python -m helpers.transient_ridge.gpu --finish-curriculum {folder}")
    except (ValueError, RuntimeError) as e:        # RuntimeError: the results' own errors (stale, corrupt)
        print(f"--finish-curriculum: {e}", file=sys.stderr)
        return 2
    table = out.load_claims()
    print(table)
    trained = run["extra"]["curriculum_call"]["seconds"]
    print(f"\n{sum(c.holds for c in table.claims)}/{len(table)} claims hold. Curriculum trained in {trained:.0f} s; "
          f"completed {folder} in {time.perf_counter() - t0:.0f} s.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.transient_ridge.gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="DIR", help="output folder (packed into DIR.tar.gz); required unless "
                                                     "--finish-curriculum")
    parser.add_argument("--finish-curriculum", metavar="RUN", default=None,
                        help="only train the curriculum that the stored run in folder RUN skipped, and "
                             "complete that run in place (metrics, claims, run.json)")
    parser.add_argument("--mode", choices=("smoke", "full"), default="full")
    parser.add_argument("--max-minutes", type=minutes, default=7.0, metavar="N",
                        help="the full run's time limit (default 7); the checks, the benchmark and the "
                             "precision check come on top")
    parser.add_argument("--bench-steps", type=int, default=20, metavar="S")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="arithmetics to benchmark and to check against fp32 (default: all)")
    parser.add_argument("--check-steps", type=int, default=None, metavar="S",
                        help="steps of the precision check's small sweep (default: 300, smoke: 20)")
    parser.add_argument("--archive", default=None, metavar="PATH",
                        help="where to pack the folder (default: DIR.tar.gz)")
    parser.add_argument("--checks", action="store_true",
                        help="first run the unit tests that take a device and every chapter's smoke pipeline")
    parser.add_argument("--checks-minutes", type=minutes, default=4.0, metavar="N",
                        help="with --checks: stop the checks still running after N minutes (default 4)")
    args = parser.parse_args(argv)
    if args.bench_steps < 1:
        parser.error(f"--bench-steps must be >= 1; got {args.bench_steps}")
    if args.check_steps is not None and args.check_steps < 5:
        parser.error(f"--check-steps must be >= 5; got {args.check_steps}")
    if args.finish_curriculum is not None:
        return finish(Path(args.finish_curriculum))
    if args.out is None:
        parser.error("--out is required (unless --finish-curriculum)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(out / "log.txt", "a") as log, contextlib.redirect_stdout(_Tee(sys.stdout, log)):
        device = pick_device()
        info = {"device": device_name(device), "torch": torch.__version__, "cuda": torch.version.cuda,
                "python": platform.python_version()}
        (out / "device.json").write_text(json.dumps(info, indent=1) + "\n")
        print(json.dumps(info))
        failed = False
        if args.checks:
            checks = run_checks(out, timeout=60 * args.checks_minutes)
            failed = any(r["exit"] != 0 for r in checks.values())
            (out / "checks.json").write_text(json.dumps(checks, indent=1) + "\n")
            for name, r in checks.items():
                print(f"{name}: exit {r['exit']} in {r['seconds']:.0f} s")
        try:
            record = bench.bench(args.mode, "gpu", args.bench_steps, tuple(args.precisions))
            (out / "bench.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
            for r in record["rows"]:
                print(f"{r['precision']}: {r['grouped_ms_per_step']:.2f} ms/step grouped, "
                      f"{r['separate_ms_per_step']:.2f} one by one, {r['achieved_tflops']:.1f} TFLOP/s, "
                      f"projected run {r['projected_seconds']['total']:.0f} s")
        except Exception as e:                      # the run matters more than its benchmark
            print(f"benchmark failed: {type(e).__name__}: {e}")
        try:
            S = sizes(args.mode, "gpu")
            n = args.check_steps or (300 if args.mode == "full" else 20)
            small = dataclasses.replace(S.sweep_config(CHECK_MS), seeds=S.seeds[:1], steps=n)
            check = precision_check(small, list(range(0, n + 1, n // 5)), [p for p in args.precisions if p != "fp32"],
                                    device=device, eval_n=512 if args.mode == "full" else 64)
            (out / "precision.json").write_text(json.dumps(check) + "\n")
            print("precision check, max relative OOD difference from fp32:",
                  {p: round(r["max_relative_difference"], 4) for p, r in check.items()})
        except Exception as e:
            print(f"precision check failed: {type(e).__name__}: {e}")
        code = run_main(["--mode", args.mode, "--scale", "gpu", "--max-minutes", str(args.max_minutes),
                         "--out", str(out), "--no-progress"])
        print(f"done in {time.perf_counter() - t0:.0f} s")
    archive = Path(args.archive) if args.archive else out.with_name(out.name + ".tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    print(f"packed {archive} ({archive.stat().st_size / 2**20:.1f} MiB)")
    return code or int(failed)


if __name__ == "__main__":
    sys.exit(main())
