"""Chapter 1's claims: the pass marks (named constants, here only) and one pure function per claim.

Each function takes the numbers it judges — lists per seed, accuracies by depth, head usage —
and returns a :class:`~helpers.Claim` with its ``kind`` (``"paper"``: a result the paper states;
``"extension"``: the book's own experiment, its ``paper`` field saying what it relates to) and
its ``criterion`` in words. :func:`evaluate` composes them from a full run's ``metrics.json``
alone, so ``python -m helpers.tree_cot --claims-only`` re-judges a stored run without training.
The notebooks judge their live runs with the same functions.

Paper: Yang, Huang, Liang, Chi, "Multi-head Transformers Provably Learn Symbolic Multi-step
Reasoning via Gradient Descent" (NeurIPS 2025). Secondary descriptions of the paper report loss
curves and parameter evolution, and no accuracy tables: the accuracy marks below are ours.

Used in: ``python -m helpers.tree_cot`` and every notebook of book/tree_cot/.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..claims import Claim

# -------------------------------------------------------------------------------- pass marks

MIN_EXACT = 0.99             # exact-path accuracy on unseen trees that counts as "solves the task"
MIN_H_RATIO = 10.0           # H's mean diagonal over its largest |off-diagonal| entry: an order of magnitude
MIN_LOOKUP = 0.5             # standard model: attention on the lookup token of the head that serves a stage
MIN_SWITCH = 0.99            # stage-switch accuracy (free generation: forward exactly at the root) on unseen trees
MAX_HEAD_DIFFERENCE = 1e-6   # max |W_0 − W_1| below which the two heads count as identical
PHASE_SOLVED_ACCURACY = 0.99  # teacher-forced accuracy at which a stage counts as learned
PARK_MIN_BOS = 0.5           # standard model: attention on BOS at which a head counts as parked (page 3's check)
MIN_ROLE_GAP = 0.5           # division of labour: the traversal head traverses, and the stage-control head
                             # controls, at least this much more than the other (roles in [0, 1])
LONG_TAIL = 0.25             # the longer symmetry-broken runs keep the split (>= MIN_ROLE_GAP) over this last
                             # fraction of their steps: a split that holds, not one passed through
MIN_PHASE_GAP = 0.2          # the first and the last part of the forward task are learned at least this
                             # fraction of the last one's learning time apart (parts: climbing, the switch,
                             # descending): a gap in the run's own time, whatever its length …
MAX_LAST_PROGRESS = 0.5      # … and when the first is solved, the last has come at most this fraction of its way
                             # (from its start to PHASE_SOLVED_ACCURACY): one after the other, not together
MAX_DIRECT_RATIO = 0.5       # at the deepest depth, direct accuracy is at most this × the CoT accuracy
MIN_DIRECT_DROP = 0.3        # direct accuracy falls by at least this from the shallowest to the deepest depth
MIN_ROBUST = 0.95            # exact-path accuracy at every value of every robustness axis
FS_MIN_COT = 0.95            # filter → sort with the intermediate stage
FS_MAX_DIRECT_RATIO = 0.5    # filter → sort direct, at most this × the CoT accuracy

# What page 4 asserts at reader size (default mode: 800 Adam steps instead of the full run's
# 2000; CoT was at 0.92–0.95 at step 800 in the full runs and page tests): a demonstration, not
# the claim. The colour-carrying control, trained there for FS_DEMO_CONTROL_FRACTION of those steps (it
# needs no more: 0.96 after 200 steps in the full run), must reach the same mark.
FS_DEMO_MIN_COT = 0.9
FS_DEMO_CONTROL_FRACTION = 0.3

ROBUST_MODELS = ("standard_cot", "theory_backward", "theory_forward")
ROBUST_AXES = ("depth", "branching", "size", "distractors")   # :func:`~helpers.tree_cot.data.robustness_sets`

PAPER = "Yang et al. 2025"
ABSTRACT_GENERALISES = (f"{PAPER}, abstract: 'trained one-layer transformers can provably solve both tasks with "
                        "generalization guarantees to unseen trees' (a theorem; the accuracy marks "
                        "here are ours)")
ABSTRACT_HEADS = (f"{PAPER}, abstract: 'our multi-phase training dynamics for forward reasoning elucidate how "
                  "different attention heads learn to specialize and coordinate autonomously to solve the two "
                  "subtasks in a single autoregressive path'")
ABSTRACT_SHALLOW = (f"relates to {PAPER}, abstract: 'when tasks are structured to take intermediate chain-of-thought "
                    "steps, even shallow multi-head transformers can effectively solve problems that would otherwise "
                    "require deeper architectures' (the paper trains only its simplified model)")


# -------------------------------------------------------------------------------- helpers

def _int_keys(d: Mapping) -> dict[int, Any]:
    """``{depth: value}`` with int keys (metrics.json stores them as strings)."""
    return {int(k): v for k, v in d.items()}


def _floats(values: Sequence, name: str) -> list[float]:
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) == 0:
        raise ValueError(f"{name} must be a non-empty list (one value per seed); got {values!r}")
    return [float(v) for v in values]


# -------------------------------------------------------------------------------- the theory models

def theory_backward_generalises(exact: float, n_test: int) -> Claim:
    """Exact-path accuracy of the zero-initialised one-head theory model on ``n_test`` unseen random trees."""
    return Claim(
        "theory_backward_generalises",
        "A one-layer transformer trained by gradient descent provably solves the backward reasoning task (output "
        "the path from a goal node to the root) with generalisation to unseen trees — here our reconstruction of "
        "the paper's one-head model (key–query matrix only, squared loss, zero initialisation) trained on perfect "
        "binary trees and tested on random trees", ABSTRACT_GENERALISES,
        {"exact-path accuracy": float(exact), "test trees": n_test},
        float(exact) >= MIN_EXACT, f"exact-path accuracy >= {MIN_EXACT:.0%} (one run: from zero initialisation, "
        "other seeds change only the batches)")


def theory_backward_H_diagonal(h_final: Mapping[str, float]) -> Claim:
    """``h_final``: :func:`~helpers.tree_cot.analysis.h_summary` of the trained one-head model (which
    starts from ``H = 0``, so a positive diagonal has grown)."""
    diag, off = float(h_final["diag"]), float(h_final["offdiag_max"])
    ratio = diag / off if off else (float("inf") if diag > 0 else 0.0)
    return Claim(
        "theory_backward_H_diagonal",
        "Training from zero grows the diagonal of the key–query block H (a node attends to the edge whose child is "
        "itself) while its off-diagonal entries stay small",
        f"{PAPER}, the training dynamics of the backward task as secondary descriptions give them (H_ii grows, "
        "H_ij stays small)",
        {"final mean diagonal": h_final["diag"], "final max |off-diagonal|": h_final["offdiag_max"], "ratio": ratio},
        diag > 0 and ratio >= MIN_H_RATIO,
        f"mean diagonal > 0 (grown from zero) and >= {MIN_H_RATIO:g} × the largest |off-diagonal| entry",
        why="" if diag > 0 and ratio >= MIN_H_RATIO else "the diagonal has not grown" if diag <= 0
        else f"the diagonal is only {ratio:.1f} × the largest |off-diagonal|")


def theory_forward_generalises(exact: float, switch: float, n_test: int) -> Claim:
    """Exact-path and stage-switch accuracy of the zero-initialised two-head model (free generation)."""
    return Claim(
        "theory_forward_generalises",
        "A one-layer transformer trained by gradient descent provably solves the forward reasoning task — first "
        "the goal-to-root path, then its reverse, the root-to-goal path, in a single autoregressive pass — with "
        "generalisation to unseen trees. Here our reconstruction of the paper's two-head model, from zero "
        "initialisation, which predicts the stage of every next token itself: the decoder appends only what the "
        "model predicted",
        ABSTRACT_GENERALISES,
        {"exact-path accuracy": float(exact), "stage-switch accuracy": float(switch), "test trees": n_test},
        float(exact) >= MIN_EXACT and float(switch) >= MIN_SWITCH,
        f"exact-path accuracy >= {MIN_EXACT:.0%} and the switch to the forward stage exactly at the root in "
        f">= {MIN_SWITCH:.0%} of unseen trees")


def zero_init_heads_identical(max_difference: float, exact: float) -> Claim:
    """``max_difference``: max |W_0 − W_1| of the zero-initialised forward model after training."""
    return Claim(
        "zero_init_heads_identical",
        "From the paper's zero initialisation, two heads with the same readout receive identical gradients and "
        "stay identical: no division of labour can emerge, and the model solves the task (or not) with two copies "
        "of one head", f"our test of the setting of {PAPER} (zero initialisation) with readouts shared by the heads",
        {"max |W_0 − W_1| after training": float(max_difference), "exact-path accuracy": float(exact)},
        float(max_difference) <= MAX_HEAD_DIFFERENCE,
        f"max |W_0 − W_1| <= {MAX_HEAD_DIFFERENCE:g} at the end of training", kind="extension")


def _root_lead(switch_root: Sequence[float], traverse_head: int, control_head: int) -> float:
    """How much more attention the stage-control head puts on the ROOT marker at the switch than
    the traversal head (``switch_root``: per head)."""
    return float(switch_root[control_head]) - float(switch_root[traverse_head])


def theory_forward_heads_specialise(assignments: Sequence[Mapping[str, Any]], exact: Sequence[float],
                                    init_std: float) -> Claim:
    """``assignments``: per symmetry-broken seed, :func:`~helpers.tree_cot.analysis.role_assignment` of
    the final roles, with ``"seed"`` and ``"switch_root"`` (each head's attention on the ROOT marker
    at the switch, :func:`~helpers.tree_cot.analysis.head_usage`); ``exact``: those models'
    exact-path accuracy."""
    if not assignments:
        raise ValueError("assignments must hold one role assignment per seed")
    exact = _floats(exact, "exact")
    if len(exact) != len(assignments):
        raise ValueError(f"exact must hold one accuracy per seed of assignments ({len(assignments)}); "
                         f"got {len(exact)}")
    strength = [float(a["strength"]) for a in assignments]
    lead = [_root_lead(a["switch_root"], a["traverse_head"], a["control_head"]) for a in assignments]
    misses = []
    for a, s, r in zip(assignments, strength, lead):
        why = []
        if s < MIN_ROLE_GAP:
            why.append(f"division strength {s:.3f} < {MIN_ROLE_GAP:g}")
        if r <= 0:
            root = a["switch_root"]
            why.append(f"at the switch the traversal head finds the ROOT marker, not the stage-control head "
                       f"({root[a['traverse_head']]:.2f} against {root[a['control_head']]:.2f})")
        if why:
            misses.append(f"seed {a.get('seed')}: " + ", ".join(why))
    seeds = {a.get("seed") for a in assignments}
    if len(seeds) < 2:
        misses.insert(0, f"only {len(seeds)} distinct seed")
    if min(exact) < MIN_EXACT:
        misses.append(f"exact-path accuracy {min(exact):.0%} < {MIN_EXACT:.0%}")
    why = "; ".join(misses)
    return Claim(
        "theory_forward_heads_specialise",
        "In forward reasoning the attention heads learn to specialise and coordinate autonomously: one head "
        "traverses the tree (climbing, then descending), the other controls the stage (detects the root and "
        "switches to the forward stage) — the division of the paper's construction as secondary descriptions "
        "give it; the abstract says only 'the two subtasks'. Tested where training can choose: both heads read "
        f"the same way, and a small random initialisation (std {init_std:g}) breaks their symmetry",
        ABSTRACT_HEADS,
        {"per seed": [{"seed": a.get("seed"), "traversal head": a["traverse_head"],
                       "stage-control head": a["control_head"], "strength": round(a["strength"], 3),
                       "traverse [head 0, head 1]": np.round(a["traverse"], 3).tolist(),
                       "control [head 0, head 1]": np.round(a["control"], 3).tolist(),
                       "ROOT marker at the switch [head 0, head 1]": np.round(a["switch_root"], 3).tolist()}
                      for a in assignments],
         "exact-path accuracy per seed": exact, "seeds": len(assignments)},
        len(seeds) >= 2 and min(strength) >= MIN_ROLE_GAP and min(lead) > 0 and min(exact) >= MIN_EXACT,
        f"in every seed (>= 2 that differ), the traversal head supplies >= {MIN_ROLE_GAP:g} more of the node "
        f"prediction and the stage-control head >= {MIN_ROLE_GAP:g} more of the stage signal than the other head "
        f"(division strength >= {MIN_ROLE_GAP:g}); at the switch the stage-control head puts more attention on "
        f"the ROOT marker than the traversal head (it detects the root); and the model solves >= "
        f"{MIN_EXACT:.0%} of unseen trees", why=why)


def heads_split_with_longer_training(runs: Sequence[Mapping[str, Any]], short_steps: int, long_steps: int) -> Claim:
    """``runs``: per symmetry-broken seed trained ``long_steps`` (the seeds of the main runs, which
    stop at ``short_steps``), :func:`~helpers.tree_cot.analysis.division_curve` of its log (``step``,
    ``strength``, ``traverse_head``, ``control_head``, ``switch_root`` per checkpoint) with ``"seed"``
    and the final exact-path accuracy ``"exact"``. A seed keeps the split when, at every checkpoint of
    the last ``LONG_TAIL`` of training, its strength is at least ``MIN_ROLE_GAP``, the same head
    traverses and the same head controls, and the stage-control head puts more attention on the ROOT
    marker at the switch than the traversal head."""
    if not runs:
        raise ValueError("runs must hold one record per seed")
    if not 0 < short_steps < long_steps:
        raise ValueError(f"short_steps and long_steps must satisfy 0 < short_steps < long_steps; "
                         f"got {short_steps} and {long_steps}")
    tail_from = (1 - LONG_TAIL) * long_steps
    tail_name = f"the last {LONG_TAIL:.0%}"
    per_seed, misses = [], []
    for r in runs:
        step = np.asarray(r["step"], dtype=float)
        strength = np.asarray(r["strength"], dtype=float)
        heads = list(zip(r["traverse_head"], r["control_head"]))
        if (not len(step) or not step.shape == strength.shape == (len(heads),) == (len(r["switch_root"]),)
                or step[-1] != long_steps):
            raise ValueError(f"seed {r.get('seed')}: step, strength, the heads and switch_root must have one entry "
                             f"per checkpoint, the last at long_steps = {long_steps}; got {len(step)} steps, "
                             f"{strength.size} strengths, {len(heads)} head pairs and {len(r['switch_root'])} "
                             "switch_root entries")
        lead = np.array([_root_lead(u, t, c) for u, (t, c) in zip(r["switch_root"], heads)])
        i = int(np.nonzero(step <= short_steps)[0][-1])   # the last checkpoint of the main runs' length
        at, short = int(step[i]), float(strength[i])
        peak = int(np.argmax(strength))
        tail = step >= tail_from
        low = float(strength[tail].min())
        swapped = len({h for h, t in zip(heads, tail) if t}) > 1
        least_lead = float(lead[tail].min())
        per_seed.append({"seed": r.get("seed"), f"at step {at}": round(short, 3),
                         "peak": round(float(strength[peak]), 3), "peak step": int(step[peak]),
                         f"lowest in {tail_name}": round(low, 3), "end": round(float(strength[-1]), 3),
                         f"heads change roles in {tail_name}": swapped,
                         f"least ROOT-marker lead of the stage-control head in {tail_name}": round(least_lead, 3)})
        reasons = []
        if low < MIN_ROLE_GAP:
            reasons.append(f"{low:.2f} at its lowest in {tail_name} (from {short:.2f} at step {at}; peak "
                           f"{strength[peak]:.2f} at step {int(step[peak])}, end {strength[-1]:.2f})")
        if swapped:
            reasons.append(f"the heads change roles in {tail_name}")
        if least_lead <= 0:
            reasons.append(f"at the switch the traversal head finds the ROOT marker, not the stage-control head "
                           f"(the stage-control head's lead at its lowest in {tail_name}: {least_lead:+.2f})")
        if reasons:
            misses.append(f"seed {r.get('seed')}: " + "; ".join(reasons))
    exact = [float(r["exact"]) for r in runs]
    seeds = {r.get("seed") for r in runs}
    if len(seeds) < 2:
        misses.insert(0, f"only {len(seeds)} distinct seed")
    if min(exact) < MIN_EXACT:
        misses.append(f"exact-path accuracy {min(exact):.0%} < {MIN_EXACT:.0%}")
    return Claim(
        "heads_split_with_longer_training",
        f"Trained {long_steps / short_steps:g} times as long ({long_steps} steps, not {short_steps}), every "
        "symmetry-broken seed reaches the division mark and keeps it: what the main runs left partial was a "
        "matter of training time",
        f"not a claim of {PAPER}: our test of whether theory_forward_heads_specialise failed because our runs "
        "were too short",
        {"per seed": per_seed, "exact-path accuracy per seed": exact, "steps": long_steps},
        not misses, f"in every seed (>= 2 that differ), at every checkpoint of {tail_name} of the {long_steps} "
        f"steps: division strength >= {MIN_ROLE_GAP:g}, with the same traversal and stage-control heads, and the "
        f"stage-control head puts more attention on the ROOT marker at the switch than the traversal head; and "
        f"the model solves >= {MIN_EXACT:.0%} of unseen trees", kind="extension", why="; ".join(misses))


PHASE_PARTS = ("climb", "switch", "descend")


def theory_forward_phases(phases: Sequence[Mapping[str, Any]], steps: int) -> Claim:
    """``phases``: per run (the zero-initialised run first, then the symmetry-broken seeds),
    :func:`~helpers.tree_cot.analysis.phases` of the forward run (with ``"run"`` and
    ``"last_progress"``); ``steps``: its length."""
    if not phases:
        raise ValueError("phases must hold one record per run")
    if not steps > 0:
        raise ValueError(f"steps must be > 0; got {steps}")

    def gap(p):   # (last − first) / last: the run's length does not enter (the times are checkpoint steps)
        at = [p[k] for k in PHASE_PARTS]
        if None in at:
            return None
        if max(at) > steps:
            raise ValueError(f"{p.get('run')}: a part is solved at step {max(at)}, after the run's {steps} steps")
        return (max(at) - min(at)) / max(at) if max(at) else 0.0

    gaps = [gap(p) for p in phases]
    progress = [p.get("last_progress") for p in phases]
    ok = [g is not None and g >= MIN_PHASE_GAP and q is not None and q <= MAX_LAST_PROGRESS
          for g, q in zip(gaps, progress)]
    return Claim(
        "theory_forward_phases",
        "Training for forward reasoning is multi-phase: the parts of the task (climbing, the stage switch, "
        "descending) are learned one after another, not together. The order is what we measure: the abstract gives "
        "none, and the one secondary description we have (the backward path first, then the reversal) we could not "
        "check", ABSTRACT_HEADS,
        {"per run": [{"run": p.get("run"), **{k: p[k] for k in (*PHASE_PARTS, "division")}, "order": p["order"]}
                     for p in phases], "gap / step the last part is solved": gaps,
         "last part's progress when the first is solved": [None if q is None else round(q, 3) for q in progress]},
        all(ok),
        f"in every run, all three parts solved (teacher-forced accuracy >= {PHASE_SOLVED_ACCURACY:.0%}), the first "
        f"and the last at least {MIN_PHASE_GAP:.0%} of the last one's learning time apart (gap / the step at which "
        f"the last is solved), and when the first is solved the last has "
        f"come at most {MAX_LAST_PROGRESS:.0%} of its way there (staggered, though every part starts improving at "
        "once: the phases overlap)",
        why="; ".join(f"{p.get('run')}: " + ("a part is never solved" if g is None else
                                             f"gap {g:.0%} of the last part's learning time" if g < MIN_PHASE_GAP else
                                             f"the last part is {q:.0%} of its way when the first is solved")
                      for p, g, q, good in zip(phases, gaps, progress, ok) if not good))


# -------------------------------------------------------------------------------- the standard transformer

def standard_cot_solves_forward(exact: Sequence[float], by_depth: Sequence[Mapping], n_test: int) -> Claim:
    """The one-layer standard transformer with CoT, per seed: exact-path accuracy and ``{depth: accuracy}``."""
    exact = _floats(exact, "exact")
    return Claim(
        "standard_cot_solves_forward",
        "A standard one-layer multi-head transformer (learned embeddings, cross-entropy, Adam) trained with the "
        "chain-of-thought format — predicting its own stage switch — solves the forward task on unseen trees, for "
        "every seed", ABSTRACT_SHALLOW,
        {"exact-path accuracy per seed": exact, "spread (max − min)": max(exact) - min(exact),
         "by depth, per seed": [_int_keys(d) for d in by_depth], "test trees": n_test, "seeds": len(exact)},
        min(exact) >= MIN_EXACT, f"exact-path accuracy >= {MIN_EXACT:.0%} for every seed", kind="extension")


def standard_direct_fails_with_depth(direct_by_depth: Sequence[Mapping], cot_by_depth: Sequence[Mapping],
                                     baseline_by_depth: Mapping | None = None) -> Claim:
    """The one-layer model trained without CoT against the CoT model, ``{depth: accuracy}`` per seed
    (``baseline_by_depth``: the chance level of descending by a random child, shown for reference)."""
    if not direct_by_depth or len(direct_by_depth) != len(cot_by_depth):
        raise ValueError("direct_by_depth and cot_by_depth must hold one {depth: accuracy} per seed each")
    d = [_int_keys(x) for x in direct_by_depth]
    c = [_int_keys(x) for x in cot_by_depth]
    deep = max(c[0])
    for x in d:
        if deep not in x:
            raise ValueError(f"direct_by_depth lacks the deepest CoT depth {deep}; it has {sorted(x)}")
    ok = [di[deep] <= MAX_DIRECT_RATIO * ci[deep] and di[min(di)] - di[deep] >= MIN_DIRECT_DROP for di, ci in zip(d, c)]
    measured = {"direct at depth 1 / deepest, per seed": [[round(di[min(di)], 3), round(di[deep], 3)] for di in d],
                "CoT at the deepest depth, per seed": [round(ci[deep], 3) for ci in c],
                "direct by depth, per seed": d}
    if baseline_by_depth is not None:
        base = _int_keys(baseline_by_depth)
        measured["random-child descent (chance) by depth"] = base
        measured["direct / chance at the deepest depth, per seed"] = [round(di[deep] / base[deep], 2) for di in d]
    return Claim(
        "standard_direct_fails_with_depth",
        "The same model trained to emit root → goal directly (no chain of thought) degrades with depth, to at "
        "most half the chain-of-thought model's accuracy at the deepest test depth, for every seed",
        ABSTRACT_SHALLOW + "; Bachmann & Nagarajan 2024 and Brinkmann et al. 2024 on direct path-finding",
        measured, all(ok),
        f"for every seed, at the deepest test depth ({deep}) direct accuracy is at most {MAX_DIRECT_RATIO:g} × the "
        f"CoT accuracy, and it falls by >= {MIN_DIRECT_DROP:g} from depth 1", kind="extension")


def lookup_attention(usage: Mapping) -> np.ndarray:
    """(heads, 2): attention on the lookup token [backward, forward] from a head-usage record."""
    return np.array([usage["backward"]["lookup"], usage["forward"]["lookup"]], dtype=float).T


def standard_heads_do_lookups(usages: Sequence[Mapping]) -> Claim:
    """``usages``: per seed, :func:`~helpers.tree_cot.analysis.head_usage` of the trained CoT model."""
    if not usages:
        raise ValueError("usages must hold one head_usage per seed; got none")
    specs = [lookup_attention(u) for u in usages]
    return Claim(
        "standard_heads_do_lookups",
        "In the trained standard model, each stage has a head that attends to the token the one-step lookup needs "
        "(the edge when climbing, the chain-of-thought token when descending), for every seed",
        f"relates to {PAPER}: the constructions' heads implement these lookups",
        {"attention on the lookup token [head][backward, forward], per seed": [s.round(3).tolist() for s in specs]},
        all(bool(s[:, 0].max() >= MIN_LOOKUP and s[:, 1].max() >= MIN_LOOKUP) for s in specs),
        f"some head >= {MIN_LOOKUP} in each stage, every seed", kind="extension")


def standard_direct_fails_on_deep_spines(direct_depth: Sequence[Mapping], cot_depth: Sequence[Mapping]) -> Claim:
    """The robustness sweep's depth axis (goal at depth 1–10), per seed: ``{depth: accuracy}`` of the
    direct and the CoT one-layer models."""
    if not direct_depth or len(direct_depth) != len(cot_depth):
        raise ValueError("direct_depth and cot_depth must hold one {depth: accuracy} per seed each")
    d = [_int_keys(x) for x in direct_depth]
    c = [_int_keys(x) for x in cot_depth]
    deep = max(c[0])
    return Claim(
        "standard_direct_fails_on_deep_spines",
        "Beyond the training depths (goals at depth up to 10), the CoT model keeps solving the task while the "
        "direct model fails, for every seed", ABSTRACT_SHALLOW,
        {f"direct / CoT at depth {deep}, per seed": [[round(di[deep], 3), round(ci[deep], 3)] for di, ci in zip(d, c)]},
        all(di[deep] <= MAX_DIRECT_RATIO * ci[deep] and ci[deep] >= MIN_ROBUST for di, ci in zip(d, c)),
        f"for every seed, at depth {deep}: CoT >= {MIN_ROBUST:.0%} and direct at most {MAX_DIRECT_RATIO:g} × CoT",
        kind="extension")


# -------------------------------------------------------------------------------- extensions

def robust(name: str, results: Mapping[Any, Mapping[str, Mapping]], n: int) -> Claim:
    """``results``: per seed, ``{axis: {value: exact-path accuracy}}``
    (:func:`~helpers.tree_cot.analysis.robustness`)."""
    if not results or any(set(r) != set(ROBUST_AXES) or not all(r.values()) for r in results.values()):
        raise ValueError(f"results for {name!r} must hold at least one seed, each with the axes {ROBUST_AXES} "
                         f"and at least one value per axis; got {[sorted(r) for r in results.values()]}")
    worst: dict[str, float] = {}
    tested: dict[str, set] = {}
    for r in results.values():
        for axis, vals in r.items():
            worst[axis] = min(worst.get(axis, 1.0), min(vals.values()))
            tested.setdefault(axis, set()).update(int(v) for v in vals)
    span = {axis: f"{min(v)}–{max(v)}" for axis, v in tested.items()}
    return Claim(
        f"robust[{name}]", f"The {name.replace('_', ' ')} model keeps its accuracy on trees of other depths, "
        "branchings and sizes than in training, and with distractor edges"
        + (", for every seed" if len(results) > 1 else ""),
        f"relates to {PAPER}'s generalisation to unseen trees; the book's robustness experiment",
        {"worst exact-path accuracy per axis" + (" (over seeds)" if len(results) > 1 else ""): worst,
         "trees per value": n, "seeds": len(results)},
        min(worst.values()) >= MIN_ROBUST, f">= {MIN_ROBUST:.0%} exact-path accuracy at every depth "
        f"({span['depth']}), branching ({span['branching']}), size ({span['size']} nodes) and number of distractor "
        f"edges ({span['distractors']}) tested" + (", every seed" if len(results) > 1 else ""),
        kind="extension")


def filter_sort_holds(cot_exact: float, direct_exact: float, min_cot: float = FS_MIN_COT,
                      tagged_exact: float | None = None) -> bool:
    """CoT >= ``min_cot`` and the direct model (and the tagged control, where run) at most
    FS_MAX_DIRECT_RATIO × CoT."""
    others = [direct_exact] + ([] if tagged_exact is None else [tagged_exact])
    return bool(cot_exact >= min_cot and all(x <= FS_MAX_DIRECT_RATIO * cot_exact for x in others))


def filter_sort_demo_holds(cot_exact: float, direct_exact: float, tagged_exact: float | None = None) -> bool:
    """The demonstration page 4 asserts at reader size: :func:`filter_sort_holds` with FS_DEMO_MIN_COT."""
    return filter_sort_holds(cot_exact, direct_exact, FS_DEMO_MIN_COT, tagged_exact)


def filter_sort_cot(cot_exact: float, direct_exact: float, n_test: int, tagged_exact: float | None = None) -> Claim:
    """Final exact accuracy of the filter → sort models with the intermediate stage (``cot``), without
    (``direct``), and without but with the query colour in every answer token (``tagged``, the
    control for the one piece of information the CoT format carries; None for runs without it)."""
    measured = {"CoT exact accuracy": float(cot_exact), "direct exact accuracy": float(direct_exact)}
    if tagged_exact is not None:
        measured["direct, colour in every token (control)"] = float(tagged_exact)
    measured["test instances"] = n_test
    holds = filter_sort_holds(cot_exact, direct_exact, tagged_exact=tagged_exact)
    why = ""
    if not holds:
        if cot_exact < FS_MIN_COT:
            why = f"the CoT model reaches only {cot_exact:.1%} (needs {FS_MIN_COT:.0%})"
        elif direct_exact > FS_MAX_DIRECT_RATIO * cot_exact:
            why = f"the direct model reaches {direct_exact:.1%}, more than {FS_MAX_DIRECT_RATIO:g} × CoT"
        else:
            why = (f"a direct model whose tokens carry the query colour, as the CoT's filter tokens do, reaches "
                   f"{tagged_exact:.1%}: what the CoT format adds is the carried colour, not the intermediate stage")
    return Claim(
        "filter_sort_cot", "Another two-stage operation, filter → sort: with the intermediate stage written out a "
        "one-layer model learns it; without, it does not — even when each output token carries the query colour, "
        "as the intermediate stage's tokens do",
        f"relates to {PAPER}'s limitation (other reasoning problems are not addressed): the chain-of-thought "
        "decomposition on a second two-stage task",
        measured, holds,
        f"CoT >= {FS_MIN_COT:.0%}, and the direct model and its colour-carrying control each at most "
        f"{FS_MAX_DIRECT_RATIO:g} × CoT", kind="extension", why=why)


# -------------------------------------------------------------------------------- all of them

def _direct_one_layer(direct: Mapping) -> Mapping:
    for key in (1, "1"):
        if key in direct:
            return direct[key]
    raise KeyError(f"metrics['standard']['direct'] lacks the one-layer model; it has layers {list(direct)}")


def evaluate(metrics: Mapping[str, Any]) -> list[Claim]:
    """The chapter's claims from a full run's metrics (as returned by ``full_run`` or read from metrics.json)."""
    from .analysis import division_curve, last_part_progress, role_assignment  # analysis imports our marks

    def phase_record(name: str, run: dict) -> dict:   # progress from the stored log, for runs that predate it
        return {"run": name, **run["phases"], "last_progress": last_part_progress(run["log"], run["phases"])}

    sizes = metrics["sizes"]
    theory, std = metrics["theory"], metrics["standard"]
    back, fwd = theory["backward"]["runs"][0], theory["forward"]["runs"][0]
    broken = theory["forward_broken"]["runs"]
    assignments = [{"seed": r["seed"], "switch_root": r["log"]["usage"][-1]["switch"]["root"],
                    **role_assignment(r["log"]["roles"][-1])} for r in broken]
    cot, direct = std["cot"]["runs"], _direct_one_layer(std["direct"])["runs"]
    rob = metrics["robustness"]
    claims = [
        theory_backward_generalises(back["final"]["exact"], sizes["test"]),
        theory_backward_H_diagonal(back["log"]["h"][-1]),
        theory_forward_generalises(fwd["final"]["exact"], fwd["final"]["switch"], sizes["test"]),
        zero_init_heads_identical(fwd["log"]["head_difference"][-1], fwd["final"]["exact"]),
        theory_forward_heads_specialise(assignments, [r["final"]["exact"] for r in broken],
                                        theory["forward_broken"]["init_std"]),
    ]
    if "forward_broken_long" in theory:   # runs from before the longer training lack it
        long = theory["forward_broken_long"]
        claims.append(heads_split_with_longer_training(
            [{"seed": r["seed"], "exact": r["final"]["exact"], **division_curve(r["log"])} for r in long["runs"]],
            sizes["theory_steps"]["forward"], long["steps"]))
    claims += [
        theory_forward_phases([phase_record("zero init", fwd)] + [phase_record(f"seed {r['seed']}", r) for r in broken],
                              sizes["theory_steps"]["forward"]),
        standard_cot_solves_forward([r["final"]["exact"] for r in cot], [r["final"]["by_depth"] for r in cot],
                                    sizes["test"]),
        standard_direct_fails_with_depth([r["final"]["by_depth"] for r in direct],
                                         [r["final"]["by_depth"] for r in cot], std["baseline_random_child"]),
        standard_heads_do_lookups([r["log"]["usage"][-1] for r in cot]),
        standard_direct_fails_on_deep_spines([r["depth"] for r in rob["standard_direct"].values()],
                                             [r["depth"] for r in rob["standard_cot"].values()]),
    ]
    claims += [robust(name, rob[name], sizes["robust_n"]) for name in ROBUST_MODELS]
    fs = metrics["filter_sort"]
    claims.append(filter_sort_cot(fs["cot"]["exact"][-1], fs["direct"]["exact"][-1], sizes["fs_test"],
                                  fs["tagged"]["exact"][-1] if "tagged" in fs else None))
    return claims
