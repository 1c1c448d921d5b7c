"""What the heads do: attention on the right token, per head and per stage; the theory model's H.

- :func:`head_usage` — for every head, the mean attention a query puts on the token a correct
  one-step lookup reads (``Encoded.key``: the edge whose child is the current node when
  climbing, the chain-of-thought token of the current node when descending) and on BOS (where
  a head "parks" when it has nothing to do), separately for backward- and forward-stage queries.
- :func:`specialisation` — one number per head and stage from that: the attention on the right
  token. A head *specialises* on a stage when it does the lookup in that stage and not in the other.
- :func:`h_summary` — the theory model's ``H`` (key child slot × query node slot): mean
  diagonal, mean and largest off-diagonal entry.
- :func:`attention_for_example` — one example's attention maps per generated step.

Used in: book/tree_cot/01_backward_theory.ipynb, 02_forward_two_heads.ipynb, 03_standard_transformer.ipynb.
"""
from __future__ import annotations

import numpy as np
import torch

from .tokens import BOS, Encoded


def _attention(model, tokens: torch.Tensor, layer: int = -1) -> torch.Tensor:
    _, att = model(tokens, return_attention=True)
    return att[layer] if isinstance(att, (list, tuple)) else att  # (B, H, T, T)


@torch.no_grad()
def head_usage(model, batch: Encoded, layer: int = -1) -> dict:
    """``{"backward"|"forward": {"lookup": [per head], "bos": [per head]}}``: mean attention of the
    stage's queries on the correct lookup token and on BOS (queries without a lookup token are skipped)."""
    att = _attention(model, batch.tokens, layer)
    B, H, T, _ = att.shape
    out = {}
    for s, name in ((0, "backward"), (1, "forward")):
        where = (batch.stage == s) & (batch.key >= 0)
        if not where.any():
            continue
        bi, qi = where.nonzero(as_tuple=True)
        ki = batch.key[bi, qi]
        lookup = att[bi, :, qi, ki]  # (n, H)
        bos_pos = (batch.tokens[..., 2] == BOS).float().argmax(1)[bi]
        bos = att[bi, :, qi, bos_pos]
        out[name] = {"lookup": lookup.mean(0).tolist(), "bos": bos.mean(0).tolist()}
    return out


def specialisation(usage: dict) -> np.ndarray:
    """(n_heads, 2) array: attention on the correct lookup token, columns (backward, forward)."""
    cols = [usage.get(s, {}).get("lookup") for s in ("backward", "forward")]
    n = len(next(c for c in cols if c is not None))
    return np.array([[c[h] if c is not None else np.nan for c in cols] for h in range(n)])


@torch.no_grad()
def h_summary(model) -> dict:
    """Mean diagonal, mean off-diagonal and max |off-diagonal| of the theory model's ``H``."""
    H = model.H.detach().cpu()
    N = H.shape[0]
    off = H[~torch.eye(N, dtype=torch.bool)]
    return {"diag": H.diag().mean().item(), "offdiag": off.mean().item(), "offdiag_max": off.abs().max().item()}


@torch.no_grad()
def attention_for_example(model, batch: Encoded, i: int = 0, layer: int = -1) -> dict:
    """Example ``i``'s attention (n_heads, queries, T) for the positions that predict something,
    with the tokens' labels for plotting."""
    tokens = batch.tokens[i:i + 1]
    att = _attention(model, tokens, layer)[0]
    T = int((batch.tokens[i, :, 2] != 5).sum())
    q = (batch.targets[i] >= 0).nonzero().flatten()
    q = q[q < T]
    return {"att": att[:, q, :T].cpu().numpy(), "queries": q.tolist(), "tokens": tokens[0, :T].tolist(),
            "targets": batch.targets[i, q].tolist(), "keys": batch.key[i, q].tolist(),
            "stage": batch.stage[i, q].tolist()}


def token_label(tok, vocab: int) -> str:
    """A short label for a token ``(a, b, kind)``: ``p→c`` for an edge, ``ROOT r``, ``v←u`` on paths."""
    a, b, kind = tok
    name = lambda x: "END" if x == vocab else ("·" if x == vocab + 1 else str(x))
    return {0: f"{name(a)}→{name(b)}", 1: f"ROOT {name(b)}", 2: f"{name(a)}↑", 3: f"{name(a)}↓", 4: "BOS",
            5: ""}[kind]
