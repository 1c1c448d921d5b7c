"""Chapter 1's analysis: decoding and metrics, what the heads do, phases, baselines, robustness.

**Decoding and metrics.** Any model that maps tokens (B, T, 3) to scores (B, T, N+1) over the
next node (or END) can be decoded greedily (:func:`greedy_decode`): the theory model (scores =
ŷ) and the standard transformer (scores = logits). Metrics:

- **exact-path accuracy** — the whole generated sequence (chain of thought included) equals the
  target, END included (:func:`exact_path_accuracy`);
- **per-step accuracy** — teacher-forced: the fraction of positions whose argmax is the target
  (:func:`per_step_accuracy`);
- both **by depth** of the goal (:func:`by_depth`); :func:`evaluate` reports all of them.

**What the heads do.**

- :func:`head_usage` — for every head, the mean attention a query puts on the token a correct
  one-step lookup reads (``Encoded.key``: the edge whose child is the current node when
  climbing, the chain-of-thought token of the current node when descending) and on BOS (where
  a head "parks" when it has nothing to do), separately for backward- and forward-stage queries.
- :func:`specialisation` — one number per head and stage from that: the attention on the right
  token. A head *specialises* on a stage when it does the lookup in that stage and not in the other.
- :func:`h_summary` — the theory model's ``H`` (key child slot × query node slot): mean
  diagonal, mean and largest off-diagonal entry.
- :func:`attention_for_example` — one example's attention maps per generated step.
- :func:`phases` — when each stage is learned and when each head parks (forward theory model).

**Baselines and generalisation.** :func:`random_child_baseline` (descend by a random child),
:func:`robustness` (accuracy on the sets of :func:`~helpers.tree_cot.data.robustness_sets`), and
the filter → sort task's decoding and accuracy (:func:`filter_sort_decode`,
:func:`filter_sort_evaluate`).

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import numpy as np
import torch

from .claims import PARK_MIN_BOS, PHASE_SOLVED_ACCURACY
from .data import (BOS, BWD, EDGE, FWD, PAD, ROOT, Encoded, Example, FilterSortExample, check_filter_sort_task,
                   check_task, encode, filter_sort_prompt)


def target_sequence(ex: Example, vocab: int, task: str) -> list[int]:
    """What a perfect model emits for ``ex``: nodes, with END closing each stage."""
    check_task(task)
    END = vocab
    out = []
    if task != "direct":
        out += ex.backward[1:] + [END]
    if task != "backward":
        out += ex.forward[1:] + [END]
    return out


def _prefix(ex: Example, vocab: int, task: str) -> list[tuple[int, int, int]]:
    END, EMPTY = vocab, vocab + 1
    toks = [(EMPTY, EMPTY, BOS)] + [(p, c, EDGE) for p, c in ex.edges] + [(END, ex.root, ROOT), (ex.goal, END, BWD)]
    if task == "direct":
        toks.append((ex.root, EMPTY, FWD))
    return toks


@torch.no_grad()
def next_nodes(model, seqs: list[list[tuple[int, int, int]]], vocab: int, device) -> list[int]:
    """The model's greedy next output after the last token of each sequence (padded into one batch)."""
    T = max(len(s) for s in seqs)
    tokens = np.empty((len(seqs), T, 3), dtype=np.int64)
    tokens[:] = (vocab + 1, vocab + 1, PAD)
    for r, s in enumerate(seqs):
        tokens[r, :len(s)] = s
    last = torch.tensor([len(s) - 1 for s in seqs], device=device)
    scores = model(torch.from_numpy(tokens).to(device))
    return scores[torch.arange(len(seqs), device=device), last].argmax(-1).tolist()


@torch.no_grad()
def greedy_decode(model, examples: list[Example], vocab: int, task: str, *, max_steps: int | None = None,
                  batch_size: int = 512, device=None) -> list[list[int]]:
    """Generate each example's output greedily; returns the emitted sequences (END included).

    The format's rules: a node ``v`` emitted at node ``u`` appends the token ``(v, u, stage)``;
    END in the backward stage of the forward task appends the STAGE token ``(root, ·, FWD)``;
    END otherwise stops. ``max_steps`` (default: 2·(number of edges + 2)) bounds a model that never
    says END.
    """
    check_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    device = device or next(model.parameters()).device
    out: list[list[int]] = []
    for start in range(0, len(examples), batch_size):
        out += _decode_chunk(model, examples[start:start + batch_size], vocab, task, max_steps, device)
    return out


def greedy_loop(model, seqs: list[list[tuple[int, int, int]]], vocab: int, limit: int, device,
                append) -> list[list[int]]:
    """Run greedy generation on all ``seqs`` at once for at most ``limit`` steps.

    After each step, ``append(i, v)`` receives sequence ``i``'s output ``v``, extends ``seqs[i]``
    by the format's rule and returns whether sequence ``i`` goes on. Returns the emitted outputs.
    """
    emitted: list[list[int]] = [[] for _ in seqs]
    live = list(range(len(seqs)))
    for _ in range(limit):
        if not live:
            break
        pred = next_nodes(model, [seqs[i] for i in live], vocab, device)
        still = []
        for i, v in zip(live, pred):
            emitted[i].append(v)
            if append(i, v):
                still.append(i)
        live = still
    return emitted


def _decode_chunk(model, examples, vocab, task, max_steps, device):
    END, EMPTY = vocab, vocab + 1
    seqs = [_prefix(ex, vocab, task) for ex in examples]
    cur = [ex.goal if task != "direct" else ex.root for ex in examples]
    stage = [BWD if task != "direct" else FWD for _ in examples]

    def append(i: int, v: int) -> bool:
        if v == END:
            if task == "forward" and stage[i] == BWD:
                stage[i], cur[i] = FWD, examples[i].root
                seqs[i].append((examples[i].root, EMPTY, FWD))
                return True
            return False
        seqs[i].append((v, cur[i], stage[i]))
        cur[i] = v
        return True

    limit = max_steps or 2 * (max(len(ex.edges) for ex in examples) + 2)
    return greedy_loop(model, seqs, vocab, limit, device, append)


def exact_path_accuracy(emitted: list[list[int]], examples: list[Example], vocab: int, task: str) -> np.ndarray:
    """(n,) bool: whether each emitted sequence equals the target sequence."""
    return np.array([e == target_sequence(ex, vocab, task) for e, ex in zip(emitted, examples)])


@torch.no_grad()
def per_step_accuracy(model, batch: Encoded) -> dict:
    """Teacher-forced accuracy: overall, per stage (backward/forward) and per depth."""
    scores = model(batch.tokens)
    where = batch.targets >= 0
    hit = (scores.argmax(-1) == batch.targets) & where
    out = {"all": (hit.sum() / where.sum()).item()}
    for s, name in ((0, "backward"), (1, "forward")):
        m = batch.stage == s
        if m.any():
            out[name] = (hit[m].sum() / m.sum()).item()
    return out


def by_depth(correct: np.ndarray, depths) -> dict[int, float]:
    """Mean of ``correct`` per depth: ``{depth: accuracy}``."""
    depths = np.asarray(depths)
    if len(correct) != len(depths):
        raise ValueError(f"correct ({len(correct)}) and depths ({len(depths)}) must have the same length")
    return {int(d): float(np.mean(correct[depths == d])) for d in np.unique(depths)}


def evaluate(model, examples: list[Example], vocab: int, task: str, **kw) -> dict:
    """Exact-path accuracy (overall and by depth) and teacher-forced per-step accuracy."""
    model_was_training = getattr(model, "training", False)
    model.eval()
    emitted = greedy_decode(model, examples, vocab, task, **kw)
    correct = exact_path_accuracy(emitted, examples, vocab, task)
    depths = [ex.depth for ex in examples]
    device = next(model.parameters()).device
    steps = [per_step_accuracy(model, encode(examples[i:i + 512], vocab, task).to(device))["all"]
             for i in range(0, len(examples), 512)]
    sizes = [len(examples[i:i + 512]) for i in range(0, len(examples), 512)]
    model.train(model_was_training)
    return {"exact": float(correct.mean()), "by_depth": by_depth(correct, depths),
            "per_step": float(np.average(steps, weights=sizes)), "n": len(examples)}


# --------------------------------------------------------------------------------------------
# what the heads do


def _attention(model, tokens: torch.Tensor, layer: int = -1) -> torch.Tensor:
    _, att = model(tokens, return_attention=True)
    return att[layer] if isinstance(att, (list, tuple)) else att  # (B, H, T, T)


@torch.no_grad()
def head_usage(model, batch: Encoded, layer: int = -1) -> dict:
    """``{"backward"|"forward": {"lookup": [per head], "bos": [per head]}}``: mean attention of the
    stage's queries on the correct lookup token and on BOS (queries without a lookup token are skipped)."""
    att = _attention(model, batch.tokens, layer)
    B, H, T, _ = att.shape
    out = {}
    for s, name in ((0, "backward"), (1, "forward")):
        where = (batch.stage == s) & (batch.key >= 0)
        if not where.any():
            continue
        bi, qi = where.nonzero(as_tuple=True)
        ki = batch.key[bi, qi]
        lookup = att[bi, :, qi, ki]  # (n, H)
        bos_pos = (batch.tokens[..., 2] == BOS).float().argmax(1)[bi]
        bos = att[bi, :, qi, bos_pos]
        out[name] = {"lookup": lookup.mean(0).tolist(), "bos": bos.mean(0).tolist()}
    return out


def specialisation(usage: dict) -> np.ndarray:
    """(n_heads, 2) array: attention on the correct lookup token, columns (backward, forward)."""
    cols = [usage.get(s, {}).get("lookup") for s in ("backward", "forward")]
    n = len(next(c for c in cols if c is not None))
    return np.array([[c[h] if c is not None else np.nan for c in cols] for h in range(n)])


@torch.no_grad()
def h_summary(model) -> dict:
    """Mean diagonal, mean off-diagonal and max |off-diagonal| of the theory model's ``H``."""
    H = model.H.detach().cpu()
    N = H.shape[0]
    off = H[~torch.eye(N, dtype=torch.bool)]
    return {"diag": H.diag().mean().item(), "offdiag": off.mean().item(), "offdiag_max": off.abs().max().item()}


@torch.no_grad()
def attention_for_example(model, batch: Encoded, i: int = 0, layer: int = -1) -> dict:
    """Example ``i``'s attention (n_heads, queries, T) for the positions that predict something,
    with the tokens' labels for plotting."""
    tokens = batch.tokens[i:i + 1]
    att = _attention(model, tokens, layer)[0]
    T = int((batch.tokens[i, :, 2] != PAD).sum())
    q = (batch.targets[i] >= 0).nonzero().flatten()
    q = q[q < T]
    return {"att": att[:, q, :T].cpu().numpy(), "queries": q.tolist(), "tokens": tokens[0, :T].tolist(),
            "targets": batch.targets[i, q].tolist(), "keys": batch.key[i, q].tolist(),
            "stage": batch.stage[i, q].tolist()}


def token_label(tok, vocab: int) -> str:
    """A short label for a token ``(a, b, kind)``: ``p→c`` for an edge, ``ROOT r``, ``v←u`` on paths."""
    a, b, kind = tok
    name = lambda x: "END" if x == vocab else ("·" if x == vocab + 1 else str(x))
    return {0: f"{name(a)}→{name(b)}", 1: f"ROOT {name(b)}", 2: f"{name(a)}↑", 3: f"{name(a)}↓", 4: "BOS",
            5: ""}[kind]


# --------------------------------------------------------------------------------------------
# phases, baselines, robustness


def phases(log: dict, threshold: float = PHASE_SOLVED_ACCURACY, park: float = PARK_MIN_BOS) -> dict:
    """When each stage is solved (teacher-forced accuracy ≥ ``threshold``) and when each head
    parks on BOS in the stage it does not serve (BOS attention ≥ ``park``), from a forward-task log of
    :func:`~helpers.tree_cot.train.train_theory` (keys ``step``, ``forward``, ``backward``,
    ``specialisation``, ``usage``). Steps are None where it never happens."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}")
    if not 0 < park <= 1:
        raise ValueError(f"park must be in (0, 1]; got {park}")
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
        out[f"head{h}_parks_in_{other}"] = first([u[other]["bos"][h] for u in log["usage"]], lambda v: v >= park)
    return out


def random_child_baseline(examples: list[Example]) -> dict[int, float]:
    """Exact accuracy by depth of descending by a uniformly random child at each step: ``E[Π 1/#children]``."""
    acc = np.array([np.prod([1 / len(ex.tree.children(v)) for v in ex.forward[:-1]]) for ex in examples])
    return by_depth(acc, [ex.depth for ex in examples])


def robustness(model, sets: dict[str, dict], vocab: int, task: str) -> dict[str, dict]:
    """Exact-path accuracy of ``model`` on each set of :func:`~helpers.tree_cot.data.robustness_sets`:
    ``{axis: {value: accuracy}}``."""
    out = {}
    for axis, by_value in sets.items():
        out[axis] = {}
        for value, exs in by_value.items():
            out[axis][value] = evaluate(model, exs, vocab, task)["exact"]
    return out


# --------------------------------------------------------------------------------------------
# filter -> sort: decoding and accuracy


def filter_sort_target(ex: FilterSortExample, vocab: int, task: str) -> list[int]:
    """What a perfect model emits: (``"cot"``) the kept values largest first and END, then (both)
    the kept values ascending and END."""
    END = vocab
    check_filter_sort_task(task)
    return (sorted(ex.kept, reverse=True) + [END] if task == "cot" else []) + ex.answer + [END]


@torch.no_grad()
def filter_sort_decode(model, examples: list[FilterSortExample], vocab: int, task: str) -> list[list[int]]:
    """Greedy generation with the format's rules (END closes a stage; the STAGE token is supplied)."""
    check_filter_sort_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    END, EMPTY = vocab, vocab + 1
    seqs = [filter_sort_prompt(ex, vocab) for ex in examples]
    stage = [BWD if task == "cot" else FWD] * len(examples)

    def append(i: int, v: int) -> bool:
        if v == END:
            if stage[i] == BWD:
                stage[i] = FWD
                seqs[i].append((EMPTY, EMPTY, FWD))
                return True
            return False
        seqs[i].append((v, examples[i].target if stage[i] == BWD else EMPTY, stage[i]))
        return True

    return greedy_loop(model, seqs, vocab, 2 * max(len(ex.values) for ex in examples) + 4,
                       next(model.parameters()).device, append)


def filter_sort_evaluate(model, examples: list[FilterSortExample], vocab: int, task: str) -> dict:
    """Exact accuracy (whole output, END included), overall and by number of kept items."""
    model.eval()
    emitted = filter_sort_decode(model, examples, vocab, task)
    correct = np.array([e == filter_sort_target(ex, vocab, task) for e, ex in zip(emitted, examples)])
    kept = np.array([len(ex.kept) for ex in examples])
    return {"exact": float(correct.mean()),
            "by_kept": {int(k): float(correct[kept == k].mean()) for k in np.unique(kept)}, "n": len(examples)}
