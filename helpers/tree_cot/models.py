"""A standard small transformer for the tree tasks: learned embeddings, softmax attention, cross-entropy.

It reads the same ``(a, b, kind)`` tokens as the theory model (:mod:`.tokens`), but embeds them
with learned tables, ``x = E_a[a] + E_b[b] + E_kind[kind]`` (no positions: the edge list is a
set and path tokens name their own predecessor), and has everything a transformer usually has:
``n_layers`` pre-LayerNorm blocks of multi-head causal attention (+ an optional MLP), a final
LayerNorm and a linear read-out to the ``N + 1`` outputs (nodes and END). nanoGPT in miniature.

Attention patterns are returned by ``forward(..., return_attention=True)`` as a list over
layers of (B, n_heads, T, T) tensors, so the chapter can plot them per head and per step.

Used in: book/tree_cot/03_standard_transformer.ipynb, 04_robustness_and_filter_sort.ipynb.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_int
from .tokens import PAD, Encoded


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
    return sum(p.numel() for p in model.parameters())
