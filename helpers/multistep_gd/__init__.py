"""Chapter 2 — multi-step gradient descent with chain of thought (Huang, Wang & Lee 2025).

- :mod:`.data`        — prompts, exact GD iterates, the one-step closed forms;
- :mod:`.lsa`         — the prompt matrix, linear self-attention (full, sparse, looped), rollout;
- :mod:`.experiments` — the chapter's experiments, shared by the notebooks and the full run;
- :mod:`.exercises`   — checkers for the chapter's exercises.

Full run: ``python -m helpers.multistep_gd --mode full``.
"""
from .data import (Prompts, UnstableStepWarning, covariance_with_condition, empirical_covariance, gd_iterates,
                   one_step_error, one_step_optimum, sample_prompts, squared_error, stability_bound)
from .lsa import (LinearSelfAttention, SparseLSA, blocks, gd_weights, looped_predict, no_cot_predict,
                  predict_next, prompt_matrix, rollout, teacher_forced)

__all__ = [
    "Prompts", "UnstableStepWarning", "covariance_with_condition", "empirical_covariance", "gd_iterates",
    "one_step_error", "one_step_optimum", "sample_prompts", "squared_error", "stability_bound",
    "LinearSelfAttention", "SparseLSA", "blocks", "gd_weights", "looped_predict", "no_cot_predict",
    "predict_next", "prompt_matrix", "rollout", "teacher_forced",
]
