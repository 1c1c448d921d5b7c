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

**Joint trajectory PCA** (:func:`fit_joint_pca`, :func:`trajectory_pca`): every checkpoint of every
run encoded by its K predictions on the probe sequences (the paper: 512 sequences of the root
task ``t_1``), stacked, centred and decomposed by SVD; the predictors are projected, not fitted.

**The LLC** (Lau et al. 2023; Watanabe's λ), estimated with SGLD (:func:`estimate_llc`). At a
trained ``w*`` with empirical loss ``ℓ_n``,

    λ̂(w*) = nβ · ( E_w[ℓ_n(w)] − ℓ_n(w*) ),   w ~ p(w) ∝ exp(−nβ ℓ_n(w) − (γ/2)‖w − w*‖²),

with ``nβ`` the inverse temperature times the sample size and ``γ`` the localisation strength;
the expectation is over SGLD draws (:func:`sgld_step`)

    w ← w − (ε/2) · ( γ (w − w*) + nβ ∇ℓ_batch(w) ) + N(0, ε I),

in ``num_chains`` chains from ``w*``, the first ``num_burnin`` steps discarded. The loss trace is
returned so a reader can check the chains have settled (:func:`settled`). For a regular model
with ``d`` parameters λ = d/2. ``loss_fn`` may return G independent losses (a grouped model):
one run estimates G LLCs at once. :func:`estimate_llc_devinterp` is the reference library's
estimate, for a cross-check.

Used in: every page of book/transient_ridge/ and the chapter's full run.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..checks import check_int
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


SMOOTHING_DECADES = 0.05   # bandwidth of the Gaussian kernel in log10(1 + step)
                           # (ours: the paper says "lightly smoothed")
T_CRIT_BAND = 0.02         # t_crit's range: the steps around the minimum within this fraction of the OOD gap of it


def smooth(steps, values, bandwidth: float = SMOOTHING_DECADES) -> np.ndarray:
    """A curve over checkpoints, lightly smoothed: a Gaussian kernel in ``log10(1 + step)`` of
    width ``bandwidth`` decades (so it averages a similar *fraction* of training early, where the
    checkpoints are log-spaced, and late, where they are linear). ``bandwidth = 0``: unchanged.

    (n,), (n,) → (n,); the ends average only the side they have."""
    x, v = np.log10(1.0 + np.asarray(steps, dtype=float)), np.asarray(values, dtype=float)
    if x.shape != v.shape or x.ndim != 1:
        raise ValueError(f"steps and values must be 1-d and of equal length; got {x.shape} and {v.shape}")
    if not (isinstance(bandwidth, (int, float)) and bandwidth >= 0):
        raise ValueError(f"bandwidth must be a number >= 0 (decades); got {bandwidth!r}")
    if bandwidth == 0 or len(v) < 2:
        return v.copy()
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / bandwidth) ** 2)
    return (w @ v) / w.sum(1)


def spearman(x, y) -> float:
    """Spearman's rank correlation of two sequences (average ranks for ties); NaN if fewer than 3 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    if len(x) < 3:
        return float("nan")

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for u in np.unique(v):                      # ties share their mean rank
            r[v == u] = r[v == u].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


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
    ``ridge_phase``: some checkpoint is *ridge-like* — Δ(model, ridge) < Δ(model, dMMSE_M) and,
    when ``d_zero_ridge`` = Δ(0, ridge) is given, Δ(model, ridge) < ½ Δ(0, ridge), so that an
    untrained model predicting ≈ 0 (which ridge's shrinkage makes closer to ridge than to a
    confident dMMSE_M) does not count; ``crossed``: after the first ridge-like checkpoint, a later
    one has Δ(model, dMMSE_M) < Δ(model, ridge) (at ``t_cross``).
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
    near = dr < dd
    if d_zero_ridge is not None:
        near &= dr < 0.5 * d_zero_ridge
    ridge_like = np.nonzero(near)[0]
    crossed = bool(len(ridge_like) and (dd[ridge_like[0]:] < dr[ridge_like[0]:]).any())
    return {"t_crit": int(steps[i]), "t_crit_range": [int(steps[lo]), int(steps[hi])], "fell": i > 0,
            "t_crit_raw": int(steps[int(np.argmin(raw))]), "ood_min": float(sm[i]), "ood_final": float(sm[-1]),
            "ood_rise": float((sm[-1] - sm[i]) / gap) if gap > 0 else float("nan"),
            "min_above_ridge": float((sm[i] - ood_ridge) / gap) if gap > 0 else float("nan"),
            "ridge_phase": bool(len(ridge_like)), "crossed": crossed,
            "t_cross": int(steps[ridge_like[0]:][np.argmax(dd[ridge_like[0]:] < dr[ridge_like[0]:])]) if crossed
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

@dataclass
class JointPCA:
    """``mean`` (F,), ``components`` (n, F) orthonormal rows, ``explained`` (n,) variance ratios,
    ``singular_values`` (n,)."""

    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor
    singular_values: torch.Tensor

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(..., F) → (..., n): coordinates in the principal components."""
        if features.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"features must have {self.mean.shape[0]} columns (the fit's feature size); "
                             f"got {features.shape[-1]}")
        return (features.to(self.mean) - self.mean) @ self.components.T


def fit_joint_pca(trajectories: list[torch.Tensor] | dict, n_components: int = 4) -> JointPCA:
    """Fit PCA to the stacked rows of all trajectories (each (n_checkpoints, F)).

    Returns the :class:`JointPCA`; ``explained[i]`` is the fraction of the total variance of
    the stacked rows along component ``i``.
    """
    runs = list(trajectories.values()) if isinstance(trajectories, dict) else list(trajectories)
    if not runs:
        raise ValueError("trajectories must hold at least one (n_checkpoints, F) tensor")
    F_ = runs[0].shape[-1]
    for r in runs:
        if r.ndim != 2 or r.shape[1] != F_:
            raise ValueError(f"every trajectory must be (n_checkpoints, F) with the same F={F_}; got {tuple(r.shape)}")
    X = torch.cat([r.double() for r in runs])
    check_int("n_components", n_components, 1)
    if n_components > min(X.shape):
        raise ValueError(f"n_components must be <= min(rows, features) = {min(X.shape)}; got {n_components}")
    mean = X.mean(0)
    U, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    total = (S ** 2).sum()
    return JointPCA(mean, Vh[:n_components], (S[:n_components] ** 2) / total, S[:n_components])


def prediction_features(predict, probe_tokens: torch.Tensor) -> torch.Tensor:
    """A model's feature vector: its predictions (B, K) on the probe sequences, flattened to (B·K,).

    ``predict(tokens) -> (B, K)``; wrap grouped models with ``lambda t: model(t[None])[0]``.
    """
    with torch.no_grad():
        return predict(probe_tokens).reshape(-1)


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


# ------------------------------------------------------------------------------ the LLC

class NonFiniteSamplingError(ValueError):
    """SGLD produced a NaN or infinite loss; the message names the chain, the step and what to try."""


@dataclass
class LLCEstimate:
    """``llc``: (G,) mean over chains (G = 1 for a scalar loss); ``llc_per_chain``: (chains, G);
    ``loss_trace``: (chains, burnin + draws, G); ``init_loss``: (G,) the loss at ``w*``."""

    llc: torch.Tensor
    llc_per_chain: torch.Tensor
    loss_trace: torch.Tensor
    init_loss: torch.Tensor
    settings: dict

    @property
    def llc_std(self) -> torch.Tensor:
        """Standard deviation over chains."""
        return self.llc_per_chain.std(0) if self.llc_per_chain.shape[0] > 1 else torch.zeros_like(self.llc)


def _positive(name: str, value) -> float:
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def sgld_step(w: torch.Tensor, w_star: torch.Tensor, grad: torch.Tensor, noise: torch.Tensor, *, lr: float,
              nbeta: float, localization: float) -> torch.Tensor:
    """One SGLD step (any shape; all four tensors alike):
    ``w − (ε/2)(γ (w − w*) + nβ ∇ℓ_batch(w)) + √ε · ξ`` with ``ξ = noise`` ~ N(0, I)."""
    return w - 0.5 * lr * (localization * (w - w_star) + nbeta * grad) + math.sqrt(lr) * noise


def estimate_llc(model: torch.nn.Module, loss_fn, batch_fn, *, lr: float, nbeta: float, localization: float,
                 num_chains: int = 4, num_draws: int = 200, num_burnin: int = 100, init_batches: int = 8,
                 seed: int = 0) -> LLCEstimate:
    """SGLD estimate of the LLC at the model's current parameters ``w*``.

    Args:
        loss_fn: ``loss_fn(model, batch) -> loss`` (a scalar, or (G,) independent losses).
        batch_fn: ``batch_fn(i) -> batch``: ``i = 0, 1, …`` for the sampling steps (fresh data each
            step), ``i = −1, −2, …`` for the ``init_batches`` that estimate ``ℓ_n(w*)``.
        lr: SGLD step ε > 0. nbeta: nβ > 0. localization: γ > 0.
        init_batches: batches averaged for ``ℓ_n(w*)``.

    The model's parameters are restored to ``w*`` afterwards.
    """
    lr, nbeta, localization = (_positive(n, v) for n, v in (("lr", lr), ("nbeta", nbeta),
                                                           ("localization", localization)))
    check_int("num_chains", num_chains, 1)
    check_int("num_draws", num_draws, 1)
    check_int("num_burnin", num_burnin, 0)
    check_int("init_batches", init_batches, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    w_star = [p.detach().clone() for p in params]
    gen = torch_generator(seed, device=params[0].device)
    with torch.no_grad():
        init = torch.stack([torch.as_tensor(loss_fn(model, batch_fn(-1 - i))).reshape(-1).float()
                            for i in range(init_batches)]).mean(0)
    steps = num_burnin + num_draws
    trace = torch.empty(num_chains, steps, init.numel())
    try:
        for c in range(num_chains):
            with torch.no_grad():
                for p, w in zip(params, w_star):
                    p.copy_(w)
            for t in range(steps):
                loss = torch.as_tensor(loss_fn(model, batch_fn(c * steps + t)))
                if not torch.isfinite(loss).all():
                    raise NonFiniteSamplingError(
                        f"SGLD loss became {loss.detach().flatten().tolist()[:4]} in chain {c} at step {t}: lower "
                        f"lr (now {lr}) or raise localization (now {localization})")
                trace[c, t] = loss.detach().reshape(-1).float().cpu()
                grads = torch.autograd.grad(loss.sum(), params)
                with torch.no_grad():
                    for p, w, g in zip(params, w_star, grads):
                        noise = torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
                        p.copy_(sgld_step(p, w, g, noise, lr=lr, nbeta=nbeta, localization=localization))
    finally:
        with torch.no_grad():
            for p, w in zip(params, w_star):
                p.copy_(w)
    per_chain = nbeta * (trace[:, num_burnin:].mean(1) - init.cpu())
    settings = dict(lr=lr, nbeta=nbeta, localization=localization, num_chains=num_chains, num_draws=num_draws,
                    num_burnin=num_burnin)
    return LLCEstimate(per_chain.mean(0), per_chain, trace, init.cpu(), settings)


def quadratic_llc(hessian_eigenvalues: torch.Tensor, nbeta: float, localization: float) -> float:
    """The estimator's exact target for a quadratic loss ``½ (w − w*)ᵀ H (w − w*)``:
    ``Σ_i ½ · nβ h_i / (nβ h_i + γ)`` — d/2 when every ``nβ h_i ≫ γ``."""
    h = torch.as_tensor(hessian_eigenvalues, dtype=torch.float64)
    return float((0.5 * nbeta * h / (nbeta * h + localization)).sum())


def settled(est: LLCEstimate, tolerance: float = 0.1) -> list[bool]:
    """Calibration check per group: the chains' mean loss over the first and the second half of the
    draws differ by at most ``tolerance`` × (mean draw loss − ``ℓ_n(w*)``) — the trace has stopped
    drifting, so more draws would not change the estimate much."""
    if not 0 < tolerance:
        raise ValueError(f"tolerance must be > 0; got {tolerance!r}")
    draws = est.loss_trace[:, est.settings["num_burnin"]:].mean(0)          # (draws, G)
    half = draws.shape[0] // 2
    if half < 1:
        raise ValueError("settled needs at least 2 draws")
    first, second = draws[:half].mean(0), draws[half:].mean(0)
    excess = draws.mean(0) - est.init_loss
    return [bool(abs(a - b) <= tolerance * max(float(e), 1e-12)) for a, b, e in zip(first, second, excess)]


def estimate_llc_devinterp(model: torch.nn.Module, loss_fn, loader, *, lr: float, nbeta: float, localization: float,
                           num_chains: int = 4, num_draws: int = 200, num_burnin: int = 100, seed: int = 0,
                           init_loss: float | None = None) -> dict:
    """The same estimate with the reference library ``devinterp`` (v1.3.2, SGLD), for a cross-check.

    ``loss_fn(model, batch) -> scalar``; ``loader`` iterates batches (e.g. a ``DataLoader``);
    ``init_loss``: ``ℓ_n(w*)`` to use (None: devinterp takes the loss on its first batch).
    Returns ``{"llc": mean, "llc_std": std over chains}``. Raises ``ImportError`` with the install
    command when ``devinterp`` is missing.
    """
    try:
        from devinterp.optim.sgld import SGLD
        from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the cross-check needs devinterp: pip install devinterp==1.3.2") from e
    from torch.utils.data import DataLoader
    if not isinstance(loader, DataLoader):   # devinterp wants a DataLoader; serve the given batches as they are
        loader = DataLoader(list(loader), batch_size=1, collate_fn=lambda items: items[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # its notes on nbeta given by hand and on cycling batches
        out = estimate_learning_coeff_with_summary(
            model, loader, evaluate=lambda m, batch: (loss_fn(m, batch), {}), sampling_method=SGLD,
            optimizer_kwargs=dict(lr=lr, nbeta=nbeta, localization=localization), num_chains=num_chains,
            num_draws=num_draws, num_burnin_steps=num_burnin, seed=seed, verbose=False, online=False,
            init_loss=init_loss, device=next(model.parameters()).device)   # its default would move the model to CPU
    return {"llc": float(out["llc/mean"]), "llc_std": float(out["llc/std"])}
