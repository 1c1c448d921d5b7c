"""In-context weight prediction: prompts, exact gradient-descent iterates, closed forms.

Setting of Huang, Wang & Lee (2025): ``x_i ~ N(0, Σ)``, ``w* ~ N(0, I_d)``, noiseless
``y_i = <w*, x_i>``, ``i = 1..n``. The model must output ``w*``. We store the inputs as the
paper's matrix ``X ∈ R^{d×n}`` (one column per example) and write ``S = X Xᵀ / n``.

Used in: book/multistep_gd/ (every notebook) and ``python -m helpers.multistep_gd``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..checks import check_int


class UnstableStepWarning(UserWarning):
    """Gradient descent with this η diverges on some prompts (η > 2 / λ_max(S))."""


@dataclass
class Prompts:
    """A batch of prompts. ``X``: (B, d, n), ``y``: (B, n), ``w_star``: (B, d)."""

    X: torch.Tensor
    y: torch.Tensor
    w_star: torch.Tensor

    @property
    def n(self) -> int:
        return self.X.shape[-1]

    @property
    def d(self) -> int:
        return self.X.shape[-2]

    def __len__(self) -> int:
        return self.X.shape[0]


def check_covariance(Sigma: torch.Tensor, d: int) -> torch.Tensor:
    """Validate ``Σ``: a symmetric positive-definite (d, d) matrix; returns it."""
    if not isinstance(Sigma, torch.Tensor):
        raise TypeError(f"Sigma must be a torch.Tensor of shape ({d}, {d}); got {type(Sigma).__name__}")
    if Sigma.shape != (d, d):
        raise ValueError(f"Sigma must be a square ({d}, {d}) matrix for d={d}; got shape {tuple(Sigma.shape)}")
    S64 = Sigma.to(torch.float64)
    if not torch.allclose(S64, S64.T, atol=1e-8 * float(S64.abs().max().clamp_min(1.0))):
        raise ValueError("Sigma must be symmetric")
    smallest = float(torch.linalg.eigvalsh(S64).min())
    if smallest <= 0:
        raise ValueError(f"Sigma must be positive definite; its smallest eigenvalue is {smallest:.3g}")
    return Sigma


def covariance_with_condition(d: int, kappa: float, generator: torch.Generator | None = None,
                              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A random covariance with eigenvalues log-spaced in ``[1/κ, 1]`` (λ_max = 1) and random axes.

    Keeping ``λ_max(Σ) = 1`` keeps the same step size η stable for every κ, so a growing error
    reflects the condition number, not divergence.
    """
    check_int("d", d, 1)
    if not kappa >= 1:
        raise ValueError(f"kappa (condition number) must be >= 1; got {kappa}")
    eigenvalues = torch.logspace(0, -torch.log10(torch.tensor(float(kappa))).item(), d, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=generator, dtype=torch.float64))
    return ((Q * eigenvalues) @ Q.T).to(dtype)


def sample_prompts(batch: int, n: int, d: int, *, Sigma: torch.Tensor | None = None,
                   generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32,
                   device: torch.device | str = "cpu") -> Prompts:
    """Draw ``batch`` prompts: ``X`` (B, d, n) with columns ``x_i ~ N(0, Σ)``, ``w* ~ N(0, I_d)``,
    ``y = Xᵀ w*`` (B, n), noiseless.

    Args:
        batch: B >= 1. n: examples per prompt, >= 1. d: dimension, >= 1.
        Sigma: (d, d) symmetric positive-definite covariance (default: ``I_d``).
    """
    check_int("batch", batch, 1)
    check_int("n", n, 1)
    check_int("d", d, 1)
    X = torch.randn(batch, d, n, generator=generator, dtype=torch.float64)
    if Sigma is not None:
        L = torch.linalg.cholesky(check_covariance(Sigma, d).to(torch.float64))
        X = L @ X
    w_star = torch.randn(batch, d, generator=generator, dtype=torch.float64)
    y = torch.einsum("bdn,bd->bn", X, w_star)
    return Prompts(X.to(dtype=dtype, device=device), y.to(dtype=dtype, device=device),
                   w_star.to(dtype=dtype, device=device))


def empirical_covariance(X: torch.Tensor) -> torch.Tensor:
    """``S = X Xᵀ / n``: (B, d, n) → (B, d, d)."""
    return X @ X.transpose(-1, -2) / X.shape[-1]


def stability_bound(X: torch.Tensor) -> torch.Tensor:
    """Per prompt, the largest stable GD step ``2 / λ_max(S)``: (B, d, n) → (B,)."""
    return 2.0 / torch.linalg.eigvalsh(empirical_covariance(X).to(torch.float64))[..., -1].to(X.dtype)


def gd_iterates(X: torch.Tensor, y: torch.Tensor, eta: float, k: int, w0: torch.Tensor | None = None,
                warn: bool = True) -> torch.Tensor:
    """Exact gradient descent on ``L(w) = ||Xᵀw − y||² / (2n)``, from ``w_0`` (default 0):

        w_{j+1} = w_j − η · X (Xᵀ w_j − y) / n.

    Args:
        X: (B, d, n). y: (B, n). eta: step η > 0. k: number of steps, >= 0.
        warn: emit :class:`UnstableStepWarning` if η > 2/λ_max(S) on any prompt.

    Returns:
        (B, k+1, d): ``w_0, w_1, …, w_k``.
    """
    check_int("k", k, 0)
    if not eta > 0:
        raise ValueError(f"eta must be > 0; got {eta}")
    if X.ndim != 3 or y.shape != (X.shape[0], X.shape[2]):
        raise ValueError(f"X must be (B, d, n) and y (B, n); got {tuple(X.shape)} and {tuple(y.shape)}")
    if warn:
        bound = stability_bound(X)
        unstable = int((eta > bound).sum())
        if unstable:
            warnings.warn(
                f"eta={eta} exceeds the stability bound 2/λ_max(XXᵀ/n) on {unstable} of {len(bound)} prompts "
                f"(smallest bound {float(bound.min()):.3f}); gradient descent diverges on them as k grows",
                UnstableStepWarning, stacklevel=2)
    w = torch.zeros(X.shape[0], X.shape[1], dtype=X.dtype, device=X.device) if w0 is None else w0
    iterates = [w]
    for _ in range(k):
        w = gd_step(X, y, w, eta)
        iterates.append(w)
    return torch.stack(iterates, dim=1)


def gd_step(X: torch.Tensor, y: torch.Tensor, w: torch.Tensor, eta: float) -> torch.Tensor:
    """One step of gradient descent, ``w − η · X (Xᵀ w − y) / n``: ``X`` (B, d, n), ``y`` (B, n),
    ``w`` (B, d) → (B, d)."""
    residual = torch.einsum("bdn,bd->bn", X, w) - y
    return w - eta * torch.einsum("bdn,bn->bd", X, residual) / X.shape[-1]


def gd_query_predictions(X: torch.Tensor, y: torch.Tensor, x_q: torch.Tensor, eta: float, k: int) -> torch.Tensor:
    """``x_qᵀ w_j`` for the exact GD iterates ``w_1 … w_k`` (:func:`gd_iterates` from 0): (B, k).
    ``x_q``: (B, d) queries."""
    if x_q.shape != X.shape[:2]:
        raise ValueError(f"x_q must have shape (B, d) = {tuple(X.shape[:2])}; got {tuple(x_q.shape)}")
    W = gd_iterates(X, y, eta, k, warn=False)[:, 1:]
    return torch.einsum("bkd,bd->bk", W, x_q)


def one_step_optimum(n: int, d: int) -> float:
    """The best single GD step from 0 for isotropic data: ``η* = n / (n + d + 1)``."""
    check_int("n", n, 1)
    check_int("d", d, 1)
    return n / (n + d + 1)


def one_step_error(n: int, d: int, eta: float | None = None) -> float:
    """``E||η X y / n − w*||²`` for ``x ~ N(0, I_d)``, ``w* ~ N(0, I_d)``:

        η² d (n + d + 1) / n − 2 η d + d,   which at η = η* is   d (d + 1) / (n + d + 1).

    (From the Wishart moment ``E[S²] = (n + d + 1) / n · I``.)
    """
    check_int("n", n, 1)
    check_int("d", d, 1)
    if eta is None:
        return d * (d + 1) / (n + d + 1)
    return eta**2 * d * (n + d + 1) / n - 2 * eta * d + d


def squared_error(w_hat: torch.Tensor, w_star: torch.Tensor) -> torch.Tensor:
    """``||ŵ − w*||²`` per prompt: (..., d) → (...).

    ``w_star`` has ``w_hat``'s shape, or 1 on an axis where ``w_hat`` holds several iterates of the
    same prompt (``W`` (B, k+1, d) against ``w_star.unsqueeze(1)`` (B, 1, d)); any other shape is a
    ValueError rather than a silent broadcast (e.g. (B, d) against (B, 1, d) would give (B, B))."""
    ok = (w_hat.ndim >= 1 and w_hat.ndim == w_star.ndim and w_hat.shape[-1] == w_star.shape[-1]
          and all(s in (h, 1) for h, s in zip(w_hat.shape[:-1], w_star.shape[:-1])))
    if not ok:
        raise ValueError(f"w_star must have the shape of w_hat, {tuple(w_hat.shape)}, or 1 on an axis of iterates "
                         f"(e.g. w_star.unsqueeze(1) for w_hat of shape (B, k+1, d)); got w_hat {tuple(w_hat.shape)} "
                         f"and w_star {tuple(w_star.shape)}")
    return ((w_hat - w_star) ** 2).sum(-1)
