"""What trains: the closing chapter's sizes, the runs it watches through the lens, and the full run.

Each run trains one of the book's models with dense checkpoints and keeps, at every checkpoint,
the chapter's own metric (to place its phases) and the model's outputs on a fixed probe set (the
features of the trajectory PCA); at a few log-spaced checkpoints it keeps the parameters, whose
local learning coefficient is estimated after training (:func:`helpers.dynamics.estimate_llc`).

- :class:`LLCSettings`, :data:`LLC` — the SGLD settings per setting (ours, calibrated: see the chapter);
- :class:`Sizes`, :func:`sizes` — every size of a run, for the three modes;
- :func:`tree_run` — chapter 1's two-head theory model on the forward task;
- :func:`standard_run` — chapter 1's standard transformer on the forward task (PCA only: see its docstring);
- :func:`gd_run` — chapter 2's CoT model from a random start (``"cot"``) or the sparse model from
  the small balanced start (``"balanced"``);
- :func:`ridge_record` — chapter 3's committed run of its CPU configuration, read (nothing is retrained);
- :func:`full_run`, :func:`store`, :func:`load`.

The records hold projected PCA paths, LLC estimates and phase steps, not verdicts: the lens's
events and whether they match a phase are computed from them by :mod:`helpers.one_lens.claims`.

Used in: book/one_lens/*.ipynb and ``python -m helpers.one_lens``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import torch

from ..checks import check_int
from ..device import device_name, seed_everything
from ..dynamics import estimate_llc, fit_joint_pca, settled
from ..modes import by_mode, get_mode
from ..multistep_gd.analysis import fall_steps, held_out_prompts
from ..multistep_gd.models import LinearSelfAttention, SparseLSA, teacher_forced
from ..multistep_gd.train import FULL_SETTINGS, SettingConfig, batch_fn, cot_loss
from ..results import ResultStore, RunOutput, output_root
from ..seeds import numpy_generator, torch_generator
from ..training import checkpoint_schedule, train
from ..tree_cot.analysis import per_step_accuracy, phases, roles
from ..tree_cot.data import encode, test_trees
from ..tree_cot.models import TheoryModel, TransformerConfig, TreeTransformer, ce_loss, mse_loss
from ..tree_cot.train import PREFETCH, STANDARD, STANDARD_STREAM, THEORY, standard_batch, standard_test, theory_batch

CHAPTER = "one_lens"
SCHEMA = 2
PCA_COMPONENTS = 4       # components stored per checkpoint (the lens reads the first three)
LLC_STREAM = 5000        # offset of the SGLD batches' random stream from the training batches'
GD_SETTING = FULL_SETTINGS[0]   # d = 10, n = 20, k = 20, η = 0.4: chapter 2's first setting
BALANCED_INIT = 1e-3     # chapter 2's small balanced start V_31 = −εI, W_13 = εI
BALANCED_LR = 0.01       # chapter 2's plain-GD step from that start
COT_LR = 3e-3            # chapter 2's Adam step (cosine schedule) from a random start
COT_INIT_STD = 0.01      # chapter 2's random start


@dataclass(frozen=True)
class LLCSettings:
    """SGLD settings of one setting's LLC estimates (:func:`helpers.dynamics.estimate_llc`):
    step ``lr`` (ε), inverse temperature ``nbeta`` (nβ), ``localization`` (γ), SGLD ``batch``."""

    lr: float
    nbeta: float
    localization: float
    batch: int


# Ours (the papers of chapters 1 and 2 estimate no LLC). Chapter 2's models: chapter 3's kind of settings
# (nβ = 100, γ = 100, ε = 1e-4), with which their trained checkpoints settle. The theory model's loss is far
# flatter per parameter (6498 entries of W, most of which barely move a prediction), so it gets nβ = 1000.
LLC = {
    "tree": LLCSettings(lr=1e-4, nbeta=1000.0, localization=100.0, batch=256),
    "cot": LLCSettings(lr=1e-4, nbeta=100.0, localization=100.0, batch=256),
    "balanced": LLCSettings(lr=1e-4, nbeta=100.0, localization=100.0, batch=256),
}


@dataclass(frozen=True)
class Sizes:
    """Every size of a run.

    ``tree_steps``: SGD steps of the theory model (chapter 1's full run: 4000); ``tree_runs``:
    ``(label, seed, init_std)`` of each run (zero init and small random inits, as in chapter 1);
    ``tree_every``: spacing of its linear checkpoints; ``tree_curve``: test trees of the phase
    metric; ``tree_probe``: probe trees of the features. ``std_steps``, ``std_seeds``, ``std_every``,
    ``std_batch``: chapter 1's standard transformer (Adam, chapter 1's learning rate).
    ``cot_steps`` / ``balanced_steps``: chapter 2's two models; ``gd_seeds``: their seeds;
    ``gd_every``: spacing of their linear checkpoints; ``gd_probe``: probe prompts.
    ``llc_points``: log-spaced checkpoints per run at which the LLC is estimated; ``chains``,
    ``draws``, ``burnin``: SGLD per estimate.
    """

    tree_steps: int
    tree_runs: tuple[tuple[str, int, float], ...]
    tree_batch: int
    tree_every: int
    tree_curve: int
    tree_probe: int
    std_steps: int
    std_seeds: tuple[int, ...]
    std_every: int
    std_batch: int
    cot_steps: int
    balanced_steps: int
    gd_batch: int
    gd_seeds: tuple[int, ...]
    gd_every: int
    gd_probe: int
    llc_points: int
    chains: int
    draws: int
    burnin: int

    def __post_init__(self):
        for name in ("tree_steps", "tree_batch", "tree_every", "tree_curve", "tree_probe", "std_steps", "std_every",
                     "std_batch", "cot_steps",
                     "balanced_steps", "gd_batch", "gd_every", "gd_probe", "llc_points", "chains",
                     "draws"):
            check_int(name, getattr(self, name), 1)
        check_int("burnin", self.burnin, 0)
        if not self.tree_runs or not self.gd_seeds or not self.std_seeds:
            raise ValueError("tree_runs, std_seeds and gd_seeds must each hold at least one run")
        if self.llc_points < 2:
            raise ValueError(f"llc_points must be >= 2 (a change needs two estimates); got {self.llc_points}")


TREE_RUNS = (("zero init", 0, 0.0), ("seed 1", 1, 0.1), ("seed 2", 2, 0.1))

SIZES = {
    "smoke": Sizes(tree_steps=30, tree_runs=TREE_RUNS[:2], tree_batch=32, tree_every=10, tree_curve=32, tree_probe=8,
                   std_steps=20, std_seeds=(0,), std_every=10, std_batch=16,
                   cot_steps=30, balanced_steps=30, gd_batch=64, gd_seeds=(0,), gd_every=10, gd_probe=8,
                   llc_points=3, chains=1, draws=6, burnin=2),
    "default": Sizes(tree_steps=2000, tree_runs=TREE_RUNS[:1], tree_batch=256, tree_every=50, tree_curve=300,
                     tree_probe=32, std_steps=400, std_seeds=(0,), std_every=5, std_batch=128,
                     cot_steps=1000, balanced_steps=1500, gd_batch=256, gd_seeds=(0,), gd_every=10, gd_probe=32,
                     llc_points=8, chains=2, draws=100, burnin=50),
    "full": Sizes(tree_steps=4000, tree_runs=TREE_RUNS, tree_batch=256, tree_every=50, tree_curve=300, tree_probe=32,
                  std_steps=400, std_seeds=(0, 1), std_every=5, std_batch=128,
                  cot_steps=1500, balanced_steps=2000, gd_batch=512, gd_seeds=(0, 1), gd_every=10, gd_probe=32,
                  llc_points=16, chains=2, draws=200, burnin=100),
}


def sizes(mode: str | None = None) -> Sizes:
    """The :class:`Sizes` of ``mode`` (default: the current mode, ``BOOK_MODE``)."""
    return by_mode(**SIZES, mode=mode)


def llc_steps(steps: int, points: int, first: int = 10) -> list[int]:
    """``points`` log-spaced checkpoint steps from ``first`` (or 1, if ``steps`` is smaller) to ``steps``."""
    check_int("steps", steps, 1)
    check_int("points", points, 2)
    lo = min(first, steps)
    return sorted({int(round(s)) for s in np.logspace(np.log10(lo), np.log10(steps), points)})


def _llc_at(model, params: dict, loss_fn, batch_at, llc: LLCSettings, cfg: Sizes, seed: int) -> dict:
    """The LLC at each kept checkpoint: ``{"step", "llc", "llc_std", "init_loss", "settled", "trace"}``."""
    out = {"step": [], "llc": [], "llc_std": [], "init_loss": [], "settled": [], "trace": []}
    live = [p for p in model.parameters() if p.requires_grad]
    for step, kept in sorted(params.items()):
        with torch.no_grad():
            for p, w in zip(live, kept):
                p.copy_(w)
        est = estimate_llc(model, loss_fn, batch_at, lr=llc.lr, nbeta=llc.nbeta, localization=llc.localization,
                           num_chains=cfg.chains, num_draws=cfg.draws, num_burnin=cfg.burnin, seed=seed)
        out["step"].append(int(step))
        out["llc"].append(float(est.llc[0]))
        out["llc_std"].append(float(est.llc_std[0]))
        out["init_loss"].append(float(est.init_loss[0]))
        out["settled"].append(settled(est)[0] if cfg.draws >= 2 else False)
        out["trace"].append(est.loss_trace[:, :, 0].mean(0).tolist())
    return out


def _sgld_batches(make, seed: int):
    """``batch_at(i)`` for the SGLD: ``i >= 0`` sampling batches, ``i < 0`` the batches of ``ℓ_n(w*)``,
    from streams of their own (keys ``(seed, LLC_STREAM, i)`` and ``(seed, LLC_STREAM + 1, −i)``)."""
    return lambda i: make(seed, LLC_STREAM, i) if i >= 0 else make(seed, LLC_STREAM + 1, -i)


# --------------------------------------------------------------------------------------------
# chapter 1: the theory model on the forward task

def _log_accuracy(log: dict, step: int, model, batch) -> None:
    """Append the step and chapter 1's teacher-forced accuracies (climb, descend, switch) to ``log``."""
    acc = per_step_accuracy(model, batch)
    log["step"].append(int(step))
    for k in ("backward", "forward", "switch"):
        log[k].append(acc.get(k))


def tree_run(label: str, seed: int, init_std: float, cfg: Sizes, progress: bool | None = None) -> dict:
    """Chapter 1's two-head theory model on the forward task (its paper's training set and SGD
    step), from ``W = 0`` (``init_std = 0``) or ``W ~ N(0, init_std²)``; step ``s`` trains on
    chapter 1's batch ``numpy_generator(seed, s)``.

    Returns ``{"label", "seed", "init_std", "step", "backward", "forward", "switch", "roles",
    "features" (n_checkpoints, F), "llc": {...}, "phases"}``; ``phases`` is chapter 1's
    :func:`~helpers.tree_cot.analysis.phases` of this run.
    """
    spec = THEORY["forward"]
    V = spec.vocab
    model = TheoryModel(V, spec.heads, init_std=init_std, generator=torch_generator(seed) if init_std else None)
    curve = test_trees(cfg.tree_curve, V)
    test_batch, probe = encode(curve, V, "forward"), encode(curve[:cfg.tree_probe], V, "forward")
    where = probe.targets >= 0
    keep = set(llc_steps(cfg.tree_steps, cfg.llc_points))
    log = {"step": [], "backward": [], "forward": [], "switch": [], "roles": []}
    features, params = [], {}

    def on_checkpoint(step, m):
        m.eval()
        with torch.no_grad():
            _log_accuracy(log, step, m, test_batch)
            log["roles"].append(roles(m, test_batch).tolist())
            features.append(m(probe.tokens)[where].reshape(-1).float())
        if step in keep:
            params[step] = [p.detach().clone() for p in m.parameters()]
        m.train()

    ckpts = sorted(set(checkpoint_schedule(cfg.tree_steps, every=cfg.tree_every, n_log=30)) | keep)
    train(model, mse_loss, lambda s: theory_batch("forward", cfg.tree_batch, numpy_generator(seed, s)),
          steps=cfg.tree_steps, optimizer=torch.optim.SGD(model.parameters(), lr=spec.lr), checkpoint_steps=ckpts,
          on_checkpoint=on_checkpoint, progress=progress, desc=f"theory model, forward, {label}")
    llc = LLC["tree"]
    batch_at = _sgld_batches(lambda *k: theory_batch("forward", llc.batch, numpy_generator(*k)), seed)
    return {"label": label, "seed": seed, "init_std": init_std, **log, "features": torch.stack(features),
            "llc": _llc_at(model, params, mse_loss, batch_at, llc, cfg, seed), "phases": phases(log)}


def standard_run(seed: int, cfg: Sizes, progress: bool | None = None) -> dict:
    """Chapter 1's standard transformer (one layer, two heads, d_model 64) on the forward task with
    CoT: its initialisation (``torch.manual_seed(seed)``), Adam at 3e-3 and its batches
    (``numpy_generator(seed + STANDARD_STREAM, s)``, fresh random trees), ``std_steps`` steps with a
    checkpoint every ``std_every``. Chapter 1's full run trains it for 1000 steps; it has learned
    the task by step ~100, so 400 steps hold every phase.

    The PCA lens only: an SGLD step of this model needs a fresh batch of random trees drawn in
    Python, so 16 LLC estimates per run would cost as much as the rest of the full run, or more.

    Returns ``{"label", "seed", "step", "backward", "forward", "switch", "features", "llc": None,
    "phases"}``; features: the predicted node distribution and stage probability at every
    predicted position of the ``tree_probe`` probe trees.
    """
    V = STANDARD.vocab
    torch.manual_seed(seed)
    model = TreeTransformer(TransformerConfig(V, d_model=64, n_heads=2, n_layers=1))
    curve = standard_test(cfg.tree_curve)
    test_batch, probe = encode(curve, V, "forward"), encode(curve[:cfg.tree_probe], V, "forward")
    where = probe.targets >= 0
    log = {"step": [], "backward": [], "forward": [], "switch": []}
    features = []

    def on_checkpoint(step, m):
        m.eval()
        with torch.no_grad():
            _log_accuracy(log, step, m, test_batch)
            out = m(probe.tokens)[where]                                    # (positions, N+2) logits
            features.append(torch.cat([out[:, :V + 1].softmax(-1), out[:, V + 1:].sigmoid()], -1).reshape(-1))
        m.train()

    ckpts = checkpoint_schedule(cfg.std_steps, every=cfg.std_every, n_log=30)
    batches = lambda s: standard_batch(cfg.std_batch, numpy_generator(seed + STANDARD_STREAM, s), "forward")  # noqa: E731
    train(model, ce_loss, batches, steps=cfg.std_steps, optimizer=torch.optim.Adam(model.parameters(), lr=3e-3),
          checkpoint_steps=ckpts, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"standard transformer, forward, seed {seed}", prefetch=PREFETCH)
    return {"label": f"seed {seed}", "seed": seed, **log, "features": torch.stack(features), "llc": None,
            "phases": phases(log)}


# --------------------------------------------------------------------------------------------
# chapter 2: the CoT model from a random start, the sparse model from the balanced start

def stage_phases(steps, loss) -> dict:
    """Chapter 2's two stages, read off a loss curve by chapter 2's own rule
    (:func:`helpers.multistep_gd.analysis.fall_steps`): ``"slow stage ends"``, the first step
    with the loss below half its start; ``"fast stage ends"``, below 1% of it (None where it
    never falls that far)."""
    t_half, t_end = fall_steps(steps, loss)
    return {"slow stage ends": t_half, "fast stage ends": t_end}


def gd_run(kind: str, seed: int, cfg: Sizes, setting: SettingConfig = GD_SETTING,
           progress: bool | None = None) -> dict:
    """Chapter 2's models on teacher-forced CoT, with the chapter's optimisers:

    - ``"cot"``: the full LSA from a random start (std :data:`COT_INIT_STD`, seed ``seed``), Adam
      with a cosine schedule, ``cot_steps`` steps;
    - ``"balanced"``: the sparse model from ``V_31 = −εI, W_13 = εI`` (ε = :data:`BALANCED_INIT`),
      plain GD, ``balanced_steps`` steps.

    Step ``s`` trains on chapter 2's batch ``(seed, s)``. The phase metric is the CoT loss on a
    fixed batch of 2048 prompts (seed ``seed + 1``, as in chapter 2), and the phases its two stages
    (:func:`stage_phases`). Features: the teacher-forced next iterates ŵ_{j+1} on ``gd_probe``
    held-out prompts, (gd_probe · k · d,) per checkpoint.
    """
    if kind not in ("cot", "balanced"):
        raise ValueError(f"kind must be 'cot' or 'balanced'; got {kind!r}")
    d = setting.d
    if kind == "cot":
        model = LinearSelfAttention(d, init_std=COT_INIT_STD, generator=torch_generator(seed))
        steps = cfg.cot_steps
        opt = torch.optim.Adam(model.parameters(), lr=COT_LR)
        sched, clip = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps), 1.0
    else:
        model = SparseLSA(d, V31=-BALANCED_INIT * torch.eye(d), W13=BALANCED_INIT * torch.eye(d))
        steps = cfg.balanced_steps
        opt, sched, clip = torch.optim.SGD(model.parameters(), lr=BALANCED_LR), None, 10.0
    fixed = batch_fn(setting, 2048, seed + 1)(0)
    P, W = held_out_prompts(setting, cfg.gd_probe)
    keep = set(llc_steps(steps, cfg.llc_points))
    log = {"step": [], "loss": []}
    features, params = [], {}

    def on_checkpoint(step, m):
        with torch.no_grad():
            log["step"].append(int(step))
            log["loss"].append(cot_loss(m, fixed).item())
            features.append(teacher_forced(m, P.X, P.y, W[:, :-1]).reshape(-1).float())
        if step in keep:
            params[step] = [p.detach().clone() for p in m.parameters()]

    ckpts = sorted(set(checkpoint_schedule(steps, every=cfg.gd_every, n_log=40)) | keep)
    train(model, cot_loss, batch_fn(setting, cfg.gd_batch, seed), steps=steps, optimizer=opt, scheduler=sched,
          grad_clip=clip, checkpoint_steps=ckpts, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"{'CoT, random start' if kind == 'cot' else 'balanced start'}, seed {seed}")
    llc = LLC[kind]
    batch_at = _sgld_batches(lambda s, stream, i: batch_fn(setting, llc.batch, s)(stream * 1_000_000 + i), seed)
    return {"label": f"seed {seed}", "kind": kind, "seed": seed, **log, "features": torch.stack(features),
            "llc": _llc_at(model, params, cot_loss, batch_at, llc, cfg, seed),
            "phases": stage_phases(log["step"], log["loss"])}


# --------------------------------------------------------------------------------------------
# chapter 3: its committed full run

def ridge_record() -> dict:
    """Chapter 3's committed run of its CPU configuration (``results/transient_ridge_cpu/``, trained
    on the same 2-core CPU as this chapter's own runs), read: the joint PCA of its sweep's features
    (all M), the paths of the runs that chapter 3's own summary finds ridge-like first and then crossing to
    dMMSE_M (``ridge_phase`` and ``crossed``), their distances to the two predictors over training
    (``d_ridge``, ``d_dmmse``), their phases by chapter 3's own rules — ``"ridge-like"``, the first
    checkpoint that :func:`helpers.transient_ridge.analysis.ridge_like` accepts, and
    ``"crosses to dMMSE"``, chapter 3's ``t_cross`` — and, in the run of chapter 3's
    ``llc_over_training["M"]`` (if it is one of them), the LLC over training; the others' ``"llc"`` is None.
    Only the runs whose probe features the run stored, those of the joint PCA (the first seed of
    every M, :func:`helpers.transient_ridge.train.feature_groups`), have paths, so only those are read."""
    from ..transient_ridge import train as ridge_train
    from ..transient_ridge.analysis import ridge_like
    R = ridge_train.cpu_store()
    run = R.read_run()
    m, a = R.load_json("metrics.json"), R.load_arrays("arrays.npz")
    sweep = m["sweep"]
    feats = torch.as_tensor(a["features"])                       # (n_checkpoints, G', F): the PCA's groups
    column = {g: i for i, g in enumerate(ridge_train.feature_groups(sweep["groups"], feats.shape[1]))}
    pca = fit_joint_pca([feats[:, i] for i in range(feats.shape[1])], PCA_COMPONENTS)
    steps = [int(s) for s in sweep["step"]]
    dr, dd, dz = (np.asarray(sweep[k], dtype=float) for k in ("d_ridge", "d_dmmse", "d_zero_ridge"))
    several_seeds = len({s["seed"] for s in sweep["summary"]}) > 1
    lot = m["llc_over_training"]
    llc = {"step": [int(s) for s in lot["groups"]], "llc": lot["llc"], "llc_std": lot["llc_std"],
           "init_loss": lot["init_loss"], "settled": lot["settled"], "settings": lot["settings"]}
    runs = []
    for g, summary in enumerate(sweep["summary"]):
        if g not in column or not (summary["ridge_phase"] and summary["crossed"]):
            continue
        M = str(summary["M"])
        like = ridge_like(dr[:, g], dd[:, g], dz[g])
        name = f"M = {M}" + (f", seed {summary['seed']}" if several_seeds else "")
        runs.append({"label": name, "M": M, "step": steps,
                     "d_ridge": dr[:, g].tolist(), "d_dmmse": dd[:, g].tolist(),
                     "path": pca.project(feats[:, column[g]].double()).tolist(),
                     "phases": {"ridge-like": int(steps[int(np.argmax(like))]),
                                "crosses to dMMSE": summary["t_cross"]},
                     "llc": llc if M == str(lot["M"]) else None})
    return {"runs": runs, "explained": pca.explained.tolist(),
            "source": {k: run.get(k) for k in ("git_commit", "date", "command")}}


# --------------------------------------------------------------------------------------------
# the full run

def _paths(records: list[dict]) -> list[float]:
    """Fit one joint PCA to the runs' features and replace each run's features by its path (in place)."""
    pca = fit_joint_pca([r["features"] for r in records], PCA_COMPONENTS)
    for r in records:
        r["path"] = pca.project(r.pop("features").double()).tolist()
    return pca.explained.tolist()


def full_run(mode: str, progress: bool = True) -> RunOutput:
    """Every run of the chapter at ``mode``'s sizes; ``metrics`` holds, per setting, the runs'
    checkpoint steps, phase metric, PCA paths, LLC estimates and phases."""
    cfg = sizes(mode)
    seed_everything(0)
    t0 = time.perf_counter()
    seconds = {}
    tree = [tree_run(label, seed, std, cfg, progress) for label, seed, std in cfg.tree_runs]
    tree_explained = _paths(tree)
    seconds["tree"] = time.perf_counter() - t0
    t = time.perf_counter()
    standard = [standard_run(s, cfg, progress) for s in cfg.std_seeds]
    standard_explained = _paths(standard)
    seconds["standard"] = time.perf_counter() - t
    gd = {}
    for kind in ("cot", "balanced"):
        t = time.perf_counter()
        runs = [gd_run(kind, s, cfg, progress=progress) for s in cfg.gd_seeds]
        gd[kind] = {"runs": runs, "explained": _paths(runs)}
        seconds[kind] = time.perf_counter() - t
    ridge = ridge_record()
    seconds["total"] = time.perf_counter() - t0
    metrics = {"sizes": asdict(cfg), "llc_settings": {k: asdict(v) for k, v in LLC.items()},
               "gd_setting": asdict(GD_SETTING),
               "tree": {"runs": tree, "explained": tree_explained},
               "standard": {"runs": standard, "explained": standard_explained},
               "cot": gd["cot"], "balanced": gd["balanced"],
               "ridge": ridge, "seconds": seconds}
    seeds = sorted({s for _, s, _ in cfg.tree_runs} | set(cfg.gd_seeds) | set(cfg.std_seeds))
    return RunOutput(metrics=metrics, seeds=seeds, device=device_name(torch.device("cpu")),
                     seconds=seconds["total"])


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/one_lens/``)."""
    return ResultStore(CHAPTER, module="helpers.one_lens", schema=SCHEMA, root=root)


@lru_cache(maxsize=1)
def _smoke() -> ResultStore:
    from .claims import evaluate
    out = store(output_root("smoke"))
    run = full_run("smoke", progress=False)
    out.save_run(run, evaluate(run.metrics), mode="smoke")
    return out


def load(mode: str | None = None) -> ResultStore:
    """The results a page shows: in smoke mode a fresh smoke run (seconds, every code path; its
    numbers mean nothing; once per process), otherwise the committed full run (``results/one_lens/``)."""
    mode = get_mode() if mode is None else mode
    if mode == "smoke":
        return _smoke()
    out = store()
    out.read_run()   # a clear error naming the command if the results are missing or stale
    return out
