"""Chapter 3's figures: each function draws on a given matplotlib ``ax`` and returns it.

Used in: the pages of book/transient_ridge/.
"""
from __future__ import annotations

import math

import numpy as np


def m_colours(n: int):
    """``n`` colours from light (low M) to dark (high M), one per task count."""
    import matplotlib.pyplot as plt
    return plt.cm.viridis(np.linspace(0.0, 0.9, n))


def curves_over_M(ax, steps, values, labels, *, reference: float | None = None, reference_label: str = "",
                  ylabel: str = "", logx: bool = True):
    """One curve per task count M: ``values`` (n_checkpoints, G) over ``steps``; an optional
    horizontal ``reference`` line (e.g. ridge's loss)."""
    values = np.asarray(values)
    for g, (lab, colour) in enumerate(zip(labels, m_colours(len(labels)))):
        ax.plot(np.maximum(steps, 1) if logx else steps, values[:, g], color=colour, label=f"M = {lab}")
    if reference is not None and math.isfinite(reference):
        ax.axhline(reference, color="k", ls="--", lw=1, label=reference_label)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("training step" + (" (log scale)" if logx else ""))
    ax.set_ylabel(ylabel)
    return ax
