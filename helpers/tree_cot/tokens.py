"""The sequence format both model families read: every token is a triple ``(a, b, kind)``.

An **edge** token carries its two endpoints in two slots, ``a`` = parent, ``b`` = child, as in
the paper. Path tokens are written the same way: the token emitted on moving to node ``v`` from
node ``u`` is ``(a=v, b=u)`` — so a chain of thought is itself a list of edges, and the node the
model is "at" is always in slot ``a``. Labels are ``0 … N−1``; ``END = N``; an empty slot is
``N + 1``.

A sequence, for a tree with root ``r`` and goal ``g`` whose backward path is ``v_0 = g, …, v_L = r``::

    BOS | edges (p, c) … | ROOT (END, r) | GOAL (g, END) | B_1 … B_L | STAGE (r, ·) | F_{L−1} … F_0
                                          ^ backward stage (kind BWD)  ^ forward stage (kind FWD)

with ``B_t = (v_t, v_{t−1})`` and ``F_t = (v_t, v_{t+1})``. The model predicts a node (or END)
after each token from GOAL on: ``v_1, …, v_L, END`` (backward, climbing: the root's "parent" is
END, read off the ROOT token), then ``v_{L−1}, …, v_0, END`` (forward, descending; the goal's
"child" is END, read off the GOAL token). The format supplies the STAGE token when the model has
said END in the backward stage. Three tasks:

- ``"backward"``: the backward stage only (the answer is goal → root);
- ``"forward"``: both stages — the backward path as chain of thought, then root → goal;
- ``"direct"``: root → goal with no chain of thought (STAGE follows GOAL at once).

Used in: every notebook of book/tree_cot/ (through :mod:`.theory`, :mod:`.transformer`, :mod:`.decoding`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .trees import Example

EDGE, ROOT, BWD, FWD, BOS, PAD = range(6)
KINDS = ("edge", "root", "bwd", "fwd", "bos", "pad")
TASKS = ("backward", "forward", "direct")


def check_task(task) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    return task


@dataclass
class Encoded:
    """A padded batch of sequences (``B`` sequences of length ``T``).

    tokens: (B, T, 3) int64 ``(a, b, kind)``; padding has kind PAD.
    targets: (B, T) int64, the node (or END) to predict after each position, −1 where none.
    stage: (B, T) int64, 0 for a backward-stage prediction, 1 for forward, −1 where none.
    key: (B, T) int64, the position of the token a correct one-step lookup reads (the edge or
        ROOT token when climbing, the chain-of-thought or GOAL token when descending), −1 where
        none (the direct task's descending steps have no such token).
    depth: (B,) the goal's depth ``L``.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    stage: torch.Tensor
    key: torch.Tensor
    depth: torch.Tensor
    vocab: int
    task: str

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def END(self) -> int:
        return self.vocab

    def to(self, device) -> "Encoded":
        return Encoded(self.tokens.to(device), self.targets.to(device), self.stage.to(device), self.key.to(device),
                       self.depth.to(device), self.vocab, self.task)


def sequence(edges, root: int, back: list[int], vocab: int, task: str):
    """One example's tokens, targets, stages and lookup positions (lists), before padding."""
    check_task(task)
    END, EMPTY = vocab, vocab + 1
    L = len(back) - 1
    toks = [(EMPTY, EMPTY, BOS)] + [(p, c, EDGE) for p, c in edges] + [(END, root, ROOT), (back[0], END, BWD)]
    on_path = set(back)
    where_child = {c: i + 1 for i, (_, c) in enumerate(edges) if c in on_path}  # path nodes have one parent
    where_child[root] = len(edges) + 1
    goal_pos = len(edges) + 2
    marks: dict[int, tuple[int, int, int]] = {}  # position -> (target, stage, lookup position)
    cot_pos = {back[0]: goal_pos}  # position of the backward-stage token whose slot a is the node

    def predict(pos, y, s, k):
        marks[pos] = (y, s, k)

    def done():
        cols = [[marks.get(i, (-1, -1, -1))[j] for i in range(len(toks))] for j in range(3)]
        return (toks, *cols)

    if task != "direct":
        for t in range(L + 1):  # at v_t: predict v_{t+1} (END at the root)
            predict(len(toks) - 1, back[t + 1] if t < L else END, 0, where_child[back[t]])
            if t < L:
                toks.append((back[t + 1], back[t], BWD))
                cot_pos[back[t + 1]] = len(toks) - 1
        if task == "backward":
            return done()
    fwd = back[::-1]
    toks.append((root, EMPTY, FWD))
    for t in range(L + 1):  # at fwd[t]: predict fwd[t+1] (END at the goal)
        predict(len(toks) - 1, fwd[t + 1] if t < L else END, 1, cot_pos.get(fwd[t], -1) if task == "forward" else -1)
        if t < L:
            toks.append((fwd[t + 1], fwd[t], FWD))
    return done()


def encode(examples: list[Example], vocab: int, task: str) -> Encoded:
    """Encode and pad a list of :class:`~helpers.tree_cot.trees.Example` (right padding)."""
    check_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    rows = []
    for ex in examples:
        labels = {x for e in ex.edges for x in e}
        if max(labels) >= vocab:
            raise ValueError(f"vocab={vocab} is too small for label {max(labels)}: labels must lie in [0, vocab)")
        rows.append(sequence(ex.edges, ex.root, ex.backward, vocab, task))
    return _pad(rows, [ex.depth for ex in examples], vocab, task)


def _pad(rows, depths, vocab: int, task: str) -> Encoded:
    T = max(len(r[0]) for r in rows)
    B = len(rows)
    tokens = np.empty((B, T, 3), dtype=np.int64)
    tokens[:] = (vocab + 1, vocab + 1, PAD)
    targets = np.full((B, T), -1, dtype=np.int64)
    stage, key = targets.copy(), targets.copy()
    for i, (toks, tgt, stg, k) in enumerate(rows):
        n = len(toks)
        tokens[i, :n] = toks
        targets[i, :n], stage[i, :n], key[i, :n] = tgt, stg, k
    as_t = torch.from_numpy
    return Encoded(as_t(tokens), as_t(targets), as_t(stage), as_t(key), torch.tensor(depths), vocab, task)


def perfect_batch(k: int, m: int, vocab: int, batch: int, rng: np.random.Generator, task: str) -> Encoded:
    """A batch of perfect ``k``-ary trees of depth ``m`` (random labels, goal, edge order).

    Same distribution as :func:`~helpers.tree_cot.trees.perfect_tree` + ``make_example``; the
    fixed shape lets labels, goals and edge orders be drawn as arrays for the whole batch, fast
    enough for a fresh batch at every training step (~9 ms for 256 trees of 31 nodes).
    """
    check_task(task)
    n = sum(k ** i for i in range(m + 1))
    if n > vocab:
        raise ValueError(f"a perfect {k}-ary tree of depth {m} has {n} nodes, more than vocab={vocab} labels")
    shape = np.array([-1] + [(i - 1) // k for i in range(1, n)])  # heap order: node i's parent
    first_leaf = n - k ** m
    labels = np.argsort(rng.random((batch, vocab)), axis=1)[:, :n]
    leaf = rng.integers(first_leaf, n, size=batch)
    order = np.argsort(rng.random((batch, n - 1)), axis=1) + 1  # shuffled non-root nodes = edges
    rows = []
    for i in range(batch):
        lab = labels[i]
        edges = [(lab[shape[j]], lab[j]) for j in order[i]]
        back, j = [lab[leaf[i]]], leaf[i]
        while j:
            j = shape[j]
            back.append(lab[j])
        rows.append(sequence([(int(p), int(c)) for p, c in edges], int(lab[0]), [int(v) for v in back], vocab, task))
    return _pad(rows, [m] * batch, vocab, task)
