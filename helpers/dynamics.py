"""The dynamics toolkit: instruments for what a model passes through while it learns, for any
model and loss. Chapter 3 introduced them; every chapter can use them.

- **Curves over checkpoints**: :func:`smooth` (a Gaussian kernel in ``log10(1 + step)``) and
  :func:`spearman` (rank correlation). The checkpoint schedule itself is
  :func:`helpers.training.checkpoint_schedule`.
- **Joint trajectory PCA** (:func:`fit_joint_pca`): every checkpoint of every run encoded by a
  feature vector of its outputs on a fixed probe set (:func:`prediction_features`), stacked,
  centred and decomposed by SVD; :class:`JointPCA` projects anything encoded the same way.
- **The local learning coefficient** (Lau et al. 2023; Watanabe's λ), estimated with SGLD
  (:func:`estimate_llc`). At a trained ``w*`` with empirical loss ``ℓ_n``,

      λ̂(w*) = nβ · ( E_w[ℓ_n(w)] − ℓ_n(w*) ),   w ~ p(w) ∝ exp(−nβ ℓ_n(w) − (γ/2)‖w − w*‖²),

  with ``nβ`` the inverse temperature times the sample size and ``γ`` the localisation strength;
  the expectation is over SGLD draws (:func:`sgld_step`)

      w ← w − (ε/2) · ( γ (w − w*) + nβ ∇ℓ_batch(w) ) + N(0, ε I),

  in ``num_chains`` chains from ``w*``, the first ``num_burnin`` steps discarded. The loss trace
  is returned so a reader can check the chains have settled (:func:`settled`, the calibration
  check). For a regular model with ``d`` parameters λ = d/2 (:func:`quadratic_llc`). ``loss_fn``
  may return G independent losses (a grouped model): one run estimates G LLCs at once.
  :func:`estimate_llc_devinterp` is the reference library's estimate, for a cross-check, and
  :func:`complexity_tradeoff` compares two solutions by Watanabe's free energy.

Used in: chapter 3 (``helpers.transient_ridge``) and the closing chapter.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_int
from .seeds import torch_generator

# ------------------------------------------------------------------------------ curves over checkpoints

SMOOTHING_DECADES = 0.05   # bandwidth of the Gaussian kernel in log10(1 + step)
                           # (ours: the paper says "lightly smoothed")


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


# ------------------------------------------------------------------------------ the LLC

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
