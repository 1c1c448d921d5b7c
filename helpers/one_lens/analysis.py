"""What the lens sees: its events on a run, and whether they fall near the phases the run's own
chapter measures.

- :func:`pca_events` — the turns of a run's path in the first principal components
  (:func:`helpers.dynamics.turns`);
- :func:`llc_events` — the changes of its LLC between successive *settled* estimates
  (:func:`helpers.dynamics.change_points`; an estimate whose chains still drift measures nothing);
- :func:`read_setting` — both, matched to the phases (:func:`helpers.dynamics.match_events`), for
  every run of one setting of a full run's metrics.

The pass marks are in :mod:`helpers.one_lens.claims`; every function takes them as arguments.

Used in: book/one_lens/*.ipynb and :mod:`helpers.one_lens.claims`.
"""
from __future__ import annotations

import numpy as np

from ..dynamics import change_points, event_coverage, match_events, turns
from ..tree_cot.analysis import PHASE_RECORD_EXTRAS

SETTINGS = ("tree", "standard", "cot", "balanced", "ridge")
SETTING_NAMES = {"tree": "tree CoT: the two-head theory model, forward task",
                 "standard": "tree CoT: the standard transformer, forward task",
                 "cot": "multi-step GD: the CoT model from a random start",
                 "balanced": "multi-step GD: the sparse model from the balanced start",
                 "ridge": "the transient ridge (chapter 3's full run)"}


def pca_events(path, steps, *, components: int, tolerance: float, min_angle: float) -> list[dict]:
    """The turns of ``path`` (n_checkpoints, ≥ components) in its first ``components`` coordinates."""
    P = np.asarray(path, dtype=float)
    if P.ndim != 2 or P.shape[1] < components:
        raise ValueError(f"path must be (n_checkpoints, >= {components}); got shape {P.shape}")
    return turns(P[:, :components], steps, tolerance=tolerance, min_angle=min_angle)


def llc_events(llc: dict, *, min_sigmas: float, min_fraction: float) -> list[dict]:
    """The changes of the LLC over training (``llc``: lists ``step``, ``llc``, ``llc_std``,
    ``settled``) between successive settled estimates; the unsettled ones are left out before
    :func:`~helpers.dynamics.change_points` sees them (so its "largest |value|" is over settled ones)."""
    ok = [i for i, s in enumerate(llc["settled"]) if s]
    pick = lambda k: [llc[k][i] for i in ok]  # noqa: E731
    return change_points(pick("step"), pick("llc"), pick("llc_std"), min_sigmas=min_sigmas, min_fraction=min_fraction)


def _phases(run: dict) -> dict:
    """A run's phases as ``{name: step or None}`` (chapter 1's record also holds its order and the
    last part's progress, which are not phases)."""
    return {k: v for k, v in run["phases"].items() if k not in PHASE_RECORD_EXTRAS}


def read_setting(setting: dict, *, components: int, tolerance: float, min_angle: float,
                 min_sigmas: float, min_fraction: float, window: float) -> list[dict]:
    """Every run of one setting (``setting["runs"]``), read by both lenses (the LLC's where the run
    holds an ``"llc"`` record).

    Returns per run ``{"label", "phases", "pca": {"events", "match", "chance"}, "llc": {"events",
    "match", "chance", "settled", "estimates"} or None}`` (None: no LLC was estimated for this run);
    ``chance`` is :func:`~helpers.dynamics.event_coverage` over the run's checkpoints.
    """
    out = []
    for run in setting["runs"]:
        ph = _phases(run)
        pca = pca_events(run["path"], run["step"], components=components, tolerance=tolerance, min_angle=min_angle)
        span = (run["step"][0], run["step"][-1])
        row = {"label": run["label"], "phases": ph,
               "pca": {"events": pca, "match": match_events(ph, [e["step"] for e in pca], window),
                       "chance": event_coverage([e["step"] for e in pca], window, *span)}, "llc": None}
        llc = run.get("llc")
        if llc is not None:
            ev = llc_events(llc, min_sigmas=min_sigmas, min_fraction=min_fraction)
            row["llc"] = {"events": ev, "match": match_events(ph, [e["step"] for e in ev], window),
                          "chance": event_coverage([e["step"] for e in ev], window, *span),
                          "settled": int(sum(bool(s) for s in llc["settled"])), "estimates": len(llc["settled"])}
        out.append(row)
    return out


def events_text(events: list[dict]) -> str:
    """Event steps as short text: ``"350, 1050"`` or ``"none"``."""
    return ", ".join(f"{e['step']:.0f}" for e in events) or "none"
