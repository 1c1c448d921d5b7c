"""Greedy autoregressive decoding in the format of :mod:`.tokens`, and the chapter's metrics.

Any model that maps tokens (B, T, 3) to scores (B, T, N+1) over the next node (or END) can be
decoded: the theory model (scores = ŷ) and the standard transformer (scores = logits).

Metrics:

- **exact-path accuracy** — the whole generated sequence (chain of thought included) equals the
  target, END included;
- **per-step accuracy** — teacher-forced: the fraction of positions whose argmax is the target;
- both **by depth** of the goal.

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import numpy as np
import torch

from .tokens import BOS, BWD, EDGE, FWD, PAD, ROOT, Encoded, check_task, encode
from .trees import Example


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
