"""What the chapter measures: the Bayes predictors, the sweep's metrics, the transient, the joint
trajectory PCA and the local learning coefficient.

**Bayes predictors** of in-context linear regression, batched, for every k at once:

- **ridge** — Bayes-optimal for tasks ``t ~ N(0, I_D)``:
  ``t̂_k = (X_{<k}ᵀ X_{<k} + σ² I)⁻¹ X_{<k}ᵀ y_{<k}`` (0 at k = 1);
- **dMMSE_M** — Bayes-optimal for tasks uniform over the pool ``t_1 … t_M``:
  ``t̂_k = Σ_m softmax_m(−||y_{<k} − X_{<k} t_m||² / 2σ²) t_m`` (the pool mean at k = 1);
- Δ(f, g): the distance between two predictors' outputs (:func:`predictor_distance`).

**The sweep's metrics** at a checkpoint (:func:`evaluate_sweep`, on a fixed :class:`EvalSet`):
``ood`` (fresh Gaussian tasks), ``id`` (the group's own pool), ``d_ridge``/``d_dmmse`` (Δ to each
predictor in distribution) and ``features`` (predictions on the probe set, for the PCA).
:func:`transient_summary` reads one group's curves: t_crit, the OOD rise, the ridge-like phase.

**Joint trajectory PCA** (:func:`trajectory_pca`): every checkpoint of every run encoded by its K
predictions on the probe sequences (the paper: 512 sequences of the root task ``t_1``), fitted with
the book's toolkit (:func:`helpers.dynamics.fit_joint_pca`); the predictors are projected, not fitted.

**The LLC**, the smoothing of curves and rank correlations come from the book's dynamics toolkit,
:mod:`helpers.dynamics` (moved there from this module, and re-exported here: ``estimate_llc``,
``settled``, ``quadratic_llc``, ``estimate_llc_devinterp``, ``complexity_tradeoff``, ``smooth``,
``spearman``, ``fit_joint_pca``, ``JointPCA``, ``prediction_features``, ``SMOOTHING_DECADES``).

Used in: every page of book/transient_ridge/ and the chapter's full run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import check_int
from ..dynamics import (  # noqa: F401 (re-exported)
    SMOOTHING_DECADES,
    JointPCA,
    LLCEstimate,
    NonFiniteSamplingError,
    complexity_tradeoff,
    estimate_llc,
    estimate_llc_devinterp,
    fit_joint_pca,
    prediction_features,
    quadratic_llc,
    settled,
    sgld_step,
    smooth,
    spearman,
)
from ..seeds import torch_generator
from .data import TaskPool, check_sigma2, detokenize, sample_batch, tokenize
from .models import GroupedTransformer

if TYPE_CHECKING:
    from .train import SweepConfig

INF = math.inf


# ------------------------------------------------------------------------------ Bayes predictors

def _check_xy(xs: torch.Tensor, ys: torch.Tensor) -> None:
    if xs.ndim != 3 or ys.shape != xs.shape[:2]:
        raise ValueError(f"xs must be (B, K, D) and ys (B, K); got {tuple(xs.shape)} and {tuple(ys.shape)}")
    if not (torch.isfinite(xs).all() and torch.isfinite(ys).all()):
        raise ValueError("xs and ys must be finite (found NaN or inf)")


def ridge_estimates(xs: torch.Tensor, ys: torch.Tensor, sigma2: float) -> torch.Tensor:
    """Ridge estimates ``t̂_k`` from the pairs before k: (B, K, D), (B, K) → (B, K, D)."""
    _check_xy(xs, ys)
    sigma2 = check_sigma2(sigma2)
    B, K, D = xs.shape
    outer = torch.einsum("bki,bkj->bkij", xs, xs)
    # exclusive cumulative sums: position k sees pairs 1..k-1
    A = torch.cumsum(outer, 1) - outer + sigma2 * torch.eye(D, dtype=xs.dtype, device=xs.device)
    xy = xs * ys.unsqueeze(-1)
    b = torch.cumsum(xy, 1) - xy
    return torch.linalg.solve(A, b.unsqueeze(-1)).squeeze(-1)


def ridge_predictor(xs: torch.Tensor, ys: torch.Tensor, sigma2: float) -> torch.Tensor:
    """Ridge predictions ``ŷ_k = t̂_kᵀ x_k``: (B, K, D), (B, K) → (B, K)."""
    return (ridge_estimates(xs, ys, sigma2) * xs).sum(-1)


def dmmse_estimates(xs: torch.Tensor, ys: torch.Tensor, tasks: torch.Tensor, sigma2: float,
                    chunk: int = 4096) -> torch.Tensor:
    """dMMSE estimates ``t̂_k`` (B, K, D) for the pool ``tasks`` (M, D).

    The softmax over the M tasks is computed online over chunks of ``chunk`` tasks (running
    max and sum, as in log-sum-exp), so memory is O(B·K·chunk) for any M.
    """
    _check_xy(xs, ys)
    sigma2 = check_sigma2(sigma2)
    if tasks.ndim != 2 or tasks.shape[0] < 1:
        raise ValueError(f"tasks must be a non-empty (M, D) matrix; got shape {tuple(tasks.shape)}")
    if tasks.shape[1] != xs.shape[2]:
        raise ValueError(f"tasks have dimension D={tasks.shape[1]} but xs has D={xs.shape[2]}")
    tasks = tasks.to(xs.dtype)
    B, K, D = xs.shape
    chunk = max(1, min(chunk, 2**26 // (B * K)))                        # at most 2^26 floats per chunk
    running_max = xs.new_full((B, K), -torch.inf)
    running_sum = xs.new_zeros(B, K)
    acc = xs.new_zeros(B, K, D)
    for start in range(0, tasks.shape[0], chunk):
        t = tasks[start:start + chunk]                                   # (m, D)
        residual2 = (ys.unsqueeze(-1) - xs @ t.T) ** 2                  # (B, K, m)
        sse = torch.cumsum(residual2, 1) - residual2                    # pairs before k
        logw = -sse / (2 * sigma2)
        new_max = torch.maximum(running_max, logw.max(-1).values)
        scale = torch.exp(running_max - new_max)
        w = torch.exp(logw - new_max.unsqueeze(-1))
        running_sum = running_sum * scale + w.sum(-1)
        acc = acc * scale.unsqueeze(-1) + w @ t
        running_max = new_max
    return acc / running_sum.unsqueeze(-1)


def dmmse_predictor(xs: torch.Tensor, ys: torch.Tensor, tasks: torch.Tensor, sigma2: float,
                    chunk: int = 4096) -> torch.Tensor:
    """dMMSE_M predictions ``ŷ_k = t̂_kᵀ x_k``: (B, K) for the pool ``tasks`` (M, D)."""
    return (dmmse_estimates(xs, ys, tasks, sigma2, chunk=chunk) * xs).sum(-1)


def mse(preds: torch.Tensor, ys: torch.Tensor) -> float:
    """Mean squared error over sequences and all K positions (k = 1 included)."""
    if preds.shape != ys.shape:
        raise ValueError(f"preds and ys must have the same shape; got {tuple(preds.shape)} and {tuple(ys.shape)}")
    return ((preds - ys) ** 2).mean().item()


def predictor_distance(f_preds: torch.Tensor, g_preds: torch.Tensor, D: int) -> float:
    """Δ(f, g) = mean over sequences and positions of ``(f − g)² / D`` (Raventós et al.)."""
    if f_preds.shape != g_preds.shape:
        raise ValueError(f"predictions must have the same shape; got {tuple(f_preds.shape)} and {tuple(g_preds.shape)}")
    if not isinstance(D, int) or D < 1:
        raise ValueError(f"D must be an int >= 1; got {D!r}")
    return (((f_preds - g_preds) ** 2) / D).mean().item()


# ------------------------------------------------------------------------------ the sweep's metrics

@dataclass
class EvalSet:
    """Fixed evaluation sequences, kept on the training device: OOD (shared), in-distribution per
    group, and the probe set; with the Bayes predictors' outputs on them (computed once)."""

    ood_tokens: torch.Tensor      # (n, 2K, D+1)
    ood_ys: torch.Tensor          # (n, K)
    id_tokens: torch.Tensor       # (G, n, 2K, D+1)
    id_ys: torch.Tensor           # (G, n, K)
    id_ridge: torch.Tensor        # (G, n, K)
    id_dmmse: torch.Tensor        # (G, n, K) (ridge for M = ∞)
    probe_tokens: torch.Tensor    # (P, 2K, D+1)
    ood_ridge_loss: float
    ood_dmmse_loss: list          # per group


def make_eval_set(cfg: SweepConfig, pool: TaskPool, n: int = 512, n_probe: int = 512, seed: int = 99,
                  device: torch.device | str = "cpu") -> EvalSet:
    """Draw the evaluation sequences once (fixed for every checkpoint of the run) and compute the
    Bayes predictors on them, on ``device``.

    The sequences are drawn on the CPU from ``seed`` (the same on every device); groups that
    share a task count M share the OOD dMMSE_M loss, computed once per M."""
    gen = torch_generator(seed)
    K, s2 = cfg.model.K, cfg.sigma2

    def on(b):
        return b.xs.to(device), b.ys.to(device)

    ox, oy = on(sample_batch(pool, math.inf, n, K, s2, gen))
    ood_ridge = ridge_predictor(ox, oy, s2)
    ood_ridge_loss = float(((ood_ridge - oy) ** 2).mean())
    ood_by_M: dict = {}
    idt, idy, idr, idd, ood_dm = [], [], [], [], []
    for M, _ in cfg.groups:
        x, y = on(sample_batch(pool, M, n, K, s2, gen))
        idt.append(tokenize(x, y))
        idy.append(y)
        idr.append(ridge_predictor(x, y, s2))
        if M == math.inf:
            idd.append(idr[-1])
            ood_by_M.setdefault(M, ood_ridge_loss)
        else:
            tasks = pool.tasks(M).to(device)
            idd.append(dmmse_predictor(x, y, tasks, s2))
            if M not in ood_by_M:
                ood_by_M[M] = float(((dmmse_predictor(ox, oy, tasks, s2) - oy) ** 2).mean())
        ood_dm.append(ood_by_M[M])
    probe_x = torch.randn(n_probe, K, pool.D, generator=gen)
    probe_y = probe_x @ pool.tasks(1)[0] + math.sqrt(s2) * torch.randn(n_probe, K, generator=gen)
    return EvalSet(tokenize(ox, oy), oy, torch.stack(idt), torch.stack(idy), torch.stack(idr),
                   torch.stack(idd), tokenize(probe_x, probe_y).to(device), ood_ridge_loss, ood_dm)


@torch.no_grad()
def evaluate_sweep(model: GroupedTransformer, ev: EvalSet, chunk: int = 1024) -> dict:
    """Per-group metrics at the model's current weights (see the module docstring), computed on
    the evaluation set's device in chunks of ``chunk`` sequences; ``features`` come back on the CPU."""
    check_int("chunk", chunk, 1)
    G = model.groups
    dev = next(model.parameters()).device

    def predict(tokens):                                  # (G or 1, n, 2K, D+1) → (G, n, K)
        tokens = tokens.to(dev)
        return torch.cat([model(tokens[:, i:i + chunk].expand(G, -1, -1, -1))
                          for i in range(0, tokens.shape[1], chunk)], 1)

    ood = predict(ev.ood_tokens[None])
    idp = predict(ev.id_tokens)
    probe = predict(ev.probe_tokens[None])
    D = ev.ood_tokens.shape[-1] - 1
    ys_id = ev.id_ys.to(dev)
    stats = torch.stack([((ood - ev.ood_ys.to(dev)) ** 2).mean((1, 2)), ((idp - ys_id) ** 2).mean((1, 2)),
                         ((idp - ev.id_ridge.to(dev)) ** 2).mean((1, 2)) / D,
                         ((idp - ev.id_dmmse.to(dev)) ** 2).mean((1, 2)) / D]).cpu()    # one copy to the host
    return {"ood": stats[0].tolist(), "id": stats[1].tolist(), "d_ridge": stats[2].tolist(),
            "d_dmmse": stats[3].tolist(), "features": probe.reshape(G, -1).cpu()}


def bayes_references(cfg: SweepConfig, pool: TaskPool, ev: EvalSet) -> dict:
    """The Bayes predictors on the evaluation sets, per group: in-distribution losses of ridge and
    dMMSE_M (``id_ridge_loss``, ``id_dmmse_loss``), their distance Δ (``d_bayes``), the distance
    Δ(0, ridge) of the zero predictor (``d_zero_ridge``), and their
    features on the probe set (``probe_ridge`` (P·K,), ``probe_dmmse`` (G, P·K), on the CPU) for the PCA."""
    D = pool.D
    px, py = detokenize(ev.probe_tokens)
    dev = px.device
    probe_dmmse = [ridge_predictor(px, py, cfg.sigma2) if M == math.inf
                   else dmmse_predictor(px, py, pool.tasks(M).to(dev), cfg.sigma2) for M, _ in cfg.groups]
    G = len(cfg.groups)
    return {"id_ridge_loss": [float(((ev.id_ridge[g] - ev.id_ys[g]) ** 2).mean()) for g in range(G)],
            "id_dmmse_loss": [float(((ev.id_dmmse[g] - ev.id_ys[g]) ** 2).mean()) for g in range(G)],
            "d_bayes": [predictor_distance(ev.id_dmmse[g], ev.id_ridge[g], D) for g in range(G)],
            "d_zero_ridge": [predictor_distance(torch.zeros_like(ev.id_ridge[g]), ev.id_ridge[g], D) for g in range(G)],
            "probe_ridge": ridge_predictor(px, py, cfg.sigma2).reshape(-1).cpu(),
            "probe_dmmse": torch.stack(probe_dmmse).reshape(G, -1).cpu()}


T_CRIT_BAND = 0.02         # t_crit's range: the steps around the minimum within this fraction of the OOD gap of it
RIDGE_LIKE_FRACTION = 0.5  # ridge-like also needs Δ(model, ridge) below this fraction of the untrained Δ(0, ridge)


def ridge_like(d_ridge, d_dmmse, d_zero_ridge: float | None = None) -> np.ndarray:
    """Which checkpoints are *ridge-like*: Δ(model, ridge) < Δ(model, dMMSE_M) and, when
    ``d_zero_ridge`` = Δ(0, ridge) is given, Δ(model, ridge) < ½ Δ(0, ridge) — so that an
    untrained model predicting ≈ 0 (which ridge's shrinkage makes closer to ridge than to a
    confident dMMSE_M) does not count. ``d_ridge``, ``d_dmmse``: (n_checkpoints,); returns a
    boolean array of that shape."""
    dr, dd = np.asarray(d_ridge, dtype=float), np.asarray(d_dmmse, dtype=float)
    if dr.shape != dd.shape:
        raise ValueError(f"d_ridge and d_dmmse must have the same shape; got {dr.shape} and {dd.shape}")
    near = dr < dd
    if d_zero_ridge is not None:
        near &= dr < RIDGE_LIKE_FRACTION * d_zero_ridge
    return near


def transient_summary(steps, ood, d_ridge, d_dmmse, ood_ridge: float, ood_dmmse: float,
                      d_zero_ridge: float | None = None, bandwidth: float = SMOOTHING_DECADES) -> dict:
    """One group's transient, from its curves over checkpoints; the OOD curve is first smoothed
    (:func:`smooth`), as the paper's are.

    ``t_crit``: step of the lowest smoothed OOD loss (``t_crit_range``: the checkpoints around it
    whose smoothed loss is within ``T_CRIT_BAND`` of the gap of the minimum; ``t_crit_raw``: the
    raw curve's argmin); with the gap ``ood_dmmse − ood_ridge`` between the two Bayes predictors,
    ``min_above_ridge``: (lowest smoothed OOD loss − ridge's) / gap and ``ood_rise``: (final −
    lowest smoothed loss) / gap — a full transient has the first small and the second large;
    ``fell``: the minimum comes after the first checkpoint (the loss fell before anything else —
    an untrained model predicting ≈ 0 can beat a confident dMMSE_M out of distribution);
    ``ridge_phase``: some checkpoint is *ridge-like* (:func:`ridge_like`); ``crossed``: after the
    first ridge-like checkpoint, a later one has Δ(model, dMMSE_M) < Δ(model, ridge) (at ``t_cross``).
    """
    steps, raw = np.asarray(steps), np.asarray(ood, dtype=float)
    dr, dd = np.asarray(d_ridge, dtype=float), np.asarray(d_dmmse, dtype=float)
    if not (len(steps) == len(raw) == len(dr) == len(dd)) or len(steps) == 0:
        raise ValueError("steps, ood, d_ridge and d_dmmse must be non-empty and of equal length")
    sm = smooth(steps, raw, bandwidth)
    i = int(np.argmin(sm))
    gap = ood_dmmse - ood_ridge
    lo = hi = i
    if gap > 0:
        while lo > 0 and sm[lo - 1] <= sm[i] + T_CRIT_BAND * gap:
            lo -= 1
        while hi < len(sm) - 1 and sm[hi + 1] <= sm[i] + T_CRIT_BAND * gap:
            hi += 1
    like = np.nonzero(ridge_like(dr, dd, d_zero_ridge))[0]
    crossed = bool(len(like) and (dd[like[0]:] < dr[like[0]:]).any())
    return {"t_crit": int(steps[i]), "t_crit_range": [int(steps[lo]), int(steps[hi])], "fell": i > 0,
            "t_crit_raw": int(steps[int(np.argmin(raw))]), "ood_min": float(sm[i]), "ood_final": float(sm[-1]),
            "ood_rise": float((sm[-1] - sm[i]) / gap) if gap > 0 else float("nan"),
            "min_above_ridge": float((sm[i] - ood_ridge) / gap) if gap > 0 else float("nan"),
            "ridge_phase": bool(len(like)), "crossed": crossed,
            "t_cross": int(steps[like[0]:][np.argmax(dd[like[0]:] < dr[like[0]:])]) if crossed
            else None}


def label(M) -> str:
    """``"∞"`` or the integer, for legends and keys."""
    return "∞" if M in (INF, "inf") else str(int(M))


def summaries(log: dict) -> list[dict]:
    """:func:`transient_summary` for every group of a run's log (or its stored ``sweep`` metrics),
    each with its ``M`` (a label) and ``seed``."""
    ood, dr, dd = (np.asarray(log[k], dtype=float) for k in ("ood", "d_ridge", "d_dmmse"))
    return [dict(transient_summary(log["step"], ood[:, g], dr[:, g], dd[:, g], log["ood_ridge_loss"],
                                   log["ood_dmmse_loss"][g], log["d_zero_ridge"][g]), M=label(M), seed=int(seed))
            for g, (M, seed) in enumerate(log["groups"])]


# ------------------------------------------------------------------------------ joint trajectory PCA

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
    G, _, P = proj["runs"].shape
    if not (check_int("g", g, 0) < G):
        raise ValueError(f"g must be a group index, an int in [0, {G - 1}]; got {g}")
    if not (check_int("n_pc", n_pc, 1) <= P):
        raise ValueError(f"n_pc must be an int in [1, {P}] (the projection's components); got {n_pc}")
    run = proj["runs"][g, :, :n_pc]
    to_ridge = (run - proj["ridge"][:n_pc]).norm(dim=-1)
    to_dmmse = (run - proj["dmmse"][g, :n_pc]).norm(dim=-1)
    i = int(to_ridge.argmin())
    return {"closest_to_ridge": float(to_ridge[i]), "closest_index": i, "n_checkpoints": run.shape[0],
            "final_to_ridge": float(to_ridge[-1]), "final_to_dmmse": float(to_dmmse[-1])}


def pca_bend(path, ridge, dmmse) -> dict:
    """How far a trajectory (n, 2) in PC1–PC2 is deflected toward the ridge point (2,) from the
    straight path (its chord, first to last point), and where it ends relative to its dMMSE_M point (2,).

    ``bend`` = (closest approach of the chord to ridge − closest approach of the path) / chord
    length: about 0 for a path that goes straight, large when it detours toward ridge. Also the
    ``closest_index`` of the path to ridge, and its final distances to ridge and to dMMSE_M."""
    p, r, q = (np.asarray(v, dtype=float) for v in (path, ridge, dmmse))
    if p.ndim != 2 or p.shape[1] != 2 or r.shape != (2,) or q.shape != (2,):
        raise ValueError(f"path must be (n, 2) and the points (2,); got {p.shape}, {r.shape}, {q.shape}")
    chord = p[-1] - p[0]
    length = float(np.linalg.norm(chord))
    tau = float(np.clip((r - p[0]) @ chord / length ** 2, 0, 1)) if length > 0 else 0.0
    chord_to_ridge = float(np.linalg.norm(p[0] + tau * chord - r))
    to_ridge = np.linalg.norm(p - r, axis=1)
    i = int(np.argmin(to_ridge))
    return {"bend": (chord_to_ridge - float(to_ridge[i])) / length if length > 0 else 0.0, "closest_index": i,
            "n_checkpoints": len(p), "closest_to_ridge": float(to_ridge[i]), "chord_to_ridge": chord_to_ridge,
            "chord_length": length, "final_to_ridge": float(to_ridge[-1]),
            "final_to_dmmse": float(np.linalg.norm(p[-1] - q))}


def pca_section(features: torch.Tensor, probe_ridge: torch.Tensor, probe_dmmse: torch.Tensor, steps,
                labels: list[str], bandwidth: float = SMOOTHING_DECADES) -> dict:
    """The joint trajectory PCA of a run, as stored in its metrics: the fit on ``features``
    (n_checkpoints, G, F) (one run per M), its ``explained`` variance, the predictors' points,
    every run's PC1–PC2 path smoothed over checkpoints (:func:`smooth`, as the paper's "lightly
    smoothed" curves) with its :func:`pca_bend` geometry, and the unsmoothed :func:`pca_detour`."""
    proj = trajectory_pca(features, probe_ridge, probe_dmmse)
    ridge, dmmse = proj["ridge"][:2].numpy(), proj["dmmse"][:, :2].numpy()
    paths = [np.stack([smooth(steps, proj["runs"][g, :, c].numpy(), bandwidth) for c in range(2)], 1)
             for g in range(proj["runs"].shape[0])]
    return {"explained": proj["pca"].explained.tolist(), "labels": list(labels), "ridge": ridge.tolist(),
            "dmmse": dmmse.tolist(), "paths": [np.round(p, 5).tolist() for p in paths],
            "bend": [pca_bend(p, ridge, dmmse[g]) for g, p in enumerate(paths)],
            "detour": [pca_detour(proj, g) for g in range(len(paths))]}
