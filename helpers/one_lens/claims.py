"""The closing chapter's claims: what counts as the lens *seeing* a phase, as named constants
decided before the full run, one claim per setting and lens, and :func:`evaluate`, which builds
them from a full run's ``metrics`` (``metrics.json``) alone.

Every claim is the book's own experiment (``kind="extension"``): none of the three papers turns
the other papers' instruments on its own models. A claim holds when, in every run of its setting,
every phase that happens (by the setting's own chapter's metric) has a lens event within
:data:`WINDOW_DECADES` of it. Events near no phase, and the chance that a phase at a random step
would be seen (:func:`helpers.dynamics.event_coverage`), are reported beside the verdict, not judged.

Used in: ``python -m helpers.one_lens`` and book/one_lens/*.ipynb.
"""
from __future__ import annotations

from typing import Any

from ..claims import Claim
from .analysis import SETTING_NAMES, SETTINGS, events_text, read_setting

# ---------------------------------------------------------------------------- pass marks
WINDOW_DECADES = 0.1     # an event sees a phase within 0.1 decades of its step (a factor 1.26 either way)
PCA_COMPONENTS = 3       # the lens reads the path in the first three principal components …
TURN_TOLERANCE = 0.1     # … simplified to a polyline no point leaves by more than 10% of the path's extent …
TURN_MIN_ANGLE = 30.0    # … whose corners turning by at least 30 degrees are its turns
LLC_MIN_SIGMAS = 3.0     # an LLC change: successive settled estimates more than 3 chain-spreads apart …
LLC_MIN_FRACTION = 0.1   # … and by more than 10% of the run's largest settled |LLC|

LENSES = ("pca", "llc")
LENS_NAMES = {"pca": "a turn of the PCA trajectory", "llc": "a change of the LLC"}
PHASE_SOURCES = {
    "tree": "chapter 1's phases: the first checkpoint with teacher-forced accuracy >= 99% for descending, the "
            "stage switch and climbing, and (where it happens) the heads' division of labour",
    "standard": "chapter 1's phases of its standard transformer: the first checkpoint with teacher-forced accuracy "
                ">= 99% for descending, the stage switch and climbing",
    "cot": "chapter 2's two stages, by its rule on the CoT loss: the slow stage ends when the loss is below half "
           "its start, the fast stage when it is below 1% of it",
    "balanced": "chapter 2's two stages, by its rule on the CoT loss: the slow stage ends when the loss is below "
                "half its start, the fast stage when it is below 1% of it",
    "ridge": "chapter 3's phases of the two runs (M = 8, 16) that pass chapter 3's ridge-like test (nearer ridge than "
             "dMMSE_M, under half of Δ(0, ridge)) and later become nearer dMMSE_M: the first ridge-like checkpoint "
             "and t_cross, where the model becomes nearer dMMSE_M than ridge",
}


def thresholds() -> dict:
    """The pass marks as keyword arguments of :func:`helpers.one_lens.analysis.read_setting`."""
    return dict(components=PCA_COMPONENTS, tolerance=TURN_TOLERANCE, min_angle=TURN_MIN_ANGLE,
                min_sigmas=LLC_MIN_SIGMAS, min_fraction=LLC_MIN_FRACTION, window=WINDOW_DECADES)


def criterion(lens: str) -> str:
    """The pass mark of a lens's claim, in words."""
    if lens == "pca":
        how = (f"a turn = a corner of >= {TURN_MIN_ANGLE:.0f} degrees of the path in PC1–PC{PCA_COMPONENTS}, "
               f"simplified to a polyline within {TURN_TOLERANCE:.0%} of its extent")
    elif lens == "llc":
        how = (f"an LLC change = successive settled estimates more than {LLC_MIN_SIGMAS:g} chain-spreads and "
               f"{LLC_MIN_FRACTION:.0%} of the largest settled |LLC| apart, placed at the steps' geometric middle")
    else:
        raise ValueError(f"lens must be one of {LENSES}; got {lens!r}")
    return (f"in every run, every phase that happens has an event within {WINDOW_DECADES:g} decades of its step; "
            f"{how}")


def sees(setting: str, lens: str, rows: list[dict]) -> Claim:
    """Whether ``lens`` sees every phase of ``setting`` in every run (``rows``: :func:`read_setting`;
    runs without an estimate of this lens are left out)."""
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}; got {setting!r}")
    if lens not in LENSES:
        raise ValueError(f"lens must be one of {LENSES}; got {lens!r}")
    judged = [r for r in rows if r[lens] is not None]
    if not judged:
        raise ValueError(f"no run of setting {setting!r} has {lens} events")
    measured, misses = [], []
    for r in judged:
        m = r[lens]["match"]
        measured.append({"run": r["label"],
                         "phases": {k: v for k, v in r["phases"].items() if v is not None},
                         "events": [round(e["step"]) for e in r[lens]["events"]] or "none",
                         "seen": m["seen"] or "none", "missed": m["missed"] or "none",
                         "events near no phase": len(m["unmatched"]),
                         "seen by chance": round(r[lens]["chance"], 2)})
        if m["missed"] and not r[lens]["events"]:
            misses.append(f"{r['label']}: no event at all")
            continue
        for name in m["missed"]:
            p = m["phases"][name]
            misses.append(f"{r['label']}: {name} at {p['step']} (nearest event {p['nearest']:.0f}, "
                          f"{p['decades']:.2f} decades away)")
    quiet = [r["label"] for r in judged if not r[lens]["match"]["seen"] and not r[lens]["match"]["missed"]]
    holds = not misses and not quiet
    why = "; ".join(misses + [f"{label}: no phase happened, so there was nothing to see" for label in quiet])
    return Claim(f"{lens}_sees_{setting}",
                 f"Through {LENS_NAMES[lens]}, the lens sees the phases of {SETTING_NAMES[setting]}",
                 PHASE_SOURCES[setting], measured, holds, criterion(lens), kind="extension", why=why)


def _get(metrics: dict, *path: str) -> Any:
    node = metrics
    for i, key in enumerate(path):
        try:
            node = node[key]
        except (KeyError, TypeError):
            where = "".join(f"[{k!r}]" for k in path[:i + 1])
            raise KeyError(f"metrics{where} is missing: these metrics come from an older full run; re-run "
                           "`python -m helpers.one_lens --mode full`") from None
    return node


def read(metrics: dict) -> dict[str, list[dict]]:
    """Every setting of a full run's metrics read by both lenses (:func:`read_setting`)."""
    return {s: read_setting(_get(metrics, s), **thresholds()) for s in SETTINGS}


def evaluate(metrics: dict) -> list[Claim]:
    """The chapter's claims, from a full run's ``metrics`` alone: for each setting, one claim per lens
    that looked at it (the standard transformer has no LLC estimates)."""
    readings = read(metrics)
    return [sees(s, lens, readings[s]) for s in SETTINGS for lens in LENSES
            if any(r[lens] is not None for r in readings[s])]


TABLE_HEADER = ("run", "lens", "phases (chapter's metric)", "lens events", "seen", "missed", "events near no phase",
                "seen by chance")


def summary_table(readings: dict[str, list[dict]], setting: str) -> str:
    """One setting's runs as a Markdown table, a row per run and lens: its phases, the lens's events,
    what they see and miss, the events near no phase and the chance of seeing a phase anyway.
    ``readings``: :func:`read` of a full run's metrics (read once, shown per setting)."""
    if setting not in readings:
        raise ValueError(f"setting must be one of {tuple(readings)}; got {setting!r}")
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER)]
    for r in readings[setting]:
        for lens in LENSES:
            if r[lens] is None:
                continue
            m = r[lens]["match"]
            cells = (r["label"], lens.upper(), ", ".join(f"{k} {v}" for k, v in r["phases"].items() if v is not None),
                     events_text(r[lens]["events"]), ", ".join(m["seen"]) or "none",
                     ", ".join(m["missed"]) or "none", str(len(m["unmatched"])), f"{r[lens]['chance']:.0%}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
