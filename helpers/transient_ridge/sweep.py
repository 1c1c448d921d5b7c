"""The sweep over task diversity M: G models (one per M, and per seed) trained as one grouped model.

Every step draws, for each group ``g``, a batch of sequences whose tasks come from the first
``M_g`` tasks of one nested pool (``M = ∞``: fresh Gaussian tasks), and takes one Adam step on
the sum of the groups' mean squared errors — exactly G separate training runs, in one pass.

At checkpoints :func:`evaluate_sweep` measures, per group:

- ``ood``: the loss on sequences with fresh Gaussian tasks (out of distribution for finite M);
- ``id``: the loss on sequences from the group's own pool;
- ``d_ridge``, ``d_dmmse``: the distance Δ (:func:`~helpers.transient_ridge.bayes.predictor_distance`)
  between the model's predictions and ridge / dMMSE_M on in-distribution sequences;
- ``features``: the predictions on the probe set (512 sequences of the root task ``t_1`` in the
  paper) used by the joint trajectory PCA.

:func:`transient_summary` reads a run's curves: ``t_crit(M)`` (the step of the lowest OOD
loss), the OOD rise after it, and whether Δ to ridge dips below Δ to dMMSE_M and is later crossed.

Used in: book/transient_ridge/ and ``python -m helpers.transient_ridge``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..checks import check_int
from ..training import train
from .bayes import dmmse_predictor, predictor_distance, ridge_predictor
from .data import TaskPool, check_M, check_sigma2, detokenize, sample_batch, tokenize
from .model import GroupedTransformer, ModelConfig


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: task counts ``Ms`` (ints or ``math.inf``), ``seeds`` per M, data (``sigma2``), the
    model (``model``: its ``D`` and ``K`` are the task's), and Adam (``lr``, ``batch``, ``steps``;
    ``decay``: the last fraction of the steps over which lr falls linearly to lr/10, 0 for none).

    ``curriculum``: optional stages ``((0, M_0), (s_1, M_1), …)``: from step ``s_i`` every group
    trains on ``min(M, M_i)`` tasks of the nested pool — task diversity raised in stages up to
    the group's own ``M`` (the seed's practical advice). Empty: each group trains on ``M`` throughout."""

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
    models = [GroupedTransformer(cfg.model, 1, torch.Generator().manual_seed(1000 + s)) for _, s in cfg.groups]
    return stack_models(models).to(device)


def batch_fn(cfg: SweepConfig, pool: TaskPool, device="cpu"):
    """``draw(step) -> (tokens (G, B, 2K, D+1), ys (G, B, K))``, the same batch for a step in any run."""
    def draw(step: int):
        toks, ys = [], []
        for g, (M, seed) in enumerate(cfg.groups):
            gen = torch.Generator().manual_seed((seed * 1_000_003 + step) * 1009 + g)
            b = sample_batch(pool, cfg.M_at(M, step), cfg.batch, cfg.model.K, cfg.sigma2, gen)
            toks.append(tokenize(b.xs, b.ys))
            ys.append(b.ys)
        return torch.stack(toks).to(device), torch.stack(ys).to(device)
    return draw


def group_losses(model: GroupedTransformer, batch) -> torch.Tensor:
    """(G,) mean squared error of each group over its batch and all K positions."""
    tokens, ys = batch
    return ((model(tokens) - ys) ** 2).mean((1, 2))


def sweep_loss(model: GroupedTransformer, batch) -> torch.Tensor:
    """Sum over groups: each group's gradient is its own loss's."""
    return group_losses(model, batch).sum()


@dataclass
class EvalSet:
    """Fixed evaluation sequences: OOD (shared), in-distribution per group, and the probe set."""

    ood_tokens: torch.Tensor      # (n, 2K, D+1)
    ood_ys: torch.Tensor          # (n, K)
    id_tokens: torch.Tensor       # (G, n, 2K, D+1)
    id_ys: torch.Tensor           # (G, n, K)
    id_ridge: torch.Tensor        # (G, n, K)
    id_dmmse: torch.Tensor        # (G, n, K) (ridge for M = ∞)
    probe_tokens: torch.Tensor    # (P, 2K, D+1)
    ood_ridge_loss: float
    ood_dmmse_loss: list          # per group


def make_eval_set(cfg: SweepConfig, pool: TaskPool, n: int = 512, n_probe: int = 512, seed: int = 99) -> EvalSet:
    """Draw the evaluation sequences once (fixed for every checkpoint of the run)."""
    gen = torch.Generator().manual_seed(seed)
    K, s2 = cfg.model.K, cfg.sigma2
    ood = sample_batch(pool, math.inf, n, K, s2, gen)
    ood_ridge = ridge_predictor(ood.xs, ood.ys, s2)
    idt, idy, idr, idd, ood_dm = [], [], [], [], []
    for M, _ in cfg.groups:
        b = sample_batch(pool, M, n, K, s2, gen)
        idt.append(tokenize(b.xs, b.ys))
        idy.append(b.ys)
        idr.append(ridge_predictor(b.xs, b.ys, s2))
        if M == math.inf:
            idd.append(idr[-1])
            ood_dm.append(float(((ood_ridge - ood.ys) ** 2).mean()))
        else:
            idd.append(dmmse_predictor(b.xs, b.ys, pool.tasks(M), s2))
            ood_dm.append(float(((dmmse_predictor(ood.xs, ood.ys, pool.tasks(M), s2) - ood.ys) ** 2).mean()))
    probe_x = torch.randn(n_probe, K, pool.D, generator=gen)
    probe_y = probe_x @ pool.tasks(1)[0] + math.sqrt(s2) * torch.randn(n_probe, K, generator=gen)
    return EvalSet(tokenize(ood.xs, ood.ys), ood.ys, torch.stack(idt), torch.stack(idy), torch.stack(idr),
                   torch.stack(idd), tokenize(probe_x, probe_y), float(((ood_ridge - ood.ys) ** 2).mean()), ood_dm)


@torch.no_grad()
def evaluate_sweep(model: GroupedTransformer, ev: EvalSet) -> dict:
    """Per-group metrics at the model's current weights (see the module docstring)."""
    G = model.groups
    dev = next(model.parameters()).device
    ood = model(ev.ood_tokens.to(dev).expand(G, *ev.ood_tokens.shape)).cpu()
    idp = model(ev.id_tokens.to(dev)).cpu()
    probe = model(ev.probe_tokens.to(dev).expand(G, *ev.probe_tokens.shape)).cpu()
    D = ev.ood_tokens.shape[-1] - 1
    return {
        "ood": ((ood - ev.ood_ys) ** 2).mean((1, 2)).tolist(),
        "id": ((idp - ev.id_ys) ** 2).mean((1, 2)).tolist(),
        "d_ridge": [predictor_distance(idp[g], ev.id_ridge[g], D) for g in range(G)],
        "d_dmmse": [predictor_distance(idp[g], ev.id_dmmse[g], D) for g in range(G)],
        "features": probe.reshape(G, -1),
    }


def bayes_references(cfg: SweepConfig, pool: TaskPool, ev: EvalSet) -> dict:
    """The Bayes predictors on the evaluation sets, per group: in-distribution losses of ridge and
    dMMSE_M (``id_ridge_loss``, ``id_dmmse_loss``), their distance Δ (``d_bayes``), the distance
    Δ(0, ridge) of the zero predictor (``d_zero_ridge``), and their
    features on the probe set (``probe_ridge`` (P·K,), ``probe_dmmse`` (G, P·K)) for the PCA."""
    D = pool.D
    px, py = detokenize(ev.probe_tokens)
    probe_dmmse = [ridge_predictor(px, py, cfg.sigma2) if M == math.inf
                   else dmmse_predictor(px, py, pool.tasks(M), cfg.sigma2) for M, _ in cfg.groups]
    G = len(cfg.groups)
    return {"id_ridge_loss": [float(((ev.id_ridge[g] - ev.id_ys[g]) ** 2).mean()) for g in range(G)],
            "id_dmmse_loss": [float(((ev.id_dmmse[g] - ev.id_ys[g]) ** 2).mean()) for g in range(G)],
            "d_bayes": [predictor_distance(ev.id_dmmse[g], ev.id_ridge[g], D) for g in range(G)],
            "d_zero_ridge": [predictor_distance(torch.zeros_like(ev.id_ridge[g]), ev.id_ridge[g], D) for g in range(G)],
            "probe_ridge": ridge_predictor(px, py, cfg.sigma2).reshape(-1),
            "probe_dmmse": torch.stack(probe_dmmse).reshape(G, -1)}


def train_sweep(cfg: SweepConfig, checkpoints, *, device="cpu", eval_n: int = 512, n_probe: int = 512,
                snapshot_steps=(), progress: bool | None = None):
    """Train the sweep; returns ``(model, log)`` with the per-group metrics at each checkpoint
    (``log["features"]``: (n_checkpoints, G, P·K)) and the Bayes references.

    ``snapshot_steps``: checkpoint steps at which to keep a CPU copy of the weights, in
    ``log["snapshots"][step]`` (a grouped model's state dict) — e.g. for the LLC over training."""
    snapshot_steps = set(int(s) for s in snapshot_steps)
    if not snapshot_steps <= set(int(s) for s in checkpoints):
        raise ValueError(f"snapshot_steps must be checkpoint steps; {sorted(snapshot_steps - set(checkpoints))} are not")
    pool = TaskPool(cfg.model.D, cfg.pool_seed)
    model = make_model(cfg, device)
    ev = make_eval_set(cfg, pool, eval_n, n_probe)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    log: dict = {"step": [], "ood": [], "id": [], "d_ridge": [], "d_dmmse": [], "features": [],
                 "groups": [("inf" if M == math.inf else M, s) for M, s in cfg.groups],
                 "ood_ridge_loss": ev.ood_ridge_loss, "ood_dmmse_loss": ev.ood_dmmse_loss, "snapshots": {}}
    log.update(bayes_references(cfg, pool, ev))

    def on_checkpoint(step, m):
        if step in snapshot_steps:
            log["snapshots"][step] = {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}
        r = evaluate_sweep(m, ev)
        log["step"].append(step)
        for k in ("ood", "id", "d_ridge", "d_dmmse", "features"):
            log[k].append(r[k])

    t0 = time.perf_counter()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cfg.lr_factor)
    train(model, sweep_loss, batch_fn(cfg, pool, device), steps=cfg.steps, optimizer=opt, scheduler=sched,
          checkpoint_steps=checkpoints, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"sweep over {len(cfg.Ms)} M × {len(cfg.seeds)} seeds")
    log["seconds"] = time.perf_counter() - t0
    log["features"] = torch.stack(log["features"]) if log["features"] else torch.empty(0)
    return model, log


def transient_summary(steps, ood, d_ridge, d_dmmse, ood_ridge: float, ood_dmmse: float,
                      d_zero_ridge: float | None = None) -> dict:
    """One group's transient, from its curves over checkpoints.

    ``t_crit``: step of the lowest OOD loss; ``ood_rise``: final minus lowest OOD loss, as a
    fraction of the gap ``ood_dmmse − ood_ridge`` between the two Bayes predictors;
    ``ridge_phase``: some checkpoint is *ridge-like* — Δ(model, ridge) < Δ(model, dMMSE_M) and,
    when ``d_zero_ridge`` = Δ(0, ridge) is given, Δ(model, ridge) < ½ Δ(0, ridge), so that an
    untrained model predicting ≈ 0 (which ridge's shrinkage makes closer to ridge than to a
    confident dMMSE_M) does not count; ``crossed``: after the first ridge-like checkpoint, a later
    one has Δ(model, dMMSE_M) < Δ(model, ridge) (at ``t_cross``).
    """
    steps, ood = np.asarray(steps), np.asarray(ood, dtype=float)
    dr, dd = np.asarray(d_ridge, dtype=float), np.asarray(d_dmmse, dtype=float)
    if not (len(steps) == len(ood) == len(dr) == len(dd)) or len(steps) == 0:
        raise ValueError("steps, ood, d_ridge and d_dmmse must be non-empty and of equal length")
    i = int(np.argmin(ood))
    gap = ood_dmmse - ood_ridge
    near = dr < dd
    if d_zero_ridge is not None:
        near &= dr < 0.5 * d_zero_ridge
    ridge_like = np.nonzero(near)[0]
    crossed = bool(len(ridge_like) and (dd[ridge_like[0]:] < dr[ridge_like[0]:]).any())
    return {"t_crit": int(steps[i]), "ood_min": float(ood[i]), "ood_final": float(ood[-1]),
            "ood_rise": float((ood[-1] - ood[i]) / gap) if gap > 0 else float("nan"),
            "ridge_phase": bool(len(ridge_like)), "crossed": crossed,
            "t_cross": int(steps[ridge_like[0]:][np.argmax(dd[ridge_like[0]:] < dr[ridge_like[0]:])]) if crossed
            else None}


def time_grouped_vs_separate(cfg: SweepConfig, steps: int = 20, device="cpu") -> dict:
    """Seconds per step of the grouped model against G separate models stepped one after another,
    on the same device and batches (the first 3 steps of each are warm-up, not timed)."""
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
                tb = (b[0][j:j + 1], b[1][j:j + 1]) if split else b
                loss = sweep_loss(m, tb)
                o.zero_grad(set_to_none=True)
                loss.backward()
                o.step()
        sync()
        return (time.perf_counter() - t0) / steps

    t_grouped = run([grouped], split=False)
    t_separate = run(singles, split=True)
    return {"grouped_s_per_step": t_grouped, "separate_s_per_step": t_separate, "speedup": t_separate / t_grouped,
            "groups": grouped.groups, "device": str(device)}
