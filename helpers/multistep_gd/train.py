"""The chapter's experiments, shared by the notebooks (live, default sizes) and the full run.

Each ``train_*`` function trains one model with :func:`helpers.train` and returns it with its
:class:`~helpers.training.History`; :func:`evaluate_cot` and friends measure what the chapter
claims. Sizes per mode live in :data:`SIZES`.

Used in: book/multistep_gd/02_no_cot_vs_cot.ipynb, 03_generalisation_and_looping.ipynb and
``python -m helpers.multistep_gd``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from ..modes import by_mode
from ..training import History, checkpoint_schedule, step_generator, train
from .data import (covariance_with_condition, gd_iterates, one_step_error, one_step_optimum, sample_prompts,
                   squared_error)
from .lsa import LinearSelfAttention, SparseLSA, blocks, looped_predict, no_cot_predict, rollout, teacher_forced


@dataclass(frozen=True)
class Setting:
    """One (d, n) setting with its CoT length k and GD step η (chosen stable, see the chapter)."""

    d: int
    n: int
    k: int
    eta: float


def sizes(mode: str | None = None) -> dict:
    """The chapter's sizes per mode (all three declared here, so a reader sees them together)."""
    return by_mode(
        smoke=dict(settings=[Setting(4, 8, 4, 0.5)], batch=64, steps=60, loop_steps=40, balanced_steps=60,
                   test=256, loops=4),
        default=dict(settings=[Setting(10, 20, 20, 0.5)], batch=256, steps=1000, loop_steps=500,
                     balanced_steps=1500, test=2000, loops=10),
        full=dict(settings=[Setting(10, 20, 20, 0.5), Setting(10, 40, 20, 0.6)], batch=512, steps=4000,
                  loop_steps=2000, balanced_steps=3000, test=10_000, loops=10),
        mode=mode,
    )


# --------------------------------------------------------------------------------------------
# batches and losses


def batch_fn(setting: Setting, batch: int, seed: int, Sigma: torch.Tensor | None = None):
    """``batch_fn(step) -> (Prompts, GD iterates (B, k+1, d))``, the same for a step in any run."""
    def draw(step: int):
        P = sample_prompts(batch, setting.n, setting.d, Sigma=Sigma, generator=step_generator(seed, step))
        return P, gd_iterates(P.X, P.y, setting.eta, setting.k, warn=False)
    return draw


def cot_loss(model: LinearSelfAttention, batch) -> torch.Tensor:
    """Teacher-forced CoT loss ``Σ_j ||ŵ_{j+1}(Z_j) − w_{j+1}||²``, averaged over prompts."""
    P, W = batch
    return squared_error(teacher_forced(model, P.X, P.y, W[:, :-1]), W[:, 1:]).sum(1).mean()


def no_cot_loss(model: LinearSelfAttention, batch) -> torch.Tensor:
    """``||ŵ(Z_0) − w*||²``, averaged over prompts: the model must output ``w*`` in one pass."""
    P, _ = batch
    return squared_error(no_cot_predict(model, P.X, P.y), P.w_star).mean()


def looped_loss(loops: int):
    """``||ŵ_L − w*||²`` after ``loops`` applications of the shared layer (trained end to end)."""
    def loss(model: LinearSelfAttention, batch) -> torch.Tensor:
        P, _ = batch
        return squared_error(looped_predict(model, P.X, P.y, loops), P.w_star).mean()
    return loss


# --------------------------------------------------------------------------------------------
# training


def _adam(model: torch.nn.Module, lr: float, steps: int):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))


def test_prompts(setting: Setting, count: int, seed: int = 10_000, Sigma: torch.Tensor | None = None, n: int | None = None):
    """Held-out prompts (a seed never used for training batches) and their exact GD iterates."""
    P = sample_prompts(count, setting.n if n is None else n, setting.d, Sigma=Sigma,
                       generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = gd_iterates(P.X, P.y, setting.eta, setting.k)
    return P, W


def train_no_cot(setting: Setting, *, steps: int, batch: int, seed: int = 0, lr: float = 3e-3,
                 init_std: float = 0.01, test: int = 2000, progress: bool | None = None):
    """Train a full LSA to output ``w*`` in one pass; eval: test error at checkpoints."""
    model = LinearSelfAttention(setting.d, init_std=init_std, generator=torch.Generator().manual_seed(seed))
    P, _ = test_prompts(setting, test)
    opt, sched = _adam(model, lr, steps)
    history = train(model, no_cot_loss, batch_fn(setting, batch, seed), steps=steps, optimizer=opt, scheduler=sched,
                    grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20),
                    eval_fn=lambda m: {"test_error": squared_error(no_cot_predict(m, P.X, P.y), P.w_star).mean().item()},
                    progress=progress, desc=f"no CoT (d={setting.d}, n={setting.n})")
    return model, history


def weight_snapshot(model: LinearSelfAttention) -> dict[str, torch.Tensor]:
    W_PV, W_KQ = model.matrices()
    return {"W_PV": W_PV.detach().clone(), "W_KQ": W_KQ.detach().clone()}


def train_cot(setting: Setting, *, steps: int, batch: int, seed: int = 0, lr: float = 3e-3, init_std: float = 0.01,
              test: int = 2000, snapshots: int = 6, progress: bool | None = None):
    """Train a full LSA (every entry trainable, random init) on teacher-forced CoT.

    Returns ``(model, history, snaps)`` where ``snaps`` maps a few steps to ``W^{PV}``, ``W^{KQ}``.
    Eval at checkpoints: rollout error after k steps (mean, median) and deviation from exact GD.
    """
    model = LinearSelfAttention(setting.d, init_std=init_std, generator=torch.Generator().manual_seed(seed))
    P, W = test_prompts(setting, test)
    snap_steps = sorted(set(int(round(s)) for s in torch.logspace(0, torch.log10(torch.tensor(float(steps))).item(),
                                                                  snapshots - 1).tolist()) | {0})
    snaps: dict[int, dict[str, torch.Tensor]] = {}

    def eval_fn(m):
        R = rollout(m, P.X, P.y, setting.k)
        e = squared_error(R[:, -1], P.w_star)
        return {"rollout_mean": e.mean().item(), "rollout_median": e.median().item(),
                "deviation_from_gd": squared_error(R, W).mean().item()}

    opt, sched = _adam(model, lr, steps)
    history = train(model, cot_loss, batch_fn(setting, batch, seed), steps=steps, optimizer=opt, scheduler=sched,
                    grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=sorted(set(checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20)) | set(snap_steps)),
                    eval_fn=eval_fn,
                    on_checkpoint=lambda s, m: snaps.__setitem__(s, weight_snapshot(m)) if s in snap_steps else None,
                    progress=progress, desc=f"CoT (d={setting.d}, n={setting.n}, k={setting.k})")
    return model, history, snaps


def train_balanced(setting: Setting, *, steps: int, batch: int, init: float = 1e-3, lr: float = 0.01, seed: int = 0,
                   progress: bool | None = None):
    """Plain gradient descent (a proxy for gradient flow) on the sparse model from ``V_31 = −εI, W_13 = εI``.

    Eval at checkpoints: ``−mean diag V_31``, ``mean diag W_13``, the off-diagonal size of both,
    and the CoT loss on a fixed batch.
    """
    model = SparseLSA(setting.d, init=init)
    fixed = batch_fn(setting, 2048, seed + 1)(0)

    def eval_fn(m):
        eye = torch.eye(setting.d, dtype=torch.bool)
        return {"v": (-m.V31.diag().mean()).item(), "w": m.W13.diag().mean().item(),
                "off_diagonal": max(m.V31[~eye].abs().max().item(), m.W13[~eye].abs().max().item()),
                "loss": cot_loss(m, fixed).item()}

    history = train(model, cot_loss, batch_fn(setting, batch, seed), steps=steps,
                    optimizer=torch.optim.SGD(model.parameters(), lr=lr), grad_clip=10.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 100)), eval_fn=eval_fn,
                    progress=progress, desc="balanced init")
    return model, history


def train_looped(setting: Setting, *, loops: int, steps: int, batch: int, seed: int = 0, lr: float = 1e-2,
                 init_std: float = 0.01, sparse: bool = True, test: int = 2000, progress: bool | None = None):
    """Train an LSA applied ``loops`` times (weights shared), end to end on ``||ŵ_L − w*||²``.

    ``sparse=True`` trains the ``V_31``, ``W_13`` parameterisation from a random initialisation
    of std ``init_std``; ``sparse=False`` trains full matrices (unstable in our runs: the looped
    map is a high-degree polynomial of the weights and overflows on rare prompts).
    """
    g = torch.Generator().manual_seed(seed)
    if sparse:
        model = SparseLSA(setting.d, V31=init_std * torch.randn(setting.d, setting.d, generator=g),
                          W13=init_std * torch.randn(setting.d, setting.d, generator=g))
    else:
        model = LinearSelfAttention(setting.d, init_std=init_std, generator=g)
    P, _ = test_prompts(setting, test)
    opt, sched = _adam(model, lr, steps)
    history = train(model, looped_loss(loops), batch_fn(setting, batch, seed), steps=steps, optimizer=opt,
                    scheduler=sched, grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20),
                    eval_fn=lambda m: {"test_error": squared_error(looped_predict(m, P.X, P.y, loops), P.w_star).mean().item()},
                    progress=progress, desc=f"looped x{loops}")
    return model, history


# --------------------------------------------------------------------------------------------
# measurements


def effective_eta(model: LinearSelfAttention, P) -> tuple[float, float]:
    """Fit ``ŵ ≈ η̂ · X y / n`` by least squares; return ``(η̂, relative residual)``.

    A relative residual near 0 means the learned no-CoT map IS one GD step from 0, of size η̂.
    """
    with torch.no_grad():
        w_hat = no_cot_predict(model, P.X, P.y)
        g = torch.einsum("bdn,bn->bd", P.X, P.y) / P.n
        eta_hat = (w_hat * g).sum() / (g * g).sum()
        residual = ((w_hat - eta_hat * g) ** 2).sum() / (w_hat ** 2).sum()
    return eta_hat.item(), residual.item()


def sparsity_report(model: LinearSelfAttention) -> dict[str, float]:
    """How close the learned matrices are to the GD pattern.

    ``eta_hat``: ``−mean diag(V_31 W_13)`` (the invariant: ``V_31 → −cηI, W_13 → I/c`` for any c);
    ``product_offdiag``: max off-diagonal of ``V_31 W_13``; ``mass_outside``: the fraction of the
    Frobenius mass of ``W^{PV}`` and ``W^{KQ}`` outside the blocks (V_31; W_13 and the y–1 pairing).
    """
    d = model.d
    b = blocks(d)
    with torch.no_grad():
        W_PV, W_KQ = (M.detach().to(torch.float64) for M in model.matrices())
        V31, W13 = W_PV[b["w"], b["x"]], W_KQ[b["x"], b["w"]]
        product = V31 @ W13
        inside_PV = (V31 ** 2).sum()
        inside_KQ = (W13 ** 2).sum() + W_KQ[b["y"], b["one"]] ** 2
        mass_outside = ((W_PV ** 2).sum() - inside_PV + (W_KQ ** 2).sum() - inside_KQ) / ((W_PV ** 2).sum() + (W_KQ ** 2).sum())
        off = product - torch.diag(product.diag())
    return {"eta_hat": -product.diag().mean().item(), "product_offdiag": off.abs().max().item(),
            "mass_outside": mass_outside.item()}


def evaluate_cot(model: LinearSelfAttention, P, W: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Per step j = 0..k: rollout error and exact-GD error (mean and median over prompts).

    Returns tensors of shape (k+1,): ``model_mean, model_median, gd_mean, gd_median``.
    """
    with torch.no_grad():
        R = rollout(model, P.X, P.y, k)
    e_model = squared_error(R, P.w_star.unsqueeze(1))
    e_gd = squared_error(W[:, :k + 1], P.w_star.unsqueeze(1))
    # Prompts on which GD diverges overflow to inf/nan; the median stays meaningful, the mean does not.
    return {"model_mean": e_model.mean(0), "model_median": e_model.nan_to_num(nan=float("inf")).median(0).values,
            "gd_mean": e_gd.mean(0), "gd_median": e_gd.nan_to_num(nan=float("inf")).median(0).values}


def two_stage_times(history: History) -> dict[str, float]:
    """The two stages of :func:`train_balanced`, read off its loss and scales.

    ``t_half``: first step with loss below half its initial value (the end of the slow stage);
    ``t_end``: first step with loss below 1% of it; ``fast_fraction = (t_end − t_half) / t_half``
    (small: a long plateau, then a sharp drop). ``v_at_half``, ``w_at_half``: the scales at
    ``t_half`` as fractions of their final values (which block moved first).
    """
    steps = history.eval_steps
    loss, v, w = (history.eval_array(k) for k in ("loss", "v", "w"))
    below = lambda frac: next((steps[i] for i in range(len(loss)) if loss[i] < frac * loss[0]), None)  # noqa: E731
    t_half, t_end = below(0.5), below(0.01)
    if t_half is None or t_end is None:
        return {"t_half": float("nan"), "t_end": float("nan"), "fast_fraction": float("nan"),
                "v_at_half": float("nan"), "w_at_half": float("nan")}
    i = steps.index(t_half)
    return {"t_half": float(t_half), "t_end": float(t_end), "fast_fraction": (t_end - t_half) / max(t_half, 1),
            "v_at_half": float(v[i] / v[-1]), "w_at_half": float(w[i] / w[-1])}


def generalisation_over_n(model: LinearSelfAttention, setting: Setting, ns: list[int], test: int) -> dict[str, list]:
    """Rollout error after k steps on prompts with other n (the layer divides by the prompt's n).

    Returns lists over ``ns``: model and exact-GD errors (mean, median) and the stable fraction.
    """
    out = {"n": list(ns), "model_mean": [], "model_median": [], "gd_mean": [], "gd_median": []}
    for n in ns:
        P, W = test_prompts(setting, test, seed=20_000 + n, n=n)
        r = evaluate_cot(model, P, W, setting.k)
        for key in ("model_mean", "model_median", "gd_mean", "gd_median"):
            out[key].append(r[key][-1].item())
    return out


def generalisation_over_kappa(model: LinearSelfAttention, no_cot_model: LinearSelfAttention | None, setting: Setting,
                              kappas: list[float], test: int) -> dict[str, list]:
    """Errors on prompts with ``x ~ N(0, Σ)``, ``Σ`` of condition number κ (λ_max = 1, random axes).

    Returns lists over ``kappas``: CoT rollout and exact GD after k steps (mean, median), and the
    no-CoT model's error (mean) if given.
    """
    out = {"kappa": list(kappas), "model_mean": [], "model_median": [], "gd_mean": [], "gd_median": [],
           "no_cot_mean": []}
    for i, kappa in enumerate(kappas):
        Sigma = covariance_with_condition(setting.d, kappa, generator=torch.Generator().manual_seed(30_000 + i))
        P, W = test_prompts(setting, test, seed=31_000 + i, Sigma=Sigma)
        r = evaluate_cot(model, P, W, setting.k)
        for key in ("model_mean", "model_median", "gd_mean", "gd_median"):
            out[key].append(r[key][-1].item())
        if no_cot_model is not None:
            with torch.no_grad():
                out["no_cot_mean"].append(squared_error(no_cot_predict(no_cot_model, P.X, P.y), P.w_star).mean().item())
    return out


def no_cot_optimum(setting: Setting) -> tuple[float, float]:
    """``(η*, d(d+1)/(n+d+1))`` for the setting."""
    return one_step_optimum(setting.n, setting.d), one_step_error(setting.n, setting.d)
