"""The chapter's experiments at each mode's sizes, shared by the notebooks and the full run.

- :func:`sizes` — the scale per mode (the sweep, the curriculum, the LLC settings);
- :func:`sweep_config` / :func:`curriculum_config` — the two grouped training runs;
- :func:`summaries` — t_crit, the OOD rise and the Δ crossing per M, from a run's curves;
- :func:`llc_batches` — fresh batches of each group's own training distribution for SGLD;
- :func:`trajectory_pca` — the joint PCA of all M's checkpoints, predictors projected;
- :func:`complexity_tradeoff` — the loss-versus-complexity reading of the LLC numbers.

Used in: every notebook of book/transient_ridge/ and ``python -m helpers.transient_ridge``.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..modes import by_mode
from ..training import checkpoint_schedule
from .data import TaskPool
from .model import ModelConfig
from .pca import fit_joint_pca
from .sweep import SweepConfig, batch_fn, transient_summary

INF = math.inf
# The paper's scale, for the page that states ours next to it.
PAPER = dict(D=8, K=16, sigma2=0.125, params="2.65M", layers=2, steps=150_000,
             Ms="1 … 2^15 and ∞", probe=512, pca_pc12_variance=0.275)


def sizes(mode: str | None = None) -> dict:
    """Every size of the chapter per mode, in one place so they read together."""
    full = dict(
        model=ModelConfig(D=4, K=8, d_model=64, n_layers=2, n_heads=4, d_mlp=128),
        Ms=(1, 2, 4, 8, 16, 32, 64, 128, 256, INF), seeds=(0,), sigma2=0.125, batch=128, lr=3e-3, steps=10_000, decay=0.2,
        ckpt_every=250, ckpt_log=30, eval_n=512, n_probe=256,
        curriculum_Ms=(16, 256, INF), curriculum_stages=(4, 16, 64, INF),
        llc_M=16, n_snapshots=10, llc=dict(lr=3e-4, nbeta=60.0, localization=100.0, num_chains=4, num_draws=200,
                                           num_burnin=100), llc_batch=256, timing_steps=20, keep_final=(2, 16, INF),
    )
    smoke = dict(full, model=ModelConfig(D=4, K=8, d_model=16, n_layers=1, n_heads=2, d_mlp=32),
                 Ms=(1, 4, 16, INF), batch=32, steps=40, ckpt_every=10, ckpt_log=4, eval_n=64, n_probe=32,
                 curriculum_Ms=(16, INF), n_snapshots=3,
                 llc=dict(full["llc"], num_chains=2, num_draws=10, num_burnin=5), llc_batch=32, timing_steps=2,
                 keep_final=(16, INF))
    return by_mode(smoke=smoke, default=full, full=full, mode=mode)


def label(M) -> str:
    """``"∞"`` or the integer, for legends and keys."""
    return "∞" if M in (INF, "inf") else str(int(M))


def sweep_config(S: dict) -> SweepConfig:
    """The sweep over M (one group per M and seed)."""
    return SweepConfig(Ms=S["Ms"], seeds=S["seeds"], sigma2=S["sigma2"], model=S["model"], batch=S["batch"],
                       lr=S["lr"], steps=S["steps"], decay=S["decay"])


def curriculum_config(S: dict) -> SweepConfig:
    """The same training with task diversity raised in stages: ``curriculum_stages`` over equal parts
    of training, each group capped at its own final M (``curriculum_Ms``)."""
    n = len(S["curriculum_stages"])
    stages = tuple((i * S["steps"] // n, M) for i, M in enumerate(S["curriculum_stages"]))
    return SweepConfig(Ms=S["curriculum_Ms"], seeds=S["seeds"], sigma2=S["sigma2"], model=S["model"],
                       batch=S["batch"], lr=S["lr"], steps=S["steps"], decay=S["decay"], curriculum=stages)


def checkpoints(S: dict) -> list[int]:
    """Checkpoint steps: every ``ckpt_every`` steps plus ``ckpt_log`` log-spaced ones (early training)."""
    return checkpoint_schedule(S["steps"], every=S["ckpt_every"], n_log=S["ckpt_log"])


def snapshot_steps(S: dict) -> list[int]:
    """``n_snapshots`` checkpoint steps, log-spaced from 1% of training to the end (for the LLC over training)."""
    ck = np.array(checkpoints(S))
    targets = np.logspace(math.log10(max(1, S["steps"] // 100)), math.log10(S["steps"]), S["n_snapshots"])
    return sorted({int(ck[np.argmin(abs(ck - t))]) for t in targets})


def summaries(log: dict) -> list[dict]:
    """:func:`~helpers.transient_ridge.sweep.transient_summary` for every group of a run's log."""
    ood, dr, dd = (np.asarray(log[k]) for k in ("ood", "d_ridge", "d_dmmse"))
    return [dict(transient_summary(log["step"], ood[:, g], dr[:, g], dd[:, g], log["ood_ridge_loss"],
                                   log["ood_dmmse_loss"][g], log["d_zero_ridge"][g]), M=label(M))
            for g, (M, _) in enumerate(log["groups"])]


def llc_batches(cfg: SweepConfig, batch: int, seed: int = 7, device="cpu"):
    """``draw(i)`` for :func:`~helpers.transient_ridge.llc.estimate_llc`: fresh batches of each group's
    own (final) training distribution, disjoint in seed from the training batches."""
    plain = SweepConfig(Ms=cfg.Ms, seeds=tuple(seed + s for s in cfg.seeds), sigma2=cfg.sigma2, model=cfg.model,
                        batch=batch, lr=cfg.lr, steps=cfg.steps, pool_seed=cfg.pool_seed)
    draw = batch_fn(plain, TaskPool(cfg.model.D, cfg.pool_seed), device)
    return lambda i: draw(10_000_000 + i)


def one_M_batches(S: dict, M, device="cpu"):
    """:func:`llc_batches` for a single run at task count ``M`` (groups of 1; expand to share them)."""
    return llc_batches(sweep_config(dict(S, Ms=(M,))), S["llc_batch"], device=device)


def trajectory_pca(features: torch.Tensor, probe_ridge: torch.Tensor, probe_dmmse: torch.Tensor,
                   n_components: int = 4) -> dict:
    """Joint PCA of every group's checkpoints.

    Args:
        features: (n_checkpoints, G, F) the models' probe predictions.
        probe_ridge: (F,); probe_dmmse: (G, F) — projected, not fitted.

    Returns ``{"pca", "runs" (G, n_checkpoints, n), "ridge" (n,), "dmmse" (G, n)}``.
    """
    if features.ndim != 3:
        raise ValueError(f"features must be (n_checkpoints, G, F); got {tuple(features.shape)}")
    runs = [features[:, g].double() for g in range(features.shape[1])]
    pca = fit_joint_pca(runs, n_components)
    return {"pca": pca, "runs": torch.stack([pca.project(r) for r in runs]),
            "ridge": pca.project(probe_ridge.double()), "dmmse": pca.project(probe_dmmse.double())}


def pca_detour(proj: dict, g: int, n_pc: int = 2) -> dict:
    """How group ``g``'s trajectory relates to the two predictor points in the first ``n_pc`` PCs:
    its closest approach to ridge (distance, checkpoint index) and its final distances to ridge and
    to its own dMMSE_M point."""
    run = proj["runs"][g, :, :n_pc]
    to_ridge = (run - proj["ridge"][:n_pc]).norm(dim=-1)
    to_dmmse = (run - proj["dmmse"][g, :n_pc]).norm(dim=-1)
    i = int(to_ridge.argmin())
    return {"closest_to_ridge": float(to_ridge[i]), "closest_index": i, "n_checkpoints": run.shape[0],
            "final_to_ridge": float(to_ridge[-1]), "final_to_dmmse": float(to_dmmse[-1])}


def complexity_tradeoff(loss_simple: float, llc_simple: float, loss_complex: float, llc_complex: float,
                        n_max: float = 1e12) -> dict:
    """Bayesian internal model selection between two solutions (Watanabe's free energy
    F_n ≈ n·L + λ·log n): the complex one (lower loss, higher λ) is preferred once
    ``n·(L_simple − L_complex) > (λ_complex − λ_simple)·log n``. Returns the losses and λs,
    ``delta_loss``, ``delta_llc`` and ``n_star``, the smallest such n (None if there is no trade-off:
    the complex one is not both better-fitting and more complex, or n_star > ``n_max``)."""
    dL, dl = loss_simple - loss_complex, llc_complex - llc_simple
    n_star = None
    if dL > 0 and dl > 0:
        n = 2.0
        while n * dL <= dl * math.log(n) and n < n_max:
            n *= 1.05
        n_star = n if n < n_max else None
    return {"loss_simple": loss_simple, "llc_simple": llc_simple, "loss_complex": loss_complex,
            "llc_complex": llc_complex, "delta_loss": dL, "delta_llc": dl, "n_star": n_star}
