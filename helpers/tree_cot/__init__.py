"""Chapter 1 — tree path-finding with chain of thought (Yang, Huang, Liang, Chi 2025).

- :mod:`.data`      — rooted trees with distinct labels, paths, distractor edges, examples, test
  sets; the ``(a, b, kind)`` token format both model families read; the filter → sort task;
- :mod:`.models`    — the paper's one-layer theory model (key–query only) and its constructions;
  a standard small transformer with per-head attention;
- :mod:`.train`     — task configurations, sizes per mode, the training functions, the full run;
- :mod:`.analysis`  — greedy decoding and accuracy, what the heads attend to, the matrix H,
  training phases, baselines, robustness, filter → sort accuracy;
- :mod:`.plots`     — the chapter's figures;
- :mod:`.claims`    — the pass marks and the claims, judged from a run's metrics;
- :mod:`.exercises` — the exercise checkers;
- ``__main__``      — the command line of the full run.

The full run: ``python -m helpers.tree_cot --mode full``.
"""
from . import analysis, claims, data, exercises, models, plots, train
from .analysis import (
                       attention_for_example,
                       block_summary,
                       by_depth,
                       division_curve,
                       evaluate,
                       exact_path_accuracy,
                       filter_sort_decode,
                       filter_sort_evaluate,
                       filter_sort_target,
                       greedy_decode,
                       h_summary,
                       head_usage,
                       per_step_accuracy,
                       phases,
                       random_child_baseline,
                       robustness,
                       role_assignment,
                       roles,
                       stage_switch_accuracy,
                       steps_text,
                       target_sequence,
                       token_label,
)
from .data import (
                       BOS,
                       BWD,
                       EDGE,
                       FILTER_SORT_TASKS,
                       FWD,
                       KINDS,
                       PAD,
                       ROOT,
                       TASKS,
                       Encoded,
                       Example,
                       FilterSortExample,
                       Tree,
                       backward_path,
                       chain_tree,
                       distractor_edges,
                       encode,
                       filter_sort_encode,
                       filter_sort_sample,
                       filter_sort_sequence,
                       forward_path,
                       make_example,
                       perfect_batch,
                       perfect_tree,
                       prompt,
                       random_tree,
                       robustness_sets,
                       sequence,
                       sized_tree,
                       spine_tree,
                       star_tree,
                       step_token,
                       target_steps,
                       test_trees,
)
from .exercises import check_backward_construction, check_forward_head1
from .models import TheoryModel, TransformerConfig, TreeTransformer, ce_loss, construction, mse_loss, parameter_count
from .plots import (
                       draw_tree,
                       plot_attention,
                       plot_blocks,
                       plot_division,
                       plot_h_snapshots,
                       plot_heads,
                       plot_robustness,
                       plot_roles,
                       sequence_text,
)
from .train import (
                       FILTER_SORT,
                       STANDARD,
                       SYMMETRY_BREAK_STD,
                       THEORY,
                       FilterSortConfig,
                       Sizes,
                       StandardConfig,
                       TheoryConfig,
                       filter_sort_test,
                       full_run,
                       load,
                       sizes,
                       standard_batch,
                       standard_test,
                       store,
                       theory_batch,
                       train_filter_sort,
                       train_theory,
                       train_transformer,
)

__all__ = [
    "analysis", "claims", "data", "exercises", "models", "plots", "train",
    # data
    "BOS", "BWD", "EDGE", "FILTER_SORT_TASKS", "FWD", "KINDS", "PAD", "ROOT", "TASKS", "Encoded", "Example",
    "FilterSortExample", "Tree", "backward_path", "chain_tree", "distractor_edges", "encode", "filter_sort_encode",
    "filter_sort_sample", "filter_sort_sequence", "forward_path", "make_example", "perfect_batch", "perfect_tree",
    "prompt", "random_tree", "robustness_sets", "sequence", "sized_tree", "spine_tree", "star_tree", "step_token",
    "target_steps", "test_trees",
    # models
    "TheoryModel", "TransformerConfig", "TreeTransformer", "ce_loss", "construction", "mse_loss", "parameter_count",
    # train
    "FILTER_SORT", "STANDARD", "SYMMETRY_BREAK_STD", "THEORY", "FilterSortConfig", "Sizes", "StandardConfig",
    "TheoryConfig", "filter_sort_test", "full_run", "load", "sizes", "standard_batch", "standard_test", "store",
    "theory_batch", "train_filter_sort", "train_theory", "train_transformer",
    # analysis
    "attention_for_example", "block_summary", "by_depth", "division_curve", "evaluate", "exact_path_accuracy",
    "filter_sort_decode",
    "filter_sort_evaluate", "filter_sort_target", "greedy_decode", "h_summary", "head_usage", "per_step_accuracy",
    "phases", "random_child_baseline", "robustness", "role_assignment", "roles",
    "stage_switch_accuracy", "steps_text", "target_sequence", "token_label",
    # plots
    "draw_tree", "plot_attention", "plot_blocks", "plot_division", "plot_h_snapshots", "plot_heads",
    "plot_robustness", "plot_roles",
    "sequence_text",
    # exercises
    "check_backward_construction", "check_forward_head1",
]
