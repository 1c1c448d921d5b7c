"""What trains: the chapter's settings and sizes, batches, training losses, the four training
functions, and the full run that measures everything the claims need.

- :class:`SettingConfig` — one task setting ``(d, n)`` with its CoT length ``k`` and GD step ``η``;
- :class:`Sizes` — every size of a run, declared for the three modes in :func:`sizes`;
- :func:`batch_fn`, :func:`cot_loss`, :func:`no_cot_loss`, :func:`looped_loss` — what training sees;
- :func:`train_no_cot`, :func:`train_cot`, :func:`train_balanced`, :func:`train_looped` — each trains
  one model with :func:`helpers.train` and returns it with its :class:`~helpers.training.History`;
- :func:`query_batch_fn`, :func:`looped_query_loss`, :func:`train_looped_query` — the looped layer on
  in-context regression (predicting the query's label);
- :func:`full_run` — every model at a mode's sizes, and the ``metrics`` that
  :func:`helpers.multistep_gd.claims.evaluate` judges; :func:`store` — where it is saved.

The chapter's matrices are (2d+2)×(2d+2) = 22×22, so every experiment runs on the CPU by
design (a GPU would mostly wait on kernel launches); the committed full run took about fourteen
minutes (862 s) on two CPU threads.

Used in: book/multistep_gd/02_no_cot_vs_cot.ipynb, 03_generalisation_and_looping.ipynb and
``python -m helpers.multistep_gd``.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from ..checks import check_int
from ..device import device_name, seed_everything
from ..modes import by_mode
from ..results import ResultStore, RunOutput
from ..seeds import step_generator, torch_generator
from ..training import checkpoint_schedule, train
from .analysis import (
    best_gd_query,
    effective_eta,
    generalisation_over_kappa,
    generalisation_over_n,
    held_out_prompts,
    no_cot_optimum,
    recovery_curve,
    sign_flip_step,
    sparsity_report,
    two_stage_times,
)
from .claims import K_RECOVERY
from .data import gd_iterates, sample_prompts, squared_error
from .models import (
    LinearSelfAttention,
    QueryLSA,
    SparseLSA,
    looped_predict,
    looped_query_predict,
    no_cot_predict,
    rollout,
    teacher_forced,
)

CHAPTER = "multistep_gd"
SCHEMA = 2
SEED = 0
TEST_NS = (40, 60, 80, 120, 160)  # other n for the generalisation model (trained at n = 80, η = 0.8)
KAPPAS = (1, 2, 5, 10, 20, 50, 100)
PREFETCH = 4         # batches drawn ahead in a worker process (drawing prompts and GD iterates costs
#                      as much as the training step at n = 160)
CURVE_PROMPTS = 2000  # held-out prompts of the training curves (the final measurements use Sizes.test)


@dataclass(frozen=True)
class SettingConfig:
    """One (d, n) setting with its CoT length k and GD step η (chosen stable, see the chapter).

    ``d``: dimension of x and w* (>= 1); ``n``: examples per prompt (>= 1); ``k``: CoT steps, the
    number of GD iterates ``w_1 … w_k`` the model is trained on (>= 1); ``eta``: the GD step η > 0.
    """

    d: int
    n: int
    k: int
    eta: float

    def __post_init__(self):
        check_int("d", self.d, 1)
        check_int("n", self.n, 1)
        check_int("k", self.k, 1)
        if not (isinstance(self.eta, (int, float)) and self.eta > 0):
            raise ValueError(f"eta (the GD step η) must be a number > 0; got {self.eta!r}")


@dataclass(frozen=True)
class Sizes:
    """Every size of a run.

    ``settings``: the settings trained without and with CoT (the full run: one per n of the
    error-vs-k figure, each with the step :func:`~helpers.multistep_gd.stable_step` allows);
    ``generalisation``: the setting whose models are tested on other n and other Σ; Adam ``batch``
    and ``steps`` (no CoT, CoT); ``k_max``: CoT steps of the error-vs-k curves (past the trained
    ``k``); ``loop_steps`` and ``loops``: the looped layer on weight prediction (the book's
    extension); ``query_steps`` and ``query_loops``: the looped layer on the query prediction, one
    model per loop count L; ``balanced_steps`` (plain GD from the balanced inits); ``test``
    held-out prompts.
    """

    settings: tuple[SettingConfig, ...]
    generalisation: SettingConfig
    batch: int
    steps: int
    k_max: int
    loop_steps: int
    loops: int
    query_steps: int
    query_loops: tuple[int, ...]
    balanced_steps: int
    test: int

    def __post_init__(self):
        if not self.settings or not all(isinstance(s, SettingConfig) for s in self.settings):
            raise ValueError(f"settings must be a non-empty tuple of SettingConfig; got {self.settings!r}")
        if not isinstance(self.generalisation, SettingConfig):
            raise ValueError(f"generalisation must be a SettingConfig; got {self.generalisation!r}")
        for name in ("batch", "steps", "k_max", "loop_steps", "loops", "query_steps", "balanced_steps", "test"):
            check_int(name, getattr(self, name), 1)
        if not self.query_loops or 1 not in self.query_loops or len(self.query_loops) < 2:
            raise ValueError(f"query_loops must hold 1 (the single pass) and at least one loop count > 1; "
                             f"got {self.query_loops!r}")
        for L in self.query_loops:
            check_int("query_loops[i]", L, 1)


# The full run's settings: d = 10 (the paper's), n from 2d to 16d, each with the largest step GD
# allows there (stable_step(10, n); tests/test_multistep_gd.py checks these values against it).
FULL_SETTINGS = (SettingConfig(10, 20, 20, 0.4), SettingConfig(10, 40, 20, 0.6), SettingConfig(10, 80, 20, 0.8),
                 SettingConfig(10, 160, 20, 1.0))


def sizes(mode: str | None = None) -> Sizes:
    """The chapter's sizes per mode (all three declared here, so a reader sees them together)."""
    smoke_setting = SettingConfig(4, 8, 4, 0.5)
    return by_mode(
        smoke=Sizes(settings=(smoke_setting,), generalisation=smoke_setting, batch=64, steps=60, k_max=10,
                    loop_steps=40, loops=4, query_steps=40, query_loops=(1, 2), balanced_steps=60, test=256),
        default=Sizes(settings=FULL_SETTINGS[:1], generalisation=FULL_SETTINGS[2], batch=256, steps=1000, k_max=40,
                      loop_steps=500, loops=10, query_steps=1000, query_loops=(1, 2, 4), balanced_steps=1500,
                      test=2000),
        full=Sizes(settings=FULL_SETTINGS, generalisation=FULL_SETTINGS[2], batch=512, steps=1500, k_max=40,
                   loop_steps=2000, loops=10, query_steps=1500, query_loops=(1, 2, 4, 8), balanced_steps=2000,
                   test=10_000),
        mode=mode,
    )


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/multistep_gd/``)."""
    return ResultStore(CHAPTER, module="helpers.multistep_gd", schema=SCHEMA, root=root)


# --------------------------------------------------------------------------------------------
# batches and losses


def batch_fn(setting: SettingConfig, batch: int, seed: int, Sigma: torch.Tensor | None = None,
             iterates: bool = True):
    """``batch_fn(step) -> (Prompts, GD iterates (B, k+1, d))``, the same for a step in any run
    (drawn from :func:`helpers.step_generator` ``(seed, step)``). With ``iterates=False`` the
    second element is None (for the losses that need only ``w*``; the prompts are the same)."""
    check_int("batch", batch, 1)

    def draw(step: int):
        P = sample_prompts(batch, setting.n, setting.d, Sigma=Sigma, generator=step_generator(seed, step))
        return P, gd_iterates(P.X, P.y, setting.eta, setting.k, warn=False) if iterates else None
    return draw


def cot_loss(model: LinearSelfAttention, batch) -> torch.Tensor:
    """Teacher-forced CoT loss ``Σ_j ||ŵ_{j+1}(Z_j) − w_{j+1}||²``, averaged over prompts."""
    P, W = batch
    return squared_error(teacher_forced(model, P.X, P.y, W[:, :-1]), W[:, 1:]).sum(1).mean()


def no_cot_loss(model: LinearSelfAttention, batch) -> torch.Tensor:
    """``||ŵ(Z_0) − w*||²``, averaged over prompts: the model must output ``w*`` in one pass."""
    P, _ = batch
    return squared_error(no_cot_predict(model, P.X, P.y), P.w_star).mean()


def looped_loss(loops: int):
    """``||ŵ_L − w*||²`` after ``loops`` applications of the shared layer (trained end to end)."""
    check_int("loops", loops, 1)

    def loss(model: LinearSelfAttention, batch) -> torch.Tensor:
        P, _ = batch
        return squared_error(looped_predict(model, P.X, P.y, loops), P.w_star).mean()
    return loss


# --------------------------------------------------------------------------------------------
# training


def _adam(model: torch.nn.Module, lr: float, steps: int):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1))


def train_no_cot(setting: SettingConfig, *, steps: int, batch: int, seed: int = 0, lr: float = 3e-3,
                 init_std: float = 0.01, test: int = 2000, progress: bool | None = None):
    """Train a full LSA to output ``w*`` in one pass; eval: test error at checkpoints."""
    model = LinearSelfAttention(setting.d, init_std=init_std, generator=torch_generator(seed))
    P, _ = held_out_prompts(setting, test)
    opt, sched = _adam(model, lr, steps)
    history = train(model, no_cot_loss, batch_fn(setting, batch, seed, iterates=False), steps=steps, optimizer=opt,
                    scheduler=sched,
                    grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20),
                    eval_fn=lambda m: {"test_error":
                                       squared_error(no_cot_predict(m, P.X, P.y), P.w_star).mean().item()},
                    progress=progress, desc=f"no CoT (d={setting.d}, n={setting.n})", prefetch=PREFETCH)
    return model, history


def weight_snapshot(model: LinearSelfAttention) -> dict[str, torch.Tensor]:
    """Detached copies ``{"W_PV": (2d+2, 2d+2), "W_KQ": (2d+2, 2d+2)}`` of the model's matrices."""
    W_PV, W_KQ = model.matrices()
    return {"W_PV": W_PV.detach().clone(), "W_KQ": W_KQ.detach().clone()}


def train_cot(setting: SettingConfig, *, steps: int, batch: int, seed: int = 0, lr: float = 3e-3,
              init_std: float = 0.01, test: int = 2000, snapshots: int = 6, progress: bool | None = None):
    """Train a full LSA (every entry trainable, random init) on teacher-forced CoT.

    Returns ``(model, history, snaps)`` where ``snaps`` maps a few steps (log-spaced, step 0
    included) to ``W^{PV}``, ``W^{KQ}``. Eval at checkpoints: rollout error after k steps (mean,
    median) and deviation from exact GD.
    """
    check_int("snapshots", snapshots, 1)
    model = LinearSelfAttention(setting.d, init_std=init_std, generator=torch_generator(seed))
    P, W = held_out_prompts(setting, test)
    snap_steps = sorted(set(int(round(s)) for s in torch.logspace(0, torch.log10(torch.tensor(float(steps))).item(),
                                                                  snapshots - 1).tolist()) | {0})
    snaps: dict[int, dict[str, torch.Tensor]] = {}

    def eval_fn(m):
        R = rollout(m, P.X, P.y, setting.k)
        e = squared_error(R[:, -1], P.w_star)
        return {"rollout_mean": e.mean().item(), "rollout_median": e.median().item(),
                "deviation_from_gd": squared_error(R, W).mean().item()}

    opt, sched = _adam(model, lr, steps)
    history = train(model, cot_loss, batch_fn(setting, batch, seed), steps=steps, optimizer=opt, scheduler=sched,
                    grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=sorted(set(checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20))
                                            | set(snap_steps)),
                    eval_fn=eval_fn,
                    on_checkpoint=lambda s, m: snaps.__setitem__(s, weight_snapshot(m)) if s in snap_steps else None,
                    progress=progress, desc=f"CoT (d={setting.d}, n={setting.n}, k={setting.k})", prefetch=PREFETCH)
    return model, history, snaps


def train_balanced(setting: SettingConfig, *, steps: int, batch: int, init: float = 1e-3, lr: float = 0.01,
                   seed: int = 0, wrong_sign: bool = False, progress: bool | None = None):
    """Plain gradient descent (a proxy for gradient flow) on the sparse model from the small balanced
    start ``V_31 = −εI, W_13 = εI`` (ε = ``init``), or with ``wrong_sign`` from ``V_31 = +εI, W_13 = εI``
    (just as balanced, ``V_31ᵀV_31 = W_13 W_13ᵀ = ε²I``, but the product is a step *up* the loss).

    Eval at checkpoints (dense early, log-spaced): ``v = −mean diag V_31``, ``w = mean diag W_13``,
    the off-diagonal size of both, and the CoT loss on a fixed batch (seed ``seed + 1``).
    """
    model = SparseLSA(setting.d, V31=(init if wrong_sign else -init) * torch.eye(setting.d),
                      W13=init * torch.eye(setting.d))
    fixed = batch_fn(setting, 2048, seed + 1)(0)

    def eval_fn(m):
        eye = torch.eye(setting.d, dtype=torch.bool)
        return {"v": (-m.V31.diag().mean()).item(), "w": m.W13.diag().mean().item(),
                "off_diagonal": max(m.V31[~eye].abs().max().item(), m.W13[~eye].abs().max().item()),
                "loss": cot_loss(m, fixed).item()}

    history = train(model, cot_loss, batch_fn(setting, batch, seed), steps=steps,
                    optimizer=torch.optim.SGD(model.parameters(), lr=lr),
                    grad_clip=10.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 100), n_log=40), eval_fn=eval_fn,
                    progress=progress, desc="wrong-sign balanced init" if wrong_sign else "balanced init")
    return model, history


def train_looped(setting: SettingConfig, *, loops: int, steps: int, batch: int, seed: int = 0, lr: float = 1e-2,
                 init_std: float = 0.01, sparse: bool = True, test: int = 2000, progress: bool | None = None):
    """Train an LSA applied ``loops`` times (weights shared), end to end on ``||ŵ_L − w*||²``.

    ``sparse=True`` trains the ``V_31``, ``W_13`` parameterisation from a random initialisation
    of std ``init_std``; ``sparse=False`` trains full matrices (the full run does not use them; the
    looped map is a high-degree polynomial of the weights, which may overflow on rare prompts).
    """
    g = torch_generator(seed)
    if sparse:
        model = SparseLSA(setting.d, V31=init_std * torch.randn(setting.d, setting.d, generator=g),
                          W13=init_std * torch.randn(setting.d, setting.d, generator=g))
    else:
        model = LinearSelfAttention(setting.d, init_std=init_std, generator=g)
    P, _ = held_out_prompts(setting, test)
    opt, sched = _adam(model, lr, steps)
    history = train(model, looped_loss(loops), batch_fn(setting, batch, seed, iterates=False), steps=steps,
                    optimizer=opt, scheduler=sched, grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20),
                    eval_fn=lambda m: {"test_error":
                                       squared_error(looped_predict(m, P.X, P.y, loops), P.w_star).mean().item()},
                    progress=progress, desc=f"looped x{loops}")
    return model, history


# --------------------------------------------------------------------------------------------
# the looped layer on the query-prediction task (in-context regression)


QUERY_STREAM = 7000  # offset of the queries' random stream from the prompts' (same seed, same step)
QUERY_LR = 3e-3      # Adam's learning rate for every loop count (at 1e-2, L = 8 diverges)


def query_batch_fn(setting: SettingConfig, batch: int, seed: int, Sigma: torch.Tensor | None = None,
                   dtype: torch.dtype = torch.float32):
    """``batch_fn(step) -> (Prompts, x_q (B, d), y_q (B,))``: prompts as :func:`batch_fn` and a query
    ``x_q ~ N(0, Σ)`` per prompt with its label ``y_q = <w*, x_q>`` (all in ``dtype``)."""
    check_int("batch", batch, 1)

    def draw(step: int):
        P = sample_prompts(batch, setting.n, setting.d, Sigma=Sigma, generator=step_generator(seed, step), dtype=dtype)
        Q = sample_prompts(batch, 1, setting.d, Sigma=Sigma, generator=step_generator(seed + QUERY_STREAM, step),
                           dtype=dtype)
        x_q = Q.X[:, :, 0]
        return P, x_q, torch.einsum("bd,bd->b", x_q, P.w_star)
    return draw


def looped_query_loss(loops: int):
    """Mean squared error of ``ŷ_q`` after ``loops`` applications of the shared layer (end to end)."""
    check_int("loops", loops, 1)

    def loss(model: QueryLSA, batch) -> torch.Tensor:
        P, x_q, y_q = batch
        return ((looped_query_predict(model, P.X, P.y, x_q, loops) - y_q) ** 2).mean()
    return loss


def train_looped_query(setting: SettingConfig, *, loops: int, steps: int, batch: int, seed: int = 0,
                       lr: float = QUERY_LR, init_std: float = 0.01, test: int = 2000,
                       dtype: torch.dtype = torch.float64, progress: bool | None = None):
    """Train a :class:`QueryLSA` applied ``loops`` times (weights shared; ``loops = 1`` is the single
    pass with the same parameters) end to end on the query prediction of ``setting``'s prompts.

    Every loop count starts from the same initialisation (seed ``seed``) and trains with the same
    Adam schedule. The default ``float64``: the looped map is a polynomial of degree ``3^L`` in the
    weights, and in ``float32`` rare prompts overflow within a few hundred steps at ``L = 8``.

    Returns ``(model, history)``; ``history`` evaluates ``test_error`` (mean squared error of
    ``ŷ_q`` on ``test`` held-out prompts) at checkpoints.
    """
    model = QueryLSA(setting.d, init_std=init_std, generator=torch_generator(seed), dtype=dtype)
    P, x_q, y_q = query_batch_fn(setting, test, HELD_OUT_QUERY_SEED, dtype=dtype)(0)
    opt, sched = _adam(model, lr, steps)
    history = train(model, looped_query_loss(loops), query_batch_fn(setting, batch, seed, dtype=dtype), steps=steps,
                    optimizer=opt, scheduler=sched, grad_clip=1.0, log_every=max(1, steps // 100),
                    checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // 20), n_log=20),
                    eval_fn=lambda m: {"test_error": ((looped_query_predict(m, P.X, P.y, x_q, loops) - y_q) ** 2)
                                       .mean().item()},
                    progress=progress, desc=f"looped x{loops}, query prediction", prefetch=PREFETCH)
    return model, history


HELD_OUT_QUERY_SEED = 424242


# --------------------------------------------------------------------------------------------
# the full run


def full_run(mode: str, progress: bool = True) -> RunOutput:
    """Train every model of the chapter at ``mode``'s sizes and measure what the claims need.

    ``metrics`` (→ ``metrics.json``): ``sizes``; per setting (``settings[i]``) the setting, η* and
    the one-step optimum, the no-CoT curve with its final mean and median error, fitted η̂ and
    residual, the CoT curves and sparsity, and ``recovery`` (:func:`recovery_curve`, k = 0 …
    ``k_max``); ``looped`` (weight prediction, the first setting); ``looped_query`` (per loop count
    L: the test curve, final error, and the best GD baseline with L steps); ``balanced`` and
    ``wrong_sign`` (the two balanced starts); ``generalisation_n`` and ``generalisation_kappa``
    (the ``generalisation`` setting's models). ``files``: ``weights.npz``, the first setting's CoT
    ``W^{PV}``, ``W^{KQ}`` snapshots as ``s0_{W_PV|W_KQ}_{step}``.
    """
    seed_everything(SEED)
    cfg = sizes(mode)
    t0 = time.perf_counter()
    metrics: dict = {"settings": [], "sizes": {k: v for k, v in dataclasses.asdict(cfg).items()
                                               if k not in ("settings", "generalisation")}}
    metrics["sizes"]["generalisation"] = dataclasses.asdict(cfg.generalisation)
    weights = {}
    models = {}
    todo = list(cfg.settings) + ([cfg.generalisation] if cfg.generalisation not in cfg.settings else [])
    for i, setting in enumerate(todo):
        eta_star, theory = no_cot_optimum(setting)
        P, _ = held_out_prompts(setting, cfg.test)
        curve_test = min(cfg.test, CURVE_PROMPTS)

        timer = time.perf_counter()
        no_cot, h_no = train_no_cot(setting, steps=cfg.steps, batch=cfg.batch, test=curve_test, progress=progress)
        eta_hat, residual = effective_eta(no_cot, P)
        t_no = time.perf_counter() - timer

        timer = time.perf_counter()
        cot, h_cot, snaps = train_cot(setting, steps=cfg.steps, batch=cfg.batch, test=curve_test, progress=progress)
        t_cot = time.perf_counter() - timer
        models[setting] = (cot, no_cot)
        if setting not in cfg.settings:
            continue
        recovery = recovery_curve(cot, no_cot, setting, cfg.k_max, cfg.test)
        metrics["settings"].append({
            "setting": dataclasses.asdict(setting), "eta_star": eta_star, "one_step_error_theory": theory,
            "no_cot": {"eval_steps": h_no.eval_steps, "test_error": h_no.evals["test_error"], "eta_hat": eta_hat,
                       "residual": residual, "test_mean": recovery["no_cot_mean"],
                       "test_median": recovery["no_cot_median"], "seconds": t_no},
            "cot": {"eval_steps": h_cot.eval_steps, **h_cot.evals, "sparsity": sparsity_report(cot), "seconds": t_cot},
            "recovery": recovery,
        })
        if i == 0:
            for step, snap in snaps.items():
                for name, M in snap.items():
                    weights[f"s0_{name}_{step}"] = M

    first = cfg.settings[0]
    cot, no_cot = models[first]
    timer = time.perf_counter()
    looped, h_loop = train_looped(first, loops=cfg.loops, steps=cfg.loop_steps, batch=cfg.batch,
                                  test=min(cfg.test, CURVE_PROMPTS), progress=progress)
    P, _ = held_out_prompts(first, cfg.test)
    with torch.no_grad():
        per_loop = squared_error(looped_predict(looped, P.X, P.y, cfg.loops, return_all=True),
                                 P.w_star.unsqueeze(1)).mean(0)
    metrics["looped"] = {"eval_steps": h_loop.eval_steps, "test_error": h_loop.evals["test_error"],
                         "per_loop": per_loop.tolist(), "loops": cfg.loops,
                         "eta_hat": sparsity_report(looped)["eta_hat"], "seconds": time.perf_counter() - timer}

    metrics["looped_query"] = looped_query_study(first, cfg, progress=progress)

    for key, wrong in (("balanced", False), ("wrong_sign", True)):
        timer = time.perf_counter()
        _, h_b = train_balanced(first, steps=cfg.balanced_steps, batch=cfg.batch, wrong_sign=wrong, progress=progress)
        metrics[key] = {"eval_steps": h_b.eval_steps, **h_b.evals, "stages": two_stage_times(h_b),
                        "sign_flip": sign_flip_step(h_b), "seconds": time.perf_counter() - timer}

    general = cfg.generalisation
    cot, no_cot = models[general]
    k = min(K_RECOVERY, general.k)
    metrics["generalisation_n"] = generalisation_over_n(cot, no_cot, general, list(TEST_NS), cfg.test, k=k)
    metrics["generalisation_kappa"] = generalisation_over_kappa(cot, no_cot, general, list(KAPPAS), cfg.test, k=k)
    seconds = time.perf_counter() - t0
    metrics["seconds"] = seconds
    return RunOutput(metrics=metrics, seeds=[SEED], device=device_name(torch.device("cpu")), seconds=seconds,
                     files={"weights.npz": weights})


def looped_query_study(setting: SettingConfig, cfg: Sizes, progress: bool | None = True) -> dict:
    """The looped layer on the query prediction at every loop count of ``cfg.query_loops``.

    Returns ``{"loops": [L…], "test_error": [final error per L], "curves": [{eval_steps,
    test_error} per L], "gd_error", "gd_eta": [best L-step GD per L], "seconds": [per L]}``; the
    errors are on ``cfg.test`` held-out prompts (seed ``HELD_OUT_QUERY_SEED``).
    """
    P, x_q, y_q = query_batch_fn(setting, cfg.test, HELD_OUT_QUERY_SEED, dtype=torch.float64)(0)
    out: dict = {"loops": list(cfg.query_loops), "test_error": [], "curves": [], "gd_error": [], "gd_eta": [],
                 "seconds": []}
    for L in cfg.query_loops:
        timer = time.perf_counter()
        model, h = train_looped_query(setting, loops=L, steps=cfg.query_steps, batch=cfg.batch,
                                      test=min(cfg.test, CURVE_PROMPTS), progress=progress)
        with torch.no_grad():
            err = ((looped_query_predict(model, P.X, P.y, x_q, L) - y_q) ** 2).mean().item()
        gd_err, gd_eta = best_gd_query(P, x_q, y_q, L)
        out["test_error"].append(err)
        out["curves"].append({"eval_steps": h.eval_steps, "test_error": h.evals["test_error"]})
        out["gd_error"].append(gd_err)
        out["gd_eta"].append(gd_eta)
        out["seconds"].append(time.perf_counter() - timer)
    return out
