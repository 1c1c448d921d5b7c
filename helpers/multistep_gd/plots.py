"""The chapter's figures: the W^{PV} / W^{KQ} heatmaps with their block grid, trained model vs
exact gradient descent, and the two scales of the balanced run.

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
    ax.set_title(title, fontsize=8)
    return ax


def weights_over_training(snaps: Mapping[int, Mapping[str, torch.Tensor]], d: int,
                          title: str = "CoT training from random init: the weights collapse to two blocks"):
    """One column per snapshot step of :func:`~helpers.multistep_gd.train_cot` (``snaps``: step →
    ``{"W_PV", "W_KQ"}``); top row ``W^{PV}``, bottom row ``W^{KQ}``. Returns the figure."""
    steps = sorted(snaps)
    if not steps:
        raise ValueError("snaps is empty: pass the snapshots returned by train_cot")
    fig, axes = plt.subplots(2, len(steps), figsize=(2.0 * len(steps), 4.8), squeeze=False)
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


def balanced_dynamics(history: History, eta: float):
    """The balanced run of :func:`~helpers.multistep_gd.train_balanced`: left, the scales
    ``v = −mean diag V_31``, ``w = mean diag W_13`` and the largest off-diagonal entry, with their
    targets (η, 1) dashed; right, the CoT loss. Both against the step (log). Returns the figure."""
    steps = np.maximum(history.eval_steps, 1)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
    ax1.plot(steps, history.evals["v"], label="v = −mean diag V₃₁")
    ax1.plot(steps, history.evals["w"], label="w = mean diag W₁₃")
    ax1.plot(steps, history.evals["off_diagonal"], ":", label="largest off-diagonal entry")
    ax1.axhline(eta, color="C0", ls="--", lw=0.8)
    ax1.axhline(1.0, color="C1", ls="--", lw=0.8)
    ax1.set(xscale="log", xlabel="GD step (log scale)", ylabel="scale", title="The two scales")
    ax1.legend(fontsize=8)
    ax2.plot(steps, history.evals["loss"], "k")
    ax2.set(xscale="log", yscale="log", xlabel="GD step (log scale)", ylabel="teacher-forced CoT loss",
            title="The loss")
    fig.tight_layout()
    return fig
