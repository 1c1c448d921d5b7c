"""A training loop for small models: progress bar, metric history, checkpoint schedule, resume.

The loop is deliberately plain (nanoGPT style): a ``batch_fn(step)`` draws the batch for a
step, a ``loss_fn(model, batch)`` returns the loss, an optimizer steps. Around it:

- a metric history (training loss every ``log_every`` steps, evaluations at checkpoint steps);
- a checkpoint schedule, linear ∪ log-spaced steps (:func:`checkpoint_schedule`), as studies of
  transient structure use: dense early, where the dynamics are fast, sparse later;
- resume: with ``resume_path``, the loop saves its state every ``save_every`` steps (model,
  optimiser, scheduler, history, the training loss accumulated since the last log, and the RNG
  states of the CPU and, where there is one, of every CUDA device) and, when started again after
  an interruption, continues from the last save. If ``batch_fn`` depends only on the step (use
  :func:`helpers.seeds.step_generator`), the resumed run equals an uninterrupted one on the same
  device.

Used in: ``book/getting_started.ipynb`` and every chapter.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

from .modes import show_progress
from .results import save_torch


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite; the message names the step."""


def checkpoint_schedule(total_steps: int, *, every: int | None = None, n_log: int = 0) -> list[int]:
    """Steps at which to checkpoint: ``{0, every, 2·every, …} ∪ log-spaced ∪ {total_steps}``.

    Args:
        total_steps: number of optimiser steps of the run (``T``), ``>= 1``.
        every: spacing of the linear part, ``1 <= every <= total_steps`` (None: no linear part).
        n_log: number of log-spaced points between step 1 and ``T`` (before de-duplication), ``>= 0``.

    Returns:
        Sorted, distinct ints in ``[0, T]``, always including 0 (the initialisation) and ``T``.
    """
    if not isinstance(total_steps, (int, np.integer)) or total_steps < 1:
        raise ValueError(f"total_steps must be an int >= 1; got {total_steps!r}")
    if every is not None and (not isinstance(every, (int, np.integer)) or not 1 <= every <= total_steps):
        raise ValueError(f"every must be an int in [1, total_steps={total_steps}] or None; got {every!r}")
    if not isinstance(n_log, (int, np.integer)) or n_log < 0:
        raise ValueError(f"n_log must be an int >= 0; got {n_log!r}")
    steps = {0, int(total_steps)}
    if every is not None:
        steps.update(range(0, total_steps + 1, every))
    if n_log > 0:
        steps.update(np.unique(np.round(np.logspace(0, math.log10(total_steps), n_log)).astype(int)).tolist())
    return sorted(s for s in steps if 0 <= s <= total_steps)


@dataclass
class History:
    """What a run logged.

    ``train_steps``/``train_loss``: the training loss every ``log_every`` steps (mean over the
    steps since the last log). ``eval_steps``/``evals[name]``: ``eval_fn`` at checkpoint steps.
    """

    train_steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    evals: dict[str, list[float]] = field(default_factory=dict)

    def record_eval(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.evals and set(metrics) != set(self.evals):
            raise ValueError(f"eval_fn must return the same keys every time; got {sorted(metrics)}, "
                             f"expected {sorted(self.evals)}")
        self.eval_steps.append(int(step))
        for k, v in metrics.items():
            self.evals.setdefault(k, []).append(float(v))

    def eval_array(self, name: str) -> np.ndarray:
        if name not in self.evals:
            raise KeyError(f"no eval metric {name!r}; have {sorted(self.evals)}")
        return np.asarray(self.evals[name])

    def state_dict(self) -> dict[str, Any]:
        return {"train_steps": list(self.train_steps), "train_loss": list(self.train_loss),
                "eval_steps": list(self.eval_steps), "evals": {k: list(v) for k, v in self.evals.items()}}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> "History":
        return cls(list(state["train_steps"]), list(state["train_loss"]), list(state["eval_steps"]),
                   {k: list(v) for k, v in state["evals"].items()})


class _Steps(torch.utils.data.Dataset):
    """``batch_fn`` as a map-style dataset over step numbers, for a background DataLoader worker."""

    def __init__(self, batch_fn: Callable[[int], Any], start: int, stop: int):
        self.batch_fn, self.start, self.stop = batch_fn, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> bytes:
        # pickled here, unpickled by _Prefetcher: a plain byte string crosses the process boundary
        # in one piece, where a batch of tensors would be shared one file descriptor per tensor
        # (about 1 ms each, more than drawing a small batch)
        return pickle.dumps(self.batch_fn(self.start + i), protocol=pickle.HIGHEST_PROTOCOL)


class _Prefetcher:
    """``batch_fn(step)`` for ``step = start, start + 1, …`` drawn ``depth`` batches ahead by one
    worker process (``fork``: the function is inherited, not pickled)."""

    def __init__(self, batch_fn: Callable[[int], Any], start: int, stop: int, depth: int):
        self.it = iter(torch.utils.data.DataLoader(
            _Steps(batch_fn, start, stop), batch_size=None, shuffle=False, num_workers=1, prefetch_factor=depth,
            multiprocessing_context="fork", persistent_workers=False))
        self.next = start

    def __call__(self, step: int):
        if step != self.next:
            raise RuntimeError(f"prefetched batch {self.next} requested as step {step}")
        self.next += 1
        return pickle.loads(next(self.it))


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
    batch_fn: Callable[[int], Any],
    *,
    steps: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any | None = None,
    log_every: int = 10,
    checkpoint_steps: Iterable[int] = (),
    eval_fn: Callable[[torch.nn.Module], Mapping[str, float]] | None = None,
    on_checkpoint: Callable[[int, torch.nn.Module], None] | None = None,
    grad_clip: float | None = None,
    resume_path: str | os.PathLike | None = None,
    save_every: int = 1000,
    start_step: int = 0,
    progress: bool | None = None,
    desc: str = "training",
    prefetch: int = 0,
) -> History:
    """Train ``model`` for ``steps`` optimiser steps and return its :class:`History`.

    Args:
        loss_fn: ``loss_fn(model, batch) -> scalar tensor``.
        batch_fn: ``batch_fn(step) -> batch`` for ``step = 0 … steps-1``.
        checkpoint_steps: steps (``0 … steps``) at which ``eval_fn`` and ``on_checkpoint`` run;
            step ``s`` means "after ``s`` updates" (0 is the initialisation).
        eval_fn: ``eval_fn(model) -> {name: float}``, run in ``eval`` mode without gradients.
        on_checkpoint: ``on_checkpoint(step, model)``, e.g. to keep a snapshot of the weights.
        resume_path: a file for the loop's state (model, optimiser, scheduler, step, history, the
            loss accumulated since the last log, and the CPU and CUDA RNG states). If it exists
            when ``train`` starts, training continues from it.
        save_every: save the state every this many steps (and at the end), when ``resume_path``.
        start_step: the number of updates ``model`` and ``optimizer`` have already had (they
            continue an earlier run kept in memory): training runs steps ``start_step … steps-1``
            and checkpoints after ``start_step`` only; the returned history covers those steps
            (its first training-loss entry averages fewer than ``log_every`` steps when
            ``start_step`` is not a multiple of it). Not with ``resume_path``.
        progress: show a ``tqdm`` bar (default: :func:`helpers.modes.show_progress`: yes, except in
            smoke mode and in the book build).
        prefetch: draw up to this many batches ahead in a worker process (0: none; ignored where
            processes cannot fork, e.g. Windows). Worth it when ``batch_fn`` is Python-heavy and a
            second core is free: the next batches are drawn while the model trains. The batches
            are the same.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the message names the step).
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be an int >= 0; got {steps!r}")
    if not isinstance(log_every, (int, np.integer)) or log_every < 1:
        raise ValueError(f"log_every must be an int >= 1; got {log_every!r}")
    if not isinstance(save_every, (int, np.integer)) or save_every < 1:
        raise ValueError(f"save_every must be an int >= 1; got {save_every!r}")
    if grad_clip is not None and not grad_clip > 0:
        raise ValueError(f"grad_clip must be > 0 or None; got {grad_clip!r}")
    if not isinstance(prefetch, (int, np.integer)) or prefetch < 0:
        raise ValueError(f"prefetch must be an int >= 0; got {prefetch!r}")
    if not isinstance(start_step, (int, np.integer)) or not 0 <= start_step <= steps:
        raise ValueError(f"start_step must be an int in [0, steps={steps}]; got {start_step!r}")
    if start_step and resume_path is not None:
        raise ValueError("start_step and resume_path cannot be used together: resume_path knows its own step")
    checkpoints = sorted(set(int(s) for s in checkpoint_steps))
    if checkpoints and (checkpoints[0] < 0 or checkpoints[-1] > steps):
        raise ValueError(f"checkpoint_steps must lie in [0, steps={steps}]; got {checkpoints[0]}…{checkpoints[-1]}")
    checkpoint_set = set(checkpoints)

    history = History()
    start = int(start_step)
    running, n_running = 0.0, 0     # the training loss summed since the last log, and over how many steps
    resume_path = Path(resume_path) if resume_path is not None else None
    if resume_path is not None and resume_path.is_file():
        state = torch.load(resume_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History.from_state_dict(state["history"])
        start = int(state["step"])
        running, n_running = float(state.get("running", 0.0)), int(state.get("n_running", 0))
        torch.set_rng_state(state["torch_rng"])
        cuda_rng = state.get("cuda_rng")
        if cuda_rng is not None and torch.cuda.is_available():   # saved on a GPU; a CPU machine has none to set
            torch.cuda.set_rng_state_all(cuda_rng[:torch.cuda.device_count()])
        if start > steps:
            raise ValueError(f"resume_path {resume_path} holds step {start} > steps={steps}; delete it to start over")

    def save_state(step: int) -> None:
        save_torch(resume_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "history": history.state_dict(), "step": step, "running": running, "n_running": n_running,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        })

    def checkpoint(step: int) -> None:
        if eval_fn is not None:
            was_training = model.training
            model.eval()
            with torch.no_grad():
                metrics = eval_fn(model)
            if not isinstance(metrics, Mapping):
                raise TypeError(f"eval_fn must return a {{name: float}} mapping; got {type(metrics).__name__}")
            history.record_eval(step, metrics)
            model.train(was_training)
        if on_checkpoint is not None:
            on_checkpoint(step, model)

    if progress is None:
        progress = show_progress()
    if start == 0 and 0 in checkpoint_set:
        checkpoint(0)
    model.train()
    bar = tqdm(range(start, steps), total=steps, initial=start, desc=desc, disable=not progress, leave=False)
    can_fork = "fork" in multiprocessing.get_all_start_methods()
    batches = _Prefetcher(batch_fn, start, steps, prefetch) if prefetch and can_fork and steps > start else batch_fn
    for step in bar:
        loss = loss_fn(model, batches(step))
        if not (isinstance(loss, torch.Tensor) and loss.ndim == 0):
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise TypeError(f"loss_fn must return a scalar (0-d) tensor; got {got} (a forgotten .mean()?)")
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"loss became {value} at step {step} (of {steps}); try a smaller learning rate or grad_clip"
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        running += value
        n_running += 1
        done = step + 1
        if done % log_every == 0 or done == steps:
            history.train_steps.append(done)
            history.train_loss.append(running / n_running)
            bar.set_postfix(loss=f"{running / n_running:.4g}", refresh=False)
            running, n_running = 0.0, 0
        if done in checkpoint_set:
            checkpoint(done)
        if resume_path is not None and (done % save_every == 0 or done == steps):
            save_state(done)
    bar.close()
    return history
