"""Chapter 3 — the transient ridge (Carroll, Hoogland, Farrugia-Roberts, Murfet et al. 2025).

- :mod:`.data`      — nested task pools, the sequence sampler, tokenisation;
- :mod:`.models`    — a small causal transformer with G independent copies in one (the batched sweep);
- :mod:`.train`     — the grouped sweep over M (and seeds), the sizes per mode, the full run and its results;
- :mod:`.analysis`  — the Bayes predictors, the sweep's metrics and t_crit, joint trajectory PCA, the LLC;
- :mod:`.plots`     — the chapter's figures;
- :mod:`.claims`    — the claims' thresholds and verdicts, from a run's metrics;
- :mod:`.exercises` — checkers for the chapter's two exercises (dMMSE, one SGLD step);
- ``__main__``      — the command line of the full run.

The full run: ``python -m helpers.transient_ridge --mode full`` on a GPU; on a CPU add ``--scale cpu``
(the CPU configuration, about 80 minutes on 2 cores) or ``--scale gpu``.
"""
from . import analysis, claims, data, exercises, models, plots, train
from .analysis import (
                       EvalSet,
                       JointPCA,
                       LLCEstimate,
                       NonFiniteSamplingError,
                       bayes_references,
                       complexity_tradeoff,
                       dmmse_estimates,
                       dmmse_predictor,
                       estimate_llc,
                       estimate_llc_devinterp,
                       evaluate_sweep,
                       fit_joint_pca,
                       label,
                       make_eval_set,
                       mse,
                       pca_detour,
                       prediction_features,
                       predictor_distance,
                       quadratic_llc,
                       ridge_estimates,
                       ridge_like,
                       ridge_predictor,
                       settled,
                       sgld_step,
                       summaries,
                       trajectory_pca,
                       transient_summary,
)
from .data import Batch, TaskPool, detokenize, sample_batch, tokenize
from .exercises import check_dmmse, check_sgld_step
from .models import GroupedBlock, GroupedLayerNorm, GroupedLinear, GroupedTransformer, ModelConfig
from .train import (
                       PAPER,
                       LLCConfig,
                       Sizes,
                       SweepConfig,
                       batch_fn,
                       cpu_store,
                       full_run,
                       group_losses,
                       grouped_from_state,
                       llc_batches,
                       load,
                       make_model,
                       one_M_batches,
                       sizes,
                       stack_models,
                       store,
                       sweep_loss,
                       time_grouped_vs_separate,
                       train_sweep,
)

__all__ = [
    "analysis", "claims", "data", "exercises", "models", "plots", "train",
    "EvalSet", "JointPCA", "LLCEstimate", "NonFiniteSamplingError", "bayes_references", "complexity_tradeoff",
    "dmmse_estimates", "dmmse_predictor", "estimate_llc", "estimate_llc_devinterp", "evaluate_sweep",
    "fit_joint_pca", "label", "make_eval_set", "mse", "pca_detour", "prediction_features", "predictor_distance",
    "quadratic_llc", "ridge_estimates", "ridge_like", "ridge_predictor", "settled", "sgld_step", "summaries",
    "trajectory_pca", "transient_summary",
    "Batch", "TaskPool", "detokenize", "sample_batch", "tokenize",
    "check_dmmse", "check_sgld_step",
    "GroupedBlock", "GroupedLayerNorm", "GroupedLinear", "GroupedTransformer", "ModelConfig",
    "PAPER", "LLCConfig", "Sizes", "SweepConfig", "batch_fn", "cpu_store", "full_run", "group_losses",
    "grouped_from_state", "llc_batches", "load", "make_model", "one_M_batches", "sizes", "stack_models",
    "store", "sweep_loss", "time_grouped_vs_separate", "train_sweep",
]
