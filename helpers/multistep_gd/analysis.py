"""What the chapter measures on trained models: held-out prompts, the fitted one-step η̂ of the
no-CoT model, how sparse the CoT weights are, rollout errors against exact GD, the two stages
of the balanced run, and generalisation to other n and other covariances Σ.

Every function takes a model (or a training :class:`~helpers.training.History`) and prompts,
and returns plain numbers or tensors; :mod:`helpers.multistep_gd.claims` judges them.

Used in: book/multistep_gd/02_no_cot_vs_cot.ipynb, 03_generalisation_and_looping.ipynb and
``python -m helpers.multistep_gd``.
"""
from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import torch

from ..checks import check_int
from ..seeds import torch_generator
from ..training import History
from .data import (
    Prompts,
    covariance_with_condition,
    gd_iterates,
    gd_query_predictions,
    gd_step,
    one_step_error,
    one_step_optimum,
    sample_prompts,
    squared_error,
)
from .models import LinearSelfAttention, blocks, no_cot_predict, rollout

if TYPE_CHECKING:
    from .train import SettingConfig

# Single-key seeds of the held-out streams (a training batch of run seed 0 at step s is the stream
# derive_seed(0, s) = s, so these stay unused by training for runs shorter than 10 000 steps).
HELD_OUT_SEED = 10_000     # the test prompts of every training function and of the full run
OTHER_N_SEED = 20_000      # + n: the prompts of generalisation_over_n
SIGMA_SEED = 30_000        # + i: the i-th covariance of generalisation_over_kappa
OTHER_SIGMA_SEED = 31_000  # + i: its prompts
STABLE_STEP_SEED = 40_000  # + n: the prompts on which stable_step judges each η
STEP_GRID = tuple(round(0.1 * i, 1) for i in range(1, 21))  # η = 0.1, 0.2, …, 2.0
ROUND_OFF = 1e-12          # mean errors below this are float64 round-off: a "rise" there is noise


def held_out_prompts(setting: "SettingConfig", count: int, seed: int = HELD_OUT_SEED,
                     Sigma: torch.Tensor | None = None, n: int | None = None,
                     k: int | None = None) -> tuple[Prompts, torch.Tensor]:
    """``count`` held-out prompts of ``setting`` (``n`` examples if given) and their exact GD iterates.

    Returns ``(P, W)``: :class:`~helpers.multistep_gd.Prompts` (``X`` (B, d, n), ``y`` (B, n),
    ``w*`` (B, d)) and ``W`` (B, k+1, d) = ``w_0 … w_k`` with the setting's η (``k`` defaults to
    the setting's CoT length).
    """
    check_int("count", count, 1)
    P = sample_prompts(count, setting.n if n is None else n, setting.d, Sigma=Sigma, generator=torch_generator(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        W = gd_iterates(P.X, P.y, setting.eta, setting.k if k is None else check_int("k", k, 0))
    return P, W


def effective_eta(model: LinearSelfAttention, P: Prompts) -> tuple[float, float]:
    """Fit ``ŵ ≈ η̂ · X y / n`` by least squares; return ``(η̂, relative residual)``.

    A relative residual near 0 means the learned no-CoT map IS one GD step from 0, of size η̂.
    """
    with torch.no_grad():
        w_hat = no_cot_predict(model, P.X, P.y)
        g = torch.einsum("bdn,bn->bd", P.X, P.y) / P.n
        eta_hat = (w_hat * g).sum() / (g * g).sum()
        residual = ((w_hat - eta_hat * g) ** 2).sum() / (w_hat ** 2).sum()
    return eta_hat.item(), residual.item()


def relative_offdiagonal(M: torch.Tensor) -> float:
    """``max |off-diagonal entry| / mean |diagonal entry|`` of a square block (0 for a diagonal
    block; inf where the diagonal is all 0 and some off-diagonal entry is not; 0 for a 1×1 block)."""
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"M must be a non-empty square matrix; got shape {tuple(M.shape)}")
    M = M.detach().to(torch.float64)
    off = (M - torch.diag(M.diag())).abs().max().item()
    diag = M.diag().abs().mean().item()
    if off == 0:
        return 0.0
    return off / diag if diag > 0 else math.inf


def weight_pattern(W_PV: torch.Tensor, W_KQ: torch.Tensor, d: int) -> dict[str, float]:
    """How close two (2d+2, 2d+2) matrices ``W^{PV}``, ``W^{KQ}`` are to the GD pattern (the numbers
    of :func:`sparsity_report`; usable on stored weights, e.g. a full run's ``weights.npz``).

    ``eta_hat``: ``−mean diag(V_31 W_13)``, the step on ``S w``; ``pairing_eta``: ``mean diag(V_31)
    · W^{KQ}[y, 1]``, the step on ``X y / n`` (GD needs both equal to η: the scales are free only
    jointly, ``V_31 → −cηI``, ``W_13 → I/c``, ``W^{KQ}[y, 1] → −1/c``); ``product_offdiag``: max
    off-diagonal of ``V_31 W_13``; ``mass_outside``: the fraction of the Frobenius mass of
    ``W^{PV}`` and ``W^{KQ}`` outside the blocks (V_31; W_13 and the y–1 pairing);
    ``v31_offdiag``, ``w13_offdiag``: each block's :func:`relative_offdiagonal` (a product
    ``V_31 W_13 = −ηI`` does not make the blocks diagonal: ``V_31 = −ηQ``, ``W_13 = Qᵀ`` with
    ``Q`` orthogonal has it, and is not GD).
    """
    check_int("d", d, 1)
    D = 2 * d + 2
    W_PV, W_KQ = (torch.as_tensor(M).detach().to(torch.float64) for M in (W_PV, W_KQ))
    if W_PV.shape != (D, D) or W_KQ.shape != (D, D):
        raise ValueError(f"W_PV and W_KQ must be ({D}, {D}) for d = {d}; got {tuple(W_PV.shape)} and "
                         f"{tuple(W_KQ.shape)}")
    b = blocks(d)
    V31, W13 = W_PV[b["w"], b["x"]], W_KQ[b["x"], b["w"]]
    product = V31 @ W13
    inside_PV = (V31 ** 2).sum()
    inside_KQ = (W13 ** 2).sum() + W_KQ[b["y"], b["one"]] ** 2
    mass_outside = (((W_PV ** 2).sum() - inside_PV + (W_KQ ** 2).sum() - inside_KQ)
                    / ((W_PV ** 2).sum() + (W_KQ ** 2).sum()))
    off = product - torch.diag(product.diag())
    return {"eta_hat": -product.diag().mean().item(),
            "pairing_eta": (V31.diag().mean() * W_KQ[b["y"], b["one"]]).item(),
            "product_offdiag": off.abs().max().item(), "mass_outside": mass_outside.item(),
            "v31_offdiag": relative_offdiagonal(V31), "w13_offdiag": relative_offdiagonal(W13)}


def sparsity_report(model: LinearSelfAttention) -> dict[str, float]:
    """How close the learned matrices are to the GD pattern: :func:`weight_pattern` of the
    model's ``(W^{PV}, W^{KQ})``."""
    with torch.no_grad():
        W_PV, W_KQ = model.matrices()
        return weight_pattern(W_PV, W_KQ, model.d)


def evaluate_cot(model: LinearSelfAttention, P: Prompts, W: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Per step j = 0..k: rollout error and exact-GD error (mean and median over prompts).

    ``W``: exact GD iterates (B, >= k+1, d). Returns tensors of shape (k+1,): ``model_mean``,
    ``model_median``, ``gd_mean``, ``gd_median``.
    """
    check_int("k", k, 0)
    if W.shape[1] < k + 1:
        raise ValueError(f"W must hold at least k+1 = {k + 1} iterates; got {W.shape[1]}")
    with torch.no_grad():
        R = rollout(model, P.X, P.y, k)
    e_model = squared_error(R, P.w_star.unsqueeze(1))
    e_gd = squared_error(W[:, :k + 1], P.w_star.unsqueeze(1))
    # Prompts on which GD diverges overflow to inf/nan; the median stays meaningful, the mean does not.
    return {"model_mean": e_model.mean(0), "model_median": e_model.nan_to_num(nan=float("inf")).median(0).values,
            "gd_mean": e_gd.mean(0), "gd_median": e_gd.nan_to_num(nan=float("inf")).median(0).values}


STAGE_HALF = 0.5     # the slow stage ends when the loss is below half its start …
STAGE_END = 0.01     # … and the fast stage when it is below 1% of it


def fall_steps(steps, loss) -> tuple[int | None, int | None]:
    """The two stages read off any loss curve: ``(t_half, t_end)``, the first step with the loss
    below :data:`STAGE_HALF` of its first value and the first below :data:`STAGE_END` of it
    (None where it never falls that far). ``steps``, ``loss``: equal-length sequences."""
    loss = [float(v) for v in loss]
    if len(loss) != len(steps) or len(loss) == 0:
        raise ValueError(f"steps and loss must be non-empty and of equal length; got {len(steps)} and {len(loss)}")

    def below(frac):
        return next((int(s) for s, v in zip(steps, loss) if v < frac * loss[0]), None)
    return below(STAGE_HALF), below(STAGE_END)


def two_stage_times(history: History) -> dict[str, float]:
    """The two stages of :func:`~helpers.multistep_gd.train_balanced`, read off its loss and scales.

    ``t_half``: first step with loss below half its initial value (the end of the slow stage);
    ``t_end``: first step with loss below 1% of it (both by :func:`fall_steps`);
    ``fast_fraction = (t_end − t_half) / t_half`` (small: a long plateau, then a sharp drop).
    ``v_at_half``, ``w_at_half``: the scales at ``t_half`` as fractions of their final values
    (which block moved first). NaN everywhere if the loss never falls that far.
    """
    steps = history.eval_steps
    loss, v, w = (history.eval_array(k) for k in ("loss", "v", "w"))
    t_half, t_end = fall_steps(steps, loss)
    if t_half is None or t_end is None:
        return {"t_half": float("nan"), "t_end": float("nan"), "fast_fraction": float("nan"),
                "v_at_half": float("nan"), "w_at_half": float("nan")}
    i = steps.index(t_half)
    return {"t_half": float(t_half), "t_end": float(t_end), "fast_fraction": (t_end - t_half) / max(t_half, 1),
            "v_at_half": float(v[i] / v[-1]), "w_at_half": float(w[i] / w[-1])}


def _no_cot_errors(no_cot_model: LinearSelfAttention | None, P: Prompts) -> torch.Tensor | None:
    if no_cot_model is None:
        return None
    with torch.no_grad():
        return squared_error(no_cot_predict(no_cot_model, P.X, P.y), P.w_star)


def _sweep(model, no_cot_model, k: int, key: str, values: list, prompts) -> dict[str, list]:
    """Errors after ``k`` CoT steps (model and exact GD) and of the one pass without CoT, for each
    ``prompts(i, value) -> (P, W)``."""
    out = {key: list(values), "model_mean": [], "model_median": [], "gd_mean": [], "gd_median": [],
           "no_cot_mean": [], "no_cot_median": []}
    for i, value in enumerate(values):
        P, W = prompts(i, value)
        r = evaluate_cot(model, P, W, k)
        for name in ("model_mean", "model_median", "gd_mean", "gd_median"):
            out[name].append(r[name][-1].item())
        e = _no_cot_errors(no_cot_model, P)
        if e is not None:
            out["no_cot_mean"].append(e.mean().item())
            out["no_cot_median"].append(e.median().item())
    return out


def generalisation_over_n(model: LinearSelfAttention, no_cot_model: LinearSelfAttention | None,
                          setting: "SettingConfig", ns: list[int], test: int, k: int | None = None) -> dict[str, list]:
    """Errors on ``test`` prompts with each n in ``ns`` (the layer divides by the prompt's own n).

    Returns lists over ``ns``: ``n``; the CoT rollout and exact GD after ``k`` steps (default: the
    setting's k; ``model_mean``, ``model_median``, ``gd_mean``, ``gd_median``); the no-CoT model's
    one pass (``no_cot_mean``, ``no_cot_median``; empty if ``no_cot_model`` is None).
    """
    k = setting.k if k is None else check_int("k", k, 0)
    return _sweep(model, no_cot_model, k, "n", ns,
                  lambda i, n: held_out_prompts(setting, test, seed=OTHER_N_SEED + n, n=n, k=k))


def generalisation_over_kappa(model: LinearSelfAttention, no_cot_model: LinearSelfAttention | None,
                              setting: "SettingConfig", kappas: list[float], test: int,
                              k: int | None = None) -> dict[str, list]:
    """Errors on prompts with ``x ~ N(0, Σ)``, ``Σ`` of condition number κ (λ_max = 1, random axes).

    Returns lists over ``kappas``: ``kappa`` and the same errors as :func:`generalisation_over_n`.
    """
    k = setting.k if k is None else check_int("k", k, 0)

    def prompts(i, kappa):
        Sigma = covariance_with_condition(setting.d, kappa, generator=torch_generator(SIGMA_SEED + i))
        return held_out_prompts(setting, test, seed=OTHER_SIGMA_SEED + i, Sigma=Sigma, k=k)
    return _sweep(model, no_cot_model, k, "kappa", kappas, prompts)


def sign_flip_step(history: History) -> float:
    """The first checkpoint of a :func:`~helpers.multistep_gd.train_balanced` run at which both
    scales have the sign of the GD construction (``v = −mean diag V_31 > 0`` and ``w > 0``); 0 if
    they start so, NaN if never."""
    v, w = history.eval_array("v"), history.eval_array("w")
    return next((float(s) for s, a, b in zip(history.eval_steps, v, w) if a > 0 and b > 0), float("nan"))


def no_cot_optimum(setting: "SettingConfig") -> tuple[float, float]:
    """``(η*, d(d+1)/(n+d+1))`` for the setting: the best one-step GD size and its error."""
    return one_step_optimum(setting.n, setting.d), one_step_error(setting.n, setting.d)


# --------------------------------------------------------------------------------------------
# how many steps, at which n: the step size each n allows and the error after k steps


def stable_step(d: int, n: int, *, k_max: int = 40, grid: tuple[float, ...] = STEP_GRID, count: int = 20_000,
                seed: int = STABLE_STEP_SEED) -> float:
    """The step size GD allows at ``(d, n)``: the largest η in ``grid`` for which the mean error of
    exact GD, ``E‖w_k − w*‖²`` over ``count`` prompts (float64), never rises from one step to the
    next for ``k = 1 … k_max`` (rises below :data:`ROUND_OFF` are ignored).

    A larger η converges faster on most prompts, but once it exceeds ``2/λ_max(S)`` on a few of them
    those diverge and the mean turns upwards within ``k_max`` steps. Prompts: seed ``seed + n``.
    """
    check_int("d", d, 1)
    check_int("n", n, 1)
    check_int("k_max", k_max, 1)
    check_int("count", count, 1)
    if not grid or not all(g > 0 for g in grid):
        raise ValueError(f"grid must be a non-empty sequence of step sizes > 0; got {grid!r}")
    P = sample_prompts(count, n, d, generator=torch_generator(seed + n), dtype=torch.float64)
    for eta in sorted(grid, reverse=True):
        w, last = torch.zeros_like(P.w_star), squared_error(torch.zeros_like(P.w_star), P.w_star).mean().item()
        for _ in range(k_max):  # gd_iterates, stopped at the first rise
            w = gd_step(P.X, P.y, w, eta)
            error = squared_error(w, P.w_star).mean().item()
            if not math.isfinite(error) or (error > last and error > ROUND_OFF):
                break
            last = error
        else:
            return float(eta)
    raise ValueError(f"no step size in grid {tuple(grid)} keeps GD's mean error falling for k_max={k_max} "
                     f"steps at d={d}, n={n}; add smaller steps to the grid")


def recovery_curve(model: LinearSelfAttention, no_cot_model: LinearSelfAttention, setting: "SettingConfig",
                   k_max: int, test: int) -> dict[str, list | float]:
    """Error after each CoT step ``k = 0 … k_max`` on ``test`` held-out prompts of ``setting``:
    the CoT model's rollout and exact GD (``model_mean``, ``model_median``, ``gd_mean``,
    ``gd_median``, lists of length ``k_max + 1``), and the no-CoT model's one pass on the same
    prompts (``no_cot_mean``, ``no_cot_median``). The rollout may run past the trained CoT length."""
    P, W = held_out_prompts(setting, test, k=k_max)
    curve = {key: v.tolist() for key, v in evaluate_cot(model, P, W, k_max).items()}
    with torch.no_grad():
        e = squared_error(no_cot_predict(no_cot_model, P.X, P.y), P.w_star)
    return {**curve, "no_cot_mean": e.mean().item(), "no_cot_median": e.median().item()}


def first_step_with_gain(errors: list[float], reference: float, gain: float) -> int | None:
    """The first ``k`` with ``errors[k] <= reference / gain`` (e.g. the CoT step at which the error
    is 100 times below the no-CoT error), or None if no step reaches it."""
    if not gain > 0:
        raise ValueError(f"gain must be > 0; got {gain}")
    return next((k for k, e in enumerate(errors) if e <= reference / gain), None)


def best_gd_query(P: Prompts, x_q: torch.Tensor, y_q: torch.Tensor, steps: int,
                  grid: tuple[float, ...] = STEP_GRID) -> tuple[float, float]:
    """``(error, η)``: the smallest mean squared error of the query prediction ``x_qᵀ w_L`` after
    ``L = steps`` steps of exact GD from 0, over the step sizes in ``grid`` (float64), and its η —
    the baseline a looped layer with ``steps`` loops must beat to do better than GD.

    Raises ValueError for an empty ``grid`` (or a step ≤ 0) and for a grid on which GD's mean error
    is not finite at any step (every step diverges): there is then no baseline to beat."""
    check_int("steps", steps, 1)
    if not grid or not all(g > 0 for g in grid):
        raise ValueError(f"grid must be a non-empty sequence of step sizes > 0; got {tuple(grid)!r}")
    X, y, xq, yq = (t.to(torch.float64) for t in (P.X, P.y, x_q, y_q))
    best = (math.inf, math.nan)
    for eta in grid:
        err = ((gd_query_predictions(X, y, xq, eta, steps)[:, -1] - yq) ** 2).mean().item()
        if math.isfinite(err) and err < best[0]:
            best = (err, float(eta))
    if not math.isfinite(best[0]):
        raise ValueError(f"no step size in grid {tuple(grid)} gives a finite mean error after {steps} GD steps "
                         "(GD diverges at every one): add smaller steps to the grid")
    return best
