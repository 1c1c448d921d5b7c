"""Checkers for the chapter's exercises: they say what is wrong, not just that something is.

Used in: book/multistep_gd/01_gd_in_one_layer.ipynb (exercise 1: the GD-step weights) and
03_generalisation_and_looping.ipynb (exercise 2: the autoregressive rollout).
"""
from __future__ import annotations

import torch

from ..exercises import ExerciseError
from ..seeds import torch_generator
from .data import gd_iterates, sample_prompts
from .models import LinearSelfAttention, blocks, predict_next, prompt_matrix, rollout


def _prompts(d: int = 3, n: int = 7, batch: int = 4, seed: int = 0):
    return sample_prompts(batch, n, d, generator=torch_generator(seed), dtype=torch.float64)


def check_gd_weights(make_weights) -> str:
    """Exercise 1. ``make_weights(d, eta) -> (W_PV, W_KQ)`` must make one LSA layer one GD step.

    Checks shapes, then the layer's prediction against ``w − η X (Xᵀ w − y) / n`` for several
    d, η and random ``w``; returns a success message or raises :class:`ExerciseError` with a hint.
    """
    for d, eta in [(3, 0.5), (5, 0.2)]:
        result = make_weights(d, eta)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise ExerciseError("return a tuple (W_PV, W_KQ)")
        W_PV, W_KQ = (torch.as_tensor(M, dtype=torch.float64) for M in result)
        D = 2 * d + 2
        for name, M in (("W_PV", W_PV), ("W_KQ", W_KQ)):
            if M.shape != (D, D):
                raise ExerciseError(f"{name} must be ({D}, {D}) = (2d+2, 2d+2) for d={d}; got {tuple(M.shape)}")
        model = LinearSelfAttention(d, dtype=torch.float64)
        with torch.no_grad():
            model.W_PV.copy_(W_PV)
            model.W_KQ.copy_(W_KQ)
        P = _prompts(d=d)
        w = torch.randn(len(P), 1, d, generator=torch_generator(1), dtype=torch.float64)
        got = predict_next(model, prompt_matrix(P.X, P.y, w), P.n)
        expected = gd_iterates(P.X, P.y, eta, 1, w0=w[:, 0], warn=False)[:, 1]
        if torch.allclose(got, expected, atol=1e-9):
            continue
        step = got - w[:, 0]
        true_step = expected - w[:, 0]
        if torch.allclose(step, -true_step, atol=1e-9):
            raise ExerciseError("the update has the wrong sign: V_31 should be −η·I (a step DOWN the gradient)")
        if torch.allclose(step, true_step * (step.norm() / true_step.norm()), atol=1e-6):
            raise ExerciseError(f"right direction, wrong size for η={eta}: check the scale of V_31 and W_13")
        zero_w = predict_next(model, prompt_matrix(P.X, P.y, torch.zeros_like(w)), P.n)
        if torch.allclose(zero_w, torch.zeros_like(zero_w), atol=1e-9):
            raise ExerciseError("with w = 0 your layer predicts 0: the X y / n term is missing — pair the y-row "
                                "(keys) with the constant row (query) in W_KQ, with weight −1")
        b = blocks(d)
        raise ExerciseError(f"the layer does not output one GD step. V_31 is W_PV[{b['w'].start}:{b['w'].stop}, "
                            f"0:{d}] and W_13 is W_KQ[0:{d}, {b['w'].start}:{b['w'].stop}]")
    return "Correct: one LSA layer with your weights is exactly one step of gradient descent."


def check_rollout(my_rollout) -> str:
    """Exercise 2. ``my_rollout(model, X, y, k) -> (B, k+1, d)`` must be the autoregressive CoT rollout."""
    d = 3
    P = _prompts(d=d, batch=5)
    model = LinearSelfAttention(d, init_std=0.2, generator=torch_generator(2), dtype=torch.float64)
    k = 4
    got = my_rollout(model, P.X, P.y, k)
    expected = rollout(model, P.X, P.y, k)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise ExerciseError(f"return a tensor of shape (B, k+1, d) = {tuple(expected.shape)}: w_0 = 0 then k "
                            f"predictions; got {shape}")
    if not torch.allclose(got[:, 0], torch.zeros_like(got[:, 0])):
        raise ExerciseError("the first entry must be w_0 = 0")
    if not torch.allclose(got[:, 1], expected[:, 1], atol=1e-9):
        raise ExerciseError("ŵ_1 is wrong: it is the w-rows of the last column of f(Z_0), Z_0 = [data | (0,0,0,1)]")
    for j in range(2, k + 1):
        if not torch.allclose(got[:, j], expected[:, j], atol=1e-9):
            stale = predict_next(model, prompt_matrix(P.X, P.y, got[:, j - 1:j]), P.n)
            if torch.allclose(got[:, j], stale, atol=1e-9):
                raise ExerciseError(f"step {j}: keep ALL earlier CoT tokens in Z (Z_j = [data | w_0 … w_j]), "
                                    "not only the latest")
            raise ExerciseError(f"step {j} differs: append each prediction as a new token (0, 0, ŵ, 1) and apply "
                                "the layer to the longer Z")
    return "Correct: your rollout feeds the model's own predictions back as chain-of-thought tokens."
