"""Chapter 2's full run: ``python -m helpers.multistep_gd --mode full``.

Trains every model of the chapter at the mode's sizes, measures the chapter's claims and writes
``results/multistep_gd/`` (full mode) or ``.scratch/<mode>/multistep_gd/`` (other modes):
``metrics.json`` (curves), ``weights.npz`` (W^{PV}, W^{KQ} snapshots), ``run.json``, ``claims.json``.

The chapter's matrices are (2d+2)×(2d+2) = 22×22, so every experiment runs on the CPU by
design (a GPU would mostly wait on kernel launches); the whole full run takes about ten minutes
on two CPU cores.
"""
from __future__ import annotations

import sys
import time

import torch

from ..cli import run_main
from ..device import device_name, seed_everything
from ..modes import set_mode
from ..results import Claim, ResultStore, output_root
from . import experiments as ex
from .data import squared_error
from .lsa import looped_predict, no_cot_predict

CHAPTER = "multistep_gd"
SCHEMA = 1
SEED = 0
TEST_NS = [15, 20, 30, 40, 80]  # n <= d: GD with η = 0.5 diverges on most prompts
KAPPAS = [1, 2, 5, 10, 20, 50, 100]


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/multistep_gd/``)."""
    return ResultStore(CHAPTER, module="helpers.multistep_gd", schema=SCHEMA, root=root)


def run(mode: str, progress: bool = True) -> ResultStore:
    """Run every experiment at ``mode``'s sizes; write metrics, weights, run.json and claims.json."""
    set_mode(mode)
    seed_everything(SEED)
    cfg = ex.sizes(mode)
    out = store(output_root(mode))
    t0 = time.perf_counter()
    metrics: dict = {"settings": [], "sizes": {k: v for k, v in cfg.items() if k != "settings"}}
    weights = {}
    claims: list[Claim] = []
    first = None
    for i, setting in enumerate(cfg["settings"]):
        tag = f"d={setting.d}, n={setting.n}"
        eta_star, theory = ex.no_cot_optimum(setting)
        P, W = ex.test_prompts(setting, cfg["test"])

        timer = time.perf_counter()
        no_cot, h_no = ex.train_no_cot(setting, steps=cfg["steps"], batch=cfg["batch"], test=cfg["test"], progress=progress)
        eta_hat, residual = ex.effective_eta(no_cot, P)
        no_cot_error = h_no.evals["test_error"][-1]
        t_no = time.perf_counter() - timer

        timer = time.perf_counter()
        cot, h_cot, snaps = ex.train_cot(setting, steps=cfg["steps"], batch=cfg["batch"], test=cfg["test"], progress=progress)
        t_cot = time.perf_counter() - timer
        curve = ex.evaluate_cot(cot, P, W, setting.k)
        sparsity = ex.sparsity_report(cot)

        timer = time.perf_counter()
        looped, h_loop = ex.train_looped(setting, loops=cfg["loops"], steps=cfg["loop_steps"], batch=cfg["batch"],
                                         test=cfg["test"], progress=progress)
        with torch.no_grad():
            per_loop = squared_error(looped_predict(looped, P.X, P.y, cfg["loops"], return_all=True),
                                     P.w_star.unsqueeze(1)).mean(0)
        t_loop = time.perf_counter() - timer

        record = {
            "setting": setting.__dict__, "eta_star": eta_star, "one_step_error_theory": theory,
            "no_cot": {"eval_steps": h_no.eval_steps, "test_error": h_no.evals["test_error"], "eta_hat": eta_hat,
                       "residual": residual, "seconds": t_no},
            "cot": {"eval_steps": h_cot.eval_steps, **h_cot.evals, "sparsity": sparsity, "seconds": t_cot,
                    "per_step": {k: v.tolist() for k, v in curve.items()}},
            "looped": {"eval_steps": h_loop.eval_steps, "test_error": h_loop.evals["test_error"],
                       "per_loop": per_loop.tolist(), "loops": cfg["loops"], "seconds": t_loop},
        }
        for step, snap in snaps.items():
            for name, M in snap.items():
                weights[f"s{i}_{name}_{step}"] = M
        if i == 0:
            first = (setting, cot, no_cot)
        metrics["settings"].append(record)

        k = setting.k
        c_mean, c_med = curve["model_mean"][-1].item(), curve["model_median"][-1].item()
        g_mean, g_med = curve["gd_mean"][-1].item(), curve["gd_median"][-1].item()
        with torch.no_grad():
            no_cot_median = float(torch.median(squared_error(no_cot_predict(no_cot, P.X, P.y), P.w_star)))
        claims += [
            Claim(f"no_cot_plateau[{tag}]", "Without CoT, the trained one-layer LSA's error plateaus at the "
                  "one-step-GD optimum d(d+1)/(n+d+1)", f"theory: {theory:.4g}",
                  {"test error": no_cot_error, "relative gap": abs(no_cot_error - theory) / theory},
                  abs(no_cot_error - theory) / theory < 0.05, "within 5% of d(d+1)/(n+d+1)"),
            Claim(f"no_cot_is_one_gd_step[{tag}]", "The learned no-CoT map is one GD step from 0, ŵ = η* X y / n",
                  f"η* = n/(n+d+1) = {eta_star:.4g}", {"fitted η": eta_hat, "relative residual": residual},
                  abs(eta_hat - eta_star) / eta_star < 0.05 and residual < 0.01,
                  "fitted η within 5% of η*, and the map explains >99% of ŵ's squared norm"),
            Claim(f"cot_sparse_pattern[{tag}]", "CoT training from random init (all entries trainable) collapses to "
                  "V_31 ≈ −ηI, W_13 ≈ I", "heatmaps: only V_31 and W_13 remain",
                  sparsity, abs(sparsity["eta_hat"] - setting.eta) / setting.eta < 0.05
                  and sparsity["product_offdiag"] < 0.05 and sparsity["mass_outside"] < 0.05,
                  f"−diag(V_31 W_13) within 5% of η = {setting.eta}, off-diagonal < 0.05, <5% of the weight mass "
                  "outside the blocks"),
            Claim(f"cot_tracks_gd[{tag}]", f"The CoT rollout implements k-step GD: error after k = {k} steps matches "
                  "exact GD with the same η", "error decays geometrically in k",
                  {"model mean": c_mean, "GD mean": g_mean, "model median": c_med, "GD median": g_med},
                  abs(c_mean - g_mean) / g_mean < 0.10 and abs(c_med - g_med) / g_med < 0.10,
                  "mean and median within 10% of exact GD"),
            Claim(f"cot_beats_no_cot_mean[{tag}]", f"CoT (k = {k}) error ≥ 100× below the no-CoT error — mean over prompts",
                  "CoT recovers w*; one layer without CoT cannot (for n ≪ d²)",
                  {"ratio of means": no_cot_error / c_mean}, no_cot_error / c_mean >= 100, "ratio ≥ 100"),
            Claim(f"cot_beats_no_cot_median[{tag}]", f"CoT (k = {k}) error ≥ 100× below the no-CoT error — median over prompts",
                  "CoT recovers w*; one layer without CoT cannot (for n ≪ d²)",
                  {"ratio of medians": no_cot_median / c_med}, no_cot_median / c_med >= 100, "ratio ≥ 100"),
            Claim(f"looped_beats_single_pass[{tag}]", f"A looped LSA ({cfg['loops']} loops, shared weights) does much "
                  "better than one pass without CoT", "looping 'significantly improves final performance'",
                  {"looped": h_loop.evals["test_error"][-1], "no CoT": no_cot_error, "CoT": c_mean},
                  h_loop.evals["test_error"][-1] < 0.1 * no_cot_error, "looped error < 1/10 of the no-CoT error"),
        ]

    setting, cot, no_cot = first
    timer = time.perf_counter()
    model_b, h_b = ex.train_balanced(setting, steps=cfg["balanced_steps"], batch=cfg["batch"], progress=progress)
    stages = ex.two_stage_times(h_b)
    v_T, w_T = h_b.evals["v"][-1], h_b.evals["w"][-1]
    metrics["balanced"] = {"eval_steps": h_b.eval_steps, **h_b.evals, "stages": stages,
                           "seconds": time.perf_counter() - timer}
    claims.append(Claim("two_stage_dynamics", "From a small balanced init, GD on (V_31, W_13) converges to the GD "
                        "construction in two stages", "global convergence, two stages",
                        {**stages, "final v": v_T, "final w": w_T},
                        stages["fast_fraction"] < 0.5 and abs(v_T - setting.eta) / setting.eta < 0.02
                        and abs(w_T - 1) < 0.02,
                        "a slow stage (loss above half its start until t_half), then a fast one reaching 1% of the "
                        "start within 0.5·t_half more steps; both scales end within 2% of (η, 1)"))

    gen_n = ex.generalisation_over_n(cot, setting, TEST_NS, cfg["test"])
    gen_k = ex.generalisation_over_kappa(cot, no_cot, setting, KAPPAS, cfg["test"])
    metrics["generalisation_n"], metrics["generalisation_kappa"] = gen_n, gen_k
    ratios_n = [m / g for m, g in zip(gen_n["model_median"], gen_n["gd_median"])]
    claims.append(Claim("generalises_to_other_n", f"The CoT model trained at n = {setting.n} runs GD on prompts with "
                        f"other n ({TEST_NS})", "generalises to unseen prompts",
                        {"model/GD median ratio": ratios_n}, all(abs(r - 1) < 0.10 for r in ratios_n),
                        "median error within 10% of exact GD at every n"))
    well = [i for i, kappa in enumerate(KAPPAS) if kappa <= 10]
    ratios_k = [gen_k["model_median"][i] / gen_k["gd_median"][i] for i in range(len(KAPPAS))]
    claims.append(Claim("generalises_to_covariances", "The CoT model runs GD on x ~ N(0, Σ) with well-conditioned Σ",
                        "generalises to well-conditioned Σ", {"κ": KAPPAS, "model/GD median ratio": ratios_k},
                        all(abs(ratios_k[i] - 1) < 0.10 for i in well),
                        "median error within 10% of exact GD for κ ≤ 10"))

    seconds = time.perf_counter() - t0
    metrics["seconds"] = seconds
    out.save_json("metrics.json", metrics)
    out.save_arrays("weights.npz", weights)
    out.write_run(mode=mode, device=device_name(torch.device("cpu")), seeds=[SEED], seconds=seconds)
    out.write_claims(claims)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_main("python -m helpers.multistep_gd", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
