"""A small GPT-style causal transformer for in-context regression, with G independent copies in one.

Every parameter has a leading *group* dimension G: group g is a complete, independent model
(its own embedding, blocks and read-out), and one forward pass runs all G on their own inputs
with batched matrix products (:class:`GroupedLinear`, one ``bmm``). A sweep over task counts M
trains one :class:`GroupedTransformer` with one group per M; summing the groups' losses keeps
their gradients separate, and Adam is elementwise, so training the group is training G separate
models (a test checks it).

Architecture (pre-LN, as in the authors' earlier codebase): linear token embedding of the
(D+1)-dim tokens, learned positional embedding, ``n_layers`` × :class:`GroupedBlock`
[LN → causal multi-head attention → residual, LN → MLP(GELU) → residual], final LN, linear
read-out of one number. The prediction for ``y_k`` is read at the x_k token (positions 0, 2, 4, …).

Shapes: G groups, B sequences, T = 2K positions, d = ``d_model``, H heads of width d/H.

Used in: book/transient_ridge/ (the sweep) and its full run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_int


@dataclass(frozen=True)
class ModelConfig:
    """Sizes: ``D`` task dimension, ``K`` pairs per sequence, width ``d_model``, ``n_layers``,
    ``n_heads`` (dividing ``d_model``), MLP width ``d_mlp``."""

    D: int = 8
    K: int = 16
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_mlp: int = 256

    def __post_init__(self):
        for name in ("D", "K", "d_model", "n_layers", "n_heads", "d_mlp"):
            check_int(name, getattr(self, name), 1)
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")


class GroupedLinear(nn.Module):
    """G independent linear maps ``x W_g (+ b_g)``: (G, B, T, d_in) → (G, B, T, d_out) as one ``bmm``.

    ``weight``: (G, d_in, d_out), initialised N(0, std²); ``bias``: (G, d_out), zeros (if ``bias``).
    """

    def __init__(self, groups: int, d_in: int, d_out: int, *, std: float, bias: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(std * torch.randn(groups, d_in, d_out, generator=generator))
        self.bias = nn.Parameter(torch.zeros(groups, d_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        G, B, T, d_in = x.shape
        flat = x.reshape(G, B * T, d_in)
        if self.bias is None:
            out = torch.bmm(flat, self.weight)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight)
        return out.reshape(G, B, T, -1)


class GroupedLayerNorm(nn.Module):
    """LayerNorm over the last dimension with a gain and shift per group: ``weight``, ``bias`` (G, d)."""

    def __init__(self, groups: int, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(groups, d))
        self.bias = nn.Parameter(torch.zeros(groups, d))

    def forward(self, h: torch.Tensor) -> torch.Tensor:            # h: (G, B, T, d)
        return F.layer_norm(h, h.shape[-1:]) * self.weight[:, None, None] + self.bias[:, None, None]


class GroupedBlock(nn.Module):
    """One pre-LN transformer block for G groups: causal multi-head attention, then a GELU MLP."""

    def __init__(self, config: ModelConfig, groups: int, generator: torch.Generator | None = None):
        super().__init__()
        c, G, std = config, groups, 0.02
        self.n_heads = c.n_heads
        self.ln_attn = GroupedLayerNorm(G, c.d_model)
        self.qkv = GroupedLinear(G, c.d_model, 3 * c.d_model, std=std, generator=generator)
        self.proj = GroupedLinear(G, c.d_model, c.d_model, std=std / math.sqrt(2 * c.n_layers), generator=generator)
        self.ln_mlp = GroupedLayerNorm(G, c.d_model)
        self.fc1 = GroupedLinear(G, c.d_model, c.d_mlp, std=std, bias=True, generator=generator)
        self.fc2 = GroupedLinear(G, c.d_mlp, c.d_model, std=std / math.sqrt(2 * c.n_layers), bias=True,
                                 generator=generator)

    def forward(self, h: torch.Tensor, mask: torch.Tensor, return_attention: bool = False):
        """h: (G, B, T, d), mask: (T, T) bool (True = may attend) → (h, attention (G, B, H, T, T) or None)."""
        G, B, T, d = h.shape
        H = self.n_heads
        q, k, v = self.qkv(self.ln_attn(h)).split(d, dim=-1)                  # each (G, B, T, d)
        q, k, v = (x.reshape(G * B, T, H, d // H).transpose(1, 2) for x in (q, k, v))  # (G·B, H, T, d/H)
        if return_attention:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(d // H)
            pattern = scores.masked_fill(~mask, float("-inf")).softmax(-1)   # (G·B, H, T, T)
            mixed = pattern @ v
            pattern = pattern.reshape(G, B, H, T, T)
        else:
            mixed, pattern = F.scaled_dot_product_attention(q, k, v, attn_mask=mask), None
        h = h + self.proj(mixed.transpose(1, 2).reshape(G, B, T, d))
        h = h + self.fc2(F.gelu(self.fc1(self.ln_mlp(h))))
        return h, pattern


class GroupedTransformer(nn.Module):
    """``G`` independent causal transformers evaluated together.

    ``forward(tokens)``: tokens (G, B, 2K, D+1) → predictions (G, B, K);
    ``forward(tokens, return_attention=True)`` → (predictions, [attention (G, B, H, 2K, 2K) per layer]).
    """

    def __init__(self, config: ModelConfig, groups: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be an int >= 1; got {groups!r}")
        c, G = config, groups
        self.config, self.groups = config, groups
        self.embed = GroupedLinear(G, c.D + 1, c.d_model, std=1 / math.sqrt(c.D + 1), generator=generator)
        self.pos = nn.Parameter(0.02 * torch.randn(G, 2 * c.K, c.d_model, generator=generator))   # (G, T, d)
        self.blocks = nn.ModuleList([GroupedBlock(c, G, generator) for _ in range(c.n_layers)])
        self.ln_final = GroupedLayerNorm(G, c.d_model)
        self.readout = GroupedLinear(G, c.d_model, 1, std=0.02, generator=generator)
        self.register_buffer("mask", torch.ones(2 * c.K, 2 * c.K).tril().bool(), persistent=False)

    def forward(self, tokens: torch.Tensor, return_attention: bool = False):
        c, G = self.config, self.groups
        if tokens.ndim != 4 or tokens.shape[0] != G or tokens.shape[2:] != (2 * c.K, c.D + 1):
            raise ValueError(f"tokens must be (G={G}, B, 2K={2 * c.K}, D+1={c.D + 1}); got {tuple(tokens.shape)}")
        h = self.embed(tokens) + self.pos.unsqueeze(1)                      # (G, B, T, d)
        patterns = []
        for block in self.blocks:
            h, pattern = block(h, self.mask, return_attention)
            patterns.append(pattern)
        preds = self.readout(self.ln_final(h))[:, :, 0::2, 0]               # (G, B, K): read at the x tokens
        return (preds, patterns) if return_attention else preds

    def select(self, g: int) -> "GroupedTransformer":
        """Group ``g`` as a model of its own (``groups=1``), with copies of its parameters."""
        if not isinstance(g, int) or not 0 <= g < self.groups:
            raise ValueError(f"g must be in [0, {self.groups}); got {g}")
        single = GroupedTransformer(self.config, groups=1)
        single.load_state_dict({k: v[g:g + 1].clone() for k, v in self.state_dict().items()})
        return single.to(self.pos.device)

    def parameter_count(self) -> int:
        """Parameters of ONE group (one model)."""
        return sum(p.numel() for p in self.parameters()) // self.groups


def forward_flops(config: ModelConfig) -> float:
    """FLOPs of one forward pass of ONE model on ONE sequence of T = 2K tokens, counted
    analytically (a multiply-add is 2 FLOPs; layer norms, GELU, softmax and the optimiser are not
    counted): the embedding 2T(D+1)d; per layer the q, k, v and output projections 2T·4d², the
    attention scores and the weighted sum 2·2T²d (the full T×T products, as the fused kernel
    computes them), the MLP 2·2T·d·d_mlp; the read-out 2Td. A training step costs about 3× this."""
    c = config
    T, d = 2 * c.K, c.d_model
    per_layer = 2 * T * 4 * d * d + 2 * 2 * T * T * d + 2 * 2 * T * d * c.d_mlp
    return float(2 * T * (c.D + 1) * d + c.n_layers * per_layer + 2 * T * d)
