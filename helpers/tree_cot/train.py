"""The chapter's experiments, shared by the notebooks (live) and the full run.

- :func:`train_theory` — the theory model (1 head backward / 2 heads forward), SGD from zero on
  perfect binary trees, with test accuracy on unseen random trees, ``H`` and head usage logged
  at checkpoints;
- :func:`train_transformer` — the standard transformer (Adam, cross-entropy) on random trees,
  with chain of thought (``"forward"``) or without (``"direct"``), exact-path accuracy by depth
  and attention snapshots of one fixed example logged at checkpoints;
- :func:`robustness` — accuracy against depth, branching, size and distractor edges;
- :func:`phases` — when each stage is learned and when each head parks (forward theory model).

Sizes per mode live in :func:`sizes`; each run is seeded per step so it can be repeated exactly.

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..modes import by_mode
from ..training import checkpoint_schedule, train
from .analysis import attention_for_example, h_summary, head_usage, specialisation
from .decoding import by_depth, evaluate, exact_path_accuracy, greedy_decode, per_step_accuracy
from .theory import TheoryModel, mse_loss
from . import filter_sort as fs
from .tokens import encode, perfect_batch
from .transformer import TransformerConfig, TreeTransformer, ce_loss
from .trees import make_example, random_tree, sized_tree, spine_tree

# The paper's training sets (perfect binary trees; labels drawn from the vocabulary) and learning rates.
THEORY = {
    "backward": dict(vocab=31, depth=4, lr=1.0, heads=1),
    "forward": dict(vocab=25, depth=3, lr=0.2, heads=2),
}
# Our standard transformer's training distribution: random trees, 0–3 children, depth <= 5, <= 24 nodes.
STANDARD = dict(vocab=32, c=3, max_depth=5, max_nodes=24)


def sizes(mode: str | None = None) -> dict:
    """Steps, batch sizes and test-set sizes per mode (all three here, so they read together)."""
    return by_mode(
        smoke=dict(theory_steps={"backward": 20, "forward": 20}, batch=32, test=64, n_checkpoints=4,
                   std_steps={"forward": 20, "direct": 20}, std_batch=32, robust_n=16, layers=[1, 2],
                   fs_steps=20, fs_test=64, seeds=[0]),
        default=dict(theory_steps={"backward": 800, "forward": 4000}, batch=256, test=1000, n_checkpoints=20,
                     std_steps={"forward": 600, "direct": 1500}, std_batch=128, robust_n=1000, layers=[1],
                     fs_steps=1200, fs_test=1000, seeds=[0]),
        full=dict(theory_steps={"backward": 2000, "forward": 6000}, batch=256, test=2000, n_checkpoints=30,
                  std_steps={"forward": 3000, "direct": 3000}, std_batch=128, robust_n=1000, layers=[1, 2, 4],
                  fs_steps=3000, fs_test=2000, seeds=[0, 1, 2]),
        mode=mode,
    )


def _rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def test_trees(n: int, vocab: int, seed: int = 12345, *, c: int = 3, max_depth: int = 6,
               max_nodes: int | None = None, n_distractors: int = 0) -> list:
    """``n`` random trees (0–``c`` children per node, depth <= ``max_depth``) with a random leaf as goal.

    The seed is distinct from every training seed, so these trees (shapes and labellings) are unseen.
    """
    rng = np.random.default_rng(seed)
    return [make_example(random_tree(c, vocab, rng, max_depth=max_depth, max_nodes=max_nodes), rng,
                         n_distractors=n_distractors, vocab=vocab) for _ in range(n)]


# --------------------------------------------------------------------------------------------
# the theory model


def train_theory(task: str, *, steps: int, batch: int = 256, test: list | None = None, n_checkpoints: int = 20,
                 seed: int = 0, lr: float | None = None, snapshots: int = 6, curve_n: int = 300,
                 progress: bool | None = None):
    """Train the theory model for ``task`` (``"backward"``: 1 head, ``"forward"``: 2 heads).

    Returns ``(model, log)``; ``log`` has, per checkpoint step: the training loss, teacher-forced
    accuracy per stage and exact-path accuracy on ``test``, ``H``'s diagonal/off-diagonal, head
    usage (attention on the lookup token and on BOS per head and stage) — and ``H`` itself at
    ``snapshots`` steps. Curves use the first ``curve_n`` test trees; ``log["final"]`` evaluates the
    trained model on all of ``test`` (exact-path accuracy overall and by depth).
    """
    if task not in THEORY:
        raise ValueError(f"task must be one of {tuple(THEORY)}; got {task!r}")
    spec = THEORY[task]
    V = spec["vocab"]
    torch.manual_seed(seed)
    model = TheoryModel(V, spec["heads"])
    opt = torch.optim.SGD(model.parameters(), lr=spec["lr"] if lr is None else lr)
    test = test if test is not None else test_trees(256, V)
    curve = test[:curve_n]
    test_batch = encode(curve, V, task)
    checkpoints = checkpoint_schedule(steps, every=max(1, steps // n_checkpoints))
    snap_at = set(checkpoints[:: max(1, len(checkpoints) // snapshots)] + [steps])
    log: dict = {"step": [], "loss": [], "exact": [], "per_step": [], "backward": [], "forward": [],
                 "H": {}, "h": [], "usage": [], "specialisation": []}

    def on_checkpoint(step, m):
        m.eval()
        with torch.no_grad():
            log["step"].append(step)
            log["loss"].append(mse_loss(m, test_batch).item())
            acc = per_step_accuracy(m, test_batch)
            for k in ("backward", "forward"):
                log[k].append(acc.get(k, float("nan")))
            log["per_step"].append(acc["all"])
            log["exact"].append(float(exact_path_accuracy(greedy_decode(m, curve, V, task), curve, V, task).mean()))
            log["h"].append(h_summary(m))
            usage = head_usage(m, test_batch)
            log["usage"].append(usage)
            log["specialisation"].append(specialisation(usage).tolist())
            if step in snap_at:
                log["H"][step] = m.H.detach().cpu().numpy().copy()
        m.train()

    train(model, mse_loss, lambda s: perfect_batch(2, spec["depth"], V, batch, _rng(seed, s), task), steps=steps,
          optimizer=opt, checkpoint_steps=checkpoints, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"theory model, {task}")
    log["final"] = evaluate(model, test, V, task)
    return model, log


def phases(log: dict, threshold: float = 0.99) -> dict:
    """When each stage is solved (teacher-forced accuracy ≥ ``threshold``) and when each head
    parks on BOS in the stage it does not serve (BOS attention ≥ 0.5), from a forward-task log."""
    steps = log["step"]

    def first(values, ok):
        return next((s for s, v in zip(steps, values) if ok(v)), None)

    out = {"forward_solved": first(log["forward"], lambda v: v >= threshold),
           "backward_solved": first(log["backward"], lambda v: v >= threshold)}
    final = np.array(log["specialisation"][-1])  # (heads, stages)
    for h in range(final.shape[0]):
        serves = "backward" if final[h, 0] >= final[h, 1] else "forward"
        other = "forward" if serves == "backward" else "backward"
        out[f"head{h}_serves"] = serves
        out[f"head{h}_parks_in_{other}"] = first([u[other]["bos"][h] for u in log["usage"]], lambda v: v >= 0.5)
    return out


# --------------------------------------------------------------------------------------------
# the standard transformer


def standard_batch(batch: int, rng: np.random.Generator, task: str, *, vocab: int = STANDARD["vocab"]):
    """A training batch for the standard transformer: fresh random trees from :data:`STANDARD`."""
    exs = [make_example(random_tree(STANDARD["c"], vocab, rng, max_depth=STANDARD["max_depth"],
                                    max_nodes=STANDARD["max_nodes"]), rng) for _ in range(batch)]
    return encode(exs, vocab, task)


def standard_test(n: int, seed: int = 54321) -> list:
    """``n`` unseen trees from the standard transformer's training distribution."""
    return test_trees(n, STANDARD["vocab"], seed, c=STANDARD["c"], max_depth=STANDARD["max_depth"],
                      max_nodes=STANDARD["max_nodes"])


def train_transformer(task: str, *, steps: int, batch: int = 128, test: list | None = None, n_layers: int = 1,
                      d_model: int = 64, n_heads: int = 2, lr: float = 3e-3, n_checkpoints: int = 20, seed: int = 0,
                      attention_example: int | None = None, curve_n: int = 300, progress: bool | None = None):
    """Train the standard transformer on ``task`` (``"forward"`` with CoT, ``"direct"`` without).

    Returns ``(model, log)``: per checkpoint, the training-distribution test accuracy (exact path,
    by depth, per step), head usage, and the attention maps of test example ``attention_example``
    (default: the first of depth 3). Curves use the first ``curve_n`` test trees; ``log["final"]``
    evaluates the trained model on all of ``test``.
    """
    if task not in ("forward", "direct", "backward"):
        raise ValueError(f"task must be 'forward', 'direct' or 'backward'; got {task!r}")
    V = STANDARD["vocab"]
    torch.manual_seed(seed)
    model = TreeTransformer(TransformerConfig(V, d_model=d_model, n_heads=n_heads, n_layers=n_layers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    test = test if test is not None else standard_test(256)
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

    train(model, ce_loss, lambda s: standard_batch(batch, _rng(seed + 1000, s), task), steps=steps,
          optimizer=opt, checkpoint_steps=checkpoints, on_checkpoint=on_checkpoint, progress=progress,
          desc=f"transformer ({n_layers} layer{'s' * (n_layers > 1)}), {task}")
    log["final"] = evaluate(model, test, V, task)
    return model, log


def random_child_baseline(examples: list) -> dict[int, float]:
    """Exact accuracy by depth of descending by a uniformly random child at each step: ``E[Π 1/#children]``."""
    acc = np.array([np.prod([1 / len(ex.tree.children(v)) for v in ex.forward[:-1]]) for ex in examples])
    return by_depth(acc, [ex.depth for ex in examples])


# --------------------------------------------------------------------------------------------
# robustness


def robustness_sets(vocab: int, n: int, seed: int = 777) -> dict[str, dict]:
    """Test sets that step outside a training distribution, one axis at a time.

    - ``depth``: goal at depth d = 1 … 10 (the end of a spine with extra leaves, :func:`spine_tree`);
    - ``branching``: 0–c children per node, c = 1 … 6;
    - ``size``: random recursive trees of exactly n = 8 … 32 nodes (at most 3 children);
    - ``distractors``: 0 … 12 edges of another tree in the list (trees of at most 16 nodes).
    Each value has ``n`` trees; the label vocabulary is ``vocab``.
    """
    rng = np.random.default_rng(seed)
    deepest = lambda t: make_example(t, rng, goal=max(t.leaves(), key=t.depth))
    sets = {
        "depth": {d: [deepest(spine_tree(d, vocab, rng, c=3)) for _ in range(n)] for d in range(1, 11)},
        "branching": {c: [make_example(random_tree(c, vocab, rng, max_depth=5, min_depth=2, max_nodes=vocab), rng)
                          for _ in range(n)] for c in range(1, 7)},
        "size": {s: [make_example(sized_tree(s, vocab, rng, c=3), rng) for _ in range(n)]
                 for s in range(8, min(vocab, 32) + 1, 4)},
        "distractors": {k: [make_example(random_tree(3, vocab, rng, max_depth=5, max_nodes=16), rng,
                                         n_distractors=k, vocab=vocab) for _ in range(n)] for k in (0, 2, 4, 8, 12)},
    }
    return sets


def robustness(model, sets: dict[str, dict], vocab: int, task: str) -> dict[str, dict]:
    """Exact-path accuracy of ``model`` on each set of :func:`robustness_sets`: ``{axis: {value: acc}}``."""
    out = {}
    for axis, by_value in sets.items():
        out[axis] = {}
        for value, exs in by_value.items():
            out[axis][value] = evaluate(model, exs, vocab, task)["exact"]
    return out


# --------------------------------------------------------------------------------------------
# filter -> sort

FILTER_SORT = dict(vocab=32, n_items=(4, 12), colours=2)


def train_filter_sort(task: str, *, steps: int, batch: int = 128, test: list | None = None, d_model: int = 64,
                      n_heads: int = 2, n_layers: int = 1, lr: float = 2e-3, n_checkpoints: int = 10, seed: int = 0,
                      progress: bool | None = None):
    """The standard transformer on filter → sort, with the filter stage (``"cot"``) or without (``"direct"``).

    Returns ``(model, log)`` with exact accuracy (overall and by number of kept items) at checkpoints.
    """
    V = FILTER_SORT["vocab"]
    draw = lambda n, rng: fs.sample(n, V, rng, n_items=FILTER_SORT["n_items"], colours=FILTER_SORT["colours"])
    test = test if test is not None else filter_sort_test(256)
    torch.manual_seed(seed)
    model = TreeTransformer(TransformerConfig(V, d_model=d_model, n_heads=n_heads, n_layers=n_layers))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    log: dict = {"step": [], "exact": [], "by_kept": []}

    def on_checkpoint(step, m):
        r = fs.evaluate(m, test, V, task)
        log["step"].append(step)
        log["exact"].append(r["exact"])
        log["by_kept"].append(r["by_kept"])
        m.train()

    train(model, ce_loss, lambda s: fs.encode(draw(batch, _rng(seed + 2000, s)), V, task), steps=steps,
          optimizer=opt, grad_clip=1.0, checkpoint_steps=checkpoint_schedule(steps, every=max(1, steps // n_checkpoints)),
          on_checkpoint=on_checkpoint, progress=progress, desc=f"filter → sort, {task}")
    return model, log


def filter_sort_test(n: int, seed: int = 4242) -> list:
    """``n`` unseen filter → sort instances from :data:`FILTER_SORT`."""
    return fs.sample(n, FILTER_SORT["vocab"], seed, n_items=FILTER_SORT["n_items"], colours=FILTER_SORT["colours"])
