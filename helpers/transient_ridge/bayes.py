"""The two Bayes predictors of in-context linear regression, batched, and distances between predictors.

- **ridge** — Bayes-optimal for tasks ``t ~ N(0, I_D)``:
  ``t̂_k = (X_{<k}ᵀ X_{<k} + σ² I)⁻¹ X_{<k}ᵀ y_{<k}`` (0 at k = 1);
- **dMMSE_M** — Bayes-optimal for tasks uniform over the pool ``t_1 … t_M``:
  ``t̂_k = Σ_m softmax_m(−||y_{<k} − X_{<k} t_m||² / 2σ²) t_m`` (the pool mean at k = 1).

Both predict ``ŷ_k = t̂_kᵀ x_k`` from the first ``k − 1`` pairs, for every k at once.

Used in: book/transient_ridge/ (every notebook).
"""
from __future__ import annotations

import torch

from .data import check_sigma2


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
