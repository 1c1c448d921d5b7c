"""Checkers for the chapter's exercises: they say what is wrong, not just that something is.

Exercise 1 (book/tree_cot/01_backward_theory.ipynb): write the one-head **backward**
construction — the key–query matrix ``W`` (D × D) of :class:`~helpers.tree_cot.models.TheoryModel`.
Exercise 2 (book/tree_cot/02_forward_two_heads.ipynb): write head 1 of the two-head
**forward** construction — the head that parks in the backward stage and descends in the forward one.

Each checker raises the book's :class:`~helpers.ExerciseError` with a hint about what to fix.
"""
from __future__ import annotations

import torch

from ..exercises import ExerciseError
from ..seeds import numpy_generator
from .analysis import evaluate, per_step_accuracy
from .data import encode, make_example, random_tree
from .models import TheoryModel, construction

__all__ = ["ExerciseError", "check_backward_construction", "check_forward_head1"]


def _examples(vocab: int, n: int = 80, seed: int = 0):
    rng = numpy_generator(seed)
    return [make_example(random_tree(3, vocab, rng, max_depth=5, min_depth=2), rng) for _ in range(n)]


def _as_matrix(W, D: int, what: str) -> torch.Tensor:
    W = torch.as_tensor(W, dtype=torch.float32)
    if W.shape != (D, D):
        raise ExerciseError(f"{what} must have shape (D, D) = ({D}, {D}) with D = 2(N+1) + 5; got {tuple(W.shape)}")
    if not torch.isfinite(W).all():
        raise ExerciseError(f"{what} has NaN or infinite entries")
    return W


def check_backward_construction(make_W, vocab: int = 12) -> str:
    """``make_W(vocab, lam) -> W`` (D × D) must make the one-head theory model climb from goal to root."""
    model = TheoryModel(vocab, 1)
    W = _as_matrix(make_W(vocab, 20.0), model.D, "W")
    with torch.no_grad():
        model.W[0] = W
    exs = _examples(vocab)
    acc = evaluate(model, exs, vocab, "backward")["exact"]
    if acc == 1.0:
        return f"Correct: your W climbs from the goal to the root on all {len(exs)} unseen trees."
    a, b = model.slot("a"), model.slot("b")
    N = vocab
    H = W[b, a][:N, :N]
    if torch.count_nonzero(H) == 0:
        if torch.count_nonzero(W[a, a][:N, :N]) or torch.count_nonzero(W[a, b][:N, :N]):
            raise ExerciseError("your scores look at the wrong slots. The query's current node is in its slot a; "
                                "the edge to find has that node as its CHILD, which is the key's slot b: fill "
                                "W[b-rows, a-columns] (rows index the key, columns the query)")
        raise ExerciseError("H = W[slot b of the key, slot a of the query] is all zero, so attention stays "
                            "uniform: put λ on its diagonal")
    if (H.diag() <= 0).any():
        raise ExerciseError("some diagonal entries of H are <= 0: every label needs H_ii = λ > 0")
    if not torch.allclose(H, torch.diag(H.diag())):
        raise ExerciseError("H has off-diagonal entries: a node would also attend to edges of OTHER children")
    raise ExerciseError(f"only {acc:.0%} of paths are right; compare your W with construction(vocab, 'backward').W[0]")


def check_forward_head1(make_head1, vocab: int = 12) -> str:
    """``make_head1(vocab, lam) -> W_1`` (D × D): with head 0 of the construction, the forward task is solved."""
    model = construction(vocab, "forward")
    W1 = _as_matrix(make_head1(vocab, 20.0), model.D, "W_1")
    with torch.no_grad():
        model.W[1] = W1
    exs = _examples(vocab, seed=1)
    acc = evaluate(model, exs, vocab, "forward")["exact"]
    if acc == 1.0:
        return f"Correct: with your head 1 the model writes the chain of thought and then descends, on all {len(exs)} trees."
    steps = per_step_accuracy(model, encode(exs, vocab, "forward"))
    if steps["backward"] < 1.0:
        raise ExerciseError(f"the backward stage breaks ({steps['backward']:.0%} of climbing steps right): head 1 "
                            "must stay out of the way there. Park it on BOS: a large score for key kind BOS when the "
                            "query's kind is BWD (larger than any match, e.g. 2λ)")
    if steps["forward"] < 1.0:
        raise ExerciseError(f"the forward stage breaks ({steps['forward']:.0%} of descending steps right). Head 1 reads "
                            "slot b of what it attends to, so it must find the chain-of-thought token whose slot a is "
                            "the current node (λ·[a_k = a_q]) AND prefer it to edges with the same parent "
                            "(+λ when the key's kind is BWD and the query's is FWD)")
    raise ExerciseError(f"every single step is right but only {acc:.0%} of whole sequences: check END at the goal "
                        "(the GOAL token is (g, END) with kind BWD)")
