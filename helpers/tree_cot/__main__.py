"""Chapter 1's full run: ``python -m helpers.tree_cot --mode full``.

Trains every model of the chapter at the mode's sizes, measures the chapter's claims and writes
``results/tree_cot/`` (full mode) or ``.scratch/<mode>/tree_cot/`` (other modes):
``metrics.json`` (curves, accuracies, head usage), ``arrays.npz`` (``H`` snapshots, attention
maps), ``run.json`` and ``claims.json``.

The models are tiny (one layer, a few thousand to a few tens of thousands of parameters) and
the sequences short, so the run uses the CPU by design; it takes about a quarter of an hour on
two CPU cores. ``--device cuda`` is accepted but buys little at these sizes.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch

from ..cli import run_main
from ..device import device_name, seed_everything
from ..modes import set_mode
from ..results import Claim, ResultStore, output_root
from . import experiments as ex
from . import filter_sort as fs

CHAPTER = "tree_cot"
SCHEMA = 1


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/tree_cot/``)."""
    return ResultStore(CHAPTER, module="helpers.tree_cot", schema=SCHEMA, root=root)


def _strip(log: dict, *drop: str) -> dict:
    return {k: v for k, v in log.items() if k not in drop}


def run(mode: str, progress: bool = True) -> ResultStore:
    """Run every experiment at ``mode``'s sizes; write metrics, arrays, run.json and claims.json."""
    set_mode(mode)
    cfg = ex.sizes(mode)
    seeds = cfg["seeds"]
    seed_everything(seeds[0])
    out = store(output_root(mode))
    t0 = time.perf_counter()
    metrics: dict = {"sizes": cfg, "theory": {}, "standard": {}, "seconds": {}}
    arrays: dict[str, np.ndarray] = {}
    claims: list[Claim] = []

    # 1-2. the theory models, several seeds
    theory_models = {}
    for task in ("backward", "forward"):
        V = ex.THEORY[task]["vocab"]
        test = ex.test_trees(cfg["test"], V)
        runs = []
        timer = time.perf_counter()
        for seed in seeds:
            model, log = ex.train_theory(task, steps=cfg["theory_steps"][task], batch=cfg["batch"], test=test,
                                         n_checkpoints=cfg["n_checkpoints"], seed=seed, progress=progress)
            record = {"seed": seed, "log": _strip(log, "H", "final"), "final": log["final"]}
            if task == "forward":
                record["phases"] = ex.phases(log)
            runs.append(record)
            if seed == seeds[0]:
                theory_models[task] = model
                for step, H in log["H"].items():
                    arrays[f"theory_{task}_H_{step}"] = H
        metrics["theory"][task] = {"runs": runs, "test_depths": np.bincount([e.depth for e in test]).tolist()}
        metrics["seconds"][f"theory_{task}"] = time.perf_counter() - timer

    exact = {t: [r["final"]["exact"] for r in metrics["theory"][t]["runs"]] for t in ("backward", "forward")}
    n_test = cfg["test"]
    claims.append(Claim(
        "theory_backward_generalises", "A one-layer, one-head transformer trained by GD from zero init (key–query "
        "only, squared loss) on perfect binary trees solves the backward task on unseen random trees",
        "Theorem: generalisation to unseen trees (no accuracy table)",
        {"exact-path accuracy per seed": exact["backward"], "test trees": n_test},
        min(exact["backward"]) >= 0.99, "exact-path accuracy >= 99% for every seed"))
    hs = [r["log"]["h"][-1] for r in metrics["theory"]["backward"]["runs"]]
    ratio = [h["diag"] / h["offdiag_max"] for h in hs]
    claims.append(Claim(
        "theory_backward_H_diagonal", "Training grows H's diagonal (a node attends to the edge whose child is "
        "itself); off-diagonal entries stay small", "H_ii grows, H_ij stays small",
        {"final mean diagonal": [h["diag"] for h in hs], "final max |off-diagonal|": [h["offdiag_max"] for h in hs],
         "ratio": ratio}, min(ratio) >= 5, "mean diagonal >= 5 × the largest |off-diagonal| entry, every seed"))
    claims.append(Claim(
        "theory_forward_generalises", "A one-layer, two-head transformer trained the same way solves the forward "
        "task (backward path as chain of thought, then root → goal) in one autoregressive pass on unseen trees",
        "Theorem: generalisation to unseen trees (no accuracy table)",
        {"exact-path accuracy per seed": exact["forward"], "test trees": n_test},
        min(exact["forward"]) >= 0.99, "exact-path accuracy >= 99% for every seed"))
    specs = [np.array(r["log"]["specialisation"][-1]) for r in metrics["theory"]["forward"]["runs"]]
    spec_ok = [bool(s[:, 0].argmax() != s[:, 1].argmax() and s[:, 0].max() >= 0.5 and s[:, 1].max() >= 0.5
                    and s[s[:, 0].argmax(), 1] <= 0.05 and s[s[:, 1].argmax(), 0] <= 0.05) for s in specs]
    claims.append(Claim(
        "theory_forward_heads_specialise", "The two heads specialise on their own: one serves the backward stage, "
        "the other the forward stage", "heads specialise autonomously (traversal vs stage control)",
        {"attention on the lookup token [head][backward, forward], per seed": [s.round(3).tolist() for s in specs]},
        all(spec_ok), "each stage has its own head with >= 0.5 attention on the right token, and that head puts "
        "<= 0.05 on it in the other stage (every seed)"))
    ph = [r["phases"] for r in metrics["theory"]["forward"]["runs"]]
    steps_f = cfg["theory_steps"]["forward"]
    gaps = [None if p["forward_solved"] is None or p["backward_solved"] is None
            else abs(p["backward_solved"] - p["forward_solved"]) / steps_f for p in ph]
    claims.append(Claim(
        "theory_forward_phases", "Forward training goes through distinct phases: the two stages are learned at "
        "different times", "multi-phase training dynamics", {"phases per seed": ph, "gap / steps": gaps},
        all(g is not None and g >= 0.2 for g in gaps),
        "both stages solved (teacher-forced accuracy >= 99%), at steps at least 20% of training apart"))

    # 3-4. the standard transformer: CoT vs direct, attention over training
    test = ex.standard_test(cfg["test"])
    depths = [e.depth for e in test]
    std = {"baseline_random_child": ex.random_child_baseline(test), "test_depths": np.bincount(depths).tolist()}
    timer = time.perf_counter()
    cot_model, cot_log = ex.train_transformer("forward", steps=cfg["std_steps"]["forward"], batch=cfg["std_batch"],
                                              test=test, n_checkpoints=cfg["n_checkpoints"], progress=progress)
    std["cot"] = _strip(cot_log, "attention")
    for i, a in enumerate(cot_log["attention"]):
        arrays[f"std_cot_att_{cot_log['step'][i]}"] = a["att"]
    std["cot_attention_meta"] = {k: v for k, v in cot_log["attention"][-1].items() if k != "att"}
    std["direct"] = {}
    for L in cfg["layers"]:
        _, d_log = ex.train_transformer("direct", steps=cfg["std_steps"]["direct"], batch=cfg["std_batch"],
                                        test=test, n_layers=L, n_checkpoints=cfg["n_checkpoints"], progress=progress)
        std["direct"][L] = _strip(d_log, "attention")
    metrics["standard"] = std
    metrics["seconds"]["standard"] = time.perf_counter() - timer

    cot_by, dir_by = std["cot"]["final"]["by_depth"], std["direct"][1]["final"]["by_depth"]
    deep = max(cot_by)
    claims.append(Claim(
        "standard_cot_solves_forward", "A standard one-layer multi-head transformer (learned embeddings, "
        "cross-entropy, Adam) trained with the chain-of-thought format solves the forward task on unseen trees",
        "CoT lets a shallow (one-layer) model solve multi-step reasoning",
        {"exact-path accuracy": std["cot"]["final"]["exact"], "by depth": cot_by, "test trees": n_test},
        std["cot"]["final"]["exact"] >= 0.99, "exact-path accuracy >= 99%"))
    claims.append(Claim(
        "standard_direct_fails_with_depth", "The same model trained to emit root → goal directly (no chain of "
        "thought) fails beyond shallow depths", "without CoT a shallow model cannot (related work: needs many layers)",
        {"direct by depth": dir_by, "CoT by depth": cot_by, "random-child descent by depth": std["baseline_random_child"]},
        dir_by[deep] <= 0.5 * cot_by[deep] and dir_by[min(dir_by)] - dir_by[deep] >= 0.3,
        f"at the deepest test depth ({deep}) direct accuracy is at most half the CoT accuracy, and it falls by "
        ">= 0.3 from depth 1"))
    usage = std["cot"]["usage"][-1]
    spec = np.array([usage["backward"]["lookup"], usage["forward"]["lookup"]]).T
    claims.append(Claim(
        "standard_heads_do_lookups", "In the trained standard model, each stage has a head that attends to the "
        "token the one-step lookup needs (the edge when climbing, the chain-of-thought token when descending)",
        "heads implement the lookups", {"attention on the lookup token [head][backward, forward]": spec.round(3).tolist()},
        bool(spec[:, 0].max() >= 0.5 and spec[:, 1].max() >= 0.5), "some head >= 0.5 in each stage"))

    # 5. robustness
    timer = time.perf_counter()
    rob = {"standard_cot": ex.robustness(cot_model, ex.robustness_sets(ex.STANDARD["vocab"], cfg["robust_n"]),
                                         ex.STANDARD["vocab"], "forward")}
    for task in ("backward", "forward"):
        V = ex.THEORY[task]["vocab"]
        rob[f"theory_{task}"] = ex.robustness(theory_models[task], ex.robustness_sets(V, cfg["robust_n"]), V, task)
    metrics["robustness"] = rob
    metrics["seconds"]["robustness"] = time.perf_counter() - timer
    for name, r in rob.items():
        worst = {axis: min(vals.values()) for axis, vals in r.items()}
        claims.append(Claim(
            f"robust[{name}]", f"The {name.replace('_', ' ')} model keeps its accuracy on deeper, bushier, larger "
            "trees than in training and with distractor edges", "generalisation to unseen trees (seed's exercise 3)",
            {"worst exact-path accuracy per axis": worst, "trees per value": cfg["robust_n"]},
            min(worst.values()) >= 0.95, ">= 95% exact-path accuracy at every depth (1–10), branching (1–6), "
            "size and number of distractors tested"))

    # 6. filter -> sort
    timer = time.perf_counter()
    fs_test = ex.filter_sort_test(cfg["fs_test"])
    metrics["filter_sort"] = {}
    for task in fs.FS_TASKS:
        _, log = ex.train_filter_sort(task, steps=cfg["fs_steps"], batch=cfg["std_batch"], test=fs_test,
                                      progress=progress)
        metrics["filter_sort"][task] = log
    metrics["seconds"]["filter_sort"] = time.perf_counter() - timer
    c_acc, d_acc = (metrics["filter_sort"][t]["exact"][-1] for t in fs.FS_TASKS)
    claims.append(Claim(
        "filter_sort_cot", "Another two-stage operation, filter → sort: with the intermediate stage written out a "
        "one-layer model learns it; without, it does not", "the CoT decomposition carries over (seed's exercise 3)",
        {"CoT exact accuracy": c_acc, "direct exact accuracy": d_acc, "test instances": cfg["fs_test"]},
        c_acc >= 0.95 and d_acc <= 0.5 * c_acc, "CoT >= 95% and direct at most half of it"))

    seconds = time.perf_counter() - t0
    metrics["seconds"]["total"] = seconds
    out.save_json("metrics.json", metrics)
    out.save_arrays("arrays.npz", arrays)
    out.write_run(mode=mode, device=device_name(torch.device("cpu")), seeds=seeds, seconds=seconds)
    out.write_claims(claims)
    return out


def main(argv: list[str] | None = None) -> int:
    return run_main("python -m helpers.tree_cot", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
