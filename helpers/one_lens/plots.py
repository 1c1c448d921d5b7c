"""The closing chapter's figures: one per setting, the same three panels for every chapter.

- top left: the chapter's own metric over training, with its phases (dotted lines);
- bottom left: the LLC over training (filled: settled estimates, hollow: chains still drifting),
  its changes (shaded) and the same phase lines (absent for a setting without LLC estimates:
  the metric then takes the whole left column);
- right: the path in PC1–PC2, its turns (crosses) and the checkpoints nearest each phase (squares).

Used in: book/one_lens/*.ipynb.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .. import figures

PHASE_COLOURS = ("tab:red", "tab:purple", "tab:green", "tab:brown")
RUN_COLOURS = ("tab:blue", "tab:gray", "tab:cyan", "tab:olive")   # none of them a phase's colour


def _x(steps) -> np.ndarray:
    return 1.0 + np.asarray(steps, dtype=float)   # log axes show 1 + step, so that step 0 is drawn


def phase_colours(phases: Mapping[str, int | None]) -> dict[str, str]:
    """A colour per phase that happens, in order of its step (the same in every panel)."""
    happened = sorted((step, name) for name, step in phases.items() if step is not None)
    return {name: colour for (_, name), colour in zip(happened, PHASE_COLOURS)}


def _phase_lines(ax, phases: Mapping[str, int | None], label: bool = True) -> None:
    for name, colour in phase_colours(phases).items():
        ax.axvline(1 + phases[name], color=colour, ls=":", lw=1.5,
                   label=f"{name} ({phases[name]})" if label else None)


def lens_figure(runs: Sequence[Mapping], readings: Sequence[Mapping], *, metric: Mapping[str, Sequence] | None,
                metric_label: str, title: str, log_metric: bool = False):
    """The figure of one setting.

    Args:
        runs: the setting's stored runs (each ``step``, ``path`` (n, ≥2), optionally ``llc``; the
            first run that holds one is drawn).
        readings: :func:`helpers.one_lens.analysis.read_setting` of the same runs.
        metric: ``{curve label: values over runs[0]["step"]}`` of the first run, or None.
    """
    if len(runs) != len(readings) or not runs:
        raise ValueError("runs and readings must be non-empty and of equal length")
    i_llc = next((i for i, r in enumerate(runs) if r.get("llc") is not None), None)   # the run whose LLC is drawn
    rec = runs[i_llc]["llc"] if i_llc is not None else None
    fig = plt.figure(figsize=figures.size(5.6 if rec is not None else 4.2), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=(1.15, 1))
    if rec is not None:
        ax_m, ax_l = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    else:   # no LLC: the metric takes the whole left column
        ax_m, ax_l = fig.add_subplot(grid[:, 0]), None
        ax_m.set_xlabel("1 + training step")
    ax_p = fig.add_subplot(grid[:, 1])
    first, reading = runs[0], readings[0]
    # the chapter's metric
    colours = phase_colours(reading["phases"])
    if metric:
        for k, (label, values) in enumerate(metric.items()):   # a curve named after a phase takes its colour
            ax_m.plot(_x(first["step"]), values, lw=1.6, label=label, color=colours.get(label, f"C{k}"))
    ax_m.set_xscale("log")
    if log_metric:
        ax_m.set_yscale("log")
    ax_m.set_ylabel(metric_label)
    _phase_lines(ax_m, reading["phases"])
    ax_m.set_title(f"{first['label']}: the chapter's metric", loc="left")
    ax_m.legend(fontsize=9, loc="best")
    # the LLC
    if rec is not None:
        row = readings[i_llc]
        s, v, e, ok = (np.asarray(rec[k], dtype=float) for k in ("step", "llc", "llc_std", "settled"))
        ok = ok.astype(bool)
        ax_l.errorbar(_x(s), v, yerr=e, color="k", lw=1, capsize=2, zorder=2)
        ax_l.scatter(_x(s[ok]), v[ok], color="k", s=22, zorder=3, label="settled")
        ax_l.scatter(_x(s[~ok]), v[~ok], facecolor="white", edgecolor="k", s=22, zorder=3, label="not settled")
        for ev in row["llc"]["events"]:
            ax_l.axvspan(1 + ev["from"], 1 + ev["to"], color="tab:orange", alpha=0.25, lw=0)
        _phase_lines(ax_l, row["phases"], label=False)
        ax_l.set_title(f"{row['label']}: the LLC (orange: its changes)", loc="left")
        ax_l.legend(fontsize=9, loc="best")
        ax_l.set_xscale("log")
        ax_l.set_xlabel("1 + training step")
        ax_l.set_ylabel("LLC λ̂")
    # the paths
    for k, (run, rd) in enumerate(zip(runs, readings)):
        P = np.asarray(run["path"], dtype=float)
        line, = ax_p.plot(P[:, 0], P[:, 1], lw=1.2, alpha=0.9 if k == 0 else 0.6, label=run["label"],
                          color=RUN_COLOURS[k % len(RUN_COLOURS)])
        ax_p.plot(P[0, 0], P[0, 1], "o", color=line.get_color(), ms=5)
        idx = [e["index"] for e in rd["pca"]["events"]]
        ax_p.plot(P[idx, 0], P[idx, 1], "x", color="k", ms=8, mew=2, label="turns" if k == 0 else None)
        steps = np.asarray(run["step"])
        for name, colour in phase_colours(rd["phases"]).items():
            step = rd["phases"][name]
            i = int(np.argmin(np.abs(np.log10((1 + steps) / (1 + step)))))
            ax_p.plot(P[i, 0], P[i, 1], "s", color=colour, ms=7, mfc="none", mew=2, label=name if k == 0 else None)
    ax_p.set_xlabel("PC1")
    ax_p.set_ylabel("PC2")
    ax_p.set_title("the path in PC1–PC2 (dot: start)", loc="left")
    ax_p.legend(fontsize=9, loc="best")
    fig.suptitle(title)
    return fig
