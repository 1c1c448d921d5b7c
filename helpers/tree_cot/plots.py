"""Chapter 1's figures: a tree with its path, a sequence, attention maps, H, robustness curves.

- :func:`draw_tree` (on an ``ax``), :func:`sequence_text` — the task;
- :func:`plot_attention` (one head, on an ``ax``), :func:`plot_heads` (every head of one
  sequence, on a row of axes) — what the heads attend to at each generated step;
- :func:`plot_h_snapshots` — the theory model's ``H`` over training (returns the figure);
- :func:`plot_blocks` — entries of each head's key–query blocks over training, the phases
  marked; :func:`plot_roles` — each head's share of the node prediction and of the stage signal
  over training; :func:`plot_division` — the division strength over longer training, one line
  per seed (all three return the figure);
- :func:`plot_robustness` — accuracy along the four robustness axes (returns the figure).

Used in: every notebook of book/tree_cot/.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from ..figures import WIDTH
from .analysis import token_label
from .data import PAD, Tree


def tree_layout(tree: Tree) -> dict[int, tuple[float, float]]:
    """``{label: (x, y)}``: leaves spread left to right in depth-first order, parents centred above."""
    pos: dict[int, tuple[float, float]] = {}
    next_x = [0.0]

    def place(v: int, depth: int) -> float:
        kids = sorted(tree.children(v))
        if not kids:
            x = next_x[0]
            next_x[0] += 1
        else:
            x = float(np.mean([place(c, depth + 1) for c in kids]))
        pos[v] = (x, -depth)
        return x

    place(tree.root, 0)
    return pos


def draw_tree(ax, tree: Tree, path: list[int] | None = None, goal: int | None = None, title: str = "",
              distractors: list[tuple[int, int]] = (), node_size: int = 300, font: int = 9):
    """Draw ``tree`` top-down; highlight ``path`` (thick red edges) and mark root and ``goal``."""
    pos = tree_layout(tree)
    on_path = set(zip(path, path[1:])) | set(zip(path[1:], path)) if path else set()
    for p, c in tree.edges:
        (x0, y0), (x1, y1) = pos[p], pos[c]
        hot = (p, c) in on_path
        ax.plot([x0, x1], [y0, y1], color="C3" if hot else "0.6", lw=2.5 if hot else 1, zorder=1)
    xs, ys = zip(*(pos[v] for v in tree.nodes))
    colours = ["C0" if v == tree.root else ("C3" if v == goal else "white") for v in tree.nodes]
    ax.scatter(xs, ys, s=node_size, c=colours, edgecolors="k", linewidths=0.8, zorder=2)
    for v in tree.nodes:
        x, y = pos[v]
        ax.text(x, y, str(v), ha="center", va="center", fontsize=font, zorder=3,
                color="white" if v in (tree.root, goal) else "k")
    if distractors:
        ax.text(0.99, 0.02, f"+ {len(distractors)} distractor edges in the list", transform=ax.transAxes,
                ha="right", fontsize=9, color="0.4")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    ax.margins(0.08)


def sequence_text(tokens, vocab: int, per_line: int = 16) -> str:
    """The tokens of one sequence as short labels (``p→c`` edges, ``u↑v`` climbing, ``↓v`` descending)."""
    labels = [token_label(t, vocab) for t in tokens if t[2] != PAD]
    return "\n".join("  ".join(labels[i:i + per_line]) for i in range(0, len(labels), per_line))


def plot_attention(ax, att: np.ndarray, tokens, vocab: int, queries: list[int], keys: list[int] | None = None,
                   title: str = "", ylabels: list[str] | None = None):
    """One head's attention: rows are the generating positions, columns every token of the sequence.

    ``att``: (len(queries), T); ``keys[i]`` (optional) is the token query ``i`` should read, outlined.
    """
    ax.imshow(att, cmap="Greys", vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    T = att.shape[1]
    ax.set_xticks(range(T))
    ax.set_xticklabels([token_label(t, vocab) for t in tokens[:T]], rotation=90, fontsize=9)
    ax.set_yticks(range(len(queries)))
    ax.set_yticklabels(ylabels if ylabels is not None else [token_label(tokens[q], vocab) for q in queries],
                       fontsize=9)
    if keys is not None:
        for i, k in enumerate(keys):
            if k >= 0:
                ax.add_patch(plt.Rectangle((k - 0.5, i - 0.5), 1, 1, fill=False, ec="C3", lw=1.2))
    ax.set_title(title, fontsize=10)


def plot_heads(axes, one: dict, vocab: int, title: str = ""):
    """Every head's attention for one sequence, head ``h`` on ``axes[h]``.

    ``one``: :func:`~helpers.tree_cot.analysis.attention_for_example`'s record (``att``:
    (n_heads, queries, T), ``tokens``, ``queries``, ``keys``); panel titles read ``"{title}head h"``.
    """
    axes = np.atleast_1d(axes)
    if len(axes) < one["att"].shape[0]:
        raise ValueError(f"axes must hold one panel per head ({one['att'].shape[0]}); got {len(axes)}")
    for h, ax in enumerate(axes[: one["att"].shape[0]]):
        plot_attention(ax, one["att"][h], one["tokens"], vocab, one["queries"], one["keys"], f"{title}head {h}")


H_TITLE = "$H$ (rows: child label of the key edge; columns: the query's current node)"


def plot_h_snapshots(H: dict, title: str = H_TITLE):
    """Heat maps of ``H`` (N × N) at each step of ``H = {step: array}``, on one shared colour
    scale; returns the figure."""
    if not H:
        raise ValueError("H must hold at least one {step: matrix} snapshot")
    steps = sorted(H)
    width = min(2.2 * len(steps), WIDTH)  # the book's column
    fig, axes = plt.subplots(1, len(steps), figsize=(width, width / len(steps) + 0.5))
    vmax = max(np.abs(H[s]).max() for s in steps) or 1.0
    for ax, s in zip(np.atleast_1d(axes), steps):
        im = ax.imshow(H[s], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(f"step {s}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes, shrink=0.8, label="$H_{ij}$")
    fig.suptitle(title, fontsize=10, y=1.02)
    return fig


ROBUSTNESS_AXES = {"depth": "depth of the goal", "branching": "max children per node c",
                   "size": "nodes in the tree", "distractors": "distractor edges in the list"}


def plot_robustness(results: dict, title: str, trained: dict | None = None):
    """Exact-path accuracy along each robustness axis (a 2 × 2 grid), one line per model; returns
    the figure.

    ``results``: ``{model name: {axis: {value: accuracy}}}`` (values may be ints or, read from
    JSON, strings); ``trained``: ``{axis: largest value inside the training range}``, shaded grey.
    """
    fig, axes = plt.subplots(2, 2, figsize=(WIDTH, 5.8), sharey=True)
    styles = [("o-", "C3"), ("s--", "C0"), ("^:", "C2"), ("D-.", "C1"), ("v-", "C4")]
    for ax, (axis, label) in zip(axes.flat, ROBUSTNESS_AXES.items()):
        for i, (name, r) in enumerate(results.items()):
            if axis not in r:
                continue
            by = {int(x): acc for x, acc in r[axis].items()}
            xs = sorted(by)
            marker, colour = styles[i % len(styles)]
            ax.plot(xs, [by[x] for x in xs], marker, color=colour, ms=8 - 1.5 * (i % 3), mfc="none", label=name)
            ax.set_xticks(xs)
        if trained and axis in trained:
            ax.axvspan(ax.get_xlim()[0], trained[axis], color="0.92", zorder=0)
        ax.set(xlabel=label, ylim=(-0.02, 1.05))
    for ax in axes[:, 0]:
        ax.set_ylabel("exact-path accuracy")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# the kind × kind entries plot_blocks draws: (key kind, query kind) → what a large value means
KIND_ENTRIES = {("edge", "bwd"): "edges, climbing", ("bwd", "bwd"): "chain of thought, climbing",
                ("root", "bwd"): "ROOT marker, climbing", ("bos", "bwd"): "BOS, climbing",
                ("edge", "fwd"): "edges, descending", ("bwd", "fwd"): "chain of thought, descending",
                ("fwd", "fwd"): "forward tokens, descending", ("root", "fwd"): "ROOT marker, descending"}
PHASE_STYLE = {"descend": ("C2", "descending solved"), "switch": ("C1", "switch solved"),
               "climb": ("C0", "climbing solved"), "division": ("C3", "division of labour")}


def _mark_phases(ax, phases: dict | None):
    for key, (colour, _) in PHASE_STYLE.items():
        if phases and phases.get(key) is not None:
            ax.axvline(phases[key], color=colour, ls=":", lw=1.5)


def _phase_handles(phases: dict | None) -> list:
    """Legend entries for the dotted phase lines of :func:`_mark_phases`."""
    return [plt.Line2D([], [], color=c, ls=":", lw=1.5, label=f"{label} (step {phases[k]})")
            for k, (c, label) in PHASE_STYLE.items() if phases and phases.get(k) is not None]


def plot_blocks(log: dict, phases: dict | None = None, title: str = ""):
    """Entries of each head's key–query blocks over training, one row per head; returns the figure.

    Left: the mean diagonal of the node blocks — ``W_h[b, b]`` ("the token whose slot b is my
    current node": the edge whose child is me, my own chain-of-thought token) and ``W_h[a, b]``
    ("the edges whose parent is me"). Right: the token-kind preferences of :data:`KIND_ENTRIES`
    (solid: climbing queries, dashed: descending ones). ``log``: a theory-model log (``step``,
    ``blocks``); ``phases`` (:func:`~helpers.tree_cot.analysis.phases`) draws its steps as dotted lines.
    """
    from .analysis import KEY_KINDS, QUERY_KINDS

    steps = log["step"]
    blocks = log["blocks"]
    n_heads = len(blocks[0]["child_is_me"])
    fig, axes = plt.subplots(n_heads, 2, figsize=(WIDTH, 3.0 * n_heads + 1.7), sharex=True, squeeze=False,
                             gridspec_kw={"width_ratios": (1, 1.25)}, layout="constrained")
    for h in range(n_heads):
        ax = axes[h, 0]
        ax.plot(steps, [b["child_is_me"][h] for b in blocks], color="k", lw=2, label="child is me: $W[b,b]_{ii}$")
        ax.plot(steps, [b["parent_is_me"][h] for b in blocks], color="0.5", lw=2, ls="--",
                label="parent is me: $W[a,b]_{ii}$")
        ax.set(title=f"head {h}: node blocks (mean diagonal)", ylabel="entry of $W_h$")
        ax.legend(fontsize=9, loc="upper left")
        ax = axes[h, 1]
        for i, ((k, q), label) in enumerate(KIND_ENTRIES.items()):
            ki, qi = KEY_KINDS.index(k), QUERY_KINDS.index(q)
            ax.plot(steps, [b["kind"][h][ki][qi] for b in blocks], color=f"C{i}", lw=1.8,
                    ls="-" if q == "bwd" else "--", label=label)
        ax.set(title=f"head {h}: token-kind preferences")
        for ax in axes[h]:
            _mark_phases(ax, phases)
            ax.axhline(0, color="0.8", lw=0.8, zorder=0)
    for ax in axes[-1]:
        ax.set_xlabel("training step")
    if title:
        fig.suptitle(title, fontsize=11)
    for ax in axes.flat:
        ax.xaxis.set_major_locator(plt.MaxNLocator(4))
    # one legend, under the panels and off the data: the token-kind curves (right column) and the phases
    handles, labels = axes[0, 1].get_legend_handles_labels()
    phase_lines = _phase_handles(phases)
    fig.legend(handles + phase_lines, labels + [h.get_label() for h in phase_lines], loc="outside lower center",
               ncol=2, frameon=False)
    return fig


def plot_roles(logs: dict, title: str = ""):
    """Each head's share of the node prediction (traverse, solid) and of the stage signal (control,
    dashed) over training, one panel per run; returns the figure. ``logs``: ``{run name: log}``
    (theory-model logs with ``step`` and ``roles``)."""
    fig, axes = plt.subplots(1, len(logs), figsize=(WIDTH, 3.4), sharey=True, squeeze=False)
    for ax, (name, log) in zip(axes[0], logs.items()):
        r = np.array(log["roles"], dtype=float)  # (checkpoints, heads, 2)
        for h in range(r.shape[1]):
            ax.plot(log["step"], r[:, h, 0], color=f"C{h}", lw=2, label=f"head {h}: traverse")
            ax.plot(log["step"], r[:, h, 1], color=f"C{h}", lw=2, ls="--", label=f"head {h}: control")
        ax.set(title=name, xlabel="training step", ylim=(-0.02, 1.02))
    axes[0, 0].set_ylabel("share of the prediction")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    return fig


def plot_division(runs: dict, short_steps: int, mark: float, tail: float, title: str = ""):
    """The division strength over training, one line per run; returns the figure. ``runs``:
    ``{run name: (steps, strengths)}``; ``short_steps`` (where the main runs stop) is drawn as a
    dotted line, the pass mark ``mark`` as a dashed one, and the last ``tail`` fraction of training
    (where the split must hold) is shaded."""
    if not runs:
        raise ValueError("runs must hold at least one run")
    fig, ax = plt.subplots(figsize=(WIDTH, 3.6))
    end = max(float(np.max(steps)) for steps, _ in runs.values())
    ax.axvspan((1 - tail) * end, end, color="0.92", zorder=0, label=f"last {tail:.0%}: the split must hold")
    for i, (name, (steps, strength)) in enumerate(runs.items()):
        ax.plot(steps, strength, color=f"C{i}", lw=2, marker="o", ms=3, label=name)
    ax.axhline(mark, color="0.3", ls="--", lw=1, label=f"pass mark {mark:g}")
    ax.axvline(short_steps, color="0.3", ls=":", lw=1.2, label=f"the main runs stop ({short_steps} steps)")
    ax.set(xlabel="training step", ylabel="division strength", xlim=(0, end), ylim=(-0.1, 1.0))
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.72, 1))
    fig.legend(loc="center right", frameon=False, fontsize=9)
    return fig
