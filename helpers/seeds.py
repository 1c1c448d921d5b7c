"""Seeds: the ONE way this book derives a random stream from a run's seed and its position.

A stream is named by a tuple of non-negative int keys — ``(seed, step)`` for the batch of a
training step, ``(seed, step, group)`` for one group of a grouped model, ``(seed, block)`` for a
block of tasks — and :func:`derive_seed` folds the keys into one 63-bit seed::

    derive_seed(k0) = k0,   derive_seed(k0, …, kn) = (derive_seed(k0, …, kn-1) · P + kn) mod (2^63 − 1)

with ``P = 1_000_003`` (a prime). The batch of step ``s`` of a run with seed ``r`` is therefore
the same in every run, interrupted or not, on any device. :func:`torch_generator` and
:func:`numpy_generator` turn keys into generators; nothing else in ``helpers`` mixes seeds.

Used in: every chapter's data and training code.
"""
from __future__ import annotations

import numpy as np
import torch

PRIME = 1_000_003
MODULUS = 2**63 - 1


def derive_seed(*keys: int) -> int:
    """Fold ``keys`` (ints >= 0, at least one) into one seed in ``[0, 2^63 − 1)``."""
    if not keys:
        raise ValueError("derive_seed needs at least one key (the run's seed)")
    seed = 0
    for i, key in enumerate(keys):
        if isinstance(key, bool) or not isinstance(key, (int, np.integer)) or key < 0:
            raise ValueError(f"seed keys must be ints >= 0; key {i} is {key!r}")
        seed = int(key) % MODULUS if i == 0 else (seed * PRIME + int(key)) % MODULUS
    return seed


def torch_generator(*keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``derive_seed(*keys)``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*keys))


def numpy_generator(*keys: int) -> np.random.Generator:
    """A NumPy ``Generator`` seeded with ``derive_seed(*keys)``."""
    return np.random.default_rng(derive_seed(*keys))


def step_generator(seed: int, step: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The generator of training step ``step`` of a run seeded ``seed``: ``torch_generator(seed, step)``."""
    return torch_generator(seed, step, device=device)
