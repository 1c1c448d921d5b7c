"""Chapter 1's training: the task configurations, sizes per mode, training functions and the full run.

- :class:`TheoryConfig` (:data:`THEORY`), :class:`StandardConfig` (:data:`STANDARD`),
  :class:`FilterSortConfig` (:data:`FILTER_SORT`) — the training distributions (and, for the
  theory model, the paper's learning rates and head counts);
- :class:`Sizes`, :func:`sizes` — steps, batch and test-set sizes per mode (smoke / default / full);
- :func:`train_theory` — the theory model (1 head backward / 2 heads forward), SGD from zero on
  perfect binary trees, with test accuracy on unseen random trees, ``H`` and head usage logged
  at checkpoints;
- :func:`train_transformer` — the standard transformer (Adam, cross-entropy) on random trees,
  with chain of thought (``"forward"``) or without (``"direct"``), exact-path accuracy by depth
  and attention snapshots of one fixed example logged at checkpoints;
- :func:`train_filter_sort` — the standard transformer on filter → sort, with or without the
  intermediate stage;
- the full run: :func:`full_run` (every experiment at a mode's sizes → :class:`~helpers.RunOutput`
  whose ``metrics`` hold every number :func:`helpers.tree_cot.claims.evaluate` needs),
  :func:`store`, :func:`load`.

Each training batch is drawn from ``numpy_generator(seed, step)`` (:mod:`helpers.seeds`), so a
run can be repeated exactly, step by step. The standard transformer's initialisation draws from
torch's global generator (``torch.manual_seed(seed)`` before building it).

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..checks import check_int
from ..device import device_name, seed_everything
from ..modes import by_mode, set_mode
from ..results import ResultStore, RunOutput
from ..seeds import numpy_generator, torch_generator
from ..training import checkpoint_schedule, train
from .analysis import (
    attention_for_example,
    block_summary,
    by_depth,
    evaluate,
    exact_path_accuracy,
    filter_sort_evaluate,
    greedy_decode,
    h_summary,
    head_usage,
    per_step_accuracy,
    phases,
    random_child_baseline,
    robustness,
    roles,
)
from .data import (
    FILTER_SORT_TASKS,
    Encoded,
    FilterSortExample,
    encode,
    filter_sort_encode,
    filter_sort_sample,
    make_example,
    perfect_batch,
    random_tree,
    robustness_sets,
    test_trees,
)
from .models import TheoryModel, TransformerConfig, TreeTransformer, ce_loss, mse_loss

CHAPTER = "tree_cot"
SCHEMA = 2  # 2: the model predicts its own stage; seeds per model; zero-init and symmetry-broken runs

# Offsets of the standard transformer's and filter → sort's batch streams from the run's seed,
# so that no two experiments of one seed read the same batches.
STANDARD_STREAM = 1000
FILTER_SORT_STREAM = 2000

# The standard transformer's random trees are drawn in Python: a worker process draws the next
# batches while the model trains (helpers.training.train's ``prefetch``).
PREFETCH = 4


# --------------------------------------------------------------------------------------------
# configurations


@dataclass(frozen=True)
class TheoryConfig:
    """The paper's training set for one task: perfect ``k``-ary trees of depth ``depth`` with labels
    drawn from ``vocab`` (N), SGD learning rate ``lr``, and ``heads`` heads of the theory model."""

    vocab: int
    depth: int
    lr: float
    heads: int
    k: int = 2

    def __post_init__(self):
        check_int("vocab", self.vocab, 2)
        check_int("depth", self.depth, 1)
        check_int("heads", self.heads, 1)
        check_int("k", self.k, 1)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr}")


# The paper's training sets (perfect binary trees; labels drawn from the vocabulary) and learning rates.
THEORY = {
    "backward": TheoryConfig(vocab=31, depth=4, lr=1.0, heads=1),
    "forward": TheoryConfig(vocab=25, depth=3, lr=0.2, heads=2),
}


@dataclass(frozen=True)
class StandardConfig:
    """The standard transformer's training distribution: random trees with 0–``c`` children per
    node, depth <= ``max_depth``, <= ``max_nodes`` nodes, labels from ``vocab`` (N)."""

    vocab: int = 32
    c: int = 3
    max_depth: int = 5
    max_nodes: int = 24

    def __post_init__(self):
        check_int("vocab", self.vocab, 2)
        check_int("c", self.c, 1)
        check_int("max_depth", self.max_depth, 1)
        check_int("max_nodes", self.max_nodes, 2)


STANDARD = StandardConfig()


@dataclass(frozen=True)
class FilterSortConfig:
    """Filter → sort instances: ``n_items`` (inclusive range) distinct values from ``vocab``, ``colours`` colours."""

    vocab: int = 32
    n_items: tuple[int, int] = (4, 12)
    colours: int = 2

    def sample(self, n: int, rng=None) -> list[FilterSortExample]:
        """``n`` instances from this distribution (``rng``: a NumPy Generator, an int seed or None)."""
        return filter_sort_sample(n, self.vocab, rng, n_items=self.n_items, colours=self.colours)


FILTER_SORT = FilterSortConfig()


# The spread of the small random initialisation that breaks the two heads' symmetry (an extension:
# the paper starts from zero, where two heads with the same readout stay identical forever).
SYMMETRY_BREAK_STD = 0.1


@dataclass(frozen=True)
class Sizes:
    """Steps, batch sizes, seeds and test-set sizes of one mode (all experiments of the chapter)."""

    theory_backward_steps: int  # SGD steps of the one-head theory model (backward task)
    theory_forward_steps: int   # SGD steps of the two-head theory model (forward task)
    batch: int                  # theory models' batch size
    test: int                   # unseen test trees per evaluation
    n_checkpoints: int          # checkpoints per training run (curves, blocks, head usage, attention)
    broken_seeds: tuple[int, ...]  # seeds of the forward theory model from a small random init (symmetry broken)
    broken_long_steps: int      # SGD steps of the same symmetry-broken seeds trained longer (does time finish
                                # the split?)
    cot_steps: int              # Adam steps of the standard transformer with CoT
    direct_steps: int           # Adam steps of the standard transformer without CoT
    std_batch: int              # standard transformer's batch size (also filter → sort)
    std_seeds: tuple[int, ...]  # seeds of the one-layer standard transformers (CoT and direct)
    robust_n: int               # trees per value of each robustness axis
    layers: tuple[int, ...]     # depths of the direct (no-CoT) transformers (deeper ones: first seed only)
    fs_steps: int               # Adam steps per filter → sort model
    fs_test: int                # filter → sort test instances

    def __post_init__(self):
        for name in ("broken_seeds", "std_seeds", "layers"):
            if len(getattr(self, name)) < 1:
                raise ValueError(f"{name} must hold at least one value")
        if not self.broken_long_steps > self.theory_forward_steps:
            raise ValueError(f"broken_long_steps must be > theory_forward_steps ({self.theory_forward_steps}); "
                             f"got {self.broken_long_steps}")

    def theory_steps(self, task: str) -> int:
        """Steps of the theory model for ``task`` in ``("backward", "forward")``."""
        if task not in THEORY:
            raise ValueError(f"task must be one of {tuple(THEORY)}; got {task!r}")
        return self.theory_backward_steps if task == "backward" else self.theory_forward_steps

    @property
    def seeds(self) -> list[int]:
        """Every seed the run uses (the zero-initialised theory models use seed 0)."""
        return sorted({0, *self.broken_seeds, *self.std_seeds})

    def as_metrics(self) -> dict:
        """The sizes as stored in ``metrics.json`` (``theory_steps`` and ``std_steps`` per task)."""
        d = asdict(self)
        return {"theory_steps": {"backward": d.pop("theory_backward_steps"), "forward": d.pop("theory_forward_steps")},
                "batch": d.pop("batch"), "test": d.pop("test"), "n_checkpoints": d.pop("n_checkpoints"),
                "std_steps": {"forward": d.pop("cot_steps"), "direct": d.pop("direct_steps")},
                "symmetry_break_std": SYMMETRY_BREAK_STD,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}}


SIZES = {
    "smoke": Sizes(theory_backward_steps=20, theory_forward_steps=20, batch=32, test=64, n_checkpoints=4,
                   broken_seeds=(1,), broken_long_steps=40, cot_steps=20, direct_steps=20, std_batch=32, std_seeds=(0,),
                   robust_n=16, layers=(1, 2), fs_steps=20, fs_test=64),
    "default": Sizes(theory_backward_steps=800, theory_forward_steps=3000, batch=256, test=1000, n_checkpoints=20,
                     broken_seeds=(1,), broken_long_steps=12000, cot_steps=400, direct_steps=1200, std_batch=128,
                     std_seeds=(0,), robust_n=300, layers=(1,), fs_steps=800, fs_test=1000),
    "full": Sizes(theory_backward_steps=2000, theory_forward_steps=4000, batch=256, test=2000, n_checkpoints=20,
                  broken_seeds=(1, 2, 3, 4, 5), broken_long_steps=16000,
                  cot_steps=1000, direct_steps=1500, std_batch=128,
                  std_seeds=(0, 1, 2, 3, 4), robust_n=500, layers=(1, 2, 4), fs_steps=2000, fs_test=2000),
}


def sizes(mode: str | None = None) -> Sizes:
    """The :class:`Sizes` of ``mode`` (default: the current mode, ``BOOK_MODE``)."""
    return by_mode(**SIZES, mode=mode)


# --------------------------------------------------------------------------------------------
# the theory model


def _check_run_args(steps: int, n_checkpoints: int, test: list | None, curve_n: int | None = None,
                    snapshots: int | None = None) -> None:
    """The training functions' shared arguments, named as the caller passed them."""
    check_int("steps", steps, 1)
    check_int("n_checkpoints", n_checkpoints, 1)
    if test is not None and len(test) < 1:
        raise ValueError("test must be None (a default test set) or a non-empty list of examples")
    if curve_n is not None:
        check_int("curve_n", curve_n, 1)
    if snapshots is not None:
        check_int("snapshots", snapshots, 1)


def train_theory(task: str, *, steps: int, batch: int = 256, test: list | None = None, n_checkpoints: int = 20,
                 seed: int = 0, lr: float | None = None, init_std: float = 0.0, snapshots: int = 6,
                 curve_n: int = 300, progress: bool | None = None, resume: tuple | None = None):
    """Train the theory model for ``task`` (``"backward"``: 1 head, ``"forward"``: 2 heads) on :data:`THEORY`.

    Returns ``(model, log)``; ``log`` has, per checkpoint step: the training loss on the curve
    trees; teacher-forced accuracy of climbing (``"backward"``), descending (``"forward"``) and
    the stage switch at the root (``"switch"``); exact-path accuracy of free generation
    (``"exact"``); ``H``'s diagonal/off-diagonal (``"h"``); the entries of every head's key–query
    blocks (``"blocks"``, :func:`~helpers.tree_cot.analysis.block_summary`) and the largest
    difference between heads (``"head_difference"``, max |W_h − W_0|); where the heads look
    (``"usage"``) and their roles (``"roles"``, (heads, 2) traverse/control) — and ``H`` (N × N)
    itself at ``snapshots`` steps. Curves use the first ``curve_n`` test trees; ``log["final"]``
    evaluates the trained model on all of ``test`` (exact-path accuracy overall and by depth;
    stage-switch accuracy for the forward task).

    The model starts at ``W = 0`` (the paper; nothing random) or, with ``init_std > 0``, at
    ``W ~ N(0, init_std²)`` drawn from ``torch_generator(seed)``; step ``s`` trains on
    ``numpy_generator(seed, s)``'s batch.

    ``resume=(model, log)``, what an earlier call returned with the same ``task``, ``seed``,
    ``init_std``, ``batch``, ``lr``, ``test`` and ``curve_n`` but fewer steps, continues that run
    (on a copy of its model) instead of repeating its steps: SGD keeps no state, so the result is
    the run from scratch. The checkpoints and ``H`` snapshots up to the earlier run's end are
    copied from its log, and must be among those it kept.
    """
    if task not in THEORY:
        raise ValueError(f"task must be one of {tuple(THEORY)}; got {task!r}")
    _check_run_args(steps, n_checkpoints, test, curve_n, snapshots)
    spec = THEORY[task]
    V = spec.vocab
    lr = spec.lr if lr is None else lr
    test = test if test is not None else test_trees(256, V)
    curve = test[:curve_n]
    test_batch = encode(curve, V, task)
    checkpoints = checkpoint_schedule(steps, every=max(1, steps // n_checkpoints))
    snap_at = set(checkpoints[:: max(1, len(checkpoints) // snapshots)] + [steps])
    log: dict = {"step": [], "loss": [], "exact": [], "per_step": [], "backward": [], "forward": [], "switch": [],
                 "H": {}, "h": [], "blocks": [], "head_difference": [], "usage": [], "roles": [], "init_std": init_std,
                 "seed": seed, "batch": batch, "lr": lr}
    start = 0
    if resume is None:
        model = TheoryModel(V, spec.heads, init_std=init_std, generator=torch_generator(seed) if init_std else None)
    else:
        model, start = _resumed(resume, log, task, steps, checkpoints, snap_at, test_batch)
    opt = torch.optim.SGD(model.parameters(), lr=lr)

    def on_checkpoint(step, m):
        m.eval()
        with torch.no_grad():
            log["step"].append(step)
            log["loss"].append(mse_loss(m, test_batch).item())
            acc = per_step_accuracy(m, test_batch)
            for k in ("backward", "forward", "switch"):
                log[k].append(acc.get(k))
            log["per_step"].append(acc["all"])
            log["exact"].append(float(exact_path_accuracy(greedy_decode(m, curve, V, task), curve, V, task).mean()))
            log["h"].append(h_summary(m))
            log["blocks"].append(block_summary(m))
            log["head_difference"].append((m.W - m.W[:1]).abs().max().item())
            log["usage"].append(head_usage(m, test_batch))
            log["roles"].append(roles(m, test_batch).tolist())
            if step in snap_at:
                log["H"][step] = m.H.detach().cpu().numpy().copy()
        m.train()

    train(model, mse_loss, lambda s: theory_batch(task, batch, numpy_generator(seed, s)), steps=steps,
          optimizer=opt, checkpoint_steps=checkpoints, on_checkpoint=on_checkpoint, progress=progress, start_step=start,
          desc=f"theory model, {task}" + (f", seed {seed}, init_std {init_std:g}" if init_std else ""))
    log["final"] = evaluate(model, test, V, task)
    return model, log


def _resumed(resume, log: dict, task: str, steps: int, checkpoints: list[int], snap_at: set[int],
             test_batch: Encoded):
    """:func:`train_theory`'s ``resume``: check it against the new run's settings, copy its
    checkpoints and ``H`` snapshots up to its end into ``log``, and return ``(a copy of its model,
    its step)``."""
    if not (isinstance(resume, tuple) and len(resume) == 2 and isinstance(resume[0], TheoryModel)
            and isinstance(resume[1], dict)):
        raise TypeError("resume must be the (model, log) an earlier train_theory call returned")
    model, old = resume
    if model.n_heads != THEORY[task].heads or model.vocab != THEORY[task].vocab:
        raise ValueError(f"resume's model is not a {task!r} theory model")
    for key in ("seed", "init_std", "batch", "lr"):
        if key not in old:
            raise ValueError(f"resume's log has no {key!r}: it was written before train_theory recorded it; "
                             "train from scratch")
        if old[key] != log[key]:
            raise ValueError(f"resume's run has {key}={old.get(key)!r}, this one {key}={log[key]!r}: "
                             f"it is another run")
    start = old["step"][-1]
    if not start < steps:
        raise ValueError(f"steps must be > the resumed run's {start} steps; got {steps}")
    missing = [c for c in checkpoints if c <= start and c not in old["step"]]
    missing_h = [c for c in sorted(snap_at) if c <= start and c not in old["H"]]
    if missing or missing_h:
        raise ValueError(f"checkpoints {missing} and H snapshots {missing_h} of this run are not among the "
                         "resumed run's; choose n_checkpoints and snapshots so that they are")
    model = copy.deepcopy(model)
    with torch.no_grad():
        if not math.isclose(mse_loss(model, test_batch).item(), old["loss"][-1], rel_tol=1e-5, abs_tol=1e-9):
            raise ValueError("resume's run was evaluated on other test trees (test, curve_n)")
    per_checkpoint = [key for key, value in log.items() if isinstance(value, list)]   # one entry per checkpoint
    for c in checkpoints:
        if c <= start:
            i = old["step"].index(c)
            for key in per_checkpoint:
                log[key].append(old[key][i])
            if c in snap_at:
                log["H"][c] = old["H"][c]
    return model, start


def theory_batch(task: str, batch: int, rng: np.random.Generator) -> Encoded:
    """A training batch of the theory model for ``task``: fresh perfect trees from :data:`THEORY`."""
    spec = THEORY[task]
    return perfect_batch(spec.k, spec.depth, spec.vocab, batch, rng, task)


# --------------------------------------------------------------------------------------------
# the standard transformer


def standard_batch(batch: int, rng: np.random.Generator, task: str, *, vocab: int = STANDARD.vocab) -> Encoded:
    """A training batch for the standard transformer: fresh random trees from :data:`STANDARD`."""
    exs = [make_example(random_tree(STANDARD.c, vocab, rng, max_depth=STANDARD.max_depth,
                                    max_nodes=STANDARD.max_nodes), rng) for _ in range(batch)]
    return encode(exs, vocab, task)


def standard_test(n: int, seed: int = 54321) -> list:
    """``n`` unseen trees from the standard transformer's training distribution :data:`STANDARD`."""
    return test_trees(n, STANDARD.vocab, seed, c=STANDARD.c, max_depth=STANDARD.max_depth,
                      max_nodes=STANDARD.max_nodes)


def train_transformer(task: str, *, steps: int, batch: int = 128, test: list | None = None, n_layers: int = 1,
                      d_model: int = 64, n_heads: int = 2, lr: float = 3e-3, n_checkpoints: int = 20, seed: int = 0,
                      attention_example: int | None = None, curve_n: int = 300, progress: bool | None = None):
    """Train the standard transformer on ``task`` (``"forward"`` with CoT, ``"direct"`` without).

    Returns ``(model, log)``: per checkpoint, the training-distribution test accuracy (exact path,
    by depth, per step), head usage, and the attention maps of test example ``attention_example``
    (default: the first of depth 3). Curves use the first ``curve_n`` test trees; ``log["final"]``
    evaluates the trained model on all of ``test``. The initialisation follows
    ``torch.manual_seed(seed)``; step ``s`` trains on ``numpy_generator(seed + STANDARD_STREAM, s)``'s batch.
    """
    if task not in ("forward", "direct", "backward"):
        raise ValueError(f"task must be 'forward', 'direct' or 'backward'; got {task!r}")
    _check_run_args(steps, n_checkpoints, test, curve_n)
    V = STANDARD.vocab
    torch.manual_seed(seed)  # the model's initialisation draws from torch's global generator
    model = TreeTransformer(TransformerConfig(V, d_model=d_model, n_heads=n_heads, n_layers=n_layers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    test = test if test is not None else standard_test(256)
    if attention_example is not None and check_int("attention_example", attention_example, 0) >= len(test):
        raise ValueError(f"attention_example must be None or an index into test, an int in [0, {len(test)}); "
                         f"got {attention_example!r}")
    curve = test[:curve_n]
    depths = [ex.depth for ex in curve]
    if attention_example is None:
        attention_example = next((i for i, ex in enumerate(test) if ex.depth == 3), 0)
    example = encode([test[attention_example]], V, task)
    test_batch = encode(curve, V, task)
    checkpoints = checkpoint_schedule(steps, every=max(1, steps // n_checkpoints), n_log=8)
    log: dict = {"step": [], "exact": [], "per_step": [], "by_depth": [], "usage": [], "attention": [],
                 "attention_example": attention_example}

    def on_checkpoint(step, m):
        m.eval()
        with torch.no_grad():
            correct = exact_path_accuracy(greedy_decode(m, curve, V, task), curve, V, task)
            log["step"].append(step)
            log["exact"].append(float(correct.mean()))
            log["by_depth"].append(by_depth(correct, depths))
            log["per_step"].append(per_step_accuracy(m, test_batch)["all"])
            log["usage"].append(head_usage(m, test_batch))
            log["attention"].append(attention_for_example(m, example, 0))
        m.train()

    train(model, ce_loss, lambda s: standard_batch(batch, numpy_generator(seed + STANDARD_STREAM, s), task),
          steps=steps, optimizer=opt, checkpoint_steps=checkpoints, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"transformer ({n_layers} layer{'s' * (n_layers > 1)}), {task}", prefetch=PREFETCH)
    log["final"] = evaluate(model, test, V, task)
    return model, log


# --------------------------------------------------------------------------------------------
# filter -> sort


def filter_sort_test(n: int, seed: int = 4242) -> list[FilterSortExample]:
    """``n`` unseen filter → sort instances from :data:`FILTER_SORT`."""
    return FILTER_SORT.sample(n, seed)


def train_filter_sort(task: str, *, steps: int, batch: int = 128, test: list | None = None, d_model: int = 64,
                      n_heads: int = 2, n_layers: int = 1, lr: float = 2e-3, n_checkpoints: int = 10, seed: int = 0,
                      progress: bool | None = None):
    """The standard transformer on filter → sort, with the filter stage (``"cot"``), without
    (``"direct"``), or without but with the query colour in every answer token (``"tagged"``).

    Returns ``(model, log)`` with exact accuracy (overall and by number of kept items) at checkpoints.
    Initialisation as :func:`train_transformer`; step ``s`` trains on
    ``numpy_generator(seed + FILTER_SORT_STREAM, s)``'s batch.
    """
    if task not in FILTER_SORT_TASKS:
        raise ValueError(f"task must be one of {FILTER_SORT_TASKS}; got {task!r}")
    _check_run_args(steps, n_checkpoints, test)
    V = FILTER_SORT.vocab
    test = test if test is not None else filter_sort_test(256)
    torch.manual_seed(seed)  # the model's initialisation draws from torch's global generator
    model = TreeTransformer(TransformerConfig(V, d_model=d_model, n_heads=n_heads, n_layers=n_layers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log: dict = {"step": [], "exact": [], "by_kept": []}

    def on_checkpoint(step, m):
        r = filter_sort_evaluate(m, test, V, task)
        log["step"].append(step)
        log["exact"].append(r["exact"])
        log["by_kept"].append(r["by_kept"])
        m.train()

    def batch_fn(s: int) -> Encoded:
        return filter_sort_encode(FILTER_SORT.sample(batch, numpy_generator(seed + FILTER_SORT_STREAM, s)), V, task)

    train(model, ce_loss, batch_fn, steps=steps, optimizer=opt, grad_clip=1.0,
          checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // n_checkpoints)),
          on_checkpoint=on_checkpoint, progress=progress, desc=f"filter → sort, {task}", prefetch=PREFETCH)
    return model, log


# --------------------------------------------------------------------------------------------
# the full run


def store(root=None) -> ResultStore:
    """The chapter's result store (default: the committed ``results/tree_cot/``)."""
    return ResultStore(CHAPTER, module="helpers.tree_cot", schema=SCHEMA, root=root)


def load(name: str = "metrics.json", root=None):
    """A stored result of the full run (default: the committed ``metrics.json``); a
    :class:`~helpers.ResultError` naming the command that recreates it if missing or stale."""
    return store(root).load_json(name)


def _strip(log: dict, *drop: str) -> dict:
    return {k: v for k, v in log.items() if k not in drop}


def _run_record(seed: int, log: dict, *drop: str) -> dict:
    return {"seed": seed, "log": _strip(log, "final", *drop), "final": log["final"]}


def full_run(mode: str, progress: bool = True) -> RunOutput:
    """Every experiment of the chapter at ``mode``'s sizes.

    ``metrics`` (→ ``metrics.json``): ``sizes``; ``theory`` — ``backward`` and ``forward`` (the
    paper's zero-initialised models, one run each: from zero, seeds only change the batches) and
    ``forward_broken`` (the forward model from a small random initialisation, one run per seed of
    ``broken_seeds``) and ``forward_broken_long`` (the same seeds trained on to ``broken_long_steps``: the
    ``forward_broken`` runs continued, their first steps not repeated), each
    run with its curves, final accuracy and phases; ``standard`` — the
    one-layer transformer with CoT and without (``direct``) per seed of ``std_seeds`` (deeper direct
    models: first seed), the random-child baseline; ``robustness`` (per model and seed, per axis
    and value); ``filter_sort`` (per task); ``seconds``. ``files["arrays.npz"]``: ``H`` snapshots
    of the zero-initialised theory models and the first CoT transformer's attention maps of one
    example at every checkpoint.
    """
    set_mode(mode)
    cfg = sizes(mode)
    seed_everything(0)
    t0 = time.perf_counter()
    metrics: dict = {"sizes": cfg.as_metrics(), "theory": {}, "standard": {}, "seconds": {}}
    arrays: dict[str, np.ndarray] = {}

    # 1-2. the theory models: the paper's zero initialisation, then the symmetry broken
    theory_models = {}
    broken = {}   # the symmetry-broken runs by seed: the longer runs continue them
    for task, seeds, std, steps in (
            ("backward", [0], 0.0, cfg.theory_backward_steps), ("forward", [0], 0.0, cfg.theory_forward_steps),
            ("forward_broken", list(cfg.broken_seeds), SYMMETRY_BREAK_STD, cfg.theory_forward_steps),
            ("forward_broken_long", list(cfg.broken_seeds), SYMMETRY_BREAK_STD, cfg.broken_long_steps)):
        base = task.split("_")[0]
        V = THEORY[base].vocab
        test = test_trees(cfg.test, V)
        runs = []
        timer = time.perf_counter()
        for seed in seeds:
            model, log = train_theory(base, steps=steps, batch=cfg.batch, test=test,
                                      n_checkpoints=cfg.n_checkpoints, seed=seed, init_std=std, progress=progress,
                                      resume=broken.get(seed) if task == "forward_broken_long" else None)
            if task == "forward_broken":
                broken[seed] = model, log
            record = _run_record(seed, log, "H")
            if base == "forward":
                record["phases"] = phases(log)
            runs.append(record)
            if task in THEORY:
                theory_models[task] = model
                for step, H in log["H"].items():
                    arrays[f"theory_{task}_H_{step}"] = H
        metrics["theory"][task] = {"runs": runs, "init_std": std, "steps": steps,
                                   "test_depths": np.bincount([e.depth for e in test]).tolist()}
        metrics["seconds"][f"theory_{task}"] = time.perf_counter() - timer

    # 3-4. the standard transformer: CoT vs direct over seeds, attention over training
    test = standard_test(cfg.test)
    std = {"baseline_random_child": random_child_baseline(test),
           "test_depths": np.bincount([e.depth for e in test]).tolist(), "cot": {"runs": []}, "direct": {}}
    timer = time.perf_counter()
    std_models = {"cot": {}, "direct": {}}
    for seed in cfg.std_seeds:
        model, log = train_transformer("forward", steps=cfg.cot_steps, batch=cfg.std_batch, test=test,
                                       n_checkpoints=cfg.n_checkpoints, seed=seed, progress=progress)
        std["cot"]["runs"].append(_run_record(seed, log, "attention"))
        std_models["cot"][seed] = model
        if seed == cfg.std_seeds[0]:
            for i, a in enumerate(log["attention"]):
                arrays[f"std_cot_att_{log['step'][i]}"] = a["att"]
            std["cot_attention_meta"] = {k: v for k, v in log["attention"][-1].items() if k != "att"}
    for L in cfg.layers:
        runs = []
        for seed in (cfg.std_seeds if L == 1 else cfg.std_seeds[:1]):
            model, log = train_transformer("direct", steps=cfg.direct_steps, batch=cfg.std_batch, test=test,
                                           n_layers=L, n_checkpoints=cfg.n_checkpoints, seed=seed, progress=progress)
            runs.append(_run_record(seed, log, "attention"))
            if L == 1:
                std_models["direct"][seed] = model
        std["direct"][L] = {"runs": runs}
    metrics["standard"] = std
    metrics["seconds"]["standard"] = time.perf_counter() - timer

    # 5. robustness
    timer = time.perf_counter()
    sets = robustness_sets(STANDARD.vocab, cfg.robust_n)
    rob = {f"standard_{kind}": {seed: robustness(m, sets, STANDARD.vocab, "forward" if kind == "cot" else "direct")
                                for seed, m in models.items()} for kind, models in std_models.items()}
    for task in ("backward", "forward"):
        V = THEORY[task].vocab
        rob[f"theory_{task}"] = {0: robustness(theory_models[task], robustness_sets(V, cfg.robust_n), V, task)}
    metrics["robustness"] = rob
    metrics["seconds"]["robustness"] = time.perf_counter() - timer

    # 6. filter -> sort
    timer = time.perf_counter()
    fs_test = filter_sort_test(cfg.fs_test)
    metrics["filter_sort"] = {}
    for task in FILTER_SORT_TASKS:
        _, log = train_filter_sort(task, steps=cfg.fs_steps, batch=cfg.std_batch, test=fs_test, progress=progress)
        metrics["filter_sort"][task] = log
    metrics["seconds"]["filter_sort"] = time.perf_counter() - timer

    seconds = time.perf_counter() - t0
    metrics["seconds"]["total"] = seconds
    return RunOutput(metrics=metrics, seeds=cfg.seeds, device=device_name(torch.device("cpu")), seconds=seconds,
                     files={"arrays.npz": arrays})
