"""Rooted trees with distinct labels, their paths, and the path-finding examples built on them.

A :class:`Tree` is a root and a ``parent`` map (child label → parent label); labels are distinct
ints in ``[0, vocab)``. Generators draw the labels without replacement, so the same shape gets
fresh labels each time:

- :func:`perfect_tree` — every internal node has ``k`` children, all leaves at depth ``m``
  (the paper's training trees: perfect binary trees);
- :func:`random_tree` — each node gets 0–``c`` children, uniformly (the paper's test trees);
- :func:`sized_tree` — a random recursive tree of exactly ``n`` nodes (8–32 in the seed's exercise);
- :func:`spine_tree` — a root–leaf path of depth ``d`` with extra leaves hanging off it;
- :func:`chain_tree`, :func:`star_tree` — the two extremes (depth ``n − 1``; depth 1).

:func:`make_example` turns a tree into one task instance: the shuffled edge list (optionally
with distractor edges from another tree), the root, a goal leaf, and the exact backward
(goal → root) and forward (root → goal) paths.

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..checks import check_int


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
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
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
        shape, depth = [-1], [0]
        i = 0
        while i < len(shape) and len(shape) <= max_nodes:
            if depth[i] < max_depth:
                for _ in range(int(g.integers(0, c + 1))):
                    shape.append(i)
                    depth.append(depth[i] + 1)
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
