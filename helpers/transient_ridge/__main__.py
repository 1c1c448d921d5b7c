"""Chapter 3's full run: ``python -m helpers.transient_ridge --mode full``.

Trains the sweep over task diversity M as one grouped model, the same with a curriculum over M,
estimates the LLC (over M, and over training for one intermediate M, with a cross-check against
``devinterp`` when it is installed), fits the joint trajectory PCA, measures the chapter's claims
and writes ``results/transient_ridge/`` (full mode) or ``.scratch/<mode>/transient_ridge/``:

- ``metrics.json``: sizes, per-checkpoint curves of every run, summaries, LLC estimates, timings;
- ``arrays.npz``: probe features of every checkpoint (float16), the predictors' features, LLC loss traces;
- ``final.pt``: the final weights of a few groups (``keep_final``);
- ``run.json`` and ``claims.json``.

Uses the GPU when there is one (``helpers.device.pick_device``).
"""
from __future__ import annotations

import math
import sys
import time

import numpy as np

from ..cli import run_main
from ..device import device_name, pick_device, seed_everything
from ..modes import get_mode, set_mode
from ..results import Claim, ResultStore, output_root
from . import experiments as ex
from .llc import estimate_llc, estimate_llc_devinterp, settled
from .model import GroupedTransformer
from .sweep import group_losses, stack_models, time_grouped_vs_separate, train_sweep

CHAPTER = "transient_ridge"
SCHEMA = 1


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/transient_ridge/``)."""
    return ResultStore(CHAPTER, module="helpers.transient_ridge", schema=SCHEMA, root=root)


def _curves(log: dict) -> dict:
    keep = ("step", "ood", "id", "d_ridge", "d_dmmse", "groups", "ood_ridge_loss", "ood_dmmse_loss",
            "id_ridge_loss", "id_dmmse_loss", "d_bayes", "d_zero_ridge", "seconds")
    return {k: log[k] for k in keep}


def _llc_record(est, groups) -> dict:
    return {"llc": est.llc.tolist(), "llc_std": est.llc_std.tolist(), "init_loss": est.init_loss.tolist(),
            "settled": settled(est), "settings": est.settings, "groups": groups}


def run(mode: str, progress: bool = True) -> ResultStore:
    """Run every experiment at ``mode``'s sizes; write metrics, arrays, final weights, run.json, claims.json."""
    set_mode(mode)
    S = ex.sizes(mode)
    seed_everything(S["seeds"][0])
    device = pick_device()
    out = store(output_root(mode))
    t0 = time.perf_counter()
    metrics: dict = {"sizes": {k: (v.__dict__ if k == "model" else v) for k, v in S.items()}, "seconds": {}}
    arrays: dict[str, np.ndarray] = {}

    # 1. the sweep over M, with snapshots of every group for the LLC over training
    cfg = ex.sweep_config(S)
    ckpts, snaps = ex.checkpoints(S), ex.snapshot_steps(S)
    model, log = train_sweep(cfg, ckpts, device=device, eval_n=S["eval_n"], n_probe=S["n_probe"],
                             snapshot_steps=snaps, progress=progress)
    metrics["sweep"] = _curves(log)
    metrics["sweep"]["summary"] = ex.summaries(log)
    metrics["seconds"]["sweep"] = log["seconds"]
    metrics["parameters"] = model.parameter_count()
    arrays["features"] = log["features"].numpy().astype(np.float16)
    arrays["probe_ridge"] = log["probe_ridge"].numpy()
    arrays["probe_dmmse"] = log["probe_dmmse"].numpy()
    groups = [M for M, _ in cfg.groups]
    final = {ex.label(M): model.select(groups.index(M)).state_dict() for M in S["keep_final"]}

    # 2. joint trajectory PCA (cheap; the notebook refits it from the same features)
    proj = ex.trajectory_pca(log["features"], log["probe_ridge"], log["probe_dmmse"])
    metrics["pca"] = {"explained": proj["pca"].explained.tolist(),
                      "detour": [ex.pca_detour(proj, g) for g in range(len(groups))]}

    # 3. the curriculum over M
    ccfg = ex.curriculum_config(S)
    _, clog = train_sweep(ccfg, ckpts, device=device, eval_n=S["eval_n"], n_probe=S["n_probe"], progress=progress)
    metrics["curriculum"] = _curves(clog)
    metrics["curriculum"]["summary"] = ex.summaries(clog)
    metrics["curriculum"]["stages"] = [[s, ex.label(M)] for s, M in ccfg.curriculum]
    metrics["seconds"]["curriculum"] = clog["seconds"]

    # 4. the LLC: every M at the end of training, then one M over training
    timer = time.perf_counter()
    draw = ex.llc_batches(cfg, S["llc_batch"], device=device)
    est_M = estimate_llc(model, group_losses, draw, **S["llc"])
    metrics["llc_over_M"] = _llc_record(est_M, [ex.label(M) for M in groups])
    arrays["llc_over_M_trace"] = est_M.loss_trace.numpy()
    g_llc = groups.index(S["llc_M"])
    over_t = stack_models([_grouped(cfg, snap).select(g_llc) for _, snap in sorted(log["snapshots"].items())])
    over_t = over_t.to(device)
    one = ex.one_M_batches(S, S["llc_M"], device=device)
    G_t = over_t.groups
    est_t = estimate_llc(over_t, group_losses, lambda i: tuple(x.expand(G_t, *x.shape[1:]) for x in one(i)),
                         **S["llc"])
    metrics["llc_over_training"] = _llc_record(est_t, sorted(log["snapshots"]))
    metrics["llc_over_training"]["M"] = ex.label(S["llc_M"])
    arrays["llc_over_training_trace"] = est_t.loss_trace.numpy()
    metrics["seconds"]["llc"] = time.perf_counter() - timer

    # 5. cross-check against devinterp on the final checkpoint of llc_M (same settings, same init loss)
    single = model.select(g_llc).to(device)
    timer = time.perf_counter()
    ours = estimate_llc(single, lambda m, b: group_losses(m, b)[0], one, **S["llc"])
    ours_s = time.perf_counter() - timer
    cross = {"ours": float(ours.llc[0]), "ours_std": float(ours.llc_std[0]), "ours_seconds": ours_s}
    try:
        batches = [one(i) for i in range(S["llc"]["num_burnin"] + S["llc"]["num_draws"])]
        timer = time.perf_counter()
        ref = estimate_llc_devinterp(single, lambda m, b: group_losses(m, b)[0], batches, **S["llc"],
                                     init_loss=float(ours.init_loss[0]))
        cross.update(devinterp=ref["llc"], devinterp_std=ref["llc_std"], devinterp_seconds=time.perf_counter() - timer)
    except ImportError as e:
        cross["devinterp_error"] = str(e)
    metrics["llc_crosscheck"] = cross

    # 6. grouped against one-by-one training, same device and batches
    metrics["timing"] = time_grouped_vs_separate(cfg, steps=S["timing_steps"], device=device)

    seconds = time.perf_counter() - t0
    metrics["seconds"]["total"] = seconds
    out.save_json("metrics.json", metrics)
    out.save_arrays("arrays.npz", arrays)
    out.save_torch("final.pt", final)
    out.write_run(mode=mode, device=device_name(device), seeds=list(S["seeds"]), seconds=seconds)
    out.write_claims(claims(metrics))
    return out


def load(mode: str | None = None) -> ResultStore:
    """The results a notebook shows: in smoke mode a fresh smoke run (seconds, every code path; its
    numbers mean nothing), otherwise the committed full run (``results/transient_ridge/``)."""
    mode = get_mode() if mode is None else mode
    if mode == "smoke":
        return run("smoke", progress=False)
    out = store()
    out.read_run()   # a clear error naming the command if the results are missing or stale
    return out


def _grouped(cfg, state: dict) -> GroupedTransformer:
    m = GroupedTransformer(cfg.model, len(cfg.groups))
    m.load_state_dict(state)
    return m


def claims(m: dict) -> list[Claim]:
    """The chapter's claims, measured from a run's metrics (the criteria are stated in each claim)."""
    sw = m["sweep"]
    labels = [s["M"] for s in sw["summary"]]
    Ms = [math.inf if x == "∞" else int(x) for x in labels]
    by = dict(zip(labels, sw["summary"]))
    out = []
    finite = [i for i, M in enumerate(Ms) if M != math.inf]
    out.append(Claim(
        "bayes_each_optimal", "Ridge is the Bayes predictor for Gaussian tasks, dMMSE_M for the uniform prior on "
        "the M pool tasks: each has the lower loss on its own prior", "both Bayes-optimal on their priors",
        {"OOD loss ridge": sw["ood_ridge_loss"], "OOD loss dMMSE_M": dict(zip(labels, sw["ood_dmmse_loss"])),
         "ID loss ridge": dict(zip(labels, sw["id_ridge_loss"])), "ID loss dMMSE_M": dict(zip(labels, sw["id_dmmse_loss"]))},
        all(sw["ood_ridge_loss"] < sw["ood_dmmse_loss"][i] and sw["id_dmmse_loss"][i] <= sw["id_ridge_loss"][i]
            for i in finite), "for every finite M: ridge lower OOD, dMMSE_M lower (or equal) in distribution"))
    db = [sw["d_bayes"][i] for i in finite]
    out.append(Claim(
        "dmmse_tends_to_ridge", "dMMSE_M approaches ridge as M grows", "dMMSE_M → ridge as M → ∞",
        {"Δ(dMMSE_M, ridge) by M": dict(zip([labels[i] for i in finite], db))},
        db[-1] < 0.25 * db[0], "Δ at the largest finite M below a quarter of Δ at M = 1"))

    trans = [s for s in sw["summary"] if s["ridge_phase"] and s["crossed"] and s["ood_rise"] >= 0.05]
    out.append(Claim(
        "transient_ridge", "For intermediate M the model first behaves like ridge (OOD loss falls toward ridge's, "
        "Δ to ridge below Δ to dMMSE_M), then moves to dMMSE_M (OOD loss rises, the Δ curves cross)",
        "transient ridge for M = 16 … 128 (partial at 6, 8); OOD rise of the order of the ridge–dMMSE gap",
        {"M with a transient": [s["M"] for s in trans],
         "OOD rise / (dMMSE_M − ridge OOD gap)": {s["M"]: round(s["ood_rise"], 3) for s in sw["summary"]},
         "t_cross": {s["M"]: s["t_cross"] for s in sw["summary"]}},
        len(trans) >= 2, ">= 2 values of M with a ridge phase, a later crossing, and an OOD rise >= 5% of the gap"))
    low = [s for s, M in zip(sw["summary"], Ms) if M <= 2]
    out.append(Claim(
        "low_M_straight_to_dmmse", "At the lowest M the model goes straight to dMMSE_M (no ridge phase)",
        "no transient at low M", {s["M"]: {"ridge phase": s["ridge_phase"]} for s in low},
        bool(low) and not any(s["ridge_phase"] for s in low), "no ridge-like checkpoint for M <= 2 (Δ to ridge below "
        "both Δ to dMMSE_M and half of Δ(0, ridge))"))
    final_dr, final_dd = sw["d_ridge"][-1], sw["d_dmmse"][-1]
    high = [i for i, M in enumerate(Ms) if M >= 64 and M != math.inf]
    out.append(Claim(
        "high_M_ends_ridge_like", "Above a task-diversity threshold the trained model stays ridge-like",
        "ridge for M >= 362 (182, 256 between) at 150k steps",
        {labels[i]: {"final Δ ridge": round(final_dr[i], 4), "final Δ dMMSE_M": round(final_dd[i], 4)} for i in high},
        bool(high) and all(final_dr[i] < final_dd[i] for i in high), "final Δ to ridge < Δ to dMMSE_M for every M >= 64"))
    tc = [(M, by[ex.label(M)]["t_crit"]) for M in Ms if ex.label(M) in [s["M"] for s in trans]]
    out.append(Claim(
        "t_crit_grows", "The pivot away from ridge comes later as M grows", "t_crit(M) increases with M",
        {"t_crit by M (transient M only)": {ex.label(M): t for M, t in tc}},
        len(tc) >= 2 and all(a[1] < b[1] for a, b in zip(tc, tc[1:])), "t_crit strictly increasing over the M with a transient"))
    inf_i = Ms.index(math.inf) if math.inf in Ms else None
    if inf_i is not None:
        out.append(Claim(
            "infinite_M_learns_ridge", "With a fresh task per sequence (M = ∞) the model learns ridge",
            "M = ∞ converges to ridge", {"final Δ ridge / Δ(dMMSE_1, ridge)": final_dr[inf_i] / sw["d_bayes"][0],
                                          "final OOD loss": sw["ood"][-1][inf_i], "ridge OOD loss": sw["ood_ridge_loss"]},
            final_dr[inf_i] / sw["d_bayes"][0] <= 0.05, "final Δ to ridge <= 5% of the Bayes gap Δ(dMMSE_1, ridge)"))

    pca = m["pca"]
    det = {s["M"]: d for s, d in zip(sw["summary"], pca["detour"])}
    bend = [s["M"] for s in trans if det[s["M"]]["closest_index"] < det[s["M"]]["n_checkpoints"] - 1
            and det[s["M"]]["closest_to_ridge"] < 0.5 * det[s["M"]]["final_to_ridge"]
            and det[s["M"]]["final_to_dmmse"] < det[s["M"]]["final_to_ridge"]]
    out.append(Claim(
        "pca_bends_toward_ridge", "In the joint trajectory PCA (PC1–PC2), intermediate-M trajectories bend toward "
        "the ridge point before ending at their dMMSE_M point", f"PC1–PC2 explain {ex.PAPER['pca_pc12_variance']:.1%}",
        {"PC1–PC2 explained variance": round(sum(pca["explained"][:2]), 3), "transient M that bend": bend},
        len(trans) >= 2 and len(bend) == len(trans), "every transient M: closest approach to ridge before the end, "
        "at most half the final distance to ridge, and the end nearer its dMMSE_M point than ridge"))

    lm = m["llc_over_M"]
    llc = dict(zip(lm["groups"], lm["llc"]))
    dm_like = [s["M"] for s, M in zip(sw["summary"], Ms) if M != math.inf and final_dd[labels.index(s["M"])]
               < final_dr[labels.index(s["M"])]]
    seq = [llc[x] for x in dm_like]
    rising = float(np.corrcoef(np.argsort(np.argsort(seq)), np.arange(len(seq)))[0, 1]) if len(seq) > 2 else float("nan")
    between = "∞" in llc and len(seq) >= 2 and min(seq) < llc["∞"] < max(seq)
    out.append(Claim(
        "llc_rises_with_M", "The LLC of the dMMSE-like final models rises with M; the ridge-like M = ∞ model lies "
        "between the simplest and the most complex of them", "LLC rises with M, crosses the M = ∞ level where "
        "transience starts, plateaus above M = 32", {"LLC by M": {k: round(v, 2) for k, v in llc.items()},
                                                   "dMMSE-like M": dm_like, "Spearman(M, LLC) over them": rising},
        rising >= 0.8 and between, "Spearman >= 0.8 over the dMMSE-like M, and min < LLC(∞) < max"))
    lt = m["llc_over_training"]
    s_llc = by[lt["M"]]
    steps_t = lt["groups"]
    i_r = int(np.argmin([abs(t - s_llc["t_crit"]) for t in steps_t]))
    curve_steps = sw["step"]
    g = labels.index(lt["M"])
    id_at = {t: sw["id"][curve_steps.index(t)][g] for t in steps_t}
    trade = ex.complexity_tradeoff(id_at[steps_t[i_r]], lt["llc"][i_r], id_at[steps_t[-1]], lt["llc"][-1])
    out.append(Claim(
        "llc_loss_vs_complexity", f"For M = {lt['M']}, the ridge-like solution (near t_crit) has higher loss but lower "
        "LLC than the final dMMSE-like one: simplicity wins early, fit wins late", "Bayesian internal model "
        "selection: n·ΔL vs Δλ·log n", {"ridge-like (step, ID loss, LLC)": (steps_t[i_r], trade["loss_simple"],
                                                                            trade["llc_simple"]),
                                        "final (step, ID loss, LLC)": (steps_t[-1], trade["loss_complex"],
                                                                       trade["llc_complex"]),
                                        "n*": trade["n_star"]},
        trade["n_star"] is not None, "ΔL > 0 and Δλ > 0 (so a crossover n* exists)"))
    ok = lm["settled"] + lt["settled"]
    out.append(Claim(
        "llc_calibrated", "The SGLD chains settle (the estimate does not drift with more draws)", "calibration: "
        "loss traces must settle", {"settled estimates": f"{sum(ok)}/{len(ok)}", "settings": lm["settings"]},
        all(ok), "first- and second-half draw means within 10% of the loss excess, every estimate"))
    cc = m["llc_crosscheck"]
    if "devinterp" in cc:
        rel = abs(cc["ours"] - cc["devinterp"]) / abs(cc["devinterp"])
        out.append(Claim(
            "llc_matches_devinterp", f"Our SGLD estimator agrees with devinterp 1.3.2 on the same checkpoint "
            f"(M = {lt['M']}, final) and settings, and is faster", "(issue target: within 10%, faster)",
            {"ours": round(cc["ours"], 2), "devinterp": round(cc["devinterp"], 2), "relative difference": round(rel, 3),
             "speed ratio": round(cc["devinterp_seconds"] / cc["ours_seconds"], 2)},
            rel <= 0.1 and cc["ours_seconds"] < cc["devinterp_seconds"], "within 10% and faster"))
    t = m["timing"]
    out.append(Claim(
        "grouped_speedup", "Training all M as one grouped model is much faster than one after another",
        "(issue target: >= 5× on a GPU)", {"speed-up": round(t["speedup"], 2), "device": t["device"],
                                           "groups": t["groups"]},
        t["speedup"] >= 5, ">= 5× (a GPU target: a 2-core CPU has little to parallelise)"))

    cu = m["curriculum"]
    cu_by = {s["M"]: (i, s) for i, s in enumerate(cu["summary"])}
    comp = {}
    for M_, (i, s) in cu_by.items():
        j = labels.index(M_)
        comp[M_] = {"final OOD, curriculum": round(cu["ood"][-1][i], 3), "final OOD, fixed M": round(sw["ood"][-1][j], 3),
                    "ridge phase (curriculum / fixed)": [s["ridge_phase"], by[M_]["ridge_phase"]]}
    high_cu = [M_ for M_ in cu_by if M_ == "∞" or int(M_) >= 64]
    out.append(Claim(
        "curriculum_reaches_ridge", "Raising task diversity in stages still ends at the general (ridge) solution for "
        "high M, as well as training at the final M from the start", "seed's advice: raise diversity in stages",
        comp, bool(high_cu) and all(comp[M_]["final OOD, curriculum"] <= 1.05 * comp[M_]["final OOD, fixed M"]
                                    for M_ in high_cu),
        "final OOD loss within 5% of (or below) fixed-M training, for every curriculum M >= 64"))
    return out


def main(argv: list[str] | None = None) -> int:
    return run_main("python -m helpers.transient_ridge", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
