"""Chapter 3's claims: named thresholds and the verdicts, judged from a run's metrics alone.

One pure function per claim, each taking a run's metrics (the dict the full run writes as
``metrics.json``) and returning a :class:`~helpers.Claim` (or ``None`` where the run did not
measure what the claim needs); :func:`evaluate` composes them into the chapter's claims list,
which the full run writes as ``claims.json`` and the pages render. Every pass mark is a named
constant below — change a criterion here and nowhere else. The ``DEMO_…`` constants are what the
pages assert about their own live computations (smaller or different from the full run's); they
are demonstration checks, not claims.

Metrics read back from ``metrics.json`` hold ``null`` where the run had NaN (e.g. the OOD rise of
M = ∞, whose two Bayes predictors coincide); the claims read it as NaN, as in the run itself. A
run may hold several seeds per M: a claim about an M holds only if it holds for every seed. A
claim whose evidence the run lacks (a partial run, or an older run without a section) is left out.

The ``paper`` claims quote or closely paraphrase Carroll et al. 2025 (§3.3, §4.3, §5.3, §5.4,
Figures 1 and 3); where the paper names a scale (M = 32, M ≥ 362) ours
is D = 8 only on the GPU run.

Used in: ``python -m helpers.transient_ridge`` (and ``--claims-only``), and the chapter's pages.
"""
from __future__ import annotations

import math

import numpy as np

from ..claims import Claim
from .analysis import complexity_tradeoff, spearman

FULL_DIP = 0.25                  # a full transient's OOD minimum: at most this fraction of the dMMSE_M–ridge OOD gap
                                 # above ridge
FULL_RISE = 0.5                  # … and its later rise: at least this fraction of the gap
PARTIAL_DIP_RISE = 0.05          # a partial dip (the paper's words for M = 6, 8): the smoothed OOD loss falls, not
                                 # to the FULL_DIP mark, and then rises again by at least this fraction of the gap;
                                 # a partial rise (M = 182, 256): it falls to the mark, and rises by this or more
MIN_TRANSIENT_WINDOW = 3         # values of M, contiguous in the sweep, with a full transient for every seed
T_CRIT_MIN_OOD = 4096            # t_crit is read from OOD curves on at least this many sequences
T_CRIT_MIN_SPEARMAN = 0.9        # rank correlation of t_crit with M over the M with a full transient
DMMSE_TO_RIDGE_FRACTION = 0.25   # Δ(dMMSE_M, ridge) at the largest finite M below this fraction of Δ at M = 1 …
DMMSE_TO_RIDGE_MIN_SPEARMAN = 0.9  # … and falling with M at this rank correlation (or stronger)
LOW_M = 2                        # "low M": M <= this goes straight to dMMSE_M
APPROX_GAP_FRACTION = 0.05       # a final model "behaviorally approximates" a predictor (ridge or dMMSE_M): its
                                 # final Δ to it at most this fraction of the Bayes gap Δ(dMMSE_1, ridge)
MAX_BETWEEN_M = 2                # the M that end between dMMSE_M and ridge sit just below the threshold, at most
                                 # this many (the paper: 182 and 256, between M <= 128 on dMMSE_M and M >= 362)
PCA_DIRECT_MAX_BEND = 0.1        # "directly": the path's detour toward ridge at most this fraction of its chord
PCA_MIN_BEND = 0.25              # "deflected toward ridge": the detour at least this fraction of the chord
PCA_PC2_MIN_SPEARMAN = 0.9       # |PC2(dMMSE_M) − PC2(ridge)| falls with M at this rank correlation (or stronger)
LLC_MATCH_FRACTION = 0.15        # "converge to the M = ∞ level": within this relative difference
LLC_MIN_SPEARMAN = 0.9           # "increases with M": rank correlation up to the crossing
LLC_CROSS_STEPS = 1              # the crossing M within this many grid steps of the onset of transience
LLC_PLATEAU_M = 32               # the paper's plateau starts above this M
LLC_PLATEAU_SPREAD = 0.15        # "plateaus": the LLCs of the dMMSE-like M >= LLC_PLATEAU_M within this spread
                                 # of their mean
DEVINTERP_TOLERANCE = 0.10       # our LLC within this relative difference of devinterp's
MIN_GROUPED_SPEEDUP = 5.0        # grouped training this many times faster than one model after another
CURRICULUM_HIGH_M = 64           # the curriculum's "high M": its final M at or above this (and ∞)
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
    return math.inf if x in ("∞", "inf", math.inf) else int(x)


class _Sweep:
    """The sweep's readings shared by the claims: per-M groups (every seed), finite M in order."""

    def __init__(self, m: dict, part: str = "sweep"):
        sw = self.sw = m[part]
        self.summary = sw["summary"]
        self.labels = [s["M"] for s in self.summary]
        self.Ms = []                                   # distinct labels, in sweep order
        for lab in self.labels:
            if lab not in self.Ms:
                self.Ms.append(lab)
        self.groups = {lab: [g for g, x in enumerate(self.labels) if x == lab] for lab in self.Ms}
        self.finite = [lab for lab in self.Ms if lab != "∞"]
        self.final_dr, self.final_dd = sw["d_ridge"][-1], sw["d_dmmse"][-1]
        self.gap = sw["d_bayes"][self.groups[self.finite[0]][0]] if self.finite else math.nan   # Δ(dMMSE_1, ridge)
        n_ood = sw.get("n_ood", m.get("sizes", {}).get("eval_n"))
        self.n_ood = int(n_ood) if n_ood is not None else 0

    def first(self, lab):
        return self.groups[lab][0]

    def ends_near(self, g: int, predictor: str) -> bool:
        """Group ``g``'s final model behaviourally approximates ``predictor`` (``"ridge"`` or
        ``"dMMSE_M"``): its final Δ to it at most :data:`APPROX_GAP_FRACTION` of the Bayes gap."""
        final = self.final_dr if predictor == "ridge" else self.final_dd
        return final[g] <= APPROX_GAP_FRACTION * self.gap

    def ends_ridge_like(self, lab) -> bool:
        """Every seed of M ends on ridge (:meth:`ends_near`)."""
        return all(self.ends_near(g, "ridge") for g in self.groups[lab])

    def ends_dmmse_like(self, lab) -> bool:
        """Every seed of M ends on dMMSE_M (:meth:`ends_near`)."""
        return all(self.ends_near(g, "dMMSE_M") for g in self.groups[lab])


def _why(*reasons: tuple[str, bool]) -> str:
    """The ``why`` of a claim: the texts of the ``(text, failed)`` pairs that failed, joined."""
    return "; ".join(text for text, failed in reasons if failed)


def transient_kind(s: dict) -> str:
    """A run's transient, from its summary ``s``, in the paper's three words (§4.3: a transient for
    a window of M, "a partial dip" just below it, "a partial rise" just above it):

    - ``"full"``: the smoothed OOD loss first falls (its minimum is not the first checkpoint) to
      within ``FULL_DIP`` of the gap above ridge, and later rises by at least ``FULL_RISE`` of it;
    - ``"partial rise"``: it falls to ridge, then rises by at least ``PARTIAL_DIP_RISE`` but less
      than ``FULL_RISE``;
    - ``"partial dip"``: it falls, not to ridge, and then rises by at least ``PARTIAL_DIP_RISE``;
    - ``"none"``: it never falls, or it falls and stays down (a model that reaches ridge and stays
      there has no transient)."""
    for key in ("ood_rise", "min_above_ridge"):
        if key not in s:
            raise ValueError(f"s must be a run's summary from the sweep (with {key!r}); got keys {sorted(s)}")
    rise = _nan(s["ood_rise"])
    if not (_fell(s) and rise >= PARTIAL_DIP_RISE):
        return "none"
    if dips_to_ridge(s):
        return "full" if rise >= FULL_RISE else "partial rise"
    return "partial dip"


def _fell(s: dict) -> bool:
    """The smoothed OOD loss fell: its minimum is not the first checkpoint (older runs: t_crit > 0)."""
    return bool(s.get("fell", s["t_crit"] > 0))


def dips_to_ridge(s: dict) -> bool:
    """A run's summary ``s`` dips to ridge: its smoothed OOD loss fell to within ``FULL_DIP`` of the
    dMMSE_M–ridge gap above ridge (the dip of :func:`transient_kind`)."""
    return _fell(s) and _nan(s.get("min_above_ridge")) <= FULL_DIP


def _kinds(sw: _Sweep) -> dict:
    return {lab: [transient_kind(sw.summary[g]) for g in sw.groups[lab]] for lab in sw.finite}


def _full_Ms(sw: _Sweep) -> list[str]:
    return [lab for lab, ks in _kinds(sw).items() if all(k == "full" for k in ks)]


def _longest_window(sw: _Sweep, chosen: list[str]) -> list[str]:
    best, run = [], []
    for lab in sw.finite:
        run = run + [lab] if lab in chosen else []
        best = run if len(run) > len(best) else best
    return best


def bayes_each_optimal(m: dict) -> Claim:
    sw = _Sweep(m)
    s = sw.sw
    idx = {lab: sw.first(lab) for lab in sw.Ms}
    ood_bad = [lab for lab in sw.finite
               if any(not s["ood_ridge_loss"] < s["ood_dmmse_loss"][g] for g in sw.groups[lab])]
    id_bad = [lab for lab in sw.finite
              if any(not s["id_dmmse_loss"][g] <= s["id_ridge_loss"][g] for g in sw.groups[lab])]
    return Claim(
        "bayes_each_optimal", "Ridge is the Bayes predictor for Gaussian tasks, dMMSE_M for the uniform prior on "
        "the M pool tasks: each has the lower loss on its own prior", "§3.3: ridge and dMMSE_M are the Bayes "
        "predictors of the two task distributions",
        {"OOD loss ridge": s["ood_ridge_loss"], "OOD loss dMMSE_M": {k: s["ood_dmmse_loss"][g] for k, g in idx.items()},
         "ID loss ridge": {k: s["id_ridge_loss"][g] for k, g in idx.items()},
         "ID loss dMMSE_M": {k: s["id_dmmse_loss"][g] for k, g in idx.items()}},
        not (ood_bad or id_bad),
        "for every finite M and seed: ridge lower OOD, dMMSE_M lower (or equal) in distribution",
        why=_why((f"dMMSE_M not above ridge out of distribution at M {ood_bad}", bool(ood_bad)),
                 (f"dMMSE_M above ridge in distribution at M {id_bad}", bool(id_bad))))


def dmmse_tends_to_ridge(m: dict) -> Claim:
    sw = _Sweep(m)
    db = [sw.sw["d_bayes"][sw.first(lab)] for lab in sw.finite]
    rho = spearman([_M(lab) for lab in sw.finite], db) if len(db) >= 3 else math.nan
    return Claim(
        "dmmse_tends_to_ridge", "dMMSE_M approaches ridge as M grows (a check of the Bayes predictors, not of the "
        "trained model)", "§3.3: \"as M → ∞, t̂_k^M → t̂_k^∞ a.s.\" (dMMSE_M tends to ridge; checked here on "
        "the predictors' outputs)",
        {"Δ(dMMSE_M, ridge) by M": dict(zip(sw.finite, db)), "Spearman(M, Δ)": rho},
        db[-1] < DMMSE_TO_RIDGE_FRACTION * db[0] and rho <= -DMMSE_TO_RIDGE_MIN_SPEARMAN,
        f"Δ at the largest finite M below {DMMSE_TO_RIDGE_FRACTION:g} × Δ at M = 1, and falling with M "
        f"(Spearman <= −{DMMSE_TO_RIDGE_MIN_SPEARMAN:g}; the Monte Carlo estimate may rise between neighbours)",
        why=_why(
            (f"Δ at the largest finite M is {db[-1] / db[0]:.2f} × Δ at M = 1 (the mark is "
             f"{DMMSE_TO_RIDGE_FRACTION:g})", not db[-1] < DMMSE_TO_RIDGE_FRACTION * db[0]),
            (f"Spearman(M, Δ) = {rho:.2f}, not <= −{DMMSE_TO_RIDGE_MIN_SPEARMAN:g}",
             not rho <= -DMMSE_TO_RIDGE_MIN_SPEARMAN)))


def transient_ridge(m: dict) -> Claim:
    sw = _Sweep(m)
    kinds = _kinds(sw)
    window = _longest_window(sw, _full_Ms(sw))
    return Claim(
        "transient_ridge", "For intermediate M the OOD loss first falls to ridge's, then rises to dMMSE_M's: a full "
        "transient for a window of M", "§4.3: \"For M ∈ {16, 24, …, 128}, loss decreases towards that of ridge, then "
        "increases to that of dMMSE_M. We see a partial dip for M ∈ {6, 8} and a partial rise for M ∈ {182, 256}.\"",
        {"transient per M (each seed)": kinds,
         "(OOD minimum above ridge, later rise) / gap, smoothed": {
             lab: [[round(_nan(sw.summary[g]["min_above_ridge"]), 3), round(_nan(sw.summary[g]["ood_rise"]), 3)]
                   for g in sw.groups[lab]] for lab in sw.finite},
         "longest window of full transients": window},
        len(window) >= MIN_TRANSIENT_WINDOW,
        f">= {MIN_TRANSIENT_WINDOW} contiguous M with a full transient for every seed: smoothed OOD minimum within "
        f"{FULL_DIP:.0%} of the dMMSE_M–ridge gap above ridge, then a rise of >= {FULL_RISE:.0%} of the gap",
        why=f"the longest run of M with a full transient in every seed has {len(window)} "
            f"(needs {MIN_TRANSIENT_WINDOW}); no M has its OOD loss reach ridge's and then rise to dMMSE_M's"
        if not window else f"the longest run of M with a full transient in every seed is {window} "
                           f"(needs {MIN_TRANSIENT_WINDOW})")


def low_M_straight_to_dmmse(m: dict) -> Claim:
    sw = _Sweep(m)
    low = [lab for lab in sw.finite if int(lab) <= LOW_M]
    detour = [lab for lab in low if any(sw.summary[g]["ridge_phase"] for g in sw.groups[lab])]
    return Claim(
        "low_M_straight_to_dmmse", "At the lowest M the model goes straight to dMMSE_M (no ridge phase)",
        "§5.3, low M: \"training should proceed directly to v_M\" (v_M: the dMMSE-like solution); §4.3: \"For low "
        "M, the transformers proceed directly to dMMSE_M in the essential subspace\"",
        {lab: {"ridge phase (each seed)": [sw.summary[g]["ridge_phase"] for g in sw.groups[lab]]} for lab in low},
        bool(low) and not detour,
        f"no ridge-like checkpoint for M <= {LOW_M}, any seed (Δ to ridge below both Δ to dMMSE_M and half of "
        "Δ(0, ridge))",
        why=_why((f"no M <= {LOW_M} in the sweep", not low),
                 (f"a ridge-like checkpoint at M {detour}", bool(detour))))


def task_diversity_threshold(m: dict) -> Claim:
    sw = _Sweep(m)
    ridge = [lab for lab in sw.finite if sw.ends_ridge_like(lab)]
    upward = bool(ridge) and sw.finite[sw.finite.index(ridge[0]):] == ridge
    low_ok = sw.ends_dmmse_like(sw.finite[0])
    below = sw.finite[:sw.finite.index(ridge[0])] if upward else []
    between = [lab for lab in below if not sw.ends_dmmse_like(lab)]
    between_ok = between == below[len(below) - len(between):] and len(between) <= MAX_BETWEEN_M
    nearest = min(sw.finite, key=lambda lab: sw.final_dr[sw.first(lab)])

    def ends(g):
        return next((p for p in ("ridge", "dMMSE_M") if sw.ends_near(g, p)), "neither")
    return Claim(
        "task_diversity_threshold", "Fully trained models match dMMSE_M at low M and ridge above a task-diversity "
        "threshold", "§4.3: \"at low task diversity (in our case M ≤ 128), fully-trained transformers behaviorally "
        "approximate dMMSE_M, while above a task diversity threshold (M ≥ 362), they converge to a point that "
        "behaviorally approximates ridge\"",
        {"final model approximates (each seed)": {lab: [ends(g) for g in sw.groups[lab]] for lab in sw.finite},
         "final Δ to (ridge, dMMSE_M) / Bayes gap (first seed)": {
             lab: [round(sw.final_dr[sw.first(lab)] / sw.gap, 3), round(sw.final_dd[sw.first(lab)] / sw.gap, 3)]
             for lab in sw.finite},
         "threshold (smallest M from which every M ends on ridge)": ridge[0] if upward else None},
        upward and low_ok and between_ok and len(ridge) < len(sw.finite),
        f"a final model approximates a predictor when its final Δ to it is at most {APPROX_GAP_FRACTION:.0%} of the "
        "Bayes gap Δ(dMMSE_1, ridge) (the mark of M = ∞); every seed approximates dMMSE_M at the smallest M and "
        "ridge at the largest finite M, with one threshold between (every M above the first on ridge is on ridge), "
        f"and every M below it on dMMSE_M except at most {MAX_BETWEEN_M} just below the threshold",
        why=_why(
            (f"no finite M ends on ridge: the nearest, M = {nearest}, ends "
             f"{sw.final_dr[sw.first(nearest)] / sw.gap:.0%} of the gap from it", not ridge),
            ("the smallest M does not end on dMMSE_M", not low_ok),
            ("the M that end on ridge are not all those above a threshold", bool(ridge) and not upward),
            (f"below the threshold, M {between} end on neither predictor (at most {MAX_BETWEEN_M}, just below it)",
             upward and not between_ok),
            ("every finite M ends on ridge", len(ridge) == len(sw.finite))))


def infinite_M_learns_ridge(m: dict) -> Claim | None:
    """``None`` when the sweep has no M = ∞ run."""
    sw = _Sweep(m)
    if "∞" not in sw.Ms:
        return None
    fr = [sw.final_dr[g] / sw.gap for g in sw.groups["∞"]]
    return Claim(
        "infinite_M_learns_ridge", "With a fresh task per sequence (M = ∞) the model learns ridge",
        "§4.3: above the threshold models \"converge to a point that behaviorally approximates ridge\"",
        {"final Δ ridge / Δ(dMMSE_1, ridge) (each seed)": [round(x, 4) for x in fr],
         "final OOD loss (each seed)": [sw.sw["ood"][-1][g] for g in sw.groups["∞"]],
         "ridge OOD loss": sw.sw["ood_ridge_loss"]},
        all(x <= APPROX_GAP_FRACTION for x in fr),
        f"final Δ to ridge <= {APPROX_GAP_FRACTION:.0%} of the Bayes gap Δ(dMMSE_1, ridge), every seed",
        why=f"the M = ∞ model ends {max(fr):.0%} of the gap from ridge (needs <= {APPROX_GAP_FRACTION:.0%}): "
            f"after {sw.sw['step'][-1]} steps")


def t_crit_grows(m: dict) -> Claim:
    sw = _Sweep(m)
    full = _full_Ms(sw)
    tc = {lab: [sw.summary[g]["t_crit"] for g in sw.groups[lab]] for lab in sw.finite}
    med = {lab: float(np.median(v)) for lab, v in tc.items()}
    rho = spearman([_M(lab) for lab in full], [med[lab] for lab in full]) if len(full) >= 3 else math.nan
    return Claim(
        "t_crit_grows", "The pivot away from ridge (t_crit, the lowest OOD loss) comes later as M grows",
        "§5.3, a prediction: training should proceed \"first towards u∞ before pivoting towards v_M (after a "
        "number of training steps that increases with M)\"; t_crit, the step of the lowest OOD loss, as in Figure 1",
        {"t_crit (each seed), smoothed OOD": tc,
         "t_crit range (first seed: within 2% of the gap of the minimum)": {
             lab: sw.summary[sw.first(lab)].get("t_crit_range") for lab in sw.finite},
         "M with a full transient": full, "Spearman(M, median t_crit) over them": rho, "OOD sequences": sw.n_ood},
        sw.n_ood >= T_CRIT_MIN_OOD and rho >= T_CRIT_MIN_SPEARMAN,
        f"on >= {T_CRIT_MIN_OOD} OOD sequences, smoothed curves: Spearman(M, t_crit) >= {T_CRIT_MIN_SPEARMAN:g} "
        f"over the (at least 3) M with a full transient for every seed",
        why=(f"only {len(full)} M with a full transient (needs 3), so there is no t_crit trend to rank"
             if len(full) < 3 else f"Spearman {rho:.2f} < {T_CRIT_MIN_SPEARMAN:g}" if rho < T_CRIT_MIN_SPEARMAN
             else f"only {sw.n_ood} OOD sequences (needs {T_CRIT_MIN_OOD})"))


def _pca(m: dict):
    pca = m.get("pca")
    if not pca or "bend" not in pca:
        return None
    return pca, dict(zip(pca["labels"], pca["bend"]))


def _pc12(pca: dict) -> float:
    return round(sum(pca["explained"][:2]), 3)


def pca_low_M_direct(m: dict) -> Claim | None:
    got = _pca(m)
    if got is None:
        return None
    pca, bend = got
    low = [lab for lab in bend if lab != "∞" and int(lab) <= LOW_M]
    ok = [lab for lab in low if bend[lab]["bend"] <= PCA_DIRECT_MAX_BEND
          and bend[lab]["final_to_dmmse"] < bend[lab]["final_to_ridge"]]
    return Claim(
        "pca_low_M_direct", "In the joint trajectory PCA (PC1–PC2), low-M trajectories go straight to their "
        "dMMSE_M point",
        "§4.3: \"For low M, the transformers proceed directly to dMMSE_M in the essential subspace\"",
        {"detour toward ridge / chord": {lab: round(bend[lab]["bend"], 3) for lab in low},
         "PC1–PC2 explained variance (paper: 27.5%)": _pc12(pca)},
        bool(low) and ok == low, f"for every M <= {LOW_M} (first seed): smoothed path's detour toward ridge <= "
        f"{PCA_DIRECT_MAX_BEND:g} × its chord, ending nearer its dMMSE_M point than ridge",
        why=_why((f"no M <= {LOW_M} in the PCA", not low),
                 (f"M {[lab for lab in low if lab not in ok]} detour toward ridge or end nearer it", ok != low)))


def pca_transient_bends(m: dict) -> Claim | None:
    got = _pca(m)
    if got is None:
        return None
    pca, bend = got
    sw = _Sweep(m)
    trans = [lab for lab in sw.finite if lab in bend and transient_kind(sw.summary[sw.first(lab)]) == "full"]
    ok = [lab for lab in trans if bend[lab]["bend"] >= PCA_MIN_BEND
          and bend[lab]["closest_index"] < bend[lab]["n_checkpoints"] - 1
          and bend[lab]["final_to_dmmse"] < bend[lab]["final_to_ridge"]]
    return Claim(
        "pca_transient_bends", "In PC1–PC2, the trajectories of the transient M bend toward the ridge point, then "
        "turn to their dMMSE_M point", "§4.3: \"As M increases (until the task diversity threshold), the trajectories "
        "are increasingly deflected from this straight path into one that transits via approximating ridge\"",
        {"detour toward ridge / chord, by M": {lab: round(b["bend"], 3) for lab, b in bend.items()},
         "M with a full transient (first seed)": trans, "of them bending and turning": ok,
         "PC1–PC2 explained variance (paper: 27.5%)": _pc12(pca)},
        len(trans) >= MIN_TRANSIENT_WINDOW and ok == trans,
        f"every M with a full transient (at least {MIN_TRANSIENT_WINDOW}; first seed): detour toward ridge >= "
        f"{PCA_MIN_BEND:g} × the chord, closest to ridge before the end, ending nearer its dMMSE_M point",
        why=(f"only {len(trans)} M with a full transient (needs {MIN_TRANSIENT_WINDOW}); the largest detour toward "
             f"ridge is {max(b['bend'] for b in bend.values()):.2f} × the chord (the mark is {PCA_MIN_BEND:g})"
             if len(trans) < MIN_TRANSIENT_WINDOW
             else f"M {sorted(set(trans) - set(ok), key=_M)} do not bend and turn"))


def pca_pc2_separates(m: dict) -> Claim | None:
    got = _pca(m)
    if got is None:
        return None
    pca = got[0]
    fin = [(lab, pt) for lab, pt in zip(pca["labels"], pca["dmmse"]) if lab != "∞"]
    offs = [pt[1] - pca["ridge"][1] for _, pt in fin]
    one_side = all(o > 0 for o in offs) or all(o < 0 for o in offs)
    rho = spearman([_M(lab) for lab, _ in fin], [abs(o) for o in offs])
    return Claim(
        "pca_pc2_separates", "PC2 separates the projected dMMSE_M points from ridge, the nearer the larger M (a "
        "check of the PCA's axes on the Bayes predictors, not of the trained model)",
        "§4.3: \"Strikingly, PC2 correlates with an axis of behavioral difference between dMMSE_M (for increasing "
        "M) and ridge\" (ridge and each dMMSE_M project to points, §4.2)",
        {"PC2(dMMSE_M) − PC2(ridge)": {lab: round(o, 3) for (lab, _), o in zip(fin, offs)},
         "Spearman(M, |offset|)": rho, "PC1–PC2 explained variance (paper: 27.5%)": _pc12(pca)},
        one_side and rho <= -PCA_PC2_MIN_SPEARMAN,
        f"every finite M's dMMSE_M point on one side of ridge in PC2, and Spearman(M, |PC2 offset|) <= "
        f"−{PCA_PC2_MIN_SPEARMAN:g}",
        why=_why(("the dMMSE_M points lie on both sides of ridge in PC2", not one_side),
                 (f"Spearman(M, |PC2 offset|) = {rho:.2f}, not <= −{PCA_PC2_MIN_SPEARMAN:g}",
                  not rho <= -PCA_PC2_MIN_SPEARMAN)))


def _llc_by_M(m: dict) -> dict | None:
    lm = m.get("llc_over_M")
    if not lm:
        return None
    out: dict = {}
    for grp, x in zip(lm["groups"], lm["llc"]):
        out.setdefault(grp[0] if isinstance(grp, list) else grp, []).append(_nan(x))
    return {k: float(np.mean(v)) for k, v in out.items()}


def llc_high_M_converges(m: dict) -> Claim | None:
    llc = _llc_by_M(m)
    if llc is None or "∞" not in llc:
        return None
    sw = _Sweep(m)
    high = [lab for lab in sw.finite if sw.ends_ridge_like(lab)]
    rel = {lab: (llc[lab] - llc["∞"]) / abs(llc["∞"]) for lab in high}
    return Claim(
        "llc_high_M_converges", "The LLCs of the final models that approximate ridge (high M) match the M = ∞ "
        "model's",
        "Fig. 3: \"Large-M LLCs converge to the LLC of ridge\"",
        {"LLC(∞)": round(llc["∞"], 2),
         "ridge-like finite M: (LLC − LLC(∞)) / LLC(∞)": {k: round(v, 3) for k, v in rel.items()}},
        bool(high) and all(abs(v) <= LLC_MATCH_FRACTION for v in rel.values()),
        f"at least one finite M ends on ridge (every seed: final Δ to ridge <= {APPROX_GAP_FRACTION:.0%} of the "
        f"Bayes gap), and each such M's LLC (mean over seeds) within "
        f"{LLC_MATCH_FRACTION:.0%} of LLC(∞)",
        why=f"no finite M ends on ridge (final Δ within {APPROX_GAP_FRACTION:.0%} of the Bayes gap)" if not high
        else "; ".join(
            f"M = {k}: {v:+.0%} from LLC(∞)" for k, v in rel.items() if abs(v) > LLC_MATCH_FRACTION)
        + f" (the mark is ±{LLC_MATCH_FRACTION:.0%})")


def _onset(sw: _Sweep) -> str | None:
    """The onset of transience: the first finite M at which every seed shows a transient, partial
    (a partial dip or a partial rise) or full."""
    return next((lab for lab, ks in _kinds(sw).items() if all(k != "none" for k in ks)), None)


def llc_low_M_rises_and_crosses(m: dict) -> Claim | None:
    llc = _llc_by_M(m)
    if llc is None or "∞" not in llc:
        return None
    sw = _Sweep(m)
    low = [lab for lab in sw.finite if sw.ends_dmmse_like(lab)]
    cross = next((lab for lab in low if llc[lab] > llc["∞"]), None)
    upto = low[:low.index(cross) + 1] if cross else low
    seq = [llc[lab] for lab in upto]
    rising = (spearman([_M(lab) for lab in upto], seq) >= LLC_MIN_SPEARMAN if len(upto) >= 3
              else len(upto) == 2 and seq[1] > seq[0])
    onset = _onset(sw)
    near = (cross is not None and onset is not None
            and abs(sw.finite.index(cross) - sw.finite.index(onset)) <= LLC_CROSS_STEPS)
    if cross and onset:
        apart = (f"the crossing (M = {cross}) is more than {LLC_CROSS_STEPS} grid step from the onset of "
                 f"transience (M = {onset})")
    else:
        missing = []
        if not cross:
            missing.append(f"no dMMSE-like M's LLC rises above LLC(∞) (the largest dMMSE-like M, M = {low[-1]}, "
                           f"has {llc[low[-1]]:.1f} against {llc['∞']:.1f})" if low else
                           "no dMMSE-like M to cross LLC(∞)")
        if not onset:
            missing.append("no M shows a transient, so there is no onset of transience")
        apart = "; ".join(missing)
    return Claim(
        "llc_low_M_rises_and_crosses", "The LLC of the dMMSE-like final models rises with M and crosses the M = ∞ "
        "level at the onset of transience", "§5.4: \"this LLC increases with M, and crosses λ̂_∞ during the onset of "
        "transience\"",
        {"LLC by M (mean over seeds)": {k: round(v, 2) for k, v in llc.items()}, "dMMSE-like M": low,
         "first dMMSE-like M above LLC(∞)": cross,
         "onset of transience (first M with a transient of any kind, every seed)": onset},
        bool(low) and llc[low[0]] < llc["∞"] and bool(rising) and near,
        f"over the dMMSE-like M (every seed ends with Δ to dMMSE_M <= {APPROX_GAP_FRACTION:.0%} of the Bayes gap): "
        f"the smallest below LLC(∞), rising up to the first above it (Spearman >= "
        f"{LLC_MIN_SPEARMAN:g}), and that crossing within {LLC_CROSS_STEPS} grid step of the first M with a transient",
        why=_why(
            ("no dMMSE-like M", not low),
            ("the smallest dMMSE-like M's LLC is not below LLC(∞)", bool(low) and llc[low[0]] >= llc["∞"]),
            ("the LLC does not rise with M up to the crossing", bool(low) and not rising),
            (apart, not near)))


def llc_plateau(m: dict) -> Claim | None:
    llc = _llc_by_M(m)
    if llc is None:
        return None
    sw = _Sweep(m)
    high = [lab for lab in sw.finite if sw.ends_dmmse_like(lab) and int(lab) >= LLC_PLATEAU_M]
    vals = [llc[lab] for lab in high]
    spread = (max(vals) - min(vals)) / float(np.mean(vals)) if len(vals) >= 2 else math.nan
    return Claim(
        "llc_plateau", f"The LLC of the dMMSE-like final models levels off for M >= {LLC_PLATEAU_M}",
        "§5.4: \"the estimated LLC of dMMSE_M plateaus above M = 32, suggesting that the approximation achieved by "
        "the fully-trained transformers may be incomplete\"",
        {"dMMSE-like M >= " + str(LLC_PLATEAU_M): {lab: round(llc[lab], 2) for lab in high},
         "(max − min) / mean": spread},
        spread <= LLC_PLATEAU_SPREAD, f"at least 2 dMMSE-like M >= {LLC_PLATEAU_M} (final Δ to dMMSE_M <= "
        f"{APPROX_GAP_FRACTION:.0%} of the Bayes gap), their LLCs within "
        f"{LLC_PLATEAU_SPREAD:.0%} (max − min over the mean)",
        why=(f"{len(high)} dMMSE-like M >= {LLC_PLATEAU_M} (needs 2): at this scale those M end on neither "
             "predictor"
             if len(vals) < 2
             else f"the LLCs spread by {spread:.0%} of their mean (the mark is {LLC_PLATEAU_SPREAD:.0%})"))


def llc_loss_vs_complexity(m: dict) -> Claim | None:
    lt = m.get("llc_over_training")
    if not lt or len(lt["groups"]) < 2:
        return None
    sw = _Sweep(m)
    g = sw.first(lt["M"])
    s_llc = sw.summary[g]
    steps_t = lt["groups"]
    i_r = int(np.argmin([abs(t - s_llc["t_crit"]) for t in steps_t]))
    curve_steps = sw.sw["step"]
    id_at = {t: sw.sw["id"][curve_steps.index(t)][g] for t in steps_t}
    trade = complexity_tradeoff(id_at[steps_t[i_r]], lt["llc"][i_r], id_at[steps_t[-1]], lt["llc"][-1])
    above = _nan(s_llc.get("min_above_ridge"))
    near_ridge = dips_to_ridge(s_llc)   # page 2's dip: near ridge
    return Claim(
        "llc_loss_vs_complexity", f"For M = {lt['M']}, the checkpoint at t_crit (the OOD minimum), near ridge, has "
        "higher loss but lower LLC than the final one: simplicity wins early, fit wins late", "§5.3, "
        "Bayesian internal model selection: for intermediate M the paper expects the dMMSE-like v_M to have \"lower "
        "loss but higher LLC\" than ridge's u∞, so ridge wins early and v_M late (n·ΔL against Δλ·log n)",
        {"at t_crit (step, ID loss, LLC)": (steps_t[i_r], trade["loss_simple"], trade["llc_simple"]),
         "final (step, ID loss, LLC)": (steps_t[-1], trade["loss_complex"], trade["llc_complex"]),
         "n*": trade["n_star"], "OOD minimum above ridge / gap, smoothed": round(above, 3)},
        near_ridge and trade["n_star"] is not None,
        f"the checkpoint at t_crit near ridge (the loss fell, and its smoothed OOD minimum is within {FULL_DIP:.0%} "
        "of the dMMSE_M–ridge gap above ridge: page 2's dip), and ΔL > 0 and Δλ > 0 against the final checkpoint "
        "(so a crossover n* exists), first seed",
        why=_why(
            (f"the checkpoint at t_crit is not near ridge: its smoothed OOD loss is {above:.0%} of the gap above "
             f"ridge's (the mark is {FULL_DIP:.0%})", not near_ridge),
            ("no trade-off between the two checkpoints (ΔL or Δλ not positive)", trade["n_star"] is None)))


def llc_calibrated(m: dict) -> Claim | None:
    lm, lt = m.get("llc_over_M"), m.get("llc_over_training")
    if not lm:
        return None
    per = {"over M": {("/".join(str(x) for x in grp) if isinstance(grp, list) else grp): ok
                      for grp, ok in zip(lm["groups"], lm["settled"])}}
    if lt:
        per["over training (step)"] = dict(zip(lt["groups"], lt["settled"]))
    ok = [v for d in per.values() for v in d.values()]
    return Claim(
        "llc_calibrated", "The SGLD chains settle (the estimate does not drift with more draws)", "the book's "
        "calibration check (the paper calibrates in an appendix)",
        {"settled estimates": f"{sum(ok)}/{len(ok)}", "settled, per estimate": per, "settings": lm["settings"]},
        all(ok), "first- and second-half draw means within 10% of the loss excess, every estimate", kind="extension",
        why=f"{len(ok) - sum(ok)} of {len(ok)} estimates still drift between the halves of their draws")


def llc_matches_devinterp(m: dict) -> Claim | None:
    """``None`` when devinterp was not installed for the run."""
    cc, lt = m.get("llc_crosscheck"), m.get("llc_over_training")
    if not cc or "devinterp" not in cc:
        return None
    rel = abs(cc["ours"] - cc["devinterp"]) / abs(cc["devinterp"])
    where = f"M = {lt['M']}, final" if lt else "the final checkpoint"
    return Claim(
        "llc_matches_devinterp", f"Our SGLD estimator agrees with devinterp 1.3.2 on the same checkpoint "
        f"({where}) and settings",
        "the book's check of its SGLD estimator against devinterp, the reference implementation of Lau et al. 2023",
        {"ours": round(cc["ours"], 2), "devinterp": round(cc["devinterp"], 2), "relative difference": round(rel, 3)},
        rel <= DEVINTERP_TOLERANCE, f"within {DEVINTERP_TOLERANCE:.0%}", kind="extension",
        why=_why((f"{rel:.1%} apart (the mark is {DEVINTERP_TOLERANCE:.0%})", rel > DEVINTERP_TOLERANCE)))


def llc_faster_than_devinterp(m: dict) -> Claim | None:
    """``None`` when devinterp was not installed for the run."""
    cc = m.get("llc_crosscheck")
    if not cc or "devinterp" not in cc:
        return None
    ratio = cc["devinterp_seconds"] / cc["ours_seconds"]
    return Claim(
        "llc_faster_than_devinterp", "Our SGLD estimator is faster than devinterp 1.3.2 on the same checkpoint and "
        "settings", "the book's implementation, timed against the reference library",
        {"ours (s)": round(cc["ours_seconds"], 2), "devinterp (s)": round(cc["devinterp_seconds"], 2),
         "devinterp's time / ours": round(ratio, 2)},
        cc["ours_seconds"] < cc["devinterp_seconds"], "faster (devinterp's time / ours > 1)", kind="extension",
        why="" if cc["ours_seconds"] < cc["devinterp_seconds"] else
        f"ours is not faster (devinterp's time / ours = {ratio:.2f})")


def grouped_speedup(m: dict) -> Claim | None:
    t = m.get("timing")
    if not t:
        return None
    holds = t["speedup"] >= MIN_GROUPED_SPEEDUP
    return Claim(
        "grouped_speedup", "Training all M as one grouped model is much faster than one after another",
        "the book's implementation (the paper trains one model per M); a GPU target",
        {"speed-up": round(t["speedup"], 2), "device": t["device"], "groups": t["groups"]}, holds,
        f">= {MIN_GROUPED_SPEEDUP:g}× (a GPU target: a 2-core CPU has little to parallelise)", kind="extension",
        why="" if holds else f"{t['speedup']:.2f}× on the {t['device']} (needs {MIN_GROUPED_SPEEDUP:g}×, a GPU target)")


def curriculum_matches_fixed_M(m: dict) -> Claim | None:
    if not m.get("curriculum"):
        return None
    sw, cu = _Sweep(m), _Sweep(m, "curriculum")
    comp = {}
    for lab in cu.Ms:
        comp[lab] = {"final OOD, curriculum": [round(cu.sw["ood"][-1][g], 3) for g in cu.groups[lab]],
                     "final OOD, fixed M": [round(sw.sw["ood"][-1][g], 3) for g in sw.groups[lab]],
                     "ridge phase (curriculum / fixed), first seed": [cu.summary[cu.first(lab)]["ridge_phase"],
                                                                      sw.summary[sw.first(lab)]["ridge_phase"]]}
    high = [lab for lab in cu.Ms if lab == "∞" or int(lab) >= CURRICULUM_HIGH_M]
    worse = [lab for lab in high if any(a > CURRICULUM_TOLERANCE * b for a, b in
                                        zip(comp[lab]["final OOD, curriculum"], comp[lab]["final OOD, fixed M"]))]
    return Claim(
        "curriculum_matches_fixed_M", f"Raising task diversity in stages ends, for high M, within "
        f"{CURRICULUM_TOLERANCE - 1:.0%} of training at the final M from the start (whether either reaches ridge is "
        "the sweep's question)", "the book's "
        "experiment: raise diversity in stages (the paper trains at a fixed M)",
        {**comp, "ridge OOD loss": round(sw.sw["ood_ridge_loss"], 3)},
        bool(high) and not worse,
        f"final OOD loss within {CURRICULUM_TOLERANCE - 1:.0%} of (or below) fixed-M training, for every curriculum "
        f"M >= {CURRICULUM_HIGH_M} and seed", kind="extension",
        why=_why((f"no curriculum M >= {CURRICULUM_HIGH_M}", not high),
                 (f"more than {CURRICULUM_TOLERANCE - 1:.0%} worse than fixed M at M {worse}", bool(worse))))


CLAIMS = (bayes_each_optimal, dmmse_tends_to_ridge, transient_ridge, low_M_straight_to_dmmse, task_diversity_threshold,
          infinite_M_learns_ridge, t_crit_grows, pca_low_M_direct, pca_transient_bends, pca_pc2_separates,
          llc_high_M_converges, llc_low_M_rises_and_crosses, llc_plateau, llc_loss_vs_complexity, llc_calibrated,
          llc_matches_devinterp, llc_faster_than_devinterp, grouped_speedup, curriculum_matches_fixed_M)


def evaluate(m: dict) -> list[Claim]:
    """The chapter's claims, judged from a run's metrics alone (``metrics.json``), in the order of
    :data:`CLAIMS`; claims whose evidence the run lacks are left out."""
    return [c for c in (f(m) for f in CLAIMS) if c is not None]
