"""Chapter 1's models: the paper's one-layer theory model and a standard small transformer.

- :class:`TheoryModel`, :func:`mse_loss`, :func:`construction` — the paper's model (one-hot
  tokens, trainable key–query matrices ``W_h`` only, one fixed readout shared by the heads, squared
  loss, zero initialisation) and its hand-built solutions; ``H`` is the block of ``W_0`` the paper analyses.
- :class:`TransformerConfig`, :class:`TreeTransformer`, :func:`ce_loss` — learned embeddings,
  softmax attention with learned values, a learned read-out, cross-entropy: nanoGPT in miniature.

Both read the ``(a, b, kind)`` tokens of :mod:`.data` and map tokens (B, T, 3) to scores
(B, T, N+2): over the next node or END, and for the next token's stage; both return their
attention patterns on request.

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_int
from .data import BOS, BWD, EDGE, FWD, PAD, ROOT, Encoded

# --------------------------------------------------------------------------------------------
# the theory model
#
# The paper's one-layer theory model: one-hot tokens, trainable key–query matrices only.
#
# A token ``(a, b, kind)`` (see :mod:`.data`) is embedded as the one-hot vector
# ``x = [e_a ; e_b ; e_kind] ∈ R^D``, ``D = 2(N+1) + 5`` (an empty slot is all zeros). Head ``h``
# scores key ``k`` for query ``q`` with the bilinear form ``s^h_{qk} = x_kᵀ W_h x_q``, attends
# causally with a softmax, and reads what it attends to through a **fixed readout shared by all
# heads**: ``R x = [e_a ; f(kind)]`` — the node in slot ``a`` (END included; nothing for an empty
# slot) and a stage bit ``f`` that is 1 for the ROOT token and for forward-stage tokens. The
# prediction is the sum over heads,
#
#     ŷ_q = Σ_h Σ_{k ≤ q} softmax_k(s^h_{q·}) · R x_k  ∈ R^{N+2}
#         = [ŷ_node ∈ R^{N+1} (next node or END) ; ŷ_stage ∈ R (stage of the next token: 0 backward, 1 forward)],
#
# trained with the squared loss ``||ŷ_node − e_{y_q}||² + (ŷ_stage − s_q)²`` (the stage term only
# where the task has a stage to predict) by plain (stochastic) gradient descent from ``W_h = 0``
# (or, to break the heads' symmetry, from a small random ``W_h``). Only ``W_h`` (the paper's
# key–query matrix) is trained. Because every head reads the same way, any head can serve any
# role: which head climbs, descends or signals the stage is decided by ``W`` alone.
#
# The block of ``W_h`` that pairs the key's slot ``b`` with the query's slot ``b`` matches "the
# token whose slot b is my current node" (the edge whose child is me, when climbing; my own
# chain-of-thought token, when descending); the kind × kind block says which kinds of token a
# query of each stage prefers. With one head, the node part of the former is the paper's ``H``.
# :func:`construction` writes the solutions by hand.

STAGE_BIT = (ROOT, FWD)  # token kinds whose readout carries the stage bit f = 1


class TheoryModel(nn.Module):
    """One layer, ``n_heads`` heads, trainable ``W``: (n_heads, D, D) — zero-initialised, or
    ``N(0, init_std²)`` drawn from ``generator`` when ``init_std > 0``.

    ``forward(tokens)`` maps (B, T, 3) tokens to ŷ (B, T, N+2): node scores ``[..., :N+1]`` and the
    stage score ``[..., N+1]`` (forward when > :attr:`stage_threshold`)."""

    stage_threshold = 0.5

    def __init__(self, vocab: int, n_heads: int = 1, *, init_std: float = 0.0,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.vocab = check_int("vocab", vocab, 2)
        self.n_heads = check_int("n_heads", n_heads, 1)
        if n_heads > 4:
            raise ValueError(f"n_heads must be between 1 and 4; got {n_heads}")
        if not (isinstance(init_std, (int, float)) and 0 <= init_std < float("inf")):
            raise ValueError(f"init_std must be a finite number >= 0; got {init_std!r}")
        self.init_std = float(init_std)
        S = vocab + 1
        self.D = 2 * S + 5
        W = torch.zeros(n_heads, self.D, self.D)
        if init_std > 0:
            W.normal_(0.0, init_std, generator=generator)
        self.W = nn.Parameter(W)

    # slices of x = [e_a ; e_b ; e_kind]
    def slot(self, name: str) -> slice:
        S = self.vocab + 1
        slots = {"a": slice(0, S), "b": slice(S, 2 * S), "kind": slice(2 * S, 2 * S + 5)}
        if name not in slots:
            raise ValueError(f"name must be one of {tuple(slots)}; got {name!r}")
        return slots[name]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, 3) int → (B, T, D) one-hot float (empty slots and padding are zero)."""
        S = self.vocab + 1
        dev = tokens.device
        eye_s = torch.cat([torch.eye(S, device=dev), torch.zeros(1, S, device=dev)])  # index S + 0 = empty
        eye_k = torch.cat([torch.eye(5, device=dev), torch.zeros(1, 5, device=dev)])  # PAD = 5
        a, b, k = tokens.unbind(-1)
        return torch.cat([eye_s[a], eye_s[b], eye_k[k]], -1).to(self.W)

    def readout(self, x: torch.Tensor) -> torch.Tensor:
        """(…, D) embedded tokens → (…, N+2): ``[e_a ; f(kind)]``, the same for every head."""
        S = self.vocab + 1
        kind = x[..., 2 * S:]
        f = kind[..., list(STAGE_BIT)].sum(-1, keepdim=True)
        return torch.cat([x[..., :S], f], -1)

    def forward(self, tokens: torch.Tensor, return_attention: bool = False):
        """tokens (B, T, 3) → ŷ (B, T, N+2) [, attention (B, n_heads, T, T)]."""
        if tokens.ndim != 3 or tokens.shape[-1] != 3:
            raise ValueError(f"tokens must have shape (B, T, 3); got {tuple(tokens.shape)}")
        x = self.embed(tokens)
        scores = torch.einsum("bkd,hde,bqe->bhqk", x, self.W, x)
        T = x.shape[1]
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        mask = (mask & (tokens[..., 2] != PAD)[:, None, None, :]) | torch.eye(T, dtype=torch.bool, device=x.device)
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ self.readout(x)[:, None]).sum(1)
        return (y, att) if return_attention else y

    def block(self, head: int, key: str, query: str) -> torch.Tensor:
        """The block of ``W_head`` pairing the key's slot ``key`` with the query's slot ``query``
        (slots ``"a"``, ``"b"``: (N+1, N+1) incl. END; ``"kind"``: (5, 5), rows key kinds, columns query kinds)."""
        if not 0 <= head < self.n_heads:
            raise ValueError(f"head must be in [0, {self.n_heads}); got {head}")
        return self.W[head, self.slot(key), self.slot(query)]

    @property
    def H(self) -> torch.Tensor:
        """(N, N): head 0's block pairing the key's slot b (rows: the edge's child) with the query's
        slot b (columns: the current node) — the paper's ``H`` for the one-head backward model."""
        N = self.vocab
        return self.block(0, "b", "b")[:N, :N]


def mse_loss(model: TheoryModel, batch: Encoded) -> torch.Tensor:
    """Mean over predicted positions of ``||ŷ_node − e_{y_q}||²`` plus, where the task has a stage to
    predict, ``(ŷ_stage − s_q)²``."""
    y = model(batch.tokens)
    where = batch.targets >= 0
    S = model.vocab + 1
    target = torch.nn.functional.one_hot(batch.targets[where], S).to(y)
    node = ((y[..., :S][where] - target) ** 2).sum()
    has_stage = batch.next_stage >= 0
    stage = ((y[..., S][has_stage] - batch.next_stage[has_stage].to(y)) ** 2).sum()
    return (node + stage) / where.sum()


def construction(vocab: int, task: str, lam: float = 20.0) -> TheoryModel:
    """The hand-built solution (no training) for ``task`` in ``{"backward", "forward"}``.

    Both use the match block ``W[b, b] = λ·I`` ("the token whose slot b is my current node") and
    token-kind preferences (``W[kind, kind]``, rows key kinds, columns query kinds).

    Backward (1 head): climbing, prefer edges (``+λ/2`` for key EDGE, query BWD) to my own
    chain-of-thought token; at the root the ROOT token ``(END, r)`` (``+λ/2``) answers END.
    Forward (2 heads): head 0 **traverses** — climbing as above; at the root it falls back to the
    root's own chain-of-thought token ``(v_{L−1}, r)`` and reads the first node down; descending,
    it prefers chain-of-thought tokens (``+λ/2`` for key BWD, query FWD; ``−λ`` for edges and
    forward tokens) and reads the child the path came from. Head 1 **controls the stage** — it
    parks on BOS while climbing (``+λ/2``; ``−λ`` for edges and chain-of-thought tokens), finds
    the ROOT token ``(·, r)`` when the current node is the root (the match block), and stays on
    stage-bit tokens (ROOT, forward tokens: ``+2λ``) in the forward stage: its output is the
    stage bit, 0 then 1.
    """
    if task not in ("backward", "forward"):
        raise ValueError(f"task must be 'backward' or 'forward'; got {task!r}")
    m = TheoryModel(vocab, 1 if task == "backward" else 2)
    b, kind = m.slot("b"), m.slot("kind")
    N = vocab
    with torch.no_grad():
        for h in range(m.n_heads):
            m.W[h, b, b][:N, :N] = torch.eye(N) * lam
        K0 = m.W[0, kind, kind]  # (key kind, query kind)
        K0[EDGE, BWD] = lam / 2
        if task == "backward":
            K0[ROOT, BWD] = lam / 2
            return m
        K0[ROOT, BWD] = -lam
        K0[BWD, FWD] = lam / 2
        K0[EDGE, FWD] = K0[FWD, FWD] = -lam
        K1 = m.W[1, kind, kind]
        K1[EDGE, BWD] = K1[BWD, BWD] = -lam
        K1[BOS, BWD] = lam / 2
        K1[ROOT, FWD] = K1[FWD, FWD] = 2 * lam
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
    """tokens (B, T, 3) → logits (B, T, N+2) [, attention: list of (B, n_heads, T, T) per layer]:
    node logits ``[..., :N+1]`` (next node or END) and the stage logit ``[..., N+1]`` (the next
    token is in the forward stage when it is > :attr:`stage_threshold`)."""

    stage_threshold = 0.0

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        S = cfg.vocab + 2  # labels, END, empty
        self.embed_a = nn.Embedding(S, cfg.d_model)
        self.embed_b = nn.Embedding(S, cfg.d_model)
        self.embed_kind = nn.Embedding(cfg.n_kinds, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.vocab + 2)  # N+1 node logits, 1 stage logit
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
    """Cross-entropy of the next node (or END) at every predicted position, plus the binary
    cross-entropy of the next token's stage where the task has a stage to predict."""
    logits = model(batch.tokens)
    S = model.vocab + 1
    where = batch.targets >= 0
    loss = F.cross_entropy(logits[..., :S][where], batch.targets[where])
    has_stage = batch.next_stage >= 0
    if has_stage.any():
        stage = F.binary_cross_entropy_with_logits(logits[..., S][has_stage], batch.next_stage[has_stage].to(logits),
                                                   reduction="sum")
        loss = loss + stage / where.sum()
    return loss


def parameter_count(model: nn.Module) -> int:
    """Number of trainable and frozen parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
