"""One-layer linear self-attention (LSA) on the prompt matrix, with and without chain of thought.

The prompt matrix ``Z`` has ``2d + 2`` rows and one column per token (Huang, Wang & Lee 2025):

    rows:        x (d)   y (1)   w (d)   1 (1)
    data token   x_i     y_i     0_d     0          i = 1..n
    CoT token    0_d     0       w_j     1          j = 0, 1, …  (w_0 = 0)

The layer is ``f(Z) = Z + W^{PV} Z (Zᵀ W^{KQ} Z) / n`` (``n`` = number of data tokens, no
softmax, no mask) and its prediction ``ŵ_{j+1}`` is the w-rows of the last column of ``f(Z_j)``,
where ``Z_j = [data tokens | w_0 … w_j]``. With CoT the prediction is appended as a new token
and the layer is applied again (autoregressive rollout); without CoT it is applied once to
``Z_0``. A *looped* LSA instead applies the same layer ``L`` times to the whole matrix.

The GD construction: ``W^{PV}`` zero except the block ``V_31 = −η I`` (x-rows → w-rows),
``W^{KQ}`` zero except ``W_13 = I`` (x-rows × w-columns) and a −1 pairing the y-row with the
constant row. Then the score of data token ``i`` for query ``w_j`` is ``x_iᵀ w_j − y_i`` and

    ŵ_{j+1} = w_j − η · (1/n) Σ_i x_i (x_iᵀ w_j − y_i),

exactly one step of gradient descent.

Used in: book/multistep_gd/ (every notebook) and ``python -m helpers.multistep_gd``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..checks import check_int


def blocks(d: int) -> dict[str, slice | int]:
    """Row/column indices of the blocks of ``Z``: ``x`` (slice), ``y`` (int), ``w`` (slice), ``one`` (int)."""
    return {"x": slice(0, d), "y": d, "w": slice(d + 1, 2 * d + 1), "one": 2 * d + 1}


def cot_tokens(W: torch.Tensor) -> torch.Tensor:
    """CoT tokens ``(0_d, 0, w_j, 1)`` for iterates ``W`` (B, J, d) → (B, 2d+2, J)."""
    B, J, d = W.shape
    Z = W.new_zeros(B, 2 * d + 2, J)
    Z[:, d + 1:2 * d + 1, :] = W.transpose(1, 2)
    Z[:, 2 * d + 1, :] = 1.0
    return Z


def data_tokens(X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Data tokens ``(x_i, y_i, 0_d, 0)``: ``X`` (B, d, n), ``y`` (B, n) → (B, 2d+2, n)."""
    B, d, n = X.shape
    if y.shape != (B, n):
        raise ValueError(f"y must have shape (B, n) = ({B}, {n}); got {tuple(y.shape)}")
    Z = X.new_zeros(B, 2 * d + 2, n)
    Z[:, :d, :] = X
    Z[:, d, :] = y
    return Z


def prompt_matrix(X: torch.Tensor, y: torch.Tensor, W: torch.Tensor | None = None) -> torch.Tensor:
    """``Z = [data tokens | CoT tokens of W]``: (B, 2d+2, n + J); ``W`` (B, J, d) defaults to ``w_0 = 0``."""
    if X.ndim != 3:
        raise ValueError(f"X must have shape (B, d, n); got {tuple(X.shape)}")
    if W is None:
        W = X.new_zeros(X.shape[0], 1, X.shape[1])
    _check_iterates(W, X)
    return torch.cat([data_tokens(X, y), cot_tokens(W)], dim=2)


def _check_iterates(W: torch.Tensor, X: torch.Tensor) -> None:
    """``W`` (B, J, d) with J >= 1 for ``X`` (B, d, n): else a ValueError naming ``W``."""
    if W.ndim != 3 or W.shape[0] != X.shape[0] or W.shape[2] != X.shape[1] or W.shape[1] < 1:
        raise ValueError(f"W must hold the iterates as (B, J, d) = ({X.shape[0]}, J, {X.shape[1]}) with J >= 1 "
                         f"for X of shape (B, d, n); got W {tuple(W.shape)} and X {tuple(X.shape)} "
                         "(for one iterate w of shape (B, d) pass w.unsqueeze(1))")


def _gaussian_pair(D: int, init_std: float, generator: torch.Generator | None,
                   dtype: torch.dtype) -> tuple[nn.Parameter, nn.Parameter]:
    """``(W^{PV}, W^{KQ})``: two trainable D × D matrices with entries ``N(0, init_std²)``."""
    if not init_std >= 0:
        raise ValueError(f"init_std must be >= 0; got {init_std}")
    return tuple(nn.Parameter(init_std * torch.randn(D, D, generator=generator, dtype=dtype)) for _ in range(2))


class LinearSelfAttention(nn.Module):
    """One LSA layer with full trainable matrices ``W^{PV}``, ``W^{KQ}`` ∈ R^{(2d+2)×(2d+2)}.

    Args:
        d: dimension of x and w. init_std: std of the Gaussian initialisation of every entry.
    """

    def __init__(self, d: int, init_std: float = 0.01, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.d = check_int("d", d, 1)
        self.W_PV, self.W_KQ = _gaussian_pair(2 * d + 2, init_std, generator, dtype)

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W^{PV}, W^{KQ})`` as full (2d+2, 2d+2) matrices."""
        return self.W_PV, self.W_KQ

    def forward(self, Z: torch.Tensor, n: int) -> torch.Tensor:
        """``f(Z) = Z + W^{PV} Z (Zᵀ W^{KQ} Z) / n`` for ``Z`` (B, 2d+2, N) → (B, 2d+2, N)."""
        W_PV, W_KQ = self.matrices()
        scores = Z.transpose(1, 2) @ (W_KQ @ Z)          # (B, N, N): key i, query j
        return Z + W_PV @ (Z @ scores) / n


class SparseLSA(LinearSelfAttention):
    """The paper's sparse parameterisation: only ``V_31`` and ``W_13`` (d×d each) are trainable;
    ``W^{KQ}`` holds a fixed −1 pairing the y-row with the constant row.

    ``init`` sets ``V_31 = −init·I`` and ``W_13 = init·I`` (the small *balanced* initialisation)
    unless ``V31``/``W13`` are given.
    """

    def __init__(self, d: int, init: float = 0.0, V31: torch.Tensor | None = None, W13: torch.Tensor | None = None,
                 dtype: torch.dtype = torch.float32):
        nn.Module.__init__(self)
        self.d = check_int("d", d, 1)
        eye = torch.eye(d, dtype=dtype)
        self.V31 = nn.Parameter(-init * eye if V31 is None else V31.to(dtype).clone())
        self.W13 = nn.Parameter(init * eye if W13 is None else W13.to(dtype).clone())

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        d, D = self.d, 2 * self.d + 2
        b = blocks(d)
        W_PV = self.V31.new_zeros(D, D)
        W_PV[b["w"], b["x"]] = self.V31
        W_KQ = self.W13.new_zeros(D, D)
        W_KQ[b["x"], b["w"]] = self.W13
        W_KQ[b["y"], b["one"]] = -1.0
        return W_PV, W_KQ


def gd_weights(d: int, eta: float, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The hand-set ``(W^{PV}, W^{KQ})`` that make one LSA layer one GD step of size η."""
    check_int("d", d, 1)
    if not eta > 0:
        raise ValueError(f"eta must be > 0; got {eta}")
    eye = torch.eye(d, dtype=dtype)
    return SparseLSA(d, V31=-eta * eye, W13=eye, dtype=dtype).matrices()


def _read_w(columns: torch.Tensor, d: int) -> torch.Tensor:
    return columns[..., d + 1:2 * d + 1]


def _check_data(model: LinearSelfAttention, X: torch.Tensor, y: torch.Tensor) -> None:
    """``X`` (B, d, n) with this model's d and n >= 1, ``y`` (B, n): else a ValueError naming the argument."""
    if X.ndim != 3 or X.shape[1] != model.d or X.shape[2] < 1:
        raise ValueError(f"X must have shape (B, d, n) = (B, {model.d}, n) with n >= 1 for this model (d = {model.d}); "
                         f"got {tuple(X.shape)}")
    if y.shape != (X.shape[0], X.shape[2]):
        raise ValueError(f"y must have shape (B, n) = ({X.shape[0]}, {X.shape[2]}) for X of shape {tuple(X.shape)}; "
                         f"got {tuple(y.shape)}")


def predict_next(model: LinearSelfAttention, Z: torch.Tensor, n: int) -> torch.Tensor:
    """``ŵ``: the w-rows of the last column of ``f(Z)``: (B, 2d+2, N) → (B, d).

    Computes only that column: ``z_q + W^{PV} (Z Zᵀ / n) W^{KQ} z_q``.
    """
    if Z.ndim != 3 or Z.shape[1] != 2 * model.d + 2:
        raise ValueError(f"Z must have shape (B, 2d+2, N) = (B, {2 * model.d + 2}, N) for this model (d = {model.d}); "
                         f"got {tuple(Z.shape)}")
    check_int("n", n, 1)
    if n >= Z.shape[-1]:
        raise ValueError(f"n must be the number of data tokens, an int in [1, {Z.shape[-1] - 1}] for Z with "
                         f"{Z.shape[-1]} columns (data tokens, then at least one CoT token); got {n}")
    W_PV, W_KQ = model.matrices()
    q = Z[:, :, -1]
    G = Z @ Z.transpose(1, 2) / n
    out = q + torch.einsum("ij,bjk,kl,bl->bi", W_PV, G, W_KQ, q)
    return _read_w(out, model.d)


def teacher_forced(model: LinearSelfAttention, X: torch.Tensor, y: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """All CoT predictions with the true iterates fed in: ``ŵ_{j+1} = pred(Z_j)`` for ``j = 0..J-1``.

    ``Z_j = [data | w_0 … w_j]`` with ``W = (w_0, …, w_{J-1})`` (B, J, d). Returns (B, J, d).
    The J prompt matrices share their data tokens; the CoT part is a causally masked product,
    so the cost is that of one pass.
    """
    _check_data(model, X, y)
    _check_iterates(W, X)
    n = X.shape[-1]
    W_PV, W_KQ = model.matrices()
    D = data_tokens(X, y)                                               # (B, 2d+2, n)
    C = cot_tokens(W)                                                   # (B, 2d+2, J): c_0 … c_{J-1}
    U = W_KQ @ C                                                        # u_t = W^{KQ} c_t
    # G_t u_t = D Dᵀ u_t + Σ_{j<=t} c_j (c_jᵀ u_t): the causal sum is a masked (J, J) product.
    A = torch.triu(C.transpose(1, 2) @ U)                               # A[j, t] = c_jᵀ u_t for j <= t
    GU = D @ (D.transpose(1, 2) @ U) + C @ A
    out = C + W_PV @ GU / n
    return _read_w(out.transpose(1, 2), model.d)


def rollout(model: LinearSelfAttention, X: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """Autoregressive CoT: start from ``w_0 = 0``, append each prediction as a CoT token.

    Returns (B, k+1, d): ``w_0 = 0, ŵ_1, …, ŵ_k``.
    """
    check_int("k", k, 0)
    _check_data(model, X, y)
    n = X.shape[-1]
    W_PV, W_KQ = model.matrices()
    D = data_tokens(X, y)
    G = D @ D.transpose(1, 2)
    w = X.new_zeros(X.shape[0], X.shape[1])
    out = [w]
    for _ in range(k):
        q = cot_tokens(w.unsqueeze(1))[:, :, 0]
        G = G + q.unsqueeze(2) * q.unsqueeze(1)
        w = _read_w(q + torch.einsum("ij,bjk,kl,bl->bi", W_PV, G, W_KQ, q) / n, model.d)
        out.append(w)
    return torch.stack(out, dim=1)


def no_cot_predict(model: LinearSelfAttention, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One pass on ``Z_0 = [data | (0, 0, 0, 1)]``: the prediction of ``w*`` without CoT, (B, d).
    ``X`` (B, d, n) with the model's d, ``y`` (B, n)."""
    return rollout(model, X, y, 1)[:, 1]


def looped_predict(model: LinearSelfAttention, X: torch.Tensor, y: torch.Tensor, loops: int,
                   return_all: bool = False) -> torch.Tensor:
    """A looped LSA: ``Z ← f(Z)`` applied ``loops`` times to ``Z_0 = [data | (0,0,0,1)]``.

    Every column is updated at every loop (no tokens are appended). Returns the w-rows of the
    last column, (B, d), or with ``return_all`` every loop's, (B, loops+1, d).
    """
    check_int("loops", loops, 1)
    _check_data(model, X, y)
    n = X.shape[-1]
    Z = prompt_matrix(X, y)
    outs = [_read_w(Z[:, :, -1], model.d)]
    for _ in range(loops):
        Z = model(Z, n)
        outs.append(_read_w(Z[:, :, -1], model.d))
    return torch.stack(outs, dim=1) if return_all else outs[-1]


# --------------------------------------------------------------------------------------------
# in-context regression: predicting the query's label, with a looped layer
#
# The abstract's looped result is about in-context learning of linear regression: the model sees
# ``(x_i, y_i)``, i = 1..n, and a query ``x_q``, and predicts ``y_q = <w*, x_q>``. The prompt is
# the usual ICL matrix with ``d + 1`` rows,
#
#     rows:         x (d)   y (1)
#     data token    x_i     y_i        i = 1..n
#     query token   x_q     0
#
# and one linear self-attention layer in which only the data tokens are keys and values (the
# query's empty label must not enter the sum):
#
#     Z ← Z + W^{PV} Z_D (Z_Dᵀ W^{KQ} Z) / n,        Z_D = the n data columns of Z.
#
# A looped model applies the same layer L times to the whole matrix (every column is updated) and
# predicts ``ŷ_q = −(y-row of the query column)``. With ``W^{KQ} = [[I, 0], [0, 0]]`` and
# ``W^{PV}`` zero except ``−η`` on the y-row/y-column, one application turns every data label into
# its residual ``y_i − x_iᵀ w`` and subtracts ``η x_qᵀ X r / n`` from the query's label slot: L
# loops are exactly L steps of gradient descent from ``w_0 = 0``, ``ŷ_q = x_qᵀ w_L``
# (:func:`gd_query_weights`).


def query_prompt(X: torch.Tensor, y: torch.Tensor, x_q: torch.Tensor) -> torch.Tensor:
    """``[data tokens (x_i, y_i) | query token (x_q, 0)]``: ``X`` (B, d, n), ``y`` (B, n), ``x_q`` (B, d)
    → (B, d+1, n+1)."""
    if X.ndim != 3:
        raise ValueError(f"X must have shape (B, d, n); got {tuple(X.shape)}")
    B, d, n = X.shape
    if y.shape != (B, n):
        raise ValueError(f"y must have shape (B, n) = ({B}, {n}); got {tuple(y.shape)}")
    if x_q.shape != (B, d):
        raise ValueError(f"x_q must have shape (B, d) = ({B}, {d}); got {tuple(x_q.shape)}")
    Z = X.new_zeros(B, d + 1, n + 1)
    Z[:, :d, :n] = X
    Z[:, d, :n] = y
    Z[:, :d, n] = x_q
    return Z


class QueryLSA(nn.Module):
    """One linear self-attention layer on the ICL prompt (keys and values: the data tokens only),
    with full trainable ``W^{PV}``, ``W^{KQ}`` ∈ R^{(d+1)×(d+1)}, Gaussian-initialised with std ``init_std``."""

    def __init__(self, d: int, init_std: float = 0.01, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32):
        super().__init__()
        self.d = check_int("d", d, 1)
        self.W_PV, self.W_KQ = _gaussian_pair(d + 1, init_std, generator, dtype)

    def forward(self, Z: torch.Tensor, n: int) -> torch.Tensor:
        """``Z + W^{PV} Z_D (Z_Dᵀ W^{KQ} Z) / n`` for ``Z`` (B, d+1, n+1), ``Z_D = Z[:, :, :n]``."""
        K = Z[:, :, :n]
        return Z + self.W_PV @ (K @ (K.transpose(1, 2) @ (self.W_KQ @ Z))) / n


def gd_query_weights(d: int, eta: float, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W^{PV}, W^{KQ})`` that make one :class:`QueryLSA` application one GD step of size η."""
    check_int("d", d, 1)
    if not eta > 0:
        raise ValueError(f"eta must be > 0; got {eta}")
    W_PV = torch.zeros(d + 1, d + 1, dtype=dtype)
    W_PV[d, d] = -eta
    W_KQ = torch.zeros(d + 1, d + 1, dtype=dtype)
    W_KQ[:d, :d] = torch.eye(d, dtype=dtype)
    return W_PV, W_KQ


def looped_query_predict(model: QueryLSA, X: torch.Tensor, y: torch.Tensor, x_q: torch.Tensor, loops: int,
                         return_all: bool = False) -> torch.Tensor:
    """``ŷ_q`` after applying ``model`` ``loops`` times to :func:`query_prompt`: (B,), or with
    ``return_all`` the prediction after each loop, (B, loops). ``loops = 1`` is the single pass."""
    check_int("loops", loops, 1)
    n = X.shape[-1]
    Z = query_prompt(X, y, x_q)
    outs = []
    for _ in range(loops):
        Z = model(Z, n)
        outs.append(-Z[:, model.d, n])
    return torch.stack(outs, dim=1) if return_all else outs[-1]
