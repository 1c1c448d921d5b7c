"""helpers — the shared toolkit of the book *How transformers learn algorithms*.

Core modules (used by every chapter):

- :mod:`helpers.modes`    — the run mode (``BOOK_MODE``) and sizes per mode;
- :mod:`helpers.device`   — device choice (cuda → mps → cpu), seeding, environment report;
- :mod:`helpers.training` — the training loop, checkpoint schedule, resume;
- :mod:`helpers.results`  — atomic writes, provenance (``run.json``), the results folders;
- :mod:`helpers.claims`   — ``Claim`` (one verdict: paper or extension, criterion, holds) and the claims table;
- :mod:`helpers.seeds`    — the one way seeds are derived (``derive_seed``, generators per step/group);
- :mod:`helpers.exercises` — ``ExerciseError``, raised by every chapter's exercise checkers;
- :mod:`helpers.colab`    — the first (Colab set-up) cell of every notebook;
- :mod:`helpers.checks`   — argument checks with clear errors;
- :mod:`helpers.cli`      — the command line of every chapter's full run;
- :mod:`helpers.figures`  — the book's figure style (column width, fonts) and numbered figures;
- :mod:`helpers.dynamics` — the dynamics toolkit: smoothing, joint trajectory PCA, the SGLD estimate of the LLC.
"""
from . import figures
from .claims import Claim, claims_table
from .device import describe_device, environment, pick_device, seed_everything
from .exercises import ExerciseError
from .modes import MODES, by_mode, get_mode, set_mode, show_progress
from .results import ResultError, ResultStore, RunOutput, output_root
from .seeds import derive_seed, numpy_generator, step_generator, torch_generator
from .training import History, checkpoint_schedule, train

figures.use_book_style()  # every figure drawn for the book's column (helpers.figures)

__version__ = "0.1.0"

__all__ = [
    "MODES", "by_mode", "get_mode", "set_mode", "show_progress",
    "describe_device", "environment", "pick_device", "seed_everything",
    "ExerciseError",
    "Claim", "ResultError", "ResultStore", "RunOutput", "claims_table", "output_root",
    "derive_seed", "numpy_generator", "step_generator", "torch_generator",
    "History", "checkpoint_schedule", "train",
    "figures",
]
