"""Chapter 3's claims: named thresholds and the verdicts, judged from a run's metrics alone.

One pure function per claim, each taking a run's metrics (the dict the full run writes as
``metrics.json``) and returning a :class:`~helpers.Claim` (or ``None`` where the run did not
measure what the claim needs); :func:`evaluate` composes them into the chapter's claims list,
which the full run writes as ``claims.json`` and the pages render. Every pass mark is a named
constant below — change a criterion here and nowhere else. The ``DEMO_…`` constants are what the
pages assert about their own live computations (smaller or different from the full run's); they
are demonstration checks, not claims.

Metrics read back from ``metrics.json`` hold ``null`` where the run had NaN (e.g. the OOD rise of
M = ∞, whose two Bayes predictors coincide); the claims read it as NaN, as in the run itself.

Used in: ``python -m helpers.transient_ridge`` (and ``--claims-only``), and the chapter's pages.
"""
from __future__ import annotations

import math

import numpy as np

from ..claims import Claim
from .analysis import complexity_tradeoff, label
from .train import PAPER

DMMSE_TO_RIDGE_FRACTION = 0.25   # Δ(dMMSE_M, ridge) at the largest finite M below this fraction of Δ at M = 1
MIN_OOD_RISE = 0.05              # a transient's OOD rise, as a fraction of the dMMSE_M–ridge OOD gap
MIN_TRANSIENT_M = 2              # values of M that must show a transient
LOW_M = 2                        # "low M": M <= this goes straight to dMMSE_M
HIGH_M = 64                      # "high M": M >= this (finite) ends ridge-like; also the curriculum's high M
INFINITE_M_GAP_FRACTION = 0.05   # M = ∞: final Δ to ridge at most this fraction of Δ(dMMSE_1, ridge)
PCA_CLOSEST_FRACTION = 0.5       # a bend: closest approach to ridge below this fraction of the final distance
LLC_MIN_SPEARMAN = 0.8           # rank correlation of the LLC with M over the dMMSE-like models
DEVINTERP_TOLERANCE = 0.10       # our LLC within this relative difference of devinterp's
MIN_GROUPED_SPEEDUP = 5.0        # grouped training this many times faster than one model after another
CURRICULUM_TOLERANCE = 1.05      # curriculum's final OOD loss at most this multiple of fixed-M training's

# Demonstration checks: what the pages assert about their own live numbers (not claims).
DEMO_BAYES_MARGIN = 0.02         # page 1: each predictor's loss on its own prior at most (1 + this) × the other's
                                 # (Monte Carlo noise of a few thousand sequences)
DEMO_DMMSE_TO_RIDGE_FRACTION = 0.2   # page 1 (paper scale, M up to 2^14): Δ(dMMSE_M, ridge) at the largest M
                                     # below this fraction of Δ at M = 1
DEMO_DELTA_NOISE = 0.05          # page 1: Δ(dMMSE_M, ridge) may rise from one M to the next by at most this
                                 # fraction (noise); it must otherwise fall with M
DEMO_GROUPED_ATOL = 1e-5         # page 2: grouped and separate training agree to float32 round-off (weights)
DEMO_PCA_RTOL, DEMO_PCA_ATOL = 1e-3, 1e-4   # page 3: the refit PCA's explained variance matches the full run's
                                            # (the stored features are float16)


def _nan(x):
    """A metric that JSON stored as ``null`` (NaN in the run) back as NaN."""
    return math.nan if x is None else x


def _M(x):
    return math.inf if x == "∞" else int(x)


def _sweep(m: dict):
    """Shared readings of the sweep: (sweep, labels, Ms, summary by label, indices of finite M)."""
    sw = m["sweep"]
    labels = [s["M"] for s in sw["summary"]]
    Ms = [_M(x) for x in labels]
    return sw, labels, Ms, dict(zip(labels, sw["summary"])), [i for i, M in enumerate(Ms) if M != math.inf]


def transient_Ms(m: dict) -> list[dict]:
    """The sweep summaries with a transient: a ridge phase, a later crossing, an OOD rise >= ``MIN_OOD_RISE``."""
    return [s for s in m["sweep"]["summary"] if s["ridge_phase"] and s["crossed"] and _nan(s["ood_rise"]) >= MIN_OOD_RISE]


def bayes_each_optimal(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    return Claim(
        "bayes_each_optimal", "Ridge is the Bayes predictor for Gaussian tasks, dMMSE_M for the uniform prior on "
        "the M pool tasks: each has the lower loss on its own prior", "both Bayes-optimal on their priors",
        {"OOD loss ridge": sw["ood_ridge_loss"], "OOD loss dMMSE_M": dict(zip(labels, sw["ood_dmmse_loss"])),
         "ID loss ridge": dict(zip(labels, sw["id_ridge_loss"])), "ID loss dMMSE_M": dict(zip(labels, sw["id_dmmse_loss"]))},
        all(sw["ood_ridge_loss"] < sw["ood_dmmse_loss"][i] and sw["id_dmmse_loss"][i] <= sw["id_ridge_loss"][i]
            for i in finite), "for every finite M: ridge lower OOD, dMMSE_M lower (or equal) in distribution")


def dmmse_tends_to_ridge(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    db = [sw["d_bayes"][i] for i in finite]
    return Claim(
        "dmmse_tends_to_ridge", "dMMSE_M approaches ridge as M grows", "dMMSE_M → ridge as M → ∞",
        {"Δ(dMMSE_M, ridge) by M": dict(zip([labels[i] for i in finite], db))},
        db[-1] < DMMSE_TO_RIDGE_FRACTION * db[0],
        f"Δ at the largest finite M below {DMMSE_TO_RIDGE_FRACTION:g} × Δ at M = 1")


def transient_ridge(m: dict) -> Claim:
    sw = m["sweep"]
    trans = transient_Ms(m)
    return Claim(
        "transient_ridge", "For intermediate M the model first behaves like ridge (OOD loss falls toward ridge's, "
        "Δ to ridge below Δ to dMMSE_M), then moves to dMMSE_M (OOD loss rises, the Δ curves cross)",
        "transient ridge for M = 16 … 128 (partial at 6, 8); OOD rise of the order of the ridge–dMMSE gap",
        {"M with a transient": [s["M"] for s in trans],
         "OOD rise / (dMMSE_M − ridge OOD gap)": {s["M"]: round(_nan(s["ood_rise"]), 3) for s in sw["summary"]},
         "t_cross": {s["M"]: s["t_cross"] for s in sw["summary"]}},
        len(trans) >= MIN_TRANSIENT_M, f">= {MIN_TRANSIENT_M} values of M with a ridge phase, a later crossing, and an "
        f"OOD rise >= {MIN_OOD_RISE:.0%} of the gap")


def low_M_straight_to_dmmse(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    low = [s for s, M in zip(sw["summary"], Ms) if M <= LOW_M]
    return Claim(
        "low_M_straight_to_dmmse", "At the lowest M the model goes straight to dMMSE_M (no ridge phase)",
        "no transient at low M", {s["M"]: {"ridge phase": s["ridge_phase"]} for s in low},
        bool(low) and not any(s["ridge_phase"] for s in low), f"no ridge-like checkpoint for M <= {LOW_M} (Δ to ridge below "
        "both Δ to dMMSE_M and half of Δ(0, ridge))")


def high_M_ends_ridge_like(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    final_dr, final_dd = sw["d_ridge"][-1], sw["d_dmmse"][-1]
    high = [i for i, M in enumerate(Ms) if M >= HIGH_M and M != math.inf]
    return Claim(
        "high_M_ends_ridge_like", "Above a task-diversity threshold the trained model stays ridge-like",
        "ridge for M >= 362 (182, 256 between) at 150k steps",
        {labels[i]: {"final Δ ridge": round(final_dr[i], 4), "final Δ dMMSE_M": round(final_dd[i], 4)} for i in high},
        bool(high) and all(final_dr[i] < final_dd[i] for i in high),
        f"final Δ to ridge < Δ to dMMSE_M for every M >= {HIGH_M}")


def t_crit_grows(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    trans = transient_Ms(m)
    tc = [(M, by[label(M)]["t_crit"]) for M in Ms if label(M) in [s["M"] for s in trans]]
    return Claim(
        "t_crit_grows", "The pivot away from ridge comes later as M grows", "t_crit(M) increases with M",
        {"t_crit by M (transient M only)": {label(M): t for M, t in tc}},
        len(tc) >= 2 and all(a[1] < b[1] for a, b in zip(tc, tc[1:])), "t_crit strictly increasing over the M with a transient")


def infinite_M_learns_ridge(m: dict) -> Claim | None:
    """``None`` when the sweep has no M = ∞ run."""
    sw, labels, Ms, by, finite = _sweep(m)
    if math.inf not in Ms:
        return None
    inf_i = Ms.index(math.inf)
    final_dr = sw["d_ridge"][-1]
    return Claim(
        "infinite_M_learns_ridge", "With a fresh task per sequence (M = ∞) the model learns ridge",
        "M = ∞ converges to ridge", {"final Δ ridge / Δ(dMMSE_1, ridge)": final_dr[inf_i] / sw["d_bayes"][0],
                                      "final OOD loss": sw["ood"][-1][inf_i], "ridge OOD loss": sw["ood_ridge_loss"]},
        final_dr[inf_i] / sw["d_bayes"][0] <= INFINITE_M_GAP_FRACTION,
        f"final Δ to ridge <= {INFINITE_M_GAP_FRACTION:.0%} of the Bayes gap Δ(dMMSE_1, ridge)")


def pca_bends_toward_ridge(m: dict) -> Claim:
    sw = m["sweep"]
    trans = transient_Ms(m)
    pca = m["pca"]
    det = {s["M"]: d for s, d in zip(sw["summary"], pca["detour"])}
    bend = [s["M"] for s in trans if det[s["M"]]["closest_index"] < det[s["M"]]["n_checkpoints"] - 1
            and det[s["M"]]["closest_to_ridge"] < PCA_CLOSEST_FRACTION * det[s["M"]]["final_to_ridge"]
            and det[s["M"]]["final_to_dmmse"] < det[s["M"]]["final_to_ridge"]]
    return Claim(
        "pca_bends_toward_ridge", "In the joint trajectory PCA (PC1–PC2), intermediate-M trajectories bend toward "
        "the ridge point before ending at their dMMSE_M point", f"PC1–PC2 explain {PAPER['pca_pc12_variance']:.1%}",
        {"PC1–PC2 explained variance": round(sum(pca["explained"][:2]), 3), "transient M that bend": bend},
        len(trans) >= MIN_TRANSIENT_M and len(bend) == len(trans), f"every transient M (at least {MIN_TRANSIENT_M}): "
        "closest approach to ridge before "
        f"the end, below {PCA_CLOSEST_FRACTION:g} × the final distance to ridge, and the end nearer its dMMSE_M point "
        "than ridge")


def llc_rises_with_M(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    final_dr, final_dd = sw["d_ridge"][-1], sw["d_dmmse"][-1]
    lm = m["llc_over_M"]
    llc = dict(zip(lm["groups"], (_nan(x) for x in lm["llc"])))
    dm_like = [s["M"] for s, M in zip(sw["summary"], Ms) if M != math.inf and final_dd[labels.index(s["M"])]
               < final_dr[labels.index(s["M"])]]
    seq = [llc[x] for x in dm_like]
    rising = float(np.corrcoef(np.argsort(np.argsort(seq)), np.arange(len(seq)))[0, 1]) if len(seq) > 2 else float("nan")
    between = "∞" in llc and len(seq) >= 2 and min(seq) < llc["∞"] < max(seq)
    return Claim(
        "llc_rises_with_M", "The LLC of the dMMSE-like final models rises with M; the ridge-like M = ∞ model lies "
        "between the simplest and the most complex of them", "LLC rises with M, crosses the M = ∞ level where "
        "transience starts, plateaus above M = 32", {"LLC by M": {k: round(v, 2) for k, v in llc.items()},
                                                   "dMMSE-like M": dm_like, "Spearman(M, LLC) over them": rising},
        rising >= LLC_MIN_SPEARMAN and between,
        f"Spearman >= {LLC_MIN_SPEARMAN:g} over the dMMSE-like M, and min < LLC(∞) < max")


def llc_loss_vs_complexity(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    lt = m["llc_over_training"]
    s_llc = by[lt["M"]]
    steps_t = lt["groups"]
    i_r = int(np.argmin([abs(t - s_llc["t_crit"]) for t in steps_t]))
    curve_steps = sw["step"]
    g = labels.index(lt["M"])
    id_at = {t: sw["id"][curve_steps.index(t)][g] for t in steps_t}
    trade = complexity_tradeoff(id_at[steps_t[i_r]], lt["llc"][i_r], id_at[steps_t[-1]], lt["llc"][-1])
    return Claim(
        "llc_loss_vs_complexity", f"For M = {lt['M']}, the ridge-like solution (near t_crit) has higher loss but lower "
        "LLC than the final dMMSE-like one: simplicity wins early, fit wins late", "Bayesian internal model "
        "selection: n·ΔL vs Δλ·log n", {"ridge-like (step, ID loss, LLC)": (steps_t[i_r], trade["loss_simple"],
                                                                            trade["llc_simple"]),
                                        "final (step, ID loss, LLC)": (steps_t[-1], trade["loss_complex"],
                                                                       trade["llc_complex"]),
                                        "n*": trade["n_star"]},
        trade["n_star"] is not None, "ΔL > 0 and Δλ > 0 (so a crossover n* exists)")


def llc_calibrated(m: dict) -> Claim:
    lm, lt = m["llc_over_M"], m["llc_over_training"]
    ok = lm["settled"] + lt["settled"]
    return Claim(
        "llc_calibrated", "The SGLD chains settle (the estimate does not drift with more draws)", "calibration: "
        "loss traces must settle", {"settled estimates": f"{sum(ok)}/{len(ok)}", "settings": lm["settings"]},
        all(ok), "first- and second-half draw means within 10% of the loss excess, every estimate", kind="extension")


def llc_matches_devinterp(m: dict) -> Claim | None:
    """``None`` when devinterp was not installed for the run."""
    cc, lt = m["llc_crosscheck"], m["llc_over_training"]
    if "devinterp" not in cc:
        return None
    rel = abs(cc["ours"] - cc["devinterp"]) / abs(cc["devinterp"])
    return Claim(
        "llc_matches_devinterp", f"Our SGLD estimator agrees with devinterp 1.3.2 on the same checkpoint "
        f"(M = {lt['M']}, final) and settings, and is faster",
        "the book's check of its SGLD estimator against devinterp, the reference implementation of Lau et al. 2023",
        {"ours": round(cc["ours"], 2), "devinterp": round(cc["devinterp"], 2), "relative difference": round(rel, 3),
         "speed ratio": round(cc["devinterp_seconds"] / cc["ours_seconds"], 2)},
        rel <= DEVINTERP_TOLERANCE and cc["ours_seconds"] < cc["devinterp_seconds"],
        f"within {DEVINTERP_TOLERANCE:.0%} and faster", kind="extension")


def grouped_speedup(m: dict) -> Claim:
    t = m["timing"]
    return Claim(
        "grouped_speedup", "Training all M as one grouped model is much faster than one after another",
        "the book's implementation (the paper trains one model per M); a GPU target",
        {"speed-up": round(t["speedup"], 2), "device": t["device"], "groups": t["groups"]},
        t["speedup"] >= MIN_GROUPED_SPEEDUP,
        f">= {MIN_GROUPED_SPEEDUP:g}× (a GPU target: a 2-core CPU has little to parallelise)", kind="extension")


def curriculum_reaches_ridge(m: dict) -> Claim:
    sw, labels, Ms, by, finite = _sweep(m)
    cu = m["curriculum"]
    cu_by = {s["M"]: (i, s) for i, s in enumerate(cu["summary"])}
    comp = {}
    for M_, (i, s) in cu_by.items():
        j = labels.index(M_)
        comp[M_] = {"final OOD, curriculum": round(cu["ood"][-1][i], 3), "final OOD, fixed M": round(sw["ood"][-1][j], 3),
                    "ridge phase (curriculum / fixed)": [s["ridge_phase"], by[M_]["ridge_phase"]]}
    high_cu = [M_ for M_ in cu_by if M_ == "∞" or int(M_) >= HIGH_M]
    return Claim(
        "curriculum_reaches_ridge", "Raising task diversity in stages still ends at the general (ridge) solution for "
        "high M, as well as training at the final M from the start", "the book's experiment: raise diversity in stages (the paper trains at a fixed M)",
        comp, bool(high_cu) and all(comp[M_]["final OOD, curriculum"] <= CURRICULUM_TOLERANCE * comp[M_]["final OOD, fixed M"]
                                    for M_ in high_cu),
        f"final OOD loss within {CURRICULUM_TOLERANCE - 1:.0%} of (or below) fixed-M training, for every curriculum "
        f"M >= {HIGH_M}", kind="extension")


CLAIMS = (bayes_each_optimal, dmmse_tends_to_ridge, transient_ridge, low_M_straight_to_dmmse, high_M_ends_ridge_like,
          t_crit_grows, infinite_M_learns_ridge, pca_bends_toward_ridge, llc_rises_with_M, llc_loss_vs_complexity,
          llc_calibrated, llc_matches_devinterp, grouped_speedup, curriculum_reaches_ridge)


def evaluate(m: dict) -> list[Claim]:
    """The chapter's claims, judged from a run's metrics alone (``metrics.json``), in the order of :data:`CLAIMS`."""
    return [c for c in (f(m) for f in CLAIMS) if c is not None]
