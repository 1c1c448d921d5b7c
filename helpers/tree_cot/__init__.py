"""Chapter 1 — tree path-finding with chain of thought (Yang, Huang, Liang, Chi 2025).

- :mod:`.trees`       — rooted trees with distinct labels, paths, distractor edges, examples;
- :mod:`.tokens`      — the ``(a, b, kind)`` sequence format both model families read;
- :mod:`.theory`      — the paper's one-layer theory model (key–query only) and its constructions;
- :mod:`.transformer` — a standard small transformer with per-head attention;
- :mod:`.decoding`    — greedy decoding and the accuracy metrics;
- :mod:`.analysis`    — what the heads attend to, per head and stage; the matrix H;
- :mod:`.filter_sort` — the second two-stage task;
- :mod:`.experiments`, :mod:`.exercises`, :mod:`.plots` — the chapter's runs, checkers, figures.

The full run: ``python -m helpers.tree_cot --mode full``.
"""
