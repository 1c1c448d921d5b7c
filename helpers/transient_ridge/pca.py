"""Joint trajectory PCA: all runs' checkpoints in one principal-component space.

A checkpoint is encoded by what it *does*: its K predictions on each of a fixed set of probe
sequences, flattened to one feature vector (the paper: 512 probe sequences of the root task
``t_1``, so 512·K numbers). The rows of every checkpoint of every run are stacked, centred on
their joint mean and decomposed by SVD; the ridge and dMMSE_M predictors, encoded the same way
but **not** used in the fit, are projected into the same coordinates.

Used in: book/transient_ridge/ (the trajectory figure) and the chapter's full run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checks import check_int


@dataclass
class JointPCA:
    """``mean`` (F,), ``components`` (n, F) orthonormal rows, ``explained`` (n,) variance ratios,
    ``singular_values`` (n,)."""

    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor
    singular_values: torch.Tensor

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(..., F) → (..., n): coordinates in the principal components."""
        if features.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"features must have {self.mean.shape[0]} columns (the fit's feature size); "
                             f"got {features.shape[-1]}")
        return (features.to(self.mean) - self.mean) @ self.components.T


def fit_joint_pca(trajectories: list[torch.Tensor] | dict, n_components: int = 4) -> JointPCA:
    """Fit PCA to the stacked rows of all trajectories (each (n_checkpoints, F)).

    Returns the :class:`JointPCA`; ``explained[i]`` is the fraction of the total variance of
    the stacked rows along component ``i``.
    """
    runs = list(trajectories.values()) if isinstance(trajectories, dict) else list(trajectories)
    if not runs:
        raise ValueError("trajectories must hold at least one (n_checkpoints, F) tensor")
    F_ = runs[0].shape[-1]
    for r in runs:
        if r.ndim != 2 or r.shape[1] != F_:
            raise ValueError(f"every trajectory must be (n_checkpoints, F) with the same F={F_}; got {tuple(r.shape)}")
    X = torch.cat([r.double() for r in runs])
    check_int("n_components", n_components, 1)
    if n_components > min(X.shape):
        raise ValueError(f"n_components must be <= min(rows, features) = {min(X.shape)}; got {n_components}")
    mean = X.mean(0)
    U, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    total = (S ** 2).sum()
    return JointPCA(mean, Vh[:n_components], (S[:n_components] ** 2) / total, S[:n_components])


def prediction_features(predict, probe_tokens: torch.Tensor) -> torch.Tensor:
    """A model's feature vector: its predictions (B, K) on the probe sequences, flattened to (B·K,).

    ``predict(tokens) -> (B, K)``; wrap grouped models with ``lambda t: model(t[None])[0]``.
    """
    with torch.no_grad():
        return predict(probe_tokens).reshape(-1)
