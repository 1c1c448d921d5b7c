"""The local learning coefficient (LLC), estimated with SGLD (Lau et al. 2023; Watanabe's λ).

At a trained parameter ``w*`` with empirical loss ``ℓ_n``, the estimator is

    λ̂(w*) = nβ · ( E_w[ℓ_n(w)] − ℓ_n(w*) ),   w ~ p(w) ∝ exp(−nβ ℓ_n(w) − (γ/2)‖w − w*‖²),

where ``nβ`` is the inverse temperature times the sample size and ``γ`` the localisation
strength. The expectation is over draws of stochastic-gradient Langevin dynamics (SGLD),

    w ← w − (ε/2) · ( γ (w − w*) + nβ ∇ℓ_batch(w) ) + N(0, ε I),

run in ``num_chains`` chains from ``w*``; the first ``num_burnin`` steps of a chain are
discarded. The loss trace is returned so that a reader can check the chains have settled — the
estimate means nothing otherwise. For a regular model with ``d`` parameters λ = d/2.

``loss_fn`` may return one loss or a vector of G independent losses (a
:class:`~helpers.transient_ridge.model.GroupedTransformer`): the gradient of their sum moves
each group on its own, so one run estimates G LLCs at once.

Used in: book/transient_ridge/ (the LLC over M and over training) and the chapter's full run.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch

from ..checks import check_int


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
    gen = torch.Generator(device=params[0].device).manual_seed(seed)
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
