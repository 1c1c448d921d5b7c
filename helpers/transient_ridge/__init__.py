"""Chapter 3 — the transient ridge (Carroll, Hoogland, Farrugia-Roberts, Murfet et al. 2025).

- :mod:`.data`  — nested task pools, the sequence sampler, tokenisation;
- :mod:`.bayes` — the ridge and dMMSE_M predictors, losses, the distance Δ between predictors;
- :mod:`.model` — a small causal transformer with G independent copies in one (the batched sweep);
- :mod:`.sweep` — training all M (and seeds) as one grouped model, per-checkpoint metrics, t_crit;
- :mod:`.pca`   — joint trajectory PCA with the predictors projected;
- :mod:`.llc`   — the local learning coefficient estimated with SGLD (and devinterp's, to cross-check);
- :mod:`.experiments` — the chapter's sizes per mode and the analyses shared by pages and full run;
- :mod:`.exercises` — checkers for the chapter's two exercises (dMMSE, one SGLD step).

The full run: ``python -m helpers.transient_ridge --mode full`` (see :mod:`.__main__`).
"""
from .bayes import (dmmse_estimates, dmmse_predictor, mse, predictor_distance, ridge_estimates,
                    ridge_predictor)
from .data import Batch, TaskPool, detokenize, sample_batch, tokenize
from .model import GroupedTransformer, ModelConfig

__all__ = ["GroupedTransformer", "ModelConfig", "Batch", "TaskPool", "detokenize", "sample_batch", "tokenize", "dmmse_estimates", "dmmse_predictor",
           "mse", "predictor_distance", "ridge_estimates", "ridge_predictor"]
