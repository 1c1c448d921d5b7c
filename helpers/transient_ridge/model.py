"""A small GPT-style causal transformer for in-context regression, with G independent copies in one.

Every parameter has a leading *group* dimension G: group g is a complete, independent model
(its own embedding, blocks and read-out), and one forward pass runs all G on their own inputs
with batched matrix products. A sweep over task counts M trains one ``GroupedTransformer`` with
one group per M; summing the groups' losses keeps their gradients separate, and Adam is
elementwise, so training the group is exactly training G separate models (a test checks it).

Architecture (pre-LN, as in the authors' earlier codebase): linear token embedding of the
(D+1)-dim tokens, learned positional embedding, ``n_layers`` × [LN → causal multi-head
attention → residual, LN → MLP(GELU) → residual], final LN, linear read-out of one number.
The prediction for ``y_k`` is read at the x_k token (positions 0, 2, 4, …).

Used in: book/transient_ridge/ (the sweep) and its full run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


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
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1; got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"n_heads={self.n_heads} must divide d_model={self.d_model}")


def _gmm(x: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Grouped matrix product: x (G, B, T, i) @ W (G, i, o) → (G, B, T, o) as one ``bmm``
    (broadcasting ``W.unsqueeze(1)`` instead would expand W over the batch)."""
    G, B, T, i = x.shape
    return torch.bmm(x.reshape(G, B * T, i), W).reshape(G, B, T, W.shape[-1])


def _init(G: int, *shape: int, std: float, generator: torch.Generator | None) -> nn.Parameter:
    return nn.Parameter(std * torch.randn(G, *shape, generator=generator))


class GroupedTransformer(nn.Module):
    """``G`` independent causal transformers evaluated together.

    ``forward(tokens)``: tokens (G, B, 2K, D+1) → predictions (G, B, K).
    """

    def __init__(self, config: ModelConfig, groups: int = 1, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be an int >= 1; got {groups!r}")
        self.config, self.groups = config, groups
        c, G = config, groups
        std = 0.02
        self.embed = _init(G, c.D + 1, c.d_model, std=1 / math.sqrt(c.D + 1), generator=generator)
        self.pos = _init(G, 2 * c.K, c.d_model, std=std, generator=generator)
        self.ln_g = nn.Parameter(torch.ones(G, 2 * c.n_layers + 1, c.d_model))
        self.ln_b = nn.Parameter(torch.zeros(G, 2 * c.n_layers + 1, c.d_model))
        self.qkv = nn.ParameterList([_init(G, c.d_model, 3 * c.d_model, std=std, generator=generator)
                                     for _ in range(c.n_layers)])
        self.proj = nn.ParameterList([_init(G, c.d_model, c.d_model, std=std / math.sqrt(2 * c.n_layers),
                                            generator=generator) for _ in range(c.n_layers)])
        self.fc1 = nn.ParameterList([_init(G, c.d_model, c.d_mlp, std=std, generator=generator)
                                     for _ in range(c.n_layers)])
        self.fc1_b = nn.Parameter(torch.zeros(G, c.n_layers, c.d_mlp))
        self.fc2 = nn.ParameterList([_init(G, c.d_mlp, c.d_model, std=std / math.sqrt(2 * c.n_layers),
                                           generator=generator) for _ in range(c.n_layers)])
        self.fc2_b = nn.Parameter(torch.zeros(G, c.n_layers, c.d_model))
        self.readout = _init(G, c.d_model, 1, std=std, generator=generator)
        self.register_buffer("mask", torch.ones(2 * c.K, 2 * c.K).tril().bool(), persistent=False)

    def _ln(self, h: torch.Tensor, i: int) -> torch.Tensor:
        h = F.layer_norm(h, h.shape[-1:])
        return h * self.ln_g[:, i, None, None, :] + self.ln_b[:, i, None, None, :]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        c, G = self.config, self.groups
        if tokens.ndim != 4 or tokens.shape[0] != G or tokens.shape[2:] != (2 * c.K, c.D + 1):
            raise ValueError(f"tokens must be (G={G}, B, 2K={2 * c.K}, D+1={c.D + 1}); got {tuple(tokens.shape)}")
        B, T = tokens.shape[1], tokens.shape[2]
        h = _gmm(tokens, self.embed) + self.pos.unsqueeze(1)            # (G, B, T, d)
        hd = c.d_model // c.n_heads
        for layer in range(c.n_layers):
            q, k, v = _gmm(self._ln(h, 2 * layer), self.qkv[layer]).split(c.d_model, dim=-1)
            q, k, v = (x.reshape(G * B, T, c.n_heads, hd).transpose(1, 2) for x in (q, k, v))
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask[:T, :T])
            att = att.transpose(1, 2).reshape(G, B, T, c.d_model)
            h = h + _gmm(att, self.proj[layer])
            m = F.gelu(_gmm(self._ln(h, 2 * layer + 1), self.fc1[layer]) + self.fc1_b[:, layer, None, None, :])
            h = h + _gmm(m, self.fc2[layer]) + self.fc2_b[:, layer, None, None, :]
        out = _gmm(self._ln(h, 2 * c.n_layers), self.readout)                     # (G, B, T, 1)
        return out[:, :, 0::2, 0]

    def select(self, g: int) -> "GroupedTransformer":
        """Group ``g`` as a model of its own (``groups=1``), with copies of its parameters."""
        if not 0 <= g < self.groups:
            raise ValueError(f"g must be in [0, {self.groups}); got {g}")
        single = GroupedTransformer(self.config, groups=1)
        single.load_state_dict({k: v[g:g + 1].clone() for k, v in self.state_dict().items()})
        return single

    def parameter_count(self) -> int:
        """Parameters of ONE group (one model)."""
        return sum(p.numel() for p in self.parameters()) // self.groups
