"""The closing chapter — one lens on all three papers: joint trajectory PCA and the local learning
coefficient (chapter 3's instruments, :mod:`helpers.dynamics`) turned on chapter 1's and
chapter 2's models, and on chapter 3's run again, to ask whether they see the phases each
chapter measures with its own metric.

- :mod:`.train`     — sizes, SGLD settings, the runs (dense checkpoints, probe features, LLC), the full run;
- :mod:`.analysis`  — the lens's events (PCA turns, LLC changes) and their match to the phases;
- :mod:`.plots`     — the chapter's figures;
- :mod:`.claims`    — what counts as seeing a phase, and the claims;
- ``__main__``      — the command line of the full run.

The full run: ``python -m helpers.one_lens --mode full``.
"""
from . import analysis, claims, plots, train
from .analysis import SETTING_NAMES, SETTINGS, llc_events, pca_events, read_setting
from .claims import evaluate, read, summary_table, thresholds
from .train import LLC, Sizes, full_run, gd_run, load, ridge_record, sizes, store, tree_run

__all__ = ["analysis", "claims", "plots", "train", "SETTING_NAMES", "SETTINGS", "llc_events", "pca_events",
           "read_setting", "evaluate", "read", "summary_table", "thresholds", "LLC", "Sizes", "full_run", "gd_run",
           "load", "ridge_record", "sizes", "store", "tree_run"]
