"""The paper's one-layer theory model: one-hot tokens, trainable key–query matrices only.

A token ``(a, b, kind)`` (see :mod:`.tokens`) is embedded as the one-hot vector
``x = [e_a ; e_b ; e_kind] ∈ R^D``, ``D = 2(N+1) + 5`` (an empty slot is all zeros). Head ``h``
scores key ``k`` for query ``q`` with the bilinear form ``s^h_{qk} = x_kᵀ W_h x_q``, attends
causally with a softmax, and reads a **fixed** slot of what it attends to: head 0 reads slot
``a``, head 1 reads slot ``b``. The prediction is the sum over heads,

    ŷ_q = Σ_h Σ_{k ≤ q} softmax_k(s^h_{q·}) · R_h x_k  ∈ R^{N+1}    (R_0 reads a, R_1 reads b),

trained with the squared loss ``||ŷ_q − e_{y_q}||²`` by plain (stochastic) gradient descent
from ``W_h = 0``. Only ``W_h`` (the paper's key–query matrix) is trained.

With one head, the block of ``W_0`` that pairs the key's slot ``b`` (child) with the query's slot
``a`` (current node) is the paper's ``H``: ``H_ii`` large means "attend to the edge whose child is
me" — and the head then reads that edge's parent. :func:`construction` writes the solutions
by hand.

Used in: book/tree_cot/01_backward_theory.ipynb, 02_forward_two_heads.ipynb.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_int
from .tokens import BOS, BWD, FWD, Encoded


class TheoryModel(nn.Module):
    """One layer, ``n_heads`` heads (1 or 2), trainable ``W``: (n_heads, D, D), zero-initialised."""

    def __init__(self, vocab: int, n_heads: int = 1):
        super().__init__()
        self.vocab = check_int("vocab", vocab, 2)
        self.n_heads = check_int("n_heads", n_heads, 1)
        if n_heads > 2:
            raise ValueError(f"n_heads must be 1 or 2 (head 0 reads slot a, head 1 slot b); got {n_heads}")
        S = vocab + 1
        self.D = 2 * S + 5
        self.W = nn.Parameter(torch.zeros(n_heads, self.D, self.D))

    # slices of x = [e_a ; e_b ; e_kind]
    def slot(self, name: str) -> slice:
        S = self.vocab + 1
        return {"a": slice(0, S), "b": slice(S, 2 * S), "kind": slice(2 * S, 2 * S + 5)}[name]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, 3) int → (B, T, D) one-hot float (empty slots and padding are zero)."""
        S = self.vocab + 1
        eye_s = torch.cat([torch.eye(S), torch.zeros(1, S)])  # index S + 0 = empty
        eye_k = torch.cat([torch.eye(5), torch.zeros(1, 5)])  # PAD = 5
        a, b, k = tokens.unbind(-1)
        return torch.cat([eye_s[a], eye_s[b], eye_k[k]], -1).to(self.W)

    def forward(self, tokens: torch.Tensor, return_attention: bool = False):
        """tokens (B, T, 3) → ŷ (B, T, N+1) [, attention (B, n_heads, T, T)]."""
        x = self.embed(tokens)
        scores = torch.einsum("bkd,hde,bqe->bhqk", x, self.W, x)
        T = x.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        mask = mask & (tokens[..., 2] != 5)[:, None, None, :]
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        S = self.vocab + 1
        values = torch.stack([x[..., :S], x[..., S:2 * S]][: self.n_heads], 1)  # (B, H, T, S)
        y = (att @ values).sum(1)
        return (y, att) if return_attention else y

    @property
    def H(self) -> torch.Tensor:
        """(N, N): head 0's block pairing the key's child slot (rows) with the query's node slot (columns)."""
        N = self.vocab
        return self.W[0, self.slot("b"), self.slot("a")][:N, :N]


def mse_loss(model: TheoryModel, batch: Encoded) -> torch.Tensor:
    """Mean over predicted positions of ``||ŷ_q − e_{y_q}||²``."""
    y = model(batch.tokens)
    where = batch.targets >= 0
    target = torch.nn.functional.one_hot(batch.targets[where], model.vocab + 1).to(y)
    return ((y[where] - target) ** 2).sum(-1).mean()


def construction(vocab: int, task: str, lam: float = 20.0) -> TheoryModel:
    """The hand-built solution (no training) for ``task`` in ``{"backward", "forward"}``.

    Backward (1 head): ``s = λ·[b_k = a_q]`` — attend to the edge whose child is the current node,
    read its parent (at the root, the ROOT token ``(END, r)`` yields END).
    Forward (2 heads): head 0 climbs as above in the backward stage and, in the forward stage, is
    parked on BOS (``+2λ`` for key BOS when the query is FWD). Head 1 is parked on BOS in the
    backward stage and in the forward stage attends to the backward-stage token whose slot ``a``
    is the current node (``λ·[a_k = a_q] + λ·[key BWD, query FWD]``), reading its slot ``b`` —
    the child on the path (END at the goal).
    """
    if task not in ("backward", "forward"):
        raise ValueError(f"task must be 'backward' or 'forward'; got {task!r}")
    m = TheoryModel(vocab, 1 if task == "backward" else 2)
    a, b, kind = m.slot("a"), m.slot("b"), m.slot("kind")
    N = vocab
    with torch.no_grad():
        eye = torch.eye(N) * lam
        m.W[0, b, a][:N, :N] = eye
        if task == "forward":
            m.W[0, kind, kind][BOS, FWD] = 2 * lam
            m.W[1, a, a][:N, :N] = eye
            m.W[1, kind, kind][BWD, FWD] = lam
            m.W[1, kind, kind][BOS, BWD] = 2 * lam
    return m
