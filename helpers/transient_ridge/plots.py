"""Chapter 3's figures: each function draws on the given matplotlib ``ax`` (or axes) and returns it;
``distance_grid`` and ``curriculum_vs_fixed`` make and return their own figure.

Used in: the pages of book/transient_ridge/.
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from ..figures import WIDTH, log_ticks
from .analysis import ridge_like


def m_colours(n: int):
    """``n`` colours from light (low M) to dark (high M), one per task count."""
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


# ------------------------------------------------------------------------------ page 1: the Bayes predictors

def loss_by_position(ax_pool, ax_gaussian, res: dict, Ms, K: int):
    """Page 1: mean squared error by position k of dMMSE_M (solid) and ridge (dotted / dashed black).

    ``res[M]["pool" | "gaussian"]["ridge" | "dmmse"]``: (K,) losses on pool and on Gaussian tasks."""
    k = np.arange(1, K + 1)
    for M, c in zip(Ms, m_colours(len(Ms))):
        ax_pool.plot(k, res[M]["pool"]["dmmse"], "-", color=c, label=f"dMMSE, M={M}")
        ax_pool.plot(k, res[M]["pool"]["ridge"], ":", color=c)
        ax_gaussian.plot(k, res[M]["gaussian"]["dmmse"], "-", color=c, label=f"dMMSE, M={M}")
    ax_gaussian.plot(k, res[Ms[0]]["gaussian"]["ridge"], "k--", lw=2, label="ridge")
    ax_pool.plot([], [], ":", color="0.4", label="ridge (dotted)")
    ax_pool.set(xlabel="position k (pairs seen: k − 1)", ylabel="mean squared error", yscale="log",
                title="pool tasks: dMMSE beats ridge")
    ax_gaussian.set(xlabel="position k", title="Gaussian tasks: ridge beats dMMSE")
    # one legend beside the right panel, off the curves (the figure's layout makes room: layout="constrained")
    handles = ax_gaussian.get_legend_handles_labels()[0] + ax_pool.get_legend_handles_labels()[0][-1:]
    ax_gaussian.legend(handles, [h.get_label() for h in handles], loc="upper left", bbox_to_anchor=(1.02, 1.0),
                       frameon=False, handlelength=1.6)
    return ax_pool, ax_gaussian


def dmmse_gap(ax_distance, ax_excess, Ms, distance, excess):
    """Page 1: Δ(dMMSE_M, ridge) and the OOD excess loss of dMMSE_M over ridge, against M."""
    ax_distance.loglog(Ms, distance, "o-")
    ax_distance.set(xlabel="task count M", ylabel="Δ(dMMSE_M, ridge) on Gaussian tasks", title="dMMSE_M → ridge")
    ax_excess.semilogx(Ms, excess, "o-", color="C3")
    ax_excess.axhline(0, color="0.6", lw=0.8)
    ax_excess.set(xlabel="task count M", ylabel="OOD loss: dMMSE_M − ridge", title="The gap a transient must cross")
    return ax_distance, ax_excess


# ------------------------------------------------------------------------------ page 2: the sweep

def ood_over_training(ax, sweep: dict):
    """Page 2: the OOD loss of every M over training (log-log), its t_crit (dot), dMMSE_M's OOD loss
    (dotted, one per finite M) and ridge's (dashed black). ``sweep``: the run's ``metrics["sweep"]``."""
    labels = [s["M"] for s in sweep["summary"]]
    curves_over_M(ax, np.array(sweep["step"]), sweep["ood"], labels, reference=sweep["ood_ridge_loss"],
                  reference_label="ridge", ylabel="OOD loss (Gaussian tasks)")
    for g, (s, colour) in enumerate(zip(sweep["summary"], m_colours(len(labels)))):
        if s["M"] != "∞":
            ax.axhline(sweep["ood_dmmse_loss"][g], color=colour, ls=":", lw=1)
        ax.plot(max(s["t_crit"], 1), s["ood_min"], "o", color=colour, ms=4)
    ax.set(yscale="log", title="OOD loss per M (dots: t_crit, the lowest point; dotted: dMMSE_M)")
    log_ticks(ax)
    # beside the panel, off the curves (the figure's layout makes room: use layout="constrained")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return ax


def distances(ax, steps, d_ridge, d_dmmse, *, colour_ridge="C0", colour_dmmse="C1", name: str = "",
              d_zero_ridge: float | None = None, t_cross=None):
    """Δ(model, ridge) (solid) and Δ(model, dMMSE_M) (dashed when ``name`` is given) of one run over
    training. With ``d_zero_ridge`` the ridge-like checkpoints (:func:`~.analysis.ridge_like`) are
    shaded; ``t_cross`` marks
    the crossing. ``d_dmmse=None`` (M = ∞, where dMMSE_M is ridge) draws Δ to ridge only."""
    x = np.maximum(np.asarray(steps), 1)
    prefix = f"{name}: " if name else ""
    dr = np.asarray(d_ridge)
    ax.plot(x, dr, color=colour_ridge, label=f"{prefix}Δ to ridge")
    if d_dmmse is not None:
        dd = np.asarray(d_dmmse)
        ax.plot(x, dd, color=colour_dmmse, ls="--" if name else "-", label=f"{prefix}Δ to dMMSE_M")
        if d_zero_ridge is not None:
            ax.fill_between(x, 0, 1, where=ridge_like(dr, dd, d_zero_ridge), transform=ax.get_xaxis_transform(),
                            color=colour_ridge, alpha=0.08)
    if t_cross:
        ax.axvline(t_cross, color="k", lw=0.8, ls="--")
    ax.set(xscale="log", yscale="log")
    return ax


def distance_grid(sweep: dict, cols: int = 3):
    """Page 2: one panel per M with :func:`distances` (shaded: ridge-like; dashed: the crossing); returns the figure."""
    labels = [s["M"] for s in sweep["summary"]]
    dr, dd = np.array(sweep["d_ridge"]), np.array(sweep["d_dmmse"])
    rows = math.ceil(len(labels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(WIDTH, 2.2 * rows), sharex=True, squeeze=False)
    for g, (lab, s) in enumerate(zip(labels, sweep["summary"])):
        ax = axes.flat[g]
        distances(ax, sweep["step"], dr[:, g], dd[:, g], d_zero_ridge=sweep["d_zero_ridge"][g], t_cross=s["t_cross"])
        ax.set_title(f"M = {lab}")
        log_ticks(ax)
        if g % cols == 0:
            ax.set_ylabel("Δ (in distribution)")
        if g + cols >= len(labels):  # the lowest panel of its column: label the steps
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("step")
    spare = axes.flat[len(labels):]
    for ax in spare:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    if len(spare):  # the legend in an empty panel, off the data
        spare[0].legend(handles, names, loc="center", frameon=False)
    else:
        fig.legend(handles, names, loc="lower center", ncol=len(names), frameon=False, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle("Distance to the two predictors (shaded: ridge-like; dashed: the crossing)", y=1.0)
    fig.tight_layout()
    return fig


def pivot_steps(ax, summary: list[dict]):
    """Page 2: t_crit and the Δ crossing step against M, over the finite M with a ridge phase and a crossing."""
    trans = [s for s in summary if s["ridge_phase"] and s["crossed"] and s["M"] != "∞"]
    Ms = [int(s["M"]) for s in trans]
    ax.plot(Ms, [s["t_crit"] for s in trans], "o-", label="t_crit (lowest OOD loss)")
    ax.plot(Ms, [s["t_cross"] for s in trans], "s--", label="Δ crossing")
    ax.set(xscale="log", xlabel="M", ylabel="step", title="When each M pivots: t_crit and the Δ crossing")
    ax.legend(fontsize=9)
    return ax


# ------------------------------------------------------------------------------ page 3: joint trajectory PCA

def pca_trajectories(ax, proj: dict, labels, i: int = 0, j: int = 1, upto: int | None = None, highlight=None):
    """Page 3: every run's path in PC ``i``–PC ``j`` (up to checkpoint ``upto``; the end as a dot),
    each dMMSE_M point (coloured star) and the ridge point (black star), all projected.

    ``proj``: :func:`~.analysis.trajectory_pca`'s result; ``highlight``: one M label, or a list of
    them, to show in full colour (and in the legend), the others faded."""
    ev = proj["pca"].explained.numpy()
    runs = proj["runs"].numpy()
    shown = None if highlight is None else ({highlight} if isinstance(highlight, str) else set(highlight))
    for g, (lab, colour) in enumerate(zip(labels, m_colours(len(labels)))):
        r = runs[g] if upto is None else runs[g][: upto + 1]
        alpha = 1.0 if shown is None or lab in shown else 0.15
        name = f"M = {lab}" if alpha == 1.0 else "_faded"
        ax.plot(r[:, i], r[:, j], "-", color=colour, lw=1.6 if shown and lab in shown else 1.2, alpha=alpha, label=name)
        ax.plot(r[-1, i], r[-1, j], "o", color=colour, ms=6, alpha=alpha)
        if lab != "∞":
            d = proj["dmmse"][g].numpy()
            ax.plot(d[i], d[j], "*", color=colour, ms=11, mec="k", mew=0.5, alpha=alpha)
    rp = proj["ridge"].numpy()
    ax.plot(rp[i], rp[j], "*", color="k", ms=16, label="ridge")
    ax.set(xlabel=f"PC{i + 1} ({ev[i]:.0%})", ylabel=f"PC{j + 1} ({ev[j]:.0%})")
    return ax


# ------------------------------------------------------------------------------ page 4: the LLC

def sgld_traces(ax, trace, init_loss, num_burnin: int, names=None):
    """Page 4: SGLD loss traces minus ℓ(w*), one line per column of ``trace`` (steps, n), with the
    end of burn-in dotted. ``init_loss``: (n,) ℓ(w*) per line; ``names``: legend labels."""
    trace, init = np.asarray(trace), np.asarray(init_loss)
    colours = m_colours(trace.shape[1])
    for g in range(trace.shape[1]):
        ax.plot(trace[:, g] - init[g], color=colours[g], lw=0.8, label=None if names is None else names[g])
    ax.axvline(num_burnin, color="gray", ls=":", lw=1, label="end of burn-in")
    ax.set(xlabel="SGLD step", ylabel="loss − ℓ(w*)")
    # beside the panel, off the traces (the figure's layout makes room: use layout="constrained")
    n = trace.shape[1] + 1
    ax.legend(ncol=1 if n <= 6 else 2, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              handlelength=1.2, columnspacing=0.8)
    return ax


def llc_over_M(ax, llc: dict, std: dict, dmmse_like: list[str]):
    """Page 4: the final models' LLC against M (error bars: spread over chains), those that end
    nearer dMMSE_M (circles, the M of ``dmmse_like``) and nearer ridge (squares), and the M = ∞
    level (dashed). ``llc``, ``std``: by M label."""
    finite = [m for m in llc if m != "∞"]
    like = [m for m in finite if m in dmmse_like]
    other = [m for m in finite if m not in dmmse_like]
    for name, fmt, colour, pick in (("ends nearer dMMSE_M", "o", "C1", like),
                                    ("ends nearer ridge", "s", "C0", other)):
        if pick:
            ax.errorbar([int(m) for m in pick], [llc[m] for m in pick], yerr=[std[m] for m in pick], fmt=fmt,
                        color=colour, capsize=3, label=name)
    if "∞" in llc:
        ax.axhline(llc["∞"], color="k", ls="--", lw=1, label="M = ∞")
    ax.set(xscale="log", xlabel="M", ylabel="LLC λ̂ (final model)", title="Complexity of the final models")
    ax.legend(fontsize=9, loc="lower right")   # the low-M points rise from the lower left
    return ax


def llc_over_training(ax, llc_record: dict, steps, ood, id_loss, t_crit: int):
    """Page 4: the LLC of one M's snapshots over training (``llc_record``: ``metrics["llc_over_training"]``)
    with its OOD and in-distribution loss on a second axis and t_crit dotted; returns ``(ax, ax2)``."""
    ax.errorbar(llc_record["groups"], llc_record["llc"], yerr=llc_record["llc_std"], fmt="o-", color="C3", capsize=3,
                label="LLC λ̂")
    ax.set(xscale="log", xlabel="training step", ylabel="LLC λ̂")
    ax2 = ax.twinx()
    x = np.maximum(np.asarray(steps), 1)
    ax2.plot(x, ood, color="C0", lw=1, label="OOD loss")
    ax2.plot(x, id_loss, color="C2", lw=1, label="in-distribution loss")
    ax2.set(yscale="log", ylabel="loss")
    ax.axvline(max(t_crit, 1), color="gray", ls=":", label="t_crit")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=9, loc="upper left")
    ax.set_title(f"M = {llc_record['M']}: complexity and loss over training")
    return ax, ax2


# ------------------------------------------------------------------------------ page 5: the curriculum

def curriculum_vs_fixed(sweep: dict, curriculum: dict, total_steps: int):
    """Page 5: for each final M of the curriculum, the OOD loss (top) and the distances to ridge and
    dMMSE_M (bottom) with the curriculum (red) and with fixed M (blue); shaded bands are the
    curriculum's stages. ``sweep``, ``curriculum``: the run's metrics; returns the figure."""
    labels = [s["M"] for s in sweep["summary"]]
    cu_labels = [s["M"] for s in curriculum["summary"]]
    steps = np.array(sweep["step"])
    fig, axes = plt.subplots(2, len(cu_labels), figsize=(WIDTH, 5.8), sharex=True, squeeze=False,
                             layout="constrained")
    bounds = [s for s, _ in curriculum["stages"]] + [total_steps]
    for j, lab in enumerate(cu_labels):
        g = labels.index(lab)
        top, bot = axes[0, j], axes[1, j]
        for k, (start, M_stage) in enumerate(curriculum["stages"]):
            for ax in (top, bot):
                ax.axvspan(start, bounds[k + 1], color="0.9" if k % 2 else "white", zorder=0)
        top.plot(steps, np.array(sweep["ood"])[:, g], color="C0", label="fixed M")
        top.plot(steps, np.array(curriculum["ood"])[:, j], color="C3", label="curriculum")
        top.axhline(sweep["ood_ridge_loss"], color="k", ls="--", lw=1, label="ridge")
        top.set(yscale="log", ylabel="OOD loss" if j == 0 else None)
        top.set_title(f"final M = {lab}")
        for name, log, idx, colour in (("fixed", sweep, g, "C0"), ("curriculum", curriculum, j, "C3")):
            distances(bot, steps, np.array(log["d_ridge"])[:, idx],
                      None if lab == "∞" else np.array(log["d_dmmse"])[:, idx],
                      colour_ridge=colour, colour_dmmse=colour, name=name)
        bot.set(xscale="linear", xlabel="training step", ylabel="Δ" if j == 0 else None)
        for ax in (top, bot):
            log_ticks(ax)
            ax.xaxis.set_major_locator(plt.MaxNLocator(3))
    stages = ", ".join(f"M ≤ {M_stage}" for _, M_stage in curriculum["stages"])
    fig.suptitle(f"curriculum stages (white and grey bands): {stages}")
    handles = axes[0, 0].get_legend_handles_labels()[0] + axes[1, 0].get_legend_handles_labels()[0]
    unique = {h.get_label(): h for h in handles}
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncol=3, frameon=False)
    return fig
