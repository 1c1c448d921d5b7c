"""Training the chapter's models, its sizes per mode, and its full run.

- :class:`SweepConfig` — one grouped training run: G models (one per task count M and seed),
  each step drawing, for each group ``g``, a batch whose tasks come from the first ``M_g`` tasks
  of one nested pool (``M = ∞``: fresh Gaussian tasks), and one Adam step on the sum of the
  groups' mean squared errors — exactly G separate training runs, in one pass;
- :func:`train_sweep` — train it, with per-group metrics (:func:`~.analysis.evaluate_sweep`) at
  every checkpoint and optional weight snapshots;
- :class:`Sizes` — every size of the chapter per mode (:func:`sizes`), in one place;
- :func:`full_run` — the full run behind ``python -m helpers.transient_ridge``; :func:`store`
  and :func:`load` — its results.

Used in: every page of book/transient_ridge/ and ``python -m helpers.transient_ridge``.
"""
from __future__ import annotations

import bisect
import contextlib
import dataclasses
import math
import numbers
import re
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from ..checks import check_int
from ..device import device_name, pick_device, seed_everything
from ..modes import by_mode, get_mode, show_progress
from ..results import ResultStore, RunOutput, git_commit, jsonable, output_root, provenance, write_json
from ..seeds import derive_seed, torch_generator
from ..training import NonFiniteLossError, checkpoint_schedule
from .analysis import (
    bayes_references,
    estimate_llc,
    estimate_llc_devinterp,
    evaluate_sweep,
    label,
    make_eval_set,
    pca_section,
    settled,
    summaries,
)
from .data import TaskPool, check_M, check_sigma2, sample_groups, tokenize
from .models import GroupedTransformer, ModelConfig, forward_flops

CHAPTER = "transient_ridge"
SCHEMA = 1
INF = math.inf
# The paper's scale, for the page that states ours next to it.
PAPER = dict(D=8, K=16, sigma2=0.125, params="2.65M", layers=2, steps=150_000,
             Ms="1 … 2^15 and ∞", probe=512, pca_pc12_variance=0.275)


# ------------------------------------------------------------------------------ one grouped run

@dataclass(frozen=True)
class SweepConfig:
    """A sweep: task counts ``Ms`` (ints or ``math.inf``), ``seeds`` per M, data (``sigma2``), the
    model (``model``: its ``D`` and ``K`` are the task's), and Adam (``lr``, ``batch``, ``steps``;
    ``decay``: the last fraction of the steps over which lr falls linearly to lr/10, 0 for none).

    ``curriculum``: optional stages ``((0, M_0), (s_1, M_1), …)``: from step ``s_i`` every group
    trains on ``min(M, M_i)`` tasks of the nested pool — task diversity raised in stages up to
    the group's own ``M`` (this book's experiment). Empty: each group trains on ``M`` throughout."""

    Ms: tuple = (1, 4, 16, 64, math.inf)
    seeds: tuple = (0,)
    sigma2: float = 0.125
    model: ModelConfig = field(default_factory=ModelConfig)
    batch: int = 64
    lr: float = 2e-3
    steps: int = 1000
    pool_seed: int = 0
    curriculum: tuple = ()
    decay: float = 0.0

    def __post_init__(self):
        if not self.Ms:
            raise ValueError("Ms must list at least one task count")
        for M in self.Ms:
            check_M(M)
        if not self.seeds:
            raise ValueError("seeds must list at least one seed")
        if (any(isinstance(x, bool) or not isinstance(x, numbers.Integral) or x < 0 for x in self.seeds)
                or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"seeds must be distinct ints >= 0; got {self.seeds!r}")
        check_int("pool_seed", self.pool_seed, 0)
        check_sigma2(self.sigma2)
        check_int("batch", self.batch, 1)
        check_int("steps", self.steps, 0)
        if not (isinstance(self.lr, float) and self.lr > 0):
            raise ValueError(f"lr must be a float > 0; got {self.lr!r}")
        if not (isinstance(self.decay, (int, float)) and 0 <= self.decay <= 1):
            raise ValueError(f"decay must be a fraction in [0, 1]; got {self.decay!r}")
        if self.curriculum:
            starts = [s for s, _ in self.curriculum]
            if starts[0] != 0 or starts != sorted(set(starts)):
                raise ValueError(f"curriculum must be ((0, M_0), (start_1, M_1), …) with increasing start steps; "
                                 f"got {self.curriculum!r}")
            for _, M in self.curriculum:
                check_M(M)

    def lr_factor(self, step: int) -> float:
        """The learning-rate multiplier at ``step``: 1, then linear to 0.1 over the last ``decay`` of training."""
        start = self.steps * (1 - self.decay)
        if self.decay == 0 or step < start:
            return 1.0
        return 1.0 - 0.9 * min(1.0, (step - start) / (self.steps - start))

    def M_at(self, M_final, step: int):
        """The task count a group whose final count is ``M_final`` trains on at ``step``:
        ``min(M_final, M_stage)`` for the curriculum stage holding ``step`` (no curriculum: ``M_final``)."""
        stage = [M for start, M in self.curriculum if start <= step]
        return min(M_final, stage[-1]) if stage else M_final

    @property
    def groups(self) -> list[tuple]:
        """``[(M, seed), …]``, one per group, M-major."""
        return [(M, s) for M in self.Ms for s in self.seeds]


def stack_models(models: list[GroupedTransformer]) -> GroupedTransformer:
    """One grouped model whose groups are the given models' groups, in order (same config)."""
    if not models:
        raise ValueError("models must hold at least one GroupedTransformer")
    config = models[0].config
    if any(m.config != config for m in models):
        raise ValueError("models must share one ModelConfig")
    grouped = GroupedTransformer(config, sum(m.groups for m in models))
    grouped.load_state_dict({k: torch.cat([m.state_dict()[k].cpu() for m in models]) for k in grouped.state_dict()})
    return grouped


def make_model(cfg: SweepConfig, device="cpu") -> GroupedTransformer:
    """The grouped model; group ``g`` is initialised from its own seed (so a group equals a separate run)."""
    models = [GroupedTransformer(cfg.model, 1, torch_generator(1000 + s)) for _, s in cfg.groups]
    return stack_models(models).to(device)


def batch_fn(cfg: SweepConfig, pool: TaskPool, device="cpu", seed: int = 0):
    """``draw(step) -> (tokens (G, B, 2K, D+1), ys (G, B, K))`` on ``device``, in one vectorised
    draw (:func:`~.data.sample_groups`) from a generator on the device seeded by
    ``(seed, cfg.seeds…, pool_seed, step)`` — so the batch of a step is the same whenever it is
    drawn (resumed runs equal uninterrupted ones) and a step costs no host-to-device copy.

    The pool tasks and each curriculum stage's task counts are put on the device once."""
    dev = torch.device(device)
    finite = [M for M in list(cfg.Ms) + [M for _, M in cfg.curriculum] if M != INF]
    pool_t = pool.tasks(max(finite)).to(dev) if finite else torch.zeros(1, cfg.model.D, device=dev)
    starts = [s for s, _ in cfg.curriculum] or [0]
    stage_Ms = [torch.tensor([float(cfg.M_at(M, s)) for M, _ in cfg.groups], device=dev) for s in starts]
    base = derive_seed(seed, *cfg.seeds, cfg.pool_seed)
    gen = torch.Generator(device=dev)

    def draw(step: int):
        gen.manual_seed(derive_seed(base, step))
        xs, ys = sample_groups(pool_t, stage_Ms[bisect.bisect_right(starts, step) - 1], cfg.batch, cfg.model.K,
                               cfg.sigma2, gen)
        return tokenize(xs, ys), ys
    return draw


def group_losses(model: GroupedTransformer, batch) -> torch.Tensor:
    """(G,) mean squared error of each group over its batch and all K positions."""
    tokens, ys = batch
    return ((model(tokens).float() - ys) ** 2).mean((1, 2))


def sweep_loss(model: GroupedTransformer, batch) -> torch.Tensor:
    """Sum over groups: each group's gradient is its own loss's."""
    return group_losses(model, batch).sum()


PRECISIONS = ("fp32", "tf32", "bf16")


@contextlib.contextmanager
def precision(mode: str, device="cpu"):
    """Arithmetic for training steps: ``"fp32"`` (exact float32), ``"tf32"`` (float32 matmuls on
    TensorFloat-32 cores where the GPU has them) or ``"bf16"`` (autocast to bfloat16). Open one
    block per optimiser step (forward, backward, step): autocast keeps its bf16 copies of the
    weights until its block ends, so a block spanning several steps trains on stale weights."""
    if mode not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {mode!r}")
    before = torch.get_float32_matmul_precision()
    try:
        if mode == "tf32":
            torch.set_float32_matmul_precision("high")
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=mode == "bf16"):
            yield
    finally:
        torch.set_float32_matmul_precision(before)


def compiled(model: torch.nn.Module, enabled: bool | str):
    """``torch.compile(model)`` when ``enabled`` — ``True``, or a ``torch.compile`` mode such as
    ``"reduce-overhead"`` (CUDA graphs: one launch for the whole step's forward and backward) —
    else ``model``. See :func:`compiled_or_eager` for the fallback."""
    if not enabled:
        return model
    return torch.compile(model, dynamic=False, mode=enabled if isinstance(enabled, str) else None)


def train_step(forward, opt: torch.optim.Optimizer, batch, precision_mode: str = "fp32", device="cpu") -> torch.Tensor:
    """One Adam step of the sweep's loss on ``batch``, all of it (forward, backward, step) in one
    :func:`precision` block of its own; returns the loss (on the device, not read back)."""
    with precision(precision_mode, device):
        loss = sweep_loss(forward, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return loss


def compiled_or_eager(model: torch.nn.Module, compile: bool | str, batch, precision_mode: str = "fp32",
                      device="cpu"):
    """``(forward, status)``: the model through :func:`compiled`, tried once (forward and backward on
    ``batch``, which compiles it; the gradients it leaves are cleared by the next step's
    ``zero_grad``), or the model itself if compiling fails (e.g. with no C++ compiler), with a
    warning. ``status``: ``"off"``, the compile setting, or ``"failed: <error>"``."""
    if not compile:
        return model, "off"
    try:
        fast = compiled(model, compile)
        with precision(precision_mode, device):
            sweep_loss(fast, batch).backward()
        return fast, str(compile)
    except Exception as e:
        warnings.warn(f"torch.compile failed ({type(e).__name__}); running without it")
        return model, f"failed: {type(e).__name__}"


def train_sweep(cfg: SweepConfig, checkpoints, *, device="cpu", eval_n: int = 512, n_probe: int = 512,
                snapshot_steps=(), progress: bool | None = None, precision_mode: str = "fp32",
                compile: bool | str = False, check_every: int = 100, deadline: float | None = None,
                on_checkpoint=None):
    """Train the sweep; returns ``(model, log)`` with the per-group metrics at each checkpoint
    (``log["features"]``: (n_checkpoints, G, P·K)) and the Bayes references.

    The step loop never waits for the device: batches are drawn on it (:func:`batch_fn`), the
    loss is summed on it, and it is read back (and checked for NaN/inf) every ``check_every``
    steps and at checkpoints, where :class:`~helpers.training.NonFiniteLossError` names the step range.

    ``snapshot_steps``: checkpoint steps at which to keep a CPU copy of the weights, in
    ``log["snapshots"][step]`` (a grouped model's state dict) — e.g. for the LLC over training.
    ``precision_mode``: see :func:`precision`; ``compile``: train through ``torch.compile`` (falls
    back to eager, noted in ``log["compile"]``). ``deadline``: a ``time.monotonic()`` value; at the
    first checkpoint after it training stops (``log["stopped_at"]``). ``on_checkpoint(step, log)``
    runs after each checkpoint's metrics are logged (e.g. to save partial results)."""
    snapshot_steps = set(int(s) for s in snapshot_steps)
    if not snapshot_steps <= set(int(s) for s in checkpoints):
        raise ValueError(f"snapshot_steps must be checkpoint steps; "
                         f"{sorted(snapshot_steps - set(checkpoints))} are not")
    check_int("check_every", check_every, 1)
    device = torch.device(device)
    pool = TaskPool(cfg.model.D, cfg.pool_seed)
    model = make_model(cfg, device)
    ev = make_eval_set(cfg, pool, eval_n, n_probe, device=device)
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, **fused)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cfg.lr_factor)
    log: dict = {"step": [], "ood": [], "id": [], "d_ridge": [], "d_dmmse": [], "features": [],
                 "groups": [("inf" if M == math.inf else M, s) for M, s in cfg.groups], "n_ood": eval_n,
                 "ood_ridge_loss": ev.ood_ridge_loss, "ood_dmmse_loss": ev.ood_dmmse_loss, "snapshots": {},
                 "precision": precision_mode, "stopped_at": None}
    log.update(bayes_references(cfg, pool, ev))
    ckset = set(int(s) for s in checkpoints)

    def checkpoint(step):
        if step in snapshot_steps:
            log["snapshots"][step] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        r = evaluate_sweep(model, ev)
        log["step"].append(step)
        for k in ("ood", "id", "d_ridge", "d_dmmse", "features"):
            log[k].append(r[k])
        if on_checkpoint is not None:
            on_checkpoint(step, log)

    draw = batch_fn(cfg, pool, device)
    forward, log["compile"] = compiled_or_eager(model, compile, draw(0), precision_mode, device)
    G = len(cfg.groups)
    t0 = time.perf_counter()
    if 0 in ckset:
        checkpoint(0)
    running, last = torch.zeros((), device=device), 0
    bar = tqdm(total=cfg.steps, desc=f"sweep over {len(cfg.Ms)} M × {len(cfg.seeds)} seeds", leave=False,
               disable=not (progress if progress is not None else show_progress()))
    done = 0
    model.train()
    for step in range(cfg.steps):
        loss = train_step(forward, opt, draw(step), precision_mode, device)
        sched.step()
        running += loss.detach()
        done = step + 1
        if done % check_every == 0 or done in ckset or done == cfg.steps:
            mean = running.item() / (done - last) / G          # the one host synchronisation
            if not math.isfinite(mean):
                raise NonFiniteLossError(f"the sweep's loss became {mean} between steps {last} and {done} (of "
                                         f"{cfg.steps}); try a smaller lr (now {cfg.lr}) or precision='fp32'")
            bar.update(done - last)
            bar.set_postfix(loss=f"{mean:.4g}", refresh=False)
            running.zero_()
            last = done
        if done in ckset:
            with precision("fp32", device):
                checkpoint(done)
            if deadline is not None and time.monotonic() >= deadline and done < cfg.steps:
                log["stopped_at"] = done
                break
    bar.close()
    log["steps_done"] = done
    log["seconds"] = time.perf_counter() - t0
    log["features"] = torch.stack(log["features"]) if log["features"] else torch.empty(0)
    return model, log


def precision_check(cfg: SweepConfig, checkpoints, precisions=("tf32", "bf16"), device="cpu",
                    eval_n: int = 512) -> dict:
    """Train the same small sweep in fp32 and in each of ``precisions`` on ``device``; returns, per
    precision, the largest relative difference of its OOD curves from fp32's (and the curves) —
    the measured check that a faster arithmetic leaves the curves as they were."""
    def curves(p):
        return np.asarray(train_sweep(cfg, checkpoints, device=device, eval_n=eval_n, n_probe=1, progress=False,
                                      precision_mode=p)[1]["ood"])
    ref = curves("fp32")
    out = {"fp32": {"ood": ref.tolist(), "max_relative_difference": 0.0}}
    for p in precisions:
        c = curves(p)
        out[p] = {"ood": c.tolist(), "max_relative_difference": float(np.max(np.abs(c - ref) / ref))}
    return out


def time_grouped_vs_separate(cfg: SweepConfig, steps: int = 20, device="cpu", precision_mode: str = "fp32",
                             separate: bool = True, compile: bool | str = False) -> dict:
    """Seconds per step of the grouped model against G separate models stepped one after another,
    on the same device and batches (the first 3 steps of each are warm-up, not timed), with the
    training step's arithmetic ``precision_mode``; ``separate=False`` times the grouped model only;
    ``compile``: the grouped model through :func:`compiled` (the warm-up steps include compiling;
    on failure it is timed eagerly and ``"compile"`` says so)."""
    check_int("steps", steps, 1)
    pool = TaskPool(cfg.model.D, cfg.pool_seed)
    draw = batch_fn(cfg, pool, device)
    batches = [draw(s) for s in range(steps + 3)]
    grouped = make_model(cfg, device)
    singles = [grouped.select(g).to(device) for g in range(grouped.groups)]

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    def run(models, split):
        opts = [torch.optim.Adam(m.parameters(), lr=cfg.lr) for m in models]
        for i, b in enumerate(batches):
            if i == 3:
                sync()
                t0 = time.perf_counter()
            for j, (m, o) in enumerate(zip(models, opts)):
                train_step(m, o, (b[0][j:j + 1], b[1][j:j + 1]) if split else b, precision_mode, device)
        sync()
        return (time.perf_counter() - t0) / steps

    fast, status = compiled_or_eager(grouped, compile, batches[0], precision_mode, device)
    t_grouped = run([fast], split=False)
    t_separate = run(singles, split=True) if separate else math.nan
    return {"grouped_s_per_step": t_grouped, "separate_s_per_step": t_separate, "speedup": t_separate / t_grouped,
            "groups": grouped.groups, "device": str(device), "precision": precision_mode, "compile": status}


# ------------------------------------------------------------------------------ sizes per mode

@dataclass(frozen=True)
class LLCConfig:
    """SGLD settings of :func:`~.analysis.estimate_llc`: step size ``lr`` (ε), ``nbeta`` (nβ),
    ``localization`` (γ), and ``num_chains`` chains of ``num_burnin`` + ``num_draws`` steps."""

    lr: float = 3e-4
    nbeta: float = 60.0
    localization: float = 100.0
    num_chains: int = 4
    num_draws: int = 200
    num_burnin: int = 100

    def kwargs(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Sizes:
    """Every size of the chapter for one mode.

    The sweep: ``model``, task counts ``Ms``, ``seeds``, noise ``sigma2``, Adam (``batch``, ``lr``,
    ``steps``, ``decay``), checkpoints every ``ckpt_every`` steps plus ``ckpt_log`` log-spaced ones,
    ``eval_n`` evaluation and ``n_probe`` probe sequences. The curriculum: the final task counts
    ``curriculum_Ms`` and the ``curriculum_stages`` over equal parts of training. The LLC: settings
    ``llc`` on batches of ``llc_batch``, over training at ``llc_M`` on ``n_snapshots`` snapshots.
    ``timing_steps``: steps of the grouped-versus-separate timing; ``keep_final``: the M whose
    final weights are saved. Speed: ``precision`` (:func:`precision`), ``compile`` (``torch.compile``),
    the loss read back every ``check_every`` steps."""

    model: ModelConfig
    Ms: tuple
    seeds: tuple
    sigma2: float
    batch: int
    lr: float
    steps: int
    decay: float
    ckpt_every: int
    ckpt_log: int
    eval_n: int
    n_probe: int
    curriculum_Ms: tuple
    curriculum_stages: tuple
    llc_M: int
    n_snapshots: int
    llc: LLCConfig
    llc_batch: int
    timing_steps: int
    keep_final: tuple
    precision: str = "fp32"
    compile: bool | str = False
    check_every: int = 100

    def sweep_config(self, Ms: tuple | None = None) -> SweepConfig:
        """The sweep over M (one group per M and seed); ``Ms`` overrides the task counts."""
        return SweepConfig(Ms=self.Ms if Ms is None else tuple(Ms), seeds=self.seeds, sigma2=self.sigma2,
                           model=self.model, batch=self.batch, lr=self.lr, steps=self.steps, decay=self.decay)

    def curriculum_config(self) -> SweepConfig:
        """The same training with task diversity raised in stages: ``curriculum_stages`` over equal
        parts of training, each group capped at its own final M (``curriculum_Ms``)."""
        n = len(self.curriculum_stages)
        stages = tuple((i * self.steps // n, M) for i, M in enumerate(self.curriculum_stages))
        return dataclasses.replace(self.sweep_config(self.curriculum_Ms), curriculum=stages)

    def checkpoints(self) -> list[int]:
        """Checkpoint steps: every ``ckpt_every`` steps plus ``ckpt_log`` log-spaced ones (early training)."""
        return checkpoint_schedule(self.steps, every=self.ckpt_every, n_log=self.ckpt_log)

    def snapshot_steps(self) -> list[int]:
        """``n_snapshots`` checkpoint steps, log-spaced from 1% of training to the end (LLC over training)."""
        ck = np.array(self.checkpoints())
        targets = np.logspace(math.log10(max(1, self.steps // 100)), math.log10(self.steps), self.n_snapshots)
        return sorted({int(ck[np.argmin(abs(ck - t))]) for t in targets})

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, record: dict) -> "Sizes":
        """The sizes as stored in a run's ``metrics.json`` (``"inf"`` for M = ∞, lists for tuples)."""
        def M(x):
            return INF if x in ("inf", "∞", INF) else int(x)
        r = dict(record)
        r["model"], r["llc"] = ModelConfig(**r["model"]), LLCConfig(**r["llc"])
        for k in ("Ms", "curriculum_Ms", "curriculum_stages", "keep_final"):
            r[k] = tuple(M(x) for x in r[k])
        r["seeds"] = tuple(r["seeds"])
        return cls(**{k: v for k, v in r.items() if k in {f.name for f in dataclasses.fields(cls)}})

    def flops_per_step(self) -> float:
        """FLOPs of one training step of the whole sweep (all groups), counted analytically:
        3 × forward (forward + backward) of every sequence, :func:`~.models.forward_flops`."""
        return 3.0 * forward_flops(self.model) * self.batch * len(self.sweep_config().groups)


CPU = Sizes(model=ModelConfig(D=4, K=8, d_model=64, n_layers=2, n_heads=4, d_mlp=128),
            Ms=(1, 2, 4, 8, 16, 32, 64, 128, 256, INF), seeds=(0,), sigma2=0.125, batch=128, lr=3e-3, steps=10_000,
            decay=0.2, ckpt_every=250, ckpt_log=30, eval_n=4096, n_probe=256,
            curriculum_Ms=(16, 256, INF), curriculum_stages=(4, 16, 64, INF), llc_M=16, n_snapshots=10,
            llc=LLCConfig(lr=3e-4, nbeta=60.0, localization=100.0, num_chains=4, num_draws=200, num_burnin=100),
            llc_batch=256, timing_steps=20, keep_final=(2, 16, INF))
# The paper's task (D = 8, K = 16, σ² = 0.125) for one GPU: 13 task counts × 3 seeds, 0.40M parameters per model.
# TF32 and torch.compile: on an H200 the benchmark's grouped step took 13.0 ms in TF32 eagerly, 10.1 ms compiled
# (20.4 ms in float32); on this model TF32's curves stayed within 7.1% of float32's and bf16's within 7.4%, where
# float32's own moved by up to 9.4% between checkpoints; the committed run (results/transient_ridge/) trained
# its 20,000 sweep steps compiled in 4.3 minutes.
GPU = Sizes(model=ModelConfig(D=8, K=16, d_model=128, n_layers=2, n_heads=4, d_mlp=512),
            Ms=(1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256, 1024, INF), seeds=(0, 1, 2), sigma2=0.125, batch=128,
            lr=1e-3, steps=20_000, decay=0.2, ckpt_every=250, ckpt_log=40, eval_n=4096, n_probe=128,
            curriculum_Ms=(32, 1024, INF), curriculum_stages=(8, 32, 128, INF), llc_M=32, n_snapshots=10,
            llc=LLCConfig(lr=3e-4, nbeta=60.0, localization=100.0, num_chains=4, num_draws=200, num_burnin=100),
            llc_batch=256, timing_steps=20, keep_final=(2, 32, INF), precision="tf32", compile=True)
SMOKE = dataclasses.replace(
    CPU, model=ModelConfig(D=4, K=8, d_model=16, n_layers=1, n_heads=2, d_mlp=32), Ms=(1, 4, 16, INF), batch=32,
    steps=40, ckpt_every=10, ckpt_log=4, eval_n=64, n_probe=32, curriculum_Ms=(16, INF), n_snapshots=3,
    llc=dataclasses.replace(CPU.llc, num_chains=2, num_draws=10, num_burnin=5), llc_batch=32, timing_steps=2,
    keep_final=(16, INF), check_every=10)
# The GPU configuration's shape (the paper's D and K, two seeds, 12 finite M) at smoke size, to prove its script.
SMOKE_GPU = dataclasses.replace(
    SMOKE, model=ModelConfig(D=8, K=16, d_model=16, n_layers=2, n_heads=2, d_mlp=32), seeds=(0, 1),
    Ms=(1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256, 1024, INF), llc_M=16, keep_final=(2, 16, INF), eval_n=128)
SCALES = ("cpu", "gpu")
FULL = GPU   # the chapter's full run is the GPU configuration; ``scale="cpu"`` is the 2-core CPU one


def sizes(mode: str | None = None, scale: str | None = None) -> Sizes:
    """The chapter's sizes for ``mode`` (default: the current mode) and ``scale``: ``"gpu"`` (the
    paper's task, for one GPU; the default for full mode) or ``"cpu"`` (D = 4, K = 8, one seed, for
    a 2-core CPU in about 80 minutes). Default mode = full mode: the pages load the full run's
    results rather than train at a smaller scale. Smoke mode with ``scale="gpu"``: the GPU
    configuration's shape at smoke size."""
    if scale is not None and scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES} or None; got {scale!r}")
    full = CPU if scale == "cpu" else GPU
    smoke = SMOKE_GPU if scale == "gpu" else SMOKE
    return by_mode(smoke=smoke, default=full, full=full, mode=mode)


# ------------------------------------------------------------------------------ SGLD batches

def llc_batches(cfg: SweepConfig, batch: int, seed: int = 7, device="cpu"):
    """``draw(i)`` for :func:`~.analysis.estimate_llc`: fresh batches of each group's own (final)
    training distribution, disjoint from the training batches (seeds ``seed + s``, steps from 10⁷)."""
    plain = SweepConfig(Ms=cfg.Ms, seeds=tuple(seed + s for s in cfg.seeds), sigma2=cfg.sigma2, model=cfg.model,
                        batch=batch, lr=cfg.lr, steps=cfg.steps, pool_seed=cfg.pool_seed)
    draw = batch_fn(plain, TaskPool(cfg.model.D, cfg.pool_seed), device)
    return lambda i: draw(10_000_000 + i)


def one_M_batches(S: Sizes, M, device="cpu"):
    """:func:`llc_batches` for a single run at task count ``M`` (one group, the first seed's; expand to share them)."""
    return llc_batches(dataclasses.replace(S.sweep_config((M,)), seeds=S.seeds[:1]), S.llc_batch, device=device)


# ------------------------------------------------------------------------------ the full run

def store(root=None, folder: str | None = None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/transient_ridge/``; ``folder``:
    another folder of ``root``, see :func:`cpu_store`). Its messages name both scales' commands:
    a full run without ``--scale`` is refused on a CPU."""
    command = ("`python -m helpers.transient_ridge --mode full --scale gpu` on a GPU, or on a CPU (a smaller "
               "configuration, about 80 minutes on 2 cores) "
               "`python -m helpers.transient_ridge --mode full --scale cpu`")
    return ResultStore(CHAPTER, command=command, schema=SCHEMA, root=root, folder=folder)


def _curves(log: dict) -> dict:
    keep = ("step", "ood", "id", "d_ridge", "d_dmmse", "groups", "ood_ridge_loss", "ood_dmmse_loss",
            "id_ridge_loss", "id_dmmse_loss", "d_bayes", "d_zero_ridge", "n_ood", "precision", "compile")
    out = {k: log[k] for k in keep if k in log}
    out["seconds"] = log.get("seconds")          # None while the sweep is still running
    return out


def _llc_record(est, groups) -> dict:
    return {"llc": est.llc.tolist(), "llc_std": est.llc_std.tolist(), "init_loss": est.init_loss.tolist(),
            "settled": settled(est), "settings": est.settings, "groups": groups}


def grouped_from_state(cfg: SweepConfig, state: dict) -> GroupedTransformer:
    """A grouped model of ``cfg``'s groups holding the weights ``state`` (e.g. a snapshot)."""
    model = GroupedTransformer(cfg.model, len(cfg.groups))
    model.load_state_dict(state)
    return model


def pca_groups(groups) -> list[int]:
    """Indices of the groups the joint PCA is fitted on: the first seed of every M (one run per M, as in the paper)."""
    first = groups[0][1]
    return [g for g, (_, s) in enumerate(groups) if s == first]


def first_seed(log: dict) -> dict:
    """A run's sweep (or curriculum) metrics restricted to the first seed of every M (the groups of
    :func:`pca_groups`): per-checkpoint lists (n_checkpoints, G) and per-group lists (G) cut to
    those columns, the rest as it was — one curve per M for the figures."""
    idx = pca_groups(log["groups"])
    out = dict(log)
    for k in ("ood", "id", "d_ridge", "d_dmmse"):
        if k in log:
            out[k] = [[row[g] for g in idx] for row in log[k]]
    for k in ("groups", "summary", "ood_dmmse_loss", "id_ridge_loss", "id_dmmse_loss", "d_bayes", "d_zero_ridge"):
        if k in log:
            out[k] = [log[k][g] for g in idx]
    return out


def feature_groups(groups, n_stored: int) -> list[int]:
    """The sweep group of each column of a run's stored probe features (``arrays["features"]``,
    (n_checkpoints, n_stored, P·K)): the groups of :func:`pca_groups`, or every group for runs
    that stored them all (older runs, one seed)."""
    for idx in (pca_groups(groups), list(range(len(groups)))):
        if n_stored == len(idx):
            return idx
    raise ValueError(f"the stored features have {n_stored} columns; the sweep has {len(groups)} groups, "
                     f"{len(pca_groups(groups))} of them the PCA's: the features belong to another run")


def derive_metrics(metrics: dict, arrays: dict) -> dict:
    """(Re)compute the derived parts of a run's metrics from its raw curves and probe features, in
    place: every group's transient summary (:func:`~.analysis.summaries`, smoothed) and the joint
    PCA section (:func:`~.analysis.pca_section`) from ``arrays["features"]`` (n_checkpoints,
    G', P·K) of the groups :func:`pca_groups`. Used by the full run and by ``--claims-only``, so a
    stored run is re-judged with the current definitions without retraining."""
    sw = metrics["sweep"]
    sw["summary"] = summaries(sw)
    if metrics.get("curriculum"):
        metrics["curriculum"]["summary"] = summaries(metrics["curriculum"])
    feats = arrays.get("features")
    if feats is not None and len(feats):
        idx = feature_groups(sw["groups"], feats.shape[1])
        metrics["pca"] = pca_section(torch.as_tensor(np.asarray(feats, dtype=np.float32)),
                                     torch.as_tensor(arrays["probe_ridge"]),
                                     torch.as_tensor(arrays["probe_dmmse"])[idx], sw["step"][:feats.shape[0]],
                                     [label(sw["groups"][g][0]) for g in idx])
    return metrics


def refresh_metrics(out: ResultStore) -> None:
    """``--claims-only``: re-derive the stored run's summaries and PCA with the current code
    (:func:`derive_metrics`) before its claims are re-judged; ``run.json`` records it."""
    metrics = out.load_json("metrics.json")
    arrays = out.load_arrays("arrays.npz") if out.exists("arrays.npz") else {}
    out.save_json("metrics.json", derive_metrics(metrics, arrays))


CHECK_MS = (1, 4, 16, math.inf)   # the GPU call's precision check's task counts: memorising, the dips, ridge
SWEEP_SHARE = 0.75    # with --max-minutes: the sweep stops at the first checkpoint after this share of the time
FLUSH_SECONDS = 60.0  # partial results are written at most this often during the sweep


def full_run(mode: str, progress: bool = True, *, scale: str | None = None, max_minutes: float | None = None,
             save=None) -> RunOutput:
    """Every experiment of the chapter at the sizes of ``mode`` and ``scale`` (:func:`sizes`), on
    the GPU when there is one, in order of importance:

    1. the sweep over M as one grouped model (with weight snapshots for the LLC over training);
    2. the joint trajectory PCA; 3. the LLC of every M at the end of training, and of ``llc_M``
    over training; 4. the cross-check against ``devinterp``; 5. grouped against one-by-one
    training; 6. the curriculum over M (skipped when ``max_minutes`` leaves no time for it).

    ``save(run)``: called with the results so far at checkpoints of the sweep (at most every
    ``FLUSH_SECONDS``) and after every stage, so a run that is cut short leaves a complete, smaller
    result; ``run.extra`` says how far it got. ``max_minutes``: stop the sweep at the first
    checkpoint after ``SWEEP_SHARE`` of it, then finish the PCA, LLC and claims on what it has.

    Returns the metrics (curves, summaries, LLC estimates, timings), ``arrays.npz`` (probe features
    of every checkpoint of the PCA's groups as float16, the predictors' features, LLC loss traces)
    and ``final.pt`` (the final weights of the first seed of the ``keep_final`` M).
    """
    S = sizes(mode, scale)
    if max_minutes is not None and not (isinstance(max_minutes, (int, float)) and max_minutes > 0):
        raise ValueError(f"max_minutes must be a number > 0 or None; got {max_minutes!r}")
    seed_everything(S.seeds[0])
    device = pick_device()
    t0 = time.perf_counter()
    start = time.monotonic()
    deadline = None if max_minutes is None else start + 60 * max_minutes
    metrics: dict = {"sizes": S.to_json(), "scale": scale or ("gpu" if S in (GPU, SMOKE_GPU) else "cpu"),
                     "seconds": {}, "flops_per_step": S.flops_per_step()}
    arrays: dict[str, np.ndarray] = {}
    files = {"arrays.npz": arrays}
    extra = {"complete": False, "stage": "sweep", "steps": S.steps, "steps_done": 0, "stopped_by": None,
             "max_minutes": max_minutes}
    cfg = S.sweep_config()
    groups = [M for M, _ in cfg.groups]
    first = pca_groups(cfg.groups)

    def emit(stage: str) -> RunOutput:
        extra["stage"] = stage
        run = RunOutput(metrics=metrics, seeds=list(S.seeds), device=device_name(device),
                        seconds=time.perf_counter() - t0, files=files, extra=dict(extra))
        if save is not None:
            save(run)
        return run

    def sweep_results(log: dict) -> None:
        metrics["sweep"] = _curves(log)
        feats = torch.stack(log["features"]) if isinstance(log["features"], list) else log["features"]
        arrays["features"] = feats[:, first].numpy().astype(np.float16)
        arrays["probe_ridge"] = log["probe_ridge"].numpy()
        arrays["probe_dmmse"] = log["probe_dmmse"].numpy()
        extra["steps_done"] = log["step"][-1] if log["step"] else 0
        derive_metrics(metrics, arrays)

    last_flush = [time.monotonic()]

    def on_checkpoint(step, log):
        if save is not None and time.monotonic() - last_flush[0] >= FLUSH_SECONDS and len(log["step"]) > 1:
            sweep_results(log)
            emit("sweep")
            last_flush[0] = time.monotonic()

    # 1. the sweep over M, with snapshots of every group for the LLC over training
    ckpts = S.checkpoints()
    sweep_deadline = None if deadline is None else start + SWEEP_SHARE * 60 * max_minutes
    model, log = train_sweep(cfg, ckpts, device=device, eval_n=S.eval_n, n_probe=S.n_probe,
                             snapshot_steps=S.snapshot_steps(), progress=progress, precision_mode=S.precision,
                             compile=S.compile, check_every=S.check_every, deadline=sweep_deadline,
                             on_checkpoint=on_checkpoint)
    metrics["seconds"]["sweep"] = log["seconds"]
    metrics["parameters"] = model.parameter_count()
    # 2. joint trajectory PCA (in derive_metrics; the pages refit it from the same features)
    sweep_results(log)
    if log["stopped_at"] is not None:
        extra["stopped_by"] = "max_minutes"
    files["final.pt"] = {label(M): {k: v.cpu() for k, v in model.select(groups.index(M)).state_dict().items()}
                         for M in S.keep_final}
    emit("pca")

    # 3. the LLC: every M at the end of training, then one M over training
    timer = time.perf_counter()
    llc = S.llc.kwargs()
    est_M = estimate_llc(model, group_losses, llc_batches(cfg, S.llc_batch, device=device), **llc)
    metrics["llc_over_M"] = _llc_record(est_M, [[label(M), s] for M, s in cfg.groups])
    arrays["llc_over_M_trace"] = est_M.loss_trace.numpy()
    g_llc = groups.index(S.llc_M)
    one = one_M_batches(S, S.llc_M, device=device)
    if log["snapshots"]:
        over_t = stack_models([grouped_from_state(cfg, snap).select(g_llc)
                               for _, snap in sorted(log["snapshots"].items())])
        over_t = over_t.to(device)
        G_t = over_t.groups
        est_t = estimate_llc(over_t, group_losses, lambda i: tuple(x.expand(G_t, *x.shape[1:]) for x in one(i)), **llc)
        metrics["llc_over_training"] = _llc_record(est_t, sorted(log["snapshots"]))
        metrics["llc_over_training"]["M"] = label(S.llc_M)
        arrays["llc_over_training_trace"] = est_t.loss_trace.numpy()
    metrics["seconds"]["llc"] = time.perf_counter() - timer
    emit("llc")

    # 4. cross-check against devinterp on the final checkpoint of llc_M (same settings, same init loss)
    single = model.select(g_llc).to(device)
    timer = time.perf_counter()
    ours = estimate_llc(single, lambda m, b: group_losses(m, b)[0], one, **llc)
    cross = {"ours": float(ours.llc[0]), "ours_std": float(ours.llc_std[0]),
             "ours_seconds": time.perf_counter() - timer}
    try:
        batches = [one(i) for i in range(S.llc.num_burnin + S.llc.num_draws)]
        timer = time.perf_counter()
        ref = estimate_llc_devinterp(single, lambda m, b: group_losses(m, b)[0], batches, **llc,
                                     init_loss=float(ours.init_loss[0]))
        cross.update(devinterp=ref["llc"], devinterp_std=ref["llc_std"], devinterp_seconds=time.perf_counter() - timer)
    except ImportError as e:
        cross["devinterp_error"] = str(e)
    metrics["llc_crosscheck"] = cross

    # 5. grouped against one-by-one training, same device and batches
    metrics["timing"] = time_grouped_vs_separate(cfg, steps=S.timing_steps, device=device, precision_mode=S.precision)
    emit("timing")

    # 6. the curriculum over M, if there is time for it
    share = len(S.curriculum_config().groups) / len(cfg.groups)
    projected = log["seconds"] * share * S.steps / max(extra["steps_done"], 1)
    if deadline is None or time.monotonic() + projected < deadline:
        stopped = train_curriculum(S, metrics, device=device, progress=progress, deadline=deadline)
        if stopped is not None:                 # a curriculum cut short would compare unlike with like
            extra["skipped"] = f"curriculum (stopped at step {stopped} by max_minutes)"
    else:
        extra["skipped"] = f"curriculum (projected {projected:.0f} s, past max_minutes)"

    metrics["seconds"]["total"] = time.perf_counter() - t0
    extra["complete"] = extra["stopped_by"] is None and "skipped" not in extra
    return emit("done")


def train_curriculum(S: Sizes, metrics: dict, *, device="cpu", progress: bool = True,
                     deadline: float | None = None) -> int | None:
    """The run's stage 6: train the curriculum over M (:meth:`Sizes.curriculum_config`) and, if it
    finished, put its curves, stages, summaries and seconds into ``metrics`` (``metrics["curriculum"]``,
    ``metrics["seconds"]["curriculum"]``). Returns ``None``, or the step at which ``deadline`` (a
    ``time.monotonic()`` value) stopped it; then ``metrics`` is left as it was."""
    ccfg = S.curriculum_config()
    _, clog = train_sweep(ccfg, S.checkpoints(), device=device, eval_n=S.eval_n, n_probe=S.n_probe,
                          progress=progress, precision_mode=S.precision, compile=S.compile,
                          check_every=S.check_every, deadline=deadline)
    if clog["stopped_at"] is not None:
        return clog["stopped_at"]
    metrics["curriculum"] = _curves(clog)
    metrics["curriculum"]["stages"] = [[s, label(M)] for s, M in ccfg.curriculum]
    metrics["curriculum"]["summary"] = summaries(metrics["curriculum"])
    metrics.setdefault("seconds", {})["curriculum"] = clog["seconds"]
    return None


def finish_curriculum(out: ResultStore, evaluate, *, progress: bool = True, command: str | None = None) -> dict:
    """Train the curriculum that a stored run skipped (its ``run.json`` says ``skipped: curriculum …``),
    at the stored run's own sizes, and complete the run in place: ``metrics.json`` gains the
    curriculum, ``claims.json`` is re-judged by ``evaluate``, and ``run.json`` keeps the first call's
    provenance and records this one in ``extra["curriculum_call"]`` (commit, device, versions, date,
    seconds, command); a ``claims_rederived`` record of earlier claims goes, since the claims are
    judged anew. The curriculum trains a model of its own, so it needs nothing of the sweep but its
    sizes. A full run of the GPU configuration is refused on a machine without a GPU, as
    ``python -m helpers.transient_ridge`` refuses it. Returns the updated ``run.json``."""
    run = out.read_run()
    extra = dict(run.get("extra") or {})
    if not str(extra.get("skipped", "")).startswith("curriculum"):
        raise ValueError(f"{out.shown(out.path('run.json'))} did not skip its curriculum "
                         f"(extra.skipped: {extra.get('skipped')!r}); nothing to finish")
    metrics = out.load_json("metrics.json")
    mode, scale = run["mode"], metrics.get("scale")
    S = sizes(mode, scale)
    if jsonable(S.to_json()) != metrics["sizes"]:
        raise ValueError(f"the stored run's sizes are not this code's {mode}/{scale} sizes; "
                         f"finish it with the code that ran it (commit {run['git_commit'][:12]})")
    device = pick_device()
    if mode == "full" and scale == "gpu" and device.type == "cpu":
        raise ValueError("the stored run is the GPU configuration's full run, and this machine has no GPU")
    git = git_commit()
    seed_everything(S.seeds[0])
    t0 = time.perf_counter()
    train_curriculum(S, metrics, device=device, progress=progress)
    seconds = time.perf_counter() - t0
    call = provenance(chapter=run["chapter"], schema=run["schema"], mode=mode, device=device_name(device),
                      seeds=S.seeds, seconds=seconds, git=git,
                      command=command or "python -m helpers.transient_ridge.gpu --finish-curriculum")
    extra["skipped_first"] = extra.pop("skipped")
    extra["curriculum_call"] = {k: call[k] for k in ("git_commit", "git_dirty", "device", "torch_version",
                                                     "python_version", "date", "seconds", "command")}
    extra["complete"] = extra.get("stopped_by") is None
    out.save_json("metrics.json", metrics)
    out.write_claims(evaluate(metrics))
    run["extra"] = extra
    run.pop("claims_rederived", None)
    write_json(out.path("run.json"), run)
    return run


# The committed runs whose numbers the chapter's text quotes, by folder: run.json's date. A page checks its text
# against the run it shows only when that is the run the text describes (a reader's own run is shown, not checked).
DESCRIBED = {"transient_ridge": "2026-11-27T18:51:17+00:00", "transient_ridge_cpu": "2026-11-26T16:05:38+00:00"}


def shown_command(run: dict) -> str:
    """The command line a ``run.json`` records, without its output folders (``--out``, ``--archive``:
    paths of the machine it ran on, which say nothing about the run)."""
    return re.sub(r" --(out|archive) \S+", "", run["command"])


def described(out: ResultStore) -> bool:
    """Whether ``out`` holds the committed run that the chapter's text describes (:data:`DESCRIBED`),
    so that a page may assert the numbers its text quotes; False for a smoke run or any other run,
    with a note saying that the text describes another run."""
    run = out.read_run()
    if run["mode"] == "full" and DESCRIBED.get(out.dir.name) == run["date"]:
        return True
    if run["mode"] != "smoke":
        print(f"note: the text describes the committed run of {DESCRIBED.get(out.dir.name, 'another date')}; "
              f"this is the run of {run['date']}, so the numbers the text quotes are not checked against it")
    return False


CPU_FOLDER = "transient_ridge_cpu"   # results/<this>/: the committed CPU run, beside the chapter's main run


def cpu_store() -> ResultStore:
    """The committed run of the CPU configuration (``results/transient_ridge_cpu/``), beside the
    chapter's main run (``results/transient_ridge/``, the GPU configuration's, whose ``call/`` holds
    the rest of its GPU calls' output: ``device.json``, ``bench.json``, ``precision.json``, logs,
    and an earlier call's benchmark of ``torch.compile`` in ``call/bench/``)."""
    return store(folder=CPU_FOLDER)


def load(mode: str | None = None, *, cpu: bool = False) -> ResultStore:
    """The results a page shows: in smoke mode a fresh smoke run (seconds, every code path; its
    numbers mean nothing), otherwise the committed full run (``results/transient_ridge/``, the GPU
    configuration). ``cpu``: the CPU configuration's run instead (:func:`cpu_store`; smoke: a fresh
    run of its own)."""
    mode = get_mode() if mode is None else mode
    if mode == "smoke":
        from .claims import evaluate
        out = store(output_root("smoke") / ("cpu" if cpu else ""))
        run = full_run("smoke", progress=False, scale="cpu" if cpu else "gpu")
        out.save_run(run, evaluate(run.metrics), mode="smoke")
        return out
    out = cpu_store() if cpu else store()
    out.read_run()   # a clear error naming the command if the results are missing or stale
    return out
