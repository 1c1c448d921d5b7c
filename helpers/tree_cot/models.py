"""Chapter 1's models: the paper's one-layer theory model and a standard small transformer.

- :class:`TheoryModel`, :func:`mse_loss`, :func:`construction` — the paper's model (one-hot
  tokens, trainable key–query matrices ``W_h`` only, fixed per-head readouts, squared loss, zero
  initialisation) and its hand-built solutions; ``H`` is the block of ``W_0`` the paper analyses.
- :class:`TransformerConfig`, :class:`TreeTransformer`, :func:`ce_loss` — learned embeddings,
  softmax attention with learned values, a learned read-out, cross-entropy: nanoGPT in miniature.

Both read the ``(a, b, kind)`` tokens of :mod:`.data` and map tokens (B, T, 3) to scores
(B, T, N+1) over the next node or END; both return their attention patterns on request.

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_int
from .data import BOS, BWD, FWD, PAD, Encoded


# --------------------------------------------------------------------------------------------
# the theory model
#
# The paper's one-layer theory model: one-hot tokens, trainable key–query matrices only.
#
# A token ``(a, b, kind)`` (see :mod:`.data`) is embedded as the one-hot vector
# ``x = [e_a ; e_b ; e_kind] ∈ R^D``, ``D = 2(N+1) + 5`` (an empty slot is all zeros). Head ``h``
# scores key ``k`` for query ``q`` with the bilinear form ``s^h_{qk} = x_kᵀ W_h x_q``, attends
# causally with a softmax, and reads a **fixed** slot of what it attends to: head 0 reads slot
# ``a``, head 1 reads slot ``b``. The prediction is the sum over heads,
#
#     ŷ_q = Σ_h Σ_{k ≤ q} softmax_k(s^h_{q·}) · R_h x_k  ∈ R^{N+1}    (R_0 reads a, R_1 reads b),
#
# trained with the squared loss ``||ŷ_q − e_{y_q}||²`` by plain (stochastic) gradient descent
# from ``W_h = 0``. Only ``W_h`` (the paper's key–query matrix) is trained.
#
# With one head, the block of ``W_0`` that pairs the key's slot ``b`` (child) with the query's slot
# ``a`` (current node) is the paper's ``H``: ``H_ii`` large means "attend to the edge whose child is
# me" — and the head then reads that edge's parent. :func:`construction` writes the solutions
# by hand.


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
        mask = mask & (tokens[..., 2] != PAD)[:, None, None, :]
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


# --------------------------------------------------------------------------------------------
# the standard transformer
#
# A standard small transformer for the tree tasks: learned embeddings, softmax attention, cross-entropy.
#
# It reads the same ``(a, b, kind)`` tokens as the theory model (:mod:`.data`), but embeds them
# with learned tables, ``x = E_a[a] + E_b[b] + E_kind[kind]`` (no positions: the edge list is a
# set and path tokens name their own predecessor), and has everything a transformer usually has:
# ``n_layers`` pre-LayerNorm blocks of multi-head causal attention (+ an optional MLP), a final
# LayerNorm and a linear read-out to the ``N + 1`` outputs (nodes and END). nanoGPT in miniature.
#
# Attention patterns are returned by ``forward(..., return_attention=True)`` as a list over
# layers of (B, n_heads, T, T) tensors, so the chapter can plot them per head and per step.


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes: ``vocab`` labels (N), ``d_model``, ``n_heads``, ``n_layers``, ``d_mlp`` (0: attention only)."""

    vocab: int
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 1
    d_mlp: int = 0
    n_kinds: int = 6

    def __post_init__(self):
        check_int("vocab", self.vocab, 2)
        check_int("d_model", self.d_model, 1)
        check_int("n_heads", self.n_heads, 1)
        check_int("n_layers", self.n_layers, 1)
        check_int("d_mlp", self.d_mlp, 0)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")


class Block(nn.Module):
    """One pre-LayerNorm block: causal multi-head attention (+ an MLP if ``cfg.d_mlp``), residual."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        if cfg.d_mlp:
            self.ln2 = nn.LayerNorm(cfg.d_model)
            self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.d_mlp), nn.GELU(), nn.Linear(cfg.d_mlp, cfg.d_model))

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        """x (B, T, d_model), mask (B, 1, T, T) bool (True: may attend) → x (B, T, d_model), attention (B, H, T, T)."""
        B, T, C = x.shape
        H = self.cfg.n_heads
        q, k, v = self.qkv(self.ln1(x)).view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1)  # (B, H, T, T)
        x = x + self.out((att @ v).transpose(1, 2).reshape(B, T, C))
        if self.cfg.d_mlp:
            x = x + self.mlp(self.ln2(x))
        return x, att


class TreeTransformer(nn.Module):
    """tokens (B, T, 3) → logits (B, T, N+1) [, attention: list of (B, n_heads, T, T) per layer]."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        S = cfg.vocab + 2  # labels, END, empty
        self.embed_a = nn.Embedding(S, cfg.d_model)
        self.embed_b = nn.Embedding(S, cfg.d_model)
        self.embed_kind = nn.Embedding(cfg.n_kinds, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab + 1)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    @property
    def vocab(self) -> int:
        return self.cfg.vocab

    def forward(self, tokens: torch.Tensor, return_attention: bool = False):
        if tokens.ndim != 3 or tokens.shape[-1] != 3:
            raise ValueError(f"tokens must have shape (B, T, 3); got {tuple(tokens.shape)}")
        a, b, kind = tokens.unbind(-1)
        x = self.embed_a(a) + self.embed_b(b) + self.embed_kind(kind)
        T = tokens.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
        mask = (mask & (kind != PAD)[:, None, None, :]) | torch.eye(T, dtype=torch.bool, device=tokens.device)
        atts = []
        for block in self.blocks:
            x, att = block(x, mask)
            atts.append(att)
        logits = self.unembed(self.ln_f(x))
        return (logits, atts) if return_attention else logits


def ce_loss(model: TreeTransformer, batch: Encoded) -> torch.Tensor:
    """Cross-entropy of the next node (or END) at every predicted position."""
    logits = model(batch.tokens)
    where = batch.targets >= 0
    return F.cross_entropy(logits[where], batch.targets[where])


def parameter_count(model: nn.Module) -> int:
    """Number of trainable and frozen parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
