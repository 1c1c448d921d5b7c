"""Checkers for the chapter's exercises: they say what is wrong, not just that something is.

Exercise 1 (book/transient_ridge/01_bayes_predictors.ipynb): write the dMMSE_M estimate — the
posterior mean of the task over a finite pool.
Exercise 2 (book/transient_ridge/04_llc.ipynb): write one SGLD step of the LLC estimator.
"""
from __future__ import annotations

import math

import torch

from ..exercises import ExerciseError
from ..seeds import torch_generator
from .analysis import dmmse_estimates
from .data import TaskPool, sample_batch


def check_dmmse(my_dmmse) -> str:
    """``my_dmmse(xs, ys, tasks, sigma2) -> (B, K, D)``: t̂_k from the pairs before k, for every k."""
    pool = TaskPool(3, seed=7)
    tasks = pool.tasks(5)
    b = sample_batch(pool, 5, 6, 4, 0.25, torch_generator(3))
    xs, ys = b.xs.double(), b.ys.double()
    expected = dmmse_estimates(xs, ys, tasks.double(), 0.25)
    got = my_dmmse(xs, ys, tasks.double(), 0.25)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise ExerciseError(f"return a tensor of shape (B, K, D) = {tuple(expected.shape)}; got {shape}")
    got = got.to(expected)
    if not torch.allclose(got[:, 0], tasks.double().mean(0).expand_as(got[:, 0]), atol=1e-8):
        raise ExerciseError("at k = 1 there is no data yet: the estimate must be the pool mean (uniform prior). "
                            "Did you include pair k itself in the sums? Position k may only use pairs 1 … k−1")
    if torch.allclose(got, expected, atol=1e-8):
        return "Correct: your dMMSE estimate is the posterior mean over the pool."
    for wrong_sigma2 in (0.5, 0.125):  # −SSE alone, or −SSE/σ²
        if torch.allclose(got, dmmse_estimates(xs, ys, tasks.double(), wrong_sigma2), atol=1e-8):
            raise ExerciseError("the log-weights must be −SSE/(2σ²): check the factor 1/(2σ²)")
    big = sample_batch(pool, 5, 2, 4, 0.25, torch_generator(4))
    with torch.no_grad():
        far = my_dmmse(big.xs.double() * 30, big.ys.double() * 30, tasks.double(), 0.25)
    if not torch.isfinite(far).all():
        raise ExerciseError("with large residuals your weights overflow to NaN: subtract the largest log-weight "
                            "before exponentiating (log-sum-exp), or use torch.softmax")
    if math.isfinite(float(got.sum())):
        raise ExerciseError("the estimates differ from the posterior mean: "
                            "weights ∝ exp(−Σ_{j<k} (y_j − t_mᵀx_j)² / 2σ²), "
                            "normalised over the M tasks, then t̂_k = Σ_m w_m t_m")
    raise ExerciseError("your estimates contain NaN or inf")


def check_sgld_step(my_step) -> str:
    """``my_step(w, w_star, grad, noise, lr, nbeta, localization) -> new w`` (one SGLD step)."""
    from .analysis import sgld_step
    g = torch_generator(11)
    w, w_star, grad, noise = (torch.randn(3, 4, generator=g, dtype=torch.float64) for _ in range(4))
    kw = dict(lr=1e-2, nbeta=50.0, localization=4.0)
    want = sgld_step(w, w_star, grad, noise, **kw)
    got = my_step(w.clone(), w_star.clone(), grad.clone(), noise.clone(), **kw)
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        raise ExerciseError(f"return the new parameters as a tensor of w's shape {tuple(w.shape)}; got "
                            f"{getattr(got, 'shape', type(got).__name__)}")
    if torch.allclose(got, want, atol=1e-10):
        return "Correct: drift toward lower loss and back toward w*, plus Gaussian noise of variance ε."
    hints = [
        (w - 0.5 * kw["lr"] * (kw["localization"] * (w - w_star) + kw["nbeta"] * grad) + kw["lr"] * noise,
         "the noise has variance ε, so its scale is sqrt(lr), not lr"),
        (w - kw["lr"] * (kw["localization"] * (w - w_star) + kw["nbeta"] * grad) + math.sqrt(kw["lr"]) * noise,
         "the drift is multiplied by ε/2, not ε"),
        (w - 0.5 * kw["lr"] * (kw["localization"] * (w - w_star) + grad) + math.sqrt(kw["lr"]) * noise,
         "the gradient of the loss is scaled by nβ (the posterior is exp(−nβ ℓ_n))"),
        (w - 0.5 * kw["lr"] * (kw["nbeta"] * grad) + math.sqrt(kw["lr"]) * noise,
         "the localisation term γ (w − w*) is missing: it keeps the chain near w*"),
        (w - 0.5 * kw["lr"] * (kw["localization"] * (w_star - w) + kw["nbeta"] * grad) + math.sqrt(kw["lr"]) * noise,
         "the localisation pulls w toward w*: its drift term is γ (w − w*), not γ (w* − w)"),
    ]
    for wrong, hint in hints:
        if torch.allclose(got, wrong, atol=1e-10):
            raise ExerciseError(hint)
    raise ExerciseError("not the SGLD step: w − (ε/2)(γ (w − w*) + nβ·grad) + sqrt(ε)·noise")
