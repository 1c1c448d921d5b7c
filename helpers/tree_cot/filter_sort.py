"""A second two-stage task: filter, then sort — in the same ``(a, b, kind)`` token format.

The input is a list of items, each a distinct value ``x_i ∈ [0, N)`` with a colour
``c_i ∈ [0, C)``, and a query colour ``c*``. The answer is the values of colour ``c*`` in
ascending order. Item tokens are ``(a = x_i, b = c_i, EDGE)``; the query token is
``(a = END, b = c*, ROOT)``. Two formats:

- ``"cot"``: a filter stage lists the kept values, each written with the colour it was kept for
  (tokens ``(x, c*, BWD)``), largest first — the order a one-layer lookup can produce without
  positions: "the largest value of my colour below the one I just wrote"; END; then a STAGE
  token ``(·, ·, FWD)`` and the sort stage writes the kept values ascending (tokens
  ``(x, ·, FWD)``): "the smallest listed value above the one I just wrote"; END.
- ``"direct"``: the model writes the ascending answer straight after the query token (tokens
  ``(x, ·, FWD)``). After its first output, the token it reads no longer says which colour is
  wanted: a one-layer model would have to fetch ``c*`` and use it in the same attention step.

Used in: book/tree_cot/04_robustness_and_filter_sort.ipynb and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..checks import check_int
from .decoding import greedy_loop
from .tokens import BOS, BWD, EDGE, FWD, ROOT, Encoded, _pad

FS_TASKS = ("cot", "direct")


@dataclass(frozen=True)
class FilterSortExample:
    """Items ``values[i]`` with ``colours[i]``; keep colour ``target``; the answer is :attr:`answer`."""

    values: tuple[int, ...]
    colours: tuple[int, ...]
    target: int

    @property
    def kept(self) -> list[int]:
        return [v for v, c in zip(self.values, self.colours) if c == self.target]

    @property
    def answer(self) -> list[int]:
        return sorted(self.kept)


def _check_task(task) -> str:
    if task not in FS_TASKS:
        raise ValueError(f"task must be one of {FS_TASKS}; got {task!r}")
    return task


def sample(n: int, vocab: int, rng=None, *, n_items: tuple[int, int] = (4, 12), colours: int = 2
           ) -> list[FilterSortExample]:
    """``n`` instances: ``n_items`` (inclusive range) distinct values from ``[0, vocab)``, colours
    uniform in ``[0, colours)``, a target colour held by at least one item."""
    check_int("n", n, 1)
    check_int("colours", colours, 2)
    lo, hi = n_items
    check_int("n_items[0]", lo, 1)
    if hi < lo:
        raise ValueError(f"n_items must be (low, high) with low <= high; got {n_items}")
    if hi > vocab:
        raise ValueError(f"n_items up to {hi} need that many distinct values; vocab={vocab} is too small")
    if colours > vocab:
        raise ValueError(f"colours={colours} must be <= vocab={vocab} (colours share the label slots)")
    g = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    out = []
    for _ in range(n):
        k = int(g.integers(lo, hi + 1))
        values = g.choice(vocab, size=k, replace=False)
        cols = g.integers(0, colours, size=k)
        out.append(FilterSortExample(tuple(int(v) for v in values), tuple(int(c) for c in cols),
                                     int(cols[int(g.integers(k))])))
    return out


def target_sequence(ex: FilterSortExample, vocab: int, task: str) -> list[int]:
    END = vocab
    _check_task(task)
    return (sorted(ex.kept, reverse=True) + [END] if task == "cot" else []) + ex.answer + [END]


def _prefix(ex: FilterSortExample, vocab: int, task: str):
    END, EMPTY = vocab, vocab + 1
    return [(EMPTY, EMPTY, BOS)] + [(v, c, EDGE) for v, c in zip(ex.values, ex.colours)] + [(END, ex.target, ROOT)]


def sequence(ex: FilterSortExample, vocab: int, task: str):
    """Tokens, targets, stages and lookup positions (the item or listed token holding the next value)."""
    END, EMPTY = vocab, vocab + 1
    toks = _prefix(ex, vocab, task)
    item_pos = {v: 1 + i for i, v in enumerate(ex.values)}
    marks = {}
    listed = {}
    if task == "cot":
        for v in sorted(ex.kept, reverse=True):
            marks[len(toks) - 1] = (v, 0, item_pos[v])
            toks.append((v, ex.target, BWD))
            listed[v] = len(toks) - 1
        marks[len(toks) - 1] = (END, 0, -1)
        toks.append((EMPTY, EMPTY, FWD))
    for v in ex.answer:
        marks[len(toks) - 1] = (v, 1, listed.get(v, -1))
        toks.append((v, EMPTY, FWD))
    marks[len(toks) - 1] = (END, 1, -1)
    cols = [[marks.get(i, (-1, -1, -1))[j] for i in range(len(toks))] for j in range(3)]
    return (toks, *cols)


def encode(examples: list[FilterSortExample], vocab: int, task: str) -> Encoded:
    _check_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    rows = [sequence(ex, vocab, task) for ex in examples]
    return _pad(rows, [len(ex.kept) for ex in examples], vocab, task)


@torch.no_grad()
def greedy_decode(model, examples: list[FilterSortExample], vocab: int, task: str) -> list[list[int]]:
    """Greedy generation with the format's rules (END closes a stage; the STAGE token is supplied)."""
    _check_task(task)
    END, EMPTY = vocab, vocab + 1
    seqs = [_prefix(ex, vocab, task) for ex in examples]
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


def evaluate(model, examples: list[FilterSortExample], vocab: int, task: str) -> dict:
    """Exact accuracy (whole output, END included), overall and by number of kept items."""
    model.eval()
    emitted = greedy_decode(model, examples, vocab, task)
    correct = np.array([e == target_sequence(ex, vocab, task) for e, ex in zip(emitted, examples)])
    kept = np.array([len(ex.kept) for ex in examples])
    return {"exact": float(correct.mean()),
            "by_kept": {int(k): float(correct[kept == k].mean()) for k in np.unique(kept)}, "n": len(examples)}
