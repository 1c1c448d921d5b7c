"""The chapter's figures: the W^{PV} / W^{KQ} heatmaps with their block grid, trained model vs
exact gradient descent, the error after k CoT steps at several n, the looped layer against its
loop count, and the two scales of the balanced runs.

Each function draws on a given ``ax`` (and returns it) or builds and returns a ``fig``; the
notebooks call ``plt.show()``.

Used in: book/multistep_gd/02_no_cot_vs_cot.ipynb and 03_generalisation_and_looping.ipynb.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..checks import check_int
from ..figures import WIDTH
from ..training import History


def _array(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def weight_heatmap(ax, M, d: int, title: str = ""):
    """``M`` ((2d+2)×(2d+2), ``W^{PV}`` or ``W^{KQ}``) scaled to its largest entry, red positive and
    blue negative, with grid lines between the blocks ``x | y | w | 1``. Returns ``ax``."""
    check_int("d", d, 1)
    M = _array(M)
    if M.shape != (2 * d + 2, 2 * d + 2):
        raise ValueError(f"M must be (2d+2, 2d+2) = ({2 * d + 2}, {2 * d + 2}) for d={d}; got {M.shape}")
    scale = np.abs(M).max() or 1.0
    ax.imshow(M / scale, cmap="RdBu_r", vmin=-1, vmax=1)
    for edge in (d - 0.5, d + 0.5, 2 * d + 0.5):
        ax.axhline(edge, color="k", lw=0.4)
        ax.axvline(edge, color="k", lw=0.4)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return ax


def weights_over_training(snaps: Mapping[int, Mapping[str, torch.Tensor]], d: int,
                          title: str = "CoT training from random init: the weights collapse to two blocks"):
    """One column per snapshot step of :func:`~helpers.multistep_gd.train_cot` (``snaps``: step →
    ``{"W_PV", "W_KQ"}``); top row ``W^{PV}``, bottom row ``W^{KQ}``. Returns the figure."""
    steps = sorted(snaps)
    if not steps:
        raise ValueError("snaps is empty: pass the snapshots returned by train_cot")
    fig, axes = plt.subplots(2, len(steps), figsize=(min(2.0 * len(steps), WIDTH), 4.2), squeeze=False)
    for c, step in enumerate(steps):
        weight_heatmap(axes[0, c], snaps[step]["W_PV"], d, f"$W^{{PV}}$, step {step}")
        weight_heatmap(axes[1, c], snaps[step]["W_KQ"], d, f"$W^{{KQ}}$, step {step}")
    fig.suptitle(title, y=1.0)
    fig.tight_layout()
    return fig


def model_vs_gd(ax, x: Sequence[float], curves: Mapping[str, Sequence[float]], *,
                stats: Sequence[str] = ("mean", "median"), model_label: str = "trained CoT model",
                gd_label: str = "exact GD", logx: bool = False):
    """The trained model's errors (markers: mean filled, median open) on exact GD's (grey lines:
    mean solid, median dashed), over ``x`` (CoT steps, n or κ), log-scaled y.

    ``curves`` holds ``model_<stat>`` and ``gd_<stat>`` for each stat in ``stats``, each of
    ``len(x)`` values (as :func:`~helpers.multistep_gd.evaluate_cot` and the generalisation
    functions return them). Returns ``ax``.
    """
    style = {"mean": ("-", "o", None), "median": ("--", "s", "none")}
    for stat in stats:
        if stat not in style:
            raise ValueError(f"stats must be drawn from {tuple(style)}; got {stat!r}")
        line, marker, face = style[stat]
        ax.plot(x, _array(curves[f"gd_{stat}"]), "k" + line, lw=2, alpha=0.35, label=f"{gd_label} ({stat})")
        ax.plot(x, _array(curves[f"model_{stat}"]), "C0" + marker, ms=4, mfc=face, label=f"{model_label} ({stat})")
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    return ax


def balanced_dynamics(history: History, eta: float, wrong_sign: History | None = None):
    """The balanced run of :func:`~helpers.multistep_gd.train_balanced`: left, the scales
    ``v = −mean diag V_31``, ``w = mean diag W_13`` and the largest off-diagonal entry, with their
    targets (η, 1) dashed; right, the CoT loss. Both against the step (log). With ``wrong_sign``
    (the run from ``V_31 = +εI``) its ``v`` and loss are drawn thin and dotted (symlog y for v, which
    starts negative). Returns the figure."""
    steps = np.maximum(history.eval_steps, 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(WIDTH, 3.6))
    ax1.plot(steps, history.evals["v"], "C0", label="v = −mean diag V₃₁")
    ax1.plot(steps, history.evals["w"], "C1", label="w = mean diag W₁₃")
    ax1.plot(steps, history.evals["off_diagonal"], "C2:", label="largest off-diagonal entry")
    ax2.plot(steps, history.evals["loss"], "k", label="from V₃₁ = −εI")
    if wrong_sign is not None:
        ws = np.maximum(wrong_sign.eval_steps, 1)
        ax1.plot(ws, wrong_sign.evals["v"], "C3", lw=1, ls=(0, (1, 1)), label="v, from V₃₁ = +εI")
        ax1.set_yscale("symlog", linthresh=1e-3)
        ax2.plot(ws, wrong_sign.evals["loss"], "C3", lw=1, ls=(0, (1, 1)), label="from V₃₁ = +εI")
        ax2.legend(fontsize=9, loc="lower left")
    ax1.axhline(eta, color="C0", ls="--", lw=0.8)
    ax1.axhline(1.0, color="C1", ls="--", lw=0.8)
    ax1.set(xscale="log", xlabel="GD step (log scale)", ylabel="scale", title="The two scales (dashed: η and 1)")
    ax2.set(xscale="log", yscale="log", xlabel="GD step (log scale)", ylabel="teacher-forced CoT loss",
            title="The loss")
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def recovery_vs_k(settings: Sequence[Mapping], gain: float, k_mark: int):
    """The error after k CoT steps, one panel per n (the full run's ``metrics["settings"]``, each
    with ``setting`` and ``recovery``): the CoT model's mean error (dots), exact GD's (grey line),
    the trained no-CoT model's (red dashed) and the mark ``no-CoT / gain`` (red dotted); the
    claims' step ``k_mark`` is a vertical line. Returns the figure."""
    if not settings:
        raise ValueError("settings is empty: pass the full run's metrics['settings']")
    cols = 2 if len(settings) > 1 else 1
    rows = -(-len(settings) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 2.8 * rows + 0.4), sharex=True, sharey=True, squeeze=False)
    for ax, entry in zip(axes.flat, settings):
        s, r = entry["setting"], entry["recovery"]
        ks = np.arange(len(r["model_mean"]))
        ax.plot(ks, _array(r["gd_mean"]), "k-", lw=2.5, alpha=0.3, label="exact GD")
        ax.plot(ks, _array(r["model_mean"]), "C0o", ms=3, label="CoT model (rollout)")
        ax.axhline(r["no_cot_mean"], color="C3", ls="--", lw=1.2, label="no-CoT model")
        ax.axhline(r["no_cot_mean"] / gain, color="C3", ls=":", lw=1.2, label=f"no-CoT / {gain:g}")
        ax.axvline(k_mark, color="grey", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(f"n = {s['n']} ({s['n'] // s['d']}d), η = {s['eta']:g}", fontsize=10)
    for ax in axes.flat[len(settings):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("chain-of-thought step k")
    for ax in axes[:, 0]:
        ax.set_ylabel("mean ‖ŵ_k − w*‖²")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=9, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.suptitle(f"d = {settings[0]['setting']['d']}: the error after k CoT steps, for four prompt lengths", y=0.99)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def looped_vs_loops(study: Mapping[str, Sequence[float]], ax=None):
    """The looped layer on the query prediction (``study``: :func:`~helpers.multistep_gd.looped_query_study`):
    test error against the loop count L, with L steps of GD at its best step on a 0.1 grid and the single
    pass (L = 1) as a line. Returns ``ax``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8))
    L = list(study["loops"])
    ax.plot(L, study["test_error"], "C2s-", label="looped layer, trained at each L")
    ax.plot(L, study["gd_error"], "ko--", alpha=0.5, label="L steps of GD, best step on a 0.1 grid")
    ax.axhline(study["test_error"][L.index(1)], color="C3", ls=":", label="single pass (L = 1)")
    ax.set(xscale="log", yscale="log", xlabel="loops L", ylabel="test error E(ŷ_q − y_q)²",
           title="One layer, looped: in-context regression")
    ax.set_xticks(L, [str(x) for x in L])
    ax.minorticks_off()
    values = [v for v in (*study["test_error"], *study["gd_error"]) if v > 0]
    ticks = [t for t in (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10) if min(values) / 1.5 <= t <= max(values) * 1.5]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.legend(fontsize=9)
    return ax
