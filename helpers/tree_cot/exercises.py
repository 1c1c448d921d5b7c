"""Checkers for the chapter's exercises: they say what is wrong, not just that something is.

Exercise 1 (book/tree_cot/01_backward_theory.ipynb): write the one-head **backward**
construction — the key–query matrix ``W`` (D × D) of :class:`~helpers.tree_cot.models.TheoryModel`.
Exercise 2 (book/tree_cot/02_forward_two_heads.ipynb): write head 1 of the two-head
**forward** construction — the stage-control head, which parks while the model climbs, finds the
root, and keeps the stage signal on while it descends.

Each checker raises the book's :class:`~helpers.ExerciseError` with a hint about what to fix.
"""
from __future__ import annotations

import torch

from ..exercises import ExerciseError
from ..seeds import numpy_generator
from .analysis import evaluate
from .data import BWD, EDGE, ROOT, encode, make_example, random_tree
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
    H = W[b, b][:N, :N]
    if torch.count_nonzero(H) == 0:
        if torch.count_nonzero(W[a, a][:N, :N]) or torch.count_nonzero(W[a, b][:N, :N]) \
                or torch.count_nonzero(W[b, a][:N, :N]):
            raise ExerciseError("your scores look at the wrong slots. The query's current node is in its slot b; "
                                "the edge to find has that node as its CHILD, which is the key's slot b too: fill "
                                "W[b-rows, b-columns] (rows index the key, columns the query)")
        raise ExerciseError("H = W[slot b of the key, slot b of the query] is all zero, so attention stays "
                            "uniform: put λ on its diagonal")
    if (H.diag() <= 0).any():
        raise ExerciseError("some diagonal entries of H are <= 0: every label needs H_ii = λ > 0")
    if not torch.allclose(H, torch.diag(H.diag())):
        raise ExerciseError("H has off-diagonal entries: a node would also attend to edges of OTHER children")
    K = W[model.slot("kind"), model.slot("kind")]
    if K[EDGE, BWD] <= K[BWD, BWD]:
        raise ExerciseError(f"only {acc:.0%} of paths are right. The current node is also in slot b of the query's "
                            "OWN token (u, v, BWD), which matches as well as the edge does: prefer edges — a positive "
                            "score for key kind EDGE when the query's kind is BWD (e.g. λ/2)")
    if K[ROOT, BWD] <= K[BWD, BWD]:
        raise ExerciseError(f"only {acc:.0%} of paths are right: at the root no edge matches, and the ROOT token "
                            "(END, r) must win over the query's own token — add λ/2 for key kind ROOT, query BWD")
    raise ExerciseError(f"only {acc:.0%} of paths are right; compare your W with construction(vocab, 'backward').W[0]")


def check_forward_head1(make_head1, vocab: int = 12) -> str:
    """``make_head1(vocab, lam) -> W_1`` (D × D): with head 0 of the construction (the traversal head),
    the forward task is solved — head 1 must supply the stage signal."""
    model = construction(vocab, "forward")
    W1 = _as_matrix(make_head1(vocab, 20.0), model.D, "W_1")
    with torch.no_grad():
        model.W[1] = W1
    exs = _examples(vocab, seed=1)
    r = evaluate(model, exs, vocab, "forward")
    if r["exact"] == 1.0:
        return (f"Correct: with your head 1 the model climbs, switches at the root by itself and descends, on all "
                f"{len(exs)} trees.")
    b = encode(exs, vocab, "forward")
    y = model(b.tokens).detach()
    stage = y[..., -1] > model.stage_threshold
    climbing = (b.next_stage == 0)
    if stage[climbing].any():
        raise ExerciseError(f"the stage signal turns forward too early ({stage[climbing].float().mean():.0%} of "
                            "climbing steps): head 1 must contribute nothing while climbing. Park it on BOS, whose "
                            "readout is empty: a score for key kind BOS when the query's kind is BWD (e.g. λ/2), "
                            "and negative scores for edges and chain-of-thought tokens")
    at_root = b.marker >= 0
    if not stage[at_root].all():
        raise ExerciseError(f"the model does not switch at the root ({stage[at_root].float().mean():.0%} of roots): "
                            "head 1 must find the ROOT token (·, r) when the current node is r — the match block "
                            "W_1[b, b] = λ·I does that, if the ROOT kind is not penalised")
    down = b.stage == 1
    raise ExerciseError(f"the switch works but the descent loses the stage signal ({stage[down].float().mean():.0%} of "
                        "descending steps say forward): in the forward stage head 1 should stay on tokens that "
                        "carry the stage bit (ROOT and forward tokens: e.g. +2λ for key ROOT and key FWD, query FWD)")
