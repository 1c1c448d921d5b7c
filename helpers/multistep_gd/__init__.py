"""Chapter 2 — multi-step gradient descent with chain of thought (Huang, Wang & Lee 2025).

- :mod:`.data`      — prompts, exact GD iterates, the one-step closed forms;
- :mod:`.models`    — the prompt matrix, linear self-attention (full, sparse, looped), the GD
  construction, rollout;
- :mod:`.train`     — settings and sizes (``SettingConfig``, ``Sizes``), batches, training losses,
  the training functions, and the full run (``full_run``, ``store``);
- :mod:`.analysis`  — held-out prompts, fitted η̂, sparsity, rollout vs GD, the step size each n
  allows and the error after k steps, the two stages, generalisation over n and Σ, the GD
  baseline of the looped layer;
- :mod:`.plots`     — the chapter's figures (weight heatmaps, model vs GD, the balanced run);
- :mod:`.claims`    — the pass marks and the claim functions shared by the full run and the notebooks;
- :mod:`.exercises` — checkers for the chapter's exercises;
- ``__main__``      — the command line of the full run.

The full run: ``python -m helpers.multistep_gd --mode full``.
"""
from . import analysis, claims, data, exercises, models, plots, train
from .analysis import (
                       best_gd_query,
                       effective_eta,
                       evaluate_cot,
                       first_step_with_gain,
                       generalisation_over_kappa,
                       generalisation_over_n,
                       held_out_prompts,
                       no_cot_optimum,
                       recovery_curve,
                       sign_flip_step,
                       sparsity_report,
                       stable_step,
                       two_stage_times,
                       weight_pattern,
)
from .data import (
                       Prompts,
                       UnstableStepWarning,
                       covariance_with_condition,
                       empirical_covariance,
                       gd_iterates,
                       gd_query_predictions,
                       one_step_error,
                       one_step_optimum,
                       sample_prompts,
                       squared_error,
                       stability_bound,
)
from .exercises import check_gd_weights, check_rollout
from .models import (
                       LinearSelfAttention,
                       QueryLSA,
                       SparseLSA,
                       blocks,
                       gd_query_weights,
                       gd_weights,
                       looped_predict,
                       looped_query_predict,
                       no_cot_predict,
                       predict_next,
                       prompt_matrix,
                       query_prompt,
                       rollout,
                       teacher_forced,
)
from .train import (
                       CHAPTER,
                       FULL_SETTINGS,
                       KAPPAS,
                       SCHEMA,
                       SEED,
                       TEST_NS,
                       SettingConfig,
                       Sizes,
                       batch_fn,
                       cot_loss,
                       full_run,
                       looped_loss,
                       looped_query_loss,
                       looped_query_study,
                       no_cot_loss,
                       query_batch_fn,
                       sizes,
                       store,
                       train_balanced,
                       train_cot,
                       train_looped,
                       train_looped_query,
                       train_no_cot,
                       weight_snapshot,
)

__all__ = [
    "analysis", "claims", "data", "exercises", "models", "plots", "train",
    "Prompts", "UnstableStepWarning", "covariance_with_condition", "empirical_covariance", "gd_iterates",
    "gd_query_predictions", "one_step_error", "one_step_optimum", "sample_prompts", "squared_error", "stability_bound",
    "LinearSelfAttention", "QueryLSA", "SparseLSA", "blocks", "gd_query_weights", "gd_weights", "looped_predict",
    "looped_query_predict", "no_cot_predict", "predict_next", "prompt_matrix", "query_prompt", "rollout",
    "teacher_forced",
    "CHAPTER", "FULL_SETTINGS", "KAPPAS", "SCHEMA", "SEED", "TEST_NS", "SettingConfig", "Sizes", "batch_fn",
    "cot_loss", "full_run", "looped_loss", "looped_query_loss", "looped_query_study", "no_cot_loss", "query_batch_fn",
    "sizes", "store", "train_balanced", "train_cot", "train_looped", "train_looped_query", "train_no_cot",
    "weight_snapshot",
    "best_gd_query", "effective_eta", "evaluate_cot", "first_step_with_gain", "generalisation_over_kappa",
    "generalisation_over_n", "held_out_prompts", "no_cot_optimum", "recovery_curve", "sign_flip_step",
    "sparsity_report", "stable_step", "two_stage_times", "weight_pattern",
    "check_gd_weights", "check_rollout",
]
