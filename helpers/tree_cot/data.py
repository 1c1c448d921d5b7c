"""Chapter 1's data: rooted trees, path-finding examples, the token format, the filter → sort task.

**Trees.** A :class:`Tree` is a root and a ``parent`` map (child label → parent label); labels are
distinct ints in ``[0, N)`` (``N`` = ``vocab``). Generators draw the labels without replacement,
so the same shape gets fresh labels each time:

- :func:`perfect_tree` — every internal node has ``k`` children, all leaves at depth ``m``
  (the paper's training trees: perfect binary trees);
- :func:`random_tree` — each node gets 0–``c`` children, uniformly (the paper's test trees);
- :func:`sized_tree` — a random recursive tree of exactly ``n`` nodes (8–32 in the robustness sets);
- :func:`spine_tree` — a root–leaf path of depth ``d`` with extra leaves hanging off it;
- :func:`chain_tree`, :func:`star_tree` — the two extremes (depth ``n − 1``; depth 1).

:func:`make_example` turns a tree into one task instance (:class:`Example`): the shuffled edge
list (optionally with distractor edges from another tree), the root, a goal leaf, and the exact
backward (goal → root) and forward (root → goal) paths. :func:`test_trees` draws unseen test
sets and :func:`robustness_sets` the sets that step outside a training distribution.

**Tokens.** Every token is a triple ``(a, b, kind)``; :func:`sequence`, :func:`encode` and
:func:`perfect_batch` build the sequences both model families read (the format is described
below, above :data:`EDGE`).

**Filter → sort.** A second two-stage task in the same token format: :class:`FilterSortExample`,
:func:`filter_sort_sample`, :func:`filter_sort_sequence`, :func:`filter_sort_encode` (the format
is described above :data:`FILTER_SORT_TASKS`).

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..checks import check_int
from ..seeds import numpy_generator


@dataclass(frozen=True)
class Tree:
    """A rooted tree: ``root`` and ``parent[child] = parent`` for every other node."""

    root: int
    parent: dict[int, int] = field(repr=False)

    def __post_init__(self):
        if len(self.parent) < 1:
            raise ValueError("a tree needs at least 2 nodes (a root and one child); got 1")
        if self.root in self.parent:
            raise ValueError(f"the root {self.root} cannot have a parent")
        for v in self.parent:  # every node must reach the root without a cycle
            seen = set()
            while v != self.root:
                if v in seen or v not in self.parent:
                    raise ValueError(f"parent map does not form one tree rooted at {self.root} (node {v})")
                seen.add(v)
                v = self.parent[v]

    @property
    def nodes(self) -> list[int]:
        """All labels, root first."""
        return [self.root, *self.parent]

    @property
    def edges(self) -> list[tuple[int, int]]:
        """``(parent, child)`` pairs, one per non-root node."""
        return [(p, c) for c, p in self.parent.items()]

    def __len__(self) -> int:
        return 1 + len(self.parent)

    def children(self, v: int) -> list[int]:
        return [c for c, p in self.parent.items() if p == v]

    def leaves(self) -> list[int]:
        internal = set(self.parent.values())
        return [v for v in self.parent if v not in internal]

    def depth(self, v: int) -> int:
        """Number of edges between ``v`` and the root."""
        d = 0
        while v != self.root:
            v = self.parent[v]
            d += 1
        return d

    def height(self) -> int:
        return max(self.depth(v) for v in self.leaves())

    def max_children(self) -> int:
        counts: dict[int, int] = {}
        for p in self.parent.values():
            counts[p] = counts.get(p, 0) + 1
        return max(counts.values())


def _rng(rng) -> np.random.Generator:
    """``rng`` itself (a NumPy Generator), ``numpy_generator(rng)`` for an int seed >= 0, or fresh entropy for None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"rng as an int seed must be >= 0; got {rng}")
        return numpy_generator(int(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None; got {type(rng).__name__}")


def _labels(n: int, vocab: int, rng: np.random.Generator, exclude=()) -> list[int]:
    """``n`` distinct labels from ``[0, vocab)`` minus ``exclude``, in random order."""
    pool = np.setdiff1d(np.arange(vocab), np.fromiter(exclude, int, len(exclude)))
    if n > len(pool):
        raise ValueError(f"vocab={vocab} is too small: {n} distinct labels needed"
                         + (f" besides the {len(exclude)} excluded ones" if len(exclude) else "")
                         + f", {len(pool)} available")
    return rng.choice(pool, size=n, replace=False).tolist()


def _from_shape(shape_parent: list[int], vocab: int, rng, exclude=()) -> Tree:
    """Label a shape given as ``shape_parent[i]`` (index of node i's parent, −1 for node 0)."""
    labels = _labels(len(shape_parent), vocab, rng, exclude)
    return Tree(labels[0], {labels[i]: labels[p] for i, p in enumerate(shape_parent) if i > 0})


def perfect_tree(k: int, m: int, vocab: int, rng=None) -> Tree:
    """A perfect ``k``-ary tree of depth ``m``: ``(k^{m+1} − 1)/(k − 1)`` nodes, random distinct labels.

    Args: ``k >= 1`` children per internal node, depth ``m >= 1``, labels from ``[0, vocab)``.
    """
    check_int("k", k, 1)
    check_int("m", m, 1)
    n = sum(k ** i for i in range(m + 1))
    if n > vocab:
        raise ValueError(f"a perfect {k}-ary tree of depth {m} has {n} nodes, more than vocab={vocab} labels")
    shape = [-1]
    frontier = [0]
    for _ in range(m):
        nxt = []
        for p in frontier:
            for _ in range(k):
                shape.append(p)
                nxt.append(len(shape) - 1)
        frontier = nxt
    return _from_shape(shape, vocab, _rng(rng))


def random_tree(c: int, vocab: int, rng=None, *, max_depth: int = 6, max_nodes: int | None = None,
                min_depth: int = 1, tries: int = 1000) -> Tree:
    """Each node has 0–``c`` children (uniform), grown breadth-first down to ``max_depth``.

    The draw is repeated until the tree has depth ``>= min_depth`` and at most ``max_nodes`` nodes
    (default ``vocab``), as the paper's test trees with 0–3 children per node.
    """
    check_int("c", c, 1)
    check_int("max_depth", max_depth, 1)
    check_int("min_depth", min_depth, 1)
    max_nodes = vocab if max_nodes is None else check_int("max_nodes", max_nodes, 2)
    if min_depth > max_depth:
        raise ValueError(f"min_depth={min_depth} must be <= max_depth={max_depth}")
    if min_depth + 1 > min(max_nodes, vocab):
        raise ValueError(f"a tree of depth {min_depth} needs {min_depth + 1} nodes; max_nodes={max_nodes}, "
                         f"vocab={vocab}")
    g = _rng(rng)
    for _ in range(tries):
        counts = g.integers(0, c + 1, size=max_nodes + 1).tolist()  # children of the i-th node reached
        shape, depth = [-1], [0]
        i = 0
        while i < len(shape) and len(shape) <= max_nodes:
            if depth[i] < max_depth:
                shape += [i] * counts[i]
                depth += [depth[i] + 1] * counts[i]
            i += 1
        if len(shape) <= max_nodes and max(depth) >= min_depth:
            return _from_shape(shape, vocab, g)
    raise ValueError(f"no tree with 0–{c} children, depth in [{min_depth}, {max_depth}] and <= {max_nodes} nodes "
                     f"after {tries} draws: relax the bounds")


def sized_tree(n: int, vocab: int, rng=None, *, c: int | None = None) -> Tree:
    """A random recursive tree with exactly ``n`` nodes: node i attaches to a uniformly chosen earlier
    node that has fewer than ``c`` children (no limit if ``c`` is None)."""
    check_int("n", n, 2)
    if c is not None:
        check_int("c", c, 1)
    if n > vocab:
        raise ValueError(f"n={n} nodes need n distinct labels; vocab={vocab} is too small")
    g = _rng(rng)
    shape, kids = [-1], [0]
    for i in range(1, n):
        open_ = [j for j in range(i) if c is None or kids[j] < c]
        p = open_[int(g.integers(len(open_)))]
        shape.append(p)
        kids[p] += 1
        kids.append(0)
    return _from_shape(shape, vocab, g)


def spine_tree(d: int, vocab: int, rng=None, *, c: int = 3, max_nodes: int | None = None) -> Tree:
    """A root–leaf path ("spine") of depth ``d`` whose nodes get 0–``c − 1`` extra leaf children each
    (dropped again as needed to stay within ``max_nodes``, default ``vocab``). Its deepest leaf, the
    spine's end, is a goal at depth exactly ``d``: the way to test depths a random tree rarely reaches."""
    check_int("d", d, 1)
    check_int("c", c, 1)
    max_nodes = vocab if max_nodes is None else check_int("max_nodes", max_nodes, 2)
    if d + 1 > min(vocab, max_nodes):
        raise ValueError(f"a spine of depth d={d} needs {d + 1} nodes; vocab={vocab}, max_nodes={max_nodes}")
    g = _rng(rng)
    shape = [-1] + list(range(d))
    for v in range(d):
        for _ in range(int(g.integers(0, c))):
            if len(shape) < max_nodes:
                shape.append(v)
    return _from_shape(shape, vocab, g)


def chain_tree(n: int, vocab: int, rng=None) -> Tree:
    """A path of ``n`` nodes (depth ``n − 1``, one leaf)."""
    check_int("n", n, 2)
    if n > vocab:
        raise ValueError(f"n={n} nodes need n distinct labels; vocab={vocab} is too small")
    return _from_shape([-1] + list(range(n - 1)), vocab, _rng(rng))


def star_tree(n: int, vocab: int, rng=None) -> Tree:
    """A root with ``n − 1`` leaf children (depth 1)."""
    check_int("n", n, 2)
    if n > vocab:
        raise ValueError(f"n={n} nodes need n distinct labels; vocab={vocab} is too small")
    return _from_shape([-1] + [0] * (n - 1), vocab, _rng(rng))


def backward_path(tree: Tree, goal: int) -> list[int]:
    """``[goal, parent(goal), …, root]``: the answer of the backward task. ``goal`` must be a leaf."""
    _check_goal(tree, goal)
    path = [goal]
    while path[-1] != tree.root:
        path.append(tree.parent[path[-1]])
    return path


def forward_path(tree: Tree, goal: int) -> list[int]:
    """``[root, …, goal]``: the answer of the forward task (the backward path reversed)."""
    return backward_path(tree, goal)[::-1]


def _check_goal(tree: Tree, goal) -> None:
    if goal not in tree.parent:
        raise ValueError(f"goal={goal!r} is not a non-root node of the tree")
    if goal not in tree.leaves():
        raise ValueError(f"goal={goal} is not a leaf (it has children {tree.children(goal)}); the goal must be a leaf")


@dataclass(frozen=True)
class Example:
    """One path-finding instance.

    ``edges``: the shuffled edge list ``[(parent, child), …]`` the model reads (tree edges plus
    distractors); ``backward``: goal → root; ``forward``: root → goal.
    """

    tree: Tree
    goal: int
    edges: list[tuple[int, int]]
    distractors: list[tuple[int, int]]

    @property
    def root(self) -> int:
        return self.tree.root

    @property
    def backward(self) -> list[int]:
        return backward_path(self.tree, self.goal)

    @property
    def forward(self) -> list[int]:
        return forward_path(self.tree, self.goal)

    @property
    def depth(self) -> int:
        return len(self.backward) - 1


def distractor_edges(tree: Tree, goal: int, n: int, vocab: int, rng=None) -> list[tuple[int, int]]:
    """``n`` edges of another random tree whose labels avoid the goal's path (but may reuse other labels).

    They never touch the root–goal path, so the path stays unique; a node off the path may appear
    with a second parent, which a model must ignore.
    """
    check_int("n", n, 0)
    if n == 0:
        return []
    path = backward_path(tree, goal)
    other = sized_tree(n + 1, vocab, rng, c=3) if vocab - len(path) >= n + 1 else None
    if other is None:
        raise ValueError(f"vocab={vocab} is too small for {n} distractor edges away from a path of {len(path)} nodes")
    g = _rng(rng)
    relabel = dict(zip(other.nodes, _labels(len(other), vocab, g, exclude=path)))
    return [(relabel[p], relabel[c]) for p, c in other.edges]


def make_example(tree: Tree, rng=None, *, goal: int | None = None, n_distractors: int = 0,
                 vocab: int | None = None) -> Example:
    """A task instance on ``tree``: a random leaf as goal (unless given), edges shuffled."""
    g = _rng(rng)
    if goal is None:
        leaves = tree.leaves()
        goal = leaves[int(g.integers(len(leaves)))]
    _check_goal(tree, goal)
    check_int("n_distractors", n_distractors, 0)
    if n_distractors and vocab is None:
        raise ValueError("vocab is needed to draw distractor edges")
    extra = distractor_edges(tree, goal, n_distractors, vocab, g) if n_distractors else []
    edges = tree.edges + extra
    order = g.permutation(len(edges))
    return Example(tree, goal, [edges[i] for i in order], extra)


# --------------------------------------------------------------------------------------------
# test sets


def test_trees(n: int, vocab: int, seed: int = 12345, *, c: int = 3, max_depth: int = 6,
               max_nodes: int | None = None, n_distractors: int = 0) -> list[Example]:
    """``n`` random trees (0–``c`` children per node, depth <= ``max_depth``) with a random leaf as goal.

    The seed is distinct from every training seed, so these trees (shapes and labellings) are unseen.
    """
    check_int("n", n, 1)
    rng = numpy_generator(seed)
    return [make_example(random_tree(c, vocab, rng, max_depth=max_depth, max_nodes=max_nodes), rng,
                         n_distractors=n_distractors, vocab=vocab) for _ in range(n)]


def robustness_sets(vocab: int, n: int, seed: int = 777) -> dict[str, dict[int, list[Example]]]:
    """Test sets that step outside a training distribution, one axis at a time.

    - ``depth``: goal at depth d = 1 … 10 (the end of a spine with extra leaves, :func:`spine_tree`);
    - ``branching``: 0–c children per node, c = 1 … 6;
    - ``size``: random recursive trees of exactly n = 8 … 32 nodes (at most 3 children);
    - ``distractors``: 0 … 12 edges of another tree in the list (trees of at most 16 nodes).
    Each value has ``n`` trees; the label vocabulary is ``vocab``. Returns ``{axis: {value: examples}}``.
    """
    check_int("n", n, 1)
    rng = numpy_generator(seed)
    deepest = lambda t: make_example(t, rng, goal=max(t.leaves(), key=t.depth))
    return {
        "depth": {d: [deepest(spine_tree(d, vocab, rng, c=3)) for _ in range(n)] for d in range(1, 11)},
        "branching": {c: [make_example(random_tree(c, vocab, rng, max_depth=5, min_depth=2, max_nodes=vocab), rng)
                          for _ in range(n)] for c in range(1, 7)},
        "size": {s: [make_example(sized_tree(s, vocab, rng, c=3), rng) for _ in range(n)]
                 for s in range(8, min(vocab, 32) + 1, 4)},
        "distractors": {k: [make_example(random_tree(3, vocab, rng, max_depth=5, max_nodes=16), rng,
                                         n_distractors=k, vocab=vocab) for _ in range(n)] for k in (0, 2, 4, 8, 12)},
    }


# --------------------------------------------------------------------------------------------
# the token format
#
# The sequence format both model families read: every token is a triple ``(a, b, kind)``.
#
# An **edge** token carries its two endpoints in two slots, ``a`` = parent, ``b`` = child, as in
# the paper. Path tokens are written the same way round, as the step they record: moving from
# node ``u`` to node ``v`` in the backward stage appends ``(a=u, b=v, BWD)``, so the node the
# model is "at" is always in slot ``b`` and a backward chain of thought is a list of reversed
# edges; a forward-stage token ``(a=·, b=v, FWD)`` only says where the model is. Labels are
# ``0 … N−1``; ``END = N``; an empty slot ``·`` is ``N + 1``.
#
# A forward-task sequence, for a tree with root ``r`` and goal ``g`` whose backward path is
# ``v_0 = g, …, v_L = r``::
#
#     BOS | edges (p, c) … | ROOT (·, r) | GOAL (END, g) | B_1 … B_L | F_{L−1} … F_0
#                                           ^ kind BWD                 ^ kind FWD
#
# with ``B_t = (v_{t−1}, v_t, BWD)`` and ``F_t = (·, v_t, FWD)``. After each token from GOAL on the
# model predicts **two things**: the next node (or END) and the **stage** of the next token
# (backward 0 / forward 1). Climbing, it predicts ``v_{t+1}`` and "backward"; at the root it
# predicts the first node down, ``v_{L−1}``, and "forward" — the stage switch; descending it
# predicts ``v_{t−1}`` and "forward", and END at the goal. The decoder appends exactly what the
# model predicted (``B`` for a backward prediction, ``F`` for a forward one) and stops at END: it
# inserts no token and decides no stage (:func:`~helpers.tree_cot.analysis.greedy_decode`).
#
# Why these tokens: one lookup rule serves both directions — "attend to the token whose slot
# ``b`` is my current node, read its slot ``a``". Climbing, the edge ``(parent(u), u)`` answers
# with the parent; descending, the chain-of-thought token ``(c, u, BWD)`` answers with the child
# ``c`` the path came from (the GOAL token ``(END, g)`` answers END at the goal). Which tokens to
# prefer — edges when climbing, the chain of thought when descending — is a matter of the
# token kinds. The ROOT token ``(·, r)`` names the root with an empty node slot: it is the marker
# a head can find to notice that the root has been reached.
#
# Three tasks:
#
# - ``"backward"``: the backward stage only (the answer is goal → root). Here the ROOT token is
#   ``(END, r)`` — the root's "parent" is END — and the sequence ends with END at the root;
#   there is no stage to predict;
# - ``"forward"``: both stages — the backward path as chain of thought, the switch, then root → goal;
# - ``"direct"``: root → goal with no chain of thought: the prompt ends with ``(·, r, FWD)``;
#   there is no stage to predict.
#

EDGE, ROOT, BWD, FWD, BOS, PAD = range(6)
KINDS = ("edge", "root", "bwd", "fwd", "bos", "pad")
TASKS = ("backward", "forward", "direct")


def check_task(task) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}; got {task!r}")
    return task


@dataclass
class Encoded:
    """A padded batch of sequences (``B`` sequences of length ``T``).

    tokens: (B, T, 3) int64 ``(a, b, kind)``; padding has kind PAD.
    targets: (B, T) int64, the node (or END) to predict after each position, −1 where none.
    stage: (B, T) int64, the stage a prediction is made in: 0 backward, 1 forward, −1 where none.
    next_stage: (B, T) int64, the stage the model must predict for the next token (0 / 1): it
        differs from ``stage`` only at the root, where the forward task switches; −1 where the
        task has no stage to predict (``"backward"``, ``"direct"``) and where nothing is predicted.
    key: (B, T) int64, the position of the token a correct one-step lookup reads (the edge or
        ROOT token when climbing, the chain-of-thought or GOAL token when descending, the
        root's own chain-of-thought token at the switch), −1 where none (``"direct"``'s steps).
    marker: (B, T) int64, at the switch (the root, forward task) the position of the ROOT token,
        whose discovery is the stage signal; −1 elsewhere.
    depth: (B,) the goal's depth ``L``.
    """

    tokens: torch.Tensor
    targets: torch.Tensor
    stage: torch.Tensor
    next_stage: torch.Tensor
    key: torch.Tensor
    marker: torch.Tensor
    depth: torch.Tensor
    vocab: int
    task: str

    def __len__(self) -> int:
        return self.tokens.shape[0]

    @property
    def END(self) -> int:
        return self.vocab

    def to(self, device) -> "Encoded":
        return Encoded(self.tokens.to(device), self.targets.to(device), self.stage.to(device),
                       self.next_stage.to(device), self.key.to(device), self.marker.to(device),
                       self.depth.to(device), self.vocab, self.task)


def prompt(edges, root: int, goal: int, vocab: int, task: str) -> list[tuple[int, int, int]]:
    """The tokens before the model's first prediction: BOS, the edges, ROOT, GOAL (and, for
    ``"direct"``, the start token ``(·, r, FWD)``)."""
    check_task(task)
    END, EMPTY = vocab, vocab + 1
    root_tok = (END, root, ROOT) if task == "backward" else (EMPTY, root, ROOT)
    toks = [(EMPTY, EMPTY, BOS)] + [(p, c, EDGE) for p, c in edges] + [root_tok, (END, goal, BWD)]
    if task == "direct":
        toks.append((EMPTY, root, FWD))
    return toks


def step_token(current: int, node: int, stage: int, vocab: int) -> tuple[int, int, int]:
    """The token appended when the model, at ``current``, predicts ``node`` in ``stage`` (0/1):
    ``(current, node, BWD)`` for a backward prediction, ``(·, node, FWD)`` for a forward one."""
    if stage not in (0, 1):
        raise ValueError(f"stage must be 0 (backward) or 1 (forward); got {stage!r}")
    return (current, node, BWD) if stage == 0 else (vocab + 1, node, FWD)


def sequence(edges, root: int, back: list[int], vocab: int, task: str):
    """One example's tokens, targets, stages, next stages, lookup and marker positions (lists).
    ``back``: the goal → root path (``Example.backward``), labels in ``[0, vocab)``."""
    check_task(task)
    if len(back) < 2 or back[-1] != root or min(back) < 0 or max(back) >= vocab:
        raise ValueError(f"back must be the goal → root path (Example.backward): at least 2 labels in [0, {vocab}), "
                         f"the last the root {root}; got {list(back)}")
    END = vocab
    L = len(back) - 1
    toks = prompt(edges, root, back[0], vocab, task)
    root_pos = len(edges) + 1
    where_child = {c: i + 1 for i, (_, c) in enumerate(edges) if c in set(back)}  # path nodes have one parent
    where_child[root] = root_pos
    marks: dict[int, tuple[int, ...]] = {}  # position -> (target, stage, next stage, lookup, marker)
    cot_pos = {back[0]: len(toks) - 1}  # the backward-stage token whose slot b is the node
    nxt = 0 if task == "forward" else -1  # the stage to predict while climbing (none outside the forward task)

    def done():
        cols = [[marks.get(i, (-1,) * 5)[j] for i in range(len(toks))] for j in range(5)]
        return (toks, *cols)

    if task == "direct":
        fwd = back[::-1]
        for t in range(L + 1):  # at fwd[t]: predict fwd[t+1] (END at the goal)
            marks[len(toks) - 1] = (fwd[t + 1] if t < L else END, 1, -1, -1, -1)
            if t < L:
                toks.append(step_token(fwd[t], fwd[t + 1], 1, vocab))
        return done()
    for t in range(L):  # at v_t: climb to v_{t+1}
        marks[len(toks) - 1] = (back[t + 1], 0, nxt, where_child[back[t]], -1)
        toks.append(step_token(back[t], back[t + 1], 0, vocab))
        cot_pos[back[t + 1]] = len(toks) - 1
    if task == "backward":
        marks[len(toks) - 1] = (END, 0, -1, root_pos, -1)  # the root's "parent" is END
        return done()
    # at the root: the switch — predict the first node down, and the forward stage
    marks[len(toks) - 1] = (back[L - 1], 0, 1, cot_pos[root], root_pos)
    toks.append(step_token(root, back[L - 1], 1, vocab))
    for t in range(L - 1, -1, -1):  # at v_t (forward stage): predict v_{t-1} (END at the goal)
        marks[len(toks) - 1] = (back[t - 1] if t > 0 else END, 1, 1, cot_pos[back[t]], -1)
        if t > 0:
            toks.append(step_token(back[t], back[t - 1], 1, vocab))
    return done()


def target_steps(back: list[int], vocab: int, task: str) -> list[tuple[int, int]]:
    """What a perfect model predicts, as ``(node, stage)`` pairs (stage 0 backward, 1 forward; END
    closes the sequence). ``back``: the goal → root path."""
    check_task(task)
    END = vocab
    if task == "backward":
        return [(v, 0) for v in back[1:]] + [(END, 0)]
    down = [(v, 1) for v in back[::-1][1:]] + [(END, 1)]
    return down if task == "direct" else [(v, 0) for v in back[1:]] + down


def encode(examples: list[Example], vocab: int, task: str) -> Encoded:
    """Encode and pad a list of :class:`Example` (right padding)."""
    check_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    rows = []
    for ex in examples:
        labels = {x for e in ex.edges for x in e}
        if max(labels) >= vocab:
            raise ValueError(f"vocab={vocab} is too small for label {max(labels)}: labels must lie in [0, vocab)")
        rows.append(sequence(ex.edges, ex.root, ex.backward, vocab, task))
    return _pad(rows, [ex.depth for ex in examples], vocab, task)


def _pad(rows, depths, vocab: int, task: str) -> Encoded:
    T = max(len(r[0]) for r in rows)
    B = len(rows)
    tokens = np.empty((B, T, 3), dtype=np.int64)
    tokens[:] = (vocab + 1, vocab + 1, PAD)
    cols = np.full((5, B, T), -1, dtype=np.int64)
    for i, (toks, *marks) in enumerate(rows):
        n = len(toks)
        tokens[i, :n] = toks
        for j, m in enumerate(marks):
            cols[j, i, :n] = m
    as_t = torch.from_numpy
    return Encoded(as_t(tokens), *(as_t(c) for c in cols), torch.tensor(depths), vocab, task)


def perfect_batch(k: int, m: int, vocab: int, batch: int, rng: np.random.Generator, task: str) -> Encoded:
    """A batch of perfect ``k``-ary trees of depth ``m`` (random labels, goal, edge order).

    Same distribution and same sequences as :func:`perfect_tree` + ``make_example`` +
    :func:`encode`; the fixed shape gives every sequence the same length, so labels, goals, edge
    orders and all token columns are built as arrays for the whole batch (~1 ms for 256 trees).
    """
    check_task(task)
    check_int("batch", batch, 1)
    n = sum(k ** i for i in range(m + 1))
    if n > vocab:
        raise ValueError(f"a perfect {k}-ary tree of depth {m} has {n} nodes, more than vocab={vocab} labels")
    END, EMPTY, L = vocab, vocab + 1, m
    parent = np.array([0] + [(i - 1) // k for i in range(1, n)])  # heap order: node i's parent
    first_leaf = n - k ** m
    labels = np.argsort(rng.random((batch, vocab)), axis=1)[:, :n]
    leaf = rng.integers(first_leaf, n, size=batch)
    order = np.argsort(rng.random((batch, n - 1)), axis=1) + 1  # shuffled non-root nodes = edges
    rows = np.arange(batch)[:, None]
    back = np.empty((batch, L + 1), dtype=np.int64)  # heap indices of v_0 = goal, …, v_L = root
    back[:, 0] = leaf
    for t in range(L):
        back[:, t + 1] = parent[back[:, t]]
    lab_back = labels[rows, back]  # (batch, L + 1) labels of the path
    edge_pos = np.empty((batch, n), dtype=np.int64)  # position of the edge whose child is heap node i
    edge_pos[rows, order] = np.arange(1, n)[None, :]
    T = {"backward": n + 2 + L, "forward": n + 2 + 2 * L, "direct": n + 3 + L}[task]
    tokens = np.empty((batch, T, 3), dtype=np.int64)
    tokens[:] = (EMPTY, EMPTY, PAD)
    cols = np.full((5, batch, T), -1, dtype=np.int64)  # targets, stage, next stage, key, marker
    tokens[:, 0] = (EMPTY, EMPTY, BOS)
    tokens[:, 1:n, 0] = labels[rows, parent[order]]
    tokens[:, 1:n, 1] = labels[rows, order]
    tokens[:, 1:n, 2] = EDGE
    tokens[:, n] = (END if task == "backward" else EMPTY, 0, ROOT)
    tokens[:, n, 1] = labels[:, 0]
    tokens[:, n + 1] = (END, 0, BWD)
    tokens[:, n + 1, 1] = lab_back[:, 0]

    def mark(pos, target, stage, nxt, key, marker=-1):
        for j, v in enumerate((target, stage, nxt, key, marker)):
            cols[j, :, pos] = v

    def put(pos, a, b, kind):
        tokens[:, pos, 0], tokens[:, pos, 1], tokens[:, pos, 2] = a, b, kind

    if task == "direct":
        put(n + 2, EMPTY, labels[:, 0], FWD)
        for j in range(L + 1):  # at fwd[j] = v_{L-j}: predict v_{L-j-1} (END at the goal)
            mark(n + 2 + j, lab_back[:, L - j - 1] if j < L else END, 1, -1, -1)
            if j < L:
                put(n + 3 + j, EMPTY, lab_back[:, L - j - 1], FWD)
    else:
        nxt = 0 if task == "forward" else -1
        for t in range(L):  # at v_t (position n+1+t): climb to v_{t+1}
            key = np.where(back[:, t] == 0, n, edge_pos[rows[:, 0], back[:, t]])
            mark(n + 1 + t, lab_back[:, t + 1], 0, nxt, key)
            put(n + 2 + t, lab_back[:, t], lab_back[:, t + 1], BWD)
        if task == "backward":
            mark(n + 1 + L, END, 0, -1, n)
        else:  # the switch at the root, then the descent
            mark(n + 1 + L, lab_back[:, L - 1], 0, 1, n + 1 + L, n)
            put(n + 2 + L, EMPTY, lab_back[:, L - 1], FWD)
            for j in range(L):  # at v_t, t = L-1-j (position n+2+L+j): predict v_{t-1} (END at the goal)
                t = L - 1 - j
                mark(n + 2 + L + j, lab_back[:, t - 1] if t > 0 else END, 1, 1, n + 1 + t)
                if t > 0:
                    put(n + 3 + L + j, EMPTY, lab_back[:, t - 1], FWD)
    as_t = torch.from_numpy
    return Encoded(as_t(tokens), *(as_t(c) for c in cols), torch.full((batch,), m), vocab, task)


# --------------------------------------------------------------------------------------------
# filter -> sort
#
# A second two-stage task: filter, then sort — in the same ``(a, b, kind)`` token format.
#
# The input is a list of items, each a distinct value ``x_i ∈ [0, N)`` with a colour
# ``c_i ∈ [0, C)``, and a query colour ``c*``. The answer is the values of colour ``c*`` in
# ascending order. Item tokens are ``(a = x_i, b = c_i, EDGE)``; the query token is
# ``(a = END, b = c*, ROOT)``. Two formats:
#
# - ``"cot"``: a filter stage lists the kept values, each written with the colour it was kept for
#   (tokens ``(x, c*, BWD)``), largest first — the order a one-layer lookup can produce without
#   positions: "the largest value of my colour below the one I just wrote"; END; then a STAGE
#   token ``(·, ·, FWD)`` and the sort stage writes the kept values ascending (tokens
#   ``(x, ·, FWD)``): "the smallest listed value above the one I just wrote"; END.
# - ``"direct"``: the model writes the ascending answer straight after the query token (tokens
#   ``(x, ·, FWD)``). After its first output, the token it reads no longer says which colour is
#   wanted: a one-layer model would have to fetch ``c*`` and use it in the same attention step.
# - ``"tagged"``: the control for the CoT format's one extra piece of information. Like
#   ``"direct"``, but each answer token carries the query colour as the CoT's filter tokens do
#   (tokens ``(x, c*, FWD)``; the decoder writes ``c*``, as it does in the filter stage): "the
#   smallest value of my colour above the one I just wrote" — one lookup, with no intermediate stage.
#

FILTER_SORT_TASKS = ("cot", "direct", "tagged")


@dataclass(frozen=True)
class FilterSortExample:
    """Items ``values[i]`` with ``colours[i]``; keep colour ``target``; the answer is :attr:`answer`."""

    values: tuple[int, ...]
    colours: tuple[int, ...]
    target: int

    @property
    def kept(self) -> list[int]:
        return [v for v, c in zip(self.values, self.colours) if c == self.target]

    @property
    def answer(self) -> list[int]:
        return sorted(self.kept)


def check_filter_sort_task(task) -> str:
    if task not in FILTER_SORT_TASKS:
        raise ValueError(f"task must be one of {FILTER_SORT_TASKS}; got {task!r}")
    return task


def filter_sort_sample(n: int, vocab: int, rng=None, *, n_items: tuple[int, int] = (4, 12), colours: int = 2
                       ) -> list[FilterSortExample]:
    """``n`` instances: ``n_items`` (inclusive range) distinct values from ``[0, vocab)``, colours
    uniform in ``[0, colours)``, a target colour held by at least one item. ``rng``: a NumPy
    Generator, an int seed or None."""
    check_int("n", n, 1)
    check_int("colours", colours, 2)
    lo, hi = n_items
    check_int("n_items[0]", lo, 1)
    if hi < lo:
        raise ValueError(f"n_items must be (low, high) with low <= high; got {n_items}")
    if hi > vocab:
        raise ValueError(f"n_items up to {hi} need that many distinct values; vocab={vocab} is too small")
    if colours > vocab:
        raise ValueError(f"colours={colours} must be <= vocab={vocab} (colours share the label slots)")
    g = _rng(rng)
    out = []
    for _ in range(n):
        k = int(g.integers(lo, hi + 1))
        values = g.choice(vocab, size=k, replace=False)
        cols = g.integers(0, colours, size=k)
        out.append(FilterSortExample(tuple(int(v) for v in values), tuple(int(c) for c in cols),
                                     int(cols[int(g.integers(k))])))
    return out


def filter_sort_prompt(ex: FilterSortExample, vocab: int) -> list[tuple[int, int, int]]:
    """The tokens before the first output: BOS, the items ``(x_i, c_i, EDGE)``, the query ``(END, c*, ROOT)``."""
    END, EMPTY = vocab, vocab + 1
    return [(EMPTY, EMPTY, BOS)] + [(v, c, EDGE) for v, c in zip(ex.values, ex.colours)] + [(END, ex.target, ROOT)]


def filter_sort_sequence(ex: FilterSortExample, vocab: int, task: str):
    """Tokens, targets, stages and lookup positions (the item or listed token holding the next value)."""
    check_filter_sort_task(task)
    END, EMPTY = vocab, vocab + 1
    toks = filter_sort_prompt(ex, vocab)
    item_pos = {v: 1 + i for i, v in enumerate(ex.values)}
    marks = {}
    listed = {}
    if task == "cot":
        for v in sorted(ex.kept, reverse=True):
            marks[len(toks) - 1] = (v, 0, item_pos[v])
            toks.append((v, ex.target, BWD))
            listed[v] = len(toks) - 1
        marks[len(toks) - 1] = (END, 0, -1)
        toks.append((EMPTY, EMPTY, FWD))
    for v in ex.answer:
        marks[len(toks) - 1] = (v, 1, listed.get(v, item_pos[v] if task == "tagged" else -1))
        toks.append((v, ex.target if task == "tagged" else EMPTY, FWD))
    marks[len(toks) - 1] = (END, 1, -1)
    cols = [[marks.get(i, (-1, -1, -1))[j] for i in range(len(toks))] for j in range(3)]
    none = [-1] * len(toks)
    return (toks, cols[0], cols[1], none, cols[2], none)  # no stage to predict, no marker


def filter_sort_encode(examples: list[FilterSortExample], vocab: int, task: str) -> Encoded:
    """Encode and pad filter → sort instances (``depth`` holds the number of kept items).

    The same batch as :func:`filter_sort_sequence` for each instance, padded, but built as arrays
    for the whole batch (a loop over item slots, not instances: ~0.5 ms for 128 instances, where
    one sequence at a time takes ~5 ms). With ``n`` items and ``n_kept`` kept ones, the query token
    sits at ``q = n + 1``; the CoT's filter stage fills ``q + 1 … q + n_kept``, its STAGE token
    ``q + n_kept + 1``; the answer follows the query (``"direct"``, ``"tagged"``) or the STAGE token.
    """
    check_filter_sort_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    END, EMPTY = vocab, vocab + 1
    B = len(examples)
    n = np.array([len(ex.values) for ex in examples])
    K = int(n.max())
    vals = np.zeros((B, K), dtype=np.int64)
    cols = np.full((B, K), -1, dtype=np.int64)  # -1 in unused slots: never the query colour
    for i, ex in enumerate(examples):
        vals[i, :n[i]] = ex.values
        cols[i, :n[i]] = ex.colours
    target = np.array([ex.target for ex in examples], dtype=np.int64)
    keep = cols == target[:, None]
    n_kept = keep.sum(axis=1)
    asc = np.argsort(np.where(keep, vals, vocab), axis=1, kind="stable")  # item slots, kept values ascending first
    cot, tagged = task == "cot", task == "tagged"
    q = n + 1
    length = q + 2 + 2 * n_kept if cot else q + 1 + n_kept
    T = int(length.max())
    tokens = np.empty((B, T, 3), dtype=np.int64)
    tokens[:] = (EMPTY, EMPTY, PAD)
    marks = np.full((5, B, T), -1, dtype=np.int64)  # targets, stage, next stage (none), key, marker (none)
    every = np.arange(B)

    def put(r, pos, a, b, kind):
        tokens[r, pos, 0], tokens[r, pos, 1], tokens[r, pos, 2] = a, b, kind

    def mark(r, pos, value, stage, key):
        marks[0, r, pos], marks[1, r, pos], marks[3, r, pos] = value, stage, key

    put(every, 0, EMPTY, EMPTY, BOS)
    for j in range(K):  # item j at position 1 + j
        r = every[j < n]
        put(r, 1 + j, vals[r, j], cols[r, j], EDGE)
    put(every, q, END, target, ROOT)
    start = q  # the token that predicts the answer's first value
    if cot:
        for j in range(K):  # the j-th largest kept value, listed at q + 1 + j; looked up at its item
            r = every[j < n_kept]
            slot = asc[r, n_kept[r] - 1 - j]
            mark(r, q[r] + j, vals[r, slot], 0, 1 + slot)
            put(r, q[r] + 1 + j, vals[r, slot], target[r], BWD)
        mark(every, q + n_kept, END, 0, -1)
        put(every, q + n_kept + 1, EMPTY, EMPTY, FWD)
        start = q + n_kept + 1
    for j in range(K):  # the j-th smallest kept value, written at start + 1 + j
        r = every[j < n_kept]
        slot = asc[r, j]
        key = (q[r] + n_kept[r] - j if cot  # where the filter stage listed it
               else 1 + slot if tagged else -1)  # its item; the direct format has no lookup key
        mark(r, start[r] + j, vals[r, slot], 1, key)
        put(r, start[r] + 1 + j, vals[r, slot], target[r] if tagged else EMPTY, FWD)
    mark(every, start + n_kept, END, 1, -1)
    as_t = torch.from_numpy
    return Encoded(as_t(tokens), *(as_t(c) for c in marks), torch.from_numpy(n_kept.astype(np.int64)), vocab, task)
