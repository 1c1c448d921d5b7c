"""In-context linear regression with a finite pool of M tasks (Raventós et al. 2023; Carroll et al. 2025).

A sequence holds K pairs ``(x_k, y_k)``: ``x_k ~ N(0, I_D)``, ``y_k = tᵀ x_k + ε_k``,
``ε_k ~ N(0, σ²)``. During pretraining the task ``t`` is drawn uniformly from a pool
``t_1 … t_M`` (``M = ∞``: a fresh ``t ~ N(0, I_D)`` per sequence). Pools are **nested**: one
fixed sequence ``t_1, t_2, …`` is drawn once, and the pool for ``M`` is its first ``M`` entries.

Used in: book/transient_ridge/01_bayes_predictors.ipynb, 02_the_sweep.ipynb and the chapter's full run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..checks import check_int
from ..seeds import torch_generator

BLOCK = 1024  # tasks are drawn in blocks of this many, each from its own seed, so pools nest exactly


def check_M(M) -> float | int:
    """``M`` must be an int >= 1 or ``math.inf`` (infinite task diversity)."""
    if M == math.inf:
        return math.inf
    return check_int("M", M, 1)


def check_sigma2(sigma2: float) -> float:
    if not isinstance(sigma2, (int, float)) or not math.isfinite(sigma2) or sigma2 <= 0:
        raise ValueError(f"sigma2 (noise variance σ²) must be a finite number > 0; got {sigma2!r}")
    return float(sigma2)


class TaskPool:
    """The nested task sequence ``t_1, t_2, …`` for dimension ``D``, drawn from ``seed``.

    ``pool.tasks(M)`` is the (M, D) matrix of the first M tasks; for ``M' > M`` it is a prefix of
    ``pool.tasks(M')``, bit for bit.
    """

    def __init__(self, D: int, seed: int = 0):
        self.D = check_int("D", D, 1)
        self.seed = check_int("seed", seed, 0)
        self._blocks: list[torch.Tensor] = []

    def tasks(self, M: int) -> torch.Tensor:
        M = check_int("M", M, 1)
        while len(self._blocks) * BLOCK < M:
            g = torch_generator(self.seed, len(self._blocks))
            self._blocks.append(torch.randn(BLOCK, self.D, generator=g))
        return torch.cat(self._blocks)[:M]


@dataclass
class Batch:
    """``xs`` (B, K, D), ``ys`` (B, K), ``tasks`` (B, D) — the task of each sequence."""

    xs: torch.Tensor
    ys: torch.Tensor
    tasks: torch.Tensor


def sample_batch(pool: TaskPool, M, batch: int, K: int, sigma2: float,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Batch:
    """Draw ``batch`` sequences of ``K`` pairs; tasks uniform over the first ``M`` pool tasks
    (``M = math.inf``: fresh Gaussian tasks)."""
    M = check_M(M)
    check_int("batch", batch, 1)
    check_int("K", K, 1)
    sigma2 = check_sigma2(sigma2)
    D = pool.D
    if M == math.inf:
        tasks = torch.randn(batch, D, generator=generator)
    else:
        index = torch.randint(0, M, (batch,), generator=generator)
        tasks = pool.tasks(M)[index]
    xs = torch.randn(batch, K, D, generator=generator)
    ys = torch.einsum("bkd,bd->bk", xs, tasks) + math.sqrt(sigma2) * torch.randn(batch, K, generator=generator)
    return Batch(xs.to(device), ys.to(device), tasks.to(device))


def sample_groups(pool: torch.Tensor, Ms: torch.Tensor, batch: int, K: int, sigma2: float,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch for each of G groups in one vectorised draw, on the device of ``pool``.

    Args:
        pool: (M_max, D) the first ``M_max`` pool tasks (``M_max`` >= every finite entry of ``Ms``).
        Ms: (G,) float task counts, ``inf`` for fresh Gaussian tasks, on the same device.
        generator: a generator on that device (the draw is reproducible from its state).

    Returns ``xs`` (G, B, K, D) and ``ys`` (G, B, K): group ``g``'s tasks are uniform over the
    first ``Ms[g]`` pool tasks (or fresh ``N(0, I_D)``), ``ys = xs·t + N(0, σ²)``. No per-group
    Python loop and no host synchronisation, so a training step can call it on a GPU.
    """
    check_int("batch", batch, 1)
    check_int("K", K, 1)
    sigma2 = check_sigma2(sigma2)
    if pool.ndim != 2 or Ms.ndim != 1:
        raise ValueError(f"pool must be (M_max, D) and Ms (G,); got {tuple(pool.shape)} and {tuple(Ms.shape)}")
    G, D, dev = Ms.shape[0], pool.shape[1], pool.device
    finite = torch.isfinite(Ms)
    counts = torch.where(finite, Ms, torch.ones_like(Ms))
    u = torch.rand(G, batch, generator=generator, device=dev)
    index = torch.minimum((u * counts[:, None]).long(), (counts[:, None] - 1).long())
    fresh = torch.randn(G, batch, D, generator=generator, device=dev)
    tasks = torch.where(finite[:, None, None], pool[index], fresh)                 # (G, B, D)
    xs = torch.randn(G, batch, K, D, generator=generator, device=dev)
    noise = torch.randn(G, batch, K, generator=generator, device=dev)
    ys = (xs @ tasks.unsqueeze(-1)).squeeze(-1) + math.sqrt(sigma2) * noise
    return xs, ys


def tokenize(xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Interleave pairs into ``2K`` tokens of size ``D + 1``: x-token ``[0, x]``, y-token ``[y, 0…0]``.

    (…, K, D), (…, K) → (…, 2K, D+1), e.g. (B, K, D) → (B, 2K, D+1). The model's prediction of
    ``y_k`` is read at the x_k token, position ``2(k−1)`` (0-based), which sees the pairs before
    it and ``x_k``.
    """
    if xs.ndim < 3 or ys.shape != xs.shape[:-1]:
        raise ValueError(f"xs must be (…, B, K, D) and ys (…, B, K); got {tuple(xs.shape)} and {tuple(ys.shape)}")
    *lead, K, D = xs.shape
    tokens = xs.new_zeros(*lead, 2 * K, D + 1)
    tokens[..., 0::2, 1:] = xs
    tokens[..., 1::2, 0] = ys
    return tokens


def detokenize(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`tokenize`: (…, 2K, D+1) → ``xs`` (…, K, D), ``ys`` (…, K)."""
    if tokens.ndim < 3 or tokens.shape[-2] % 2:
        raise ValueError(f"tokens must be (…, B, 2K, D+1); got {tuple(tokens.shape)}")
    return tokens[..., 0::2, 1:], tokens[..., 1::2, 0]
