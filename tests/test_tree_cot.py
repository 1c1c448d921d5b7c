"""Chapter 1 helpers: tree generators, the token format, constructions, decoding, metrics, bad input, claims."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.results import output_root
from helpers.tree_cot import claims, train
from helpers.tree_cot.analysis import (
    block_summary,
    by_depth,
    evaluate,
    exact_path_accuracy,
    filter_sort_target,
    greedy_decode,
    head_usage,
    per_step_accuracy,
    role_assignment,
    roles,
    stage_switch_accuracy,
    target_sequence,
)
from helpers.tree_cot.data import (
    BOS,
    BWD,
    EDGE,
    FILTER_SORT_TASKS,
    FWD,
    PAD,
    ROOT,
    TASKS,
    FilterSortExample,
    Tree,
    _pad,
    backward_path,
    chain_tree,
    distractor_edges,
    encode,
    filter_sort_encode,
    filter_sort_prompt,
    filter_sort_sample,
    filter_sort_sequence,
    forward_path,
    make_example,
    perfect_batch,
    perfect_tree,
    prompt,
    random_tree,
    sequence,
    sized_tree,
    spine_tree,
    star_tree,
    step_token,
    target_steps,
)
from helpers.tree_cot.models import TheoryModel, TransformerConfig, TreeTransformer, ce_loss, construction, mse_loss

seeds = st.integers(0, 2**32 - 1)


def is_one_tree(tree: Tree) -> bool:
    """Independent check: n − 1 edges, every node reachable from the root by following children."""
    nodes = set(tree.nodes)
    if len(tree.edges) != len(nodes) - 1:
        return False
    reached, frontier = {tree.root}, [tree.root]
    while frontier:
        v = frontier.pop()
        for p, c in tree.edges:
            if p == v and c not in reached:
                reached.add(c)
                frontier.append(c)
    return reached == nodes


# --------------------------------------------------------------------------------------------
# generators


@settings(max_examples=60, deadline=None)
@given(seed=seeds, k=st.integers(1, 3), m=st.integers(1, 3))
def test_perfect_tree_shape(seed, k, m):
    t = perfect_tree(k, m, 64, seed)
    assert len(t) == sum(k ** i for i in range(m + 1))
    assert is_one_tree(t)
    assert all(t.depth(v) == m for v in t.leaves())
    assert all(len(t.children(v)) in (0, k) for v in t.nodes)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, c=st.integers(1, 4), depth=st.integers(1, 6))
def test_random_tree_properties(seed, c, depth):
    t = random_tree(c, 40, seed, max_depth=depth)
    assert is_one_tree(t)
    assert len(set(t.nodes)) == len(t) <= 40
    assert all(0 <= v < 40 for v in t.nodes)
    assert t.max_children() <= c and t.height() <= depth


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(2, 32), n_distractors=st.integers(0, 6))
def test_example_path_is_a_real_root_goal_path(seed, n, n_distractors):
    rng = np.random.default_rng(seed)
    t = sized_tree(n, 48, rng, c=3)
    assert len(t) == n and is_one_tree(t)
    ex = make_example(t, rng, n_distractors=n_distractors, vocab=48)
    back = ex.backward
    assert back[0] == ex.goal and back[-1] == t.root and ex.goal in t.leaves()
    assert all((b, a) in set(t.edges) for a, b in zip(back, back[1:]))  # each step is an edge, child → parent
    assert ex.forward == back[::-1]
    assert sorted(ex.edges) == sorted(t.edges + ex.distractors)
    on_path = set(back)
    assert all(p not in on_path and c not in on_path for p, c in ex.distractors)
    assert len(ex.distractors) == n_distractors


def test_spine_chain_star_shapes():
    s = spine_tree(7, 32, 0)
    assert is_one_tree(s) and max(s.depth(v) for v in s.leaves()) == 7
    c = chain_tree(5, 10, 0)
    assert c.height() == 4 and len(c.leaves()) == 1
    st_ = star_tree(6, 10, 0)
    assert st_.height() == 1 and len(st_.leaves()) == 5


def test_paths_on_a_hand_built_tree():
    #      4
    #     / \
    #    2   7
    #   / \
    #  1   9
    #  |
    #  8
    t = Tree(4, {2: 4, 7: 4, 1: 2, 9: 2, 8: 1})
    assert backward_path(t, 8) == [8, 1, 2, 4]
    assert forward_path(t, 8) == [4, 2, 1, 8]
    assert backward_path(t, 7) == [7, 4]
    assert sorted(t.leaves()) == [7, 8, 9]


# --------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("call, match", [
    (lambda: Tree(0, {}), "at least 2 nodes"),
    (lambda: sized_tree(1, 10), "n must be an int >= 2"),
    (lambda: backward_path(Tree(4, {2: 4, 1: 2}), 2), "not a leaf"),
    (lambda: backward_path(Tree(4, {2: 4, 1: 2}), 4), "not a non-root node"),
    (lambda: perfect_tree(2, 4, 20), "31 nodes, more than vocab=20"),
    (lambda: sized_tree(12, 10), "vocab=10 is too small"),
    (lambda: random_tree(3, 10, 0, max_depth=2, min_depth=3), "min_depth=3 must be <= max_depth=2"),
    (lambda: random_tree(1, 50, 0, max_depth=9, min_depth=9, max_nodes=5), "needs 10 nodes"),
    (lambda: spine_tree(12, 10), "needs 13 nodes"),
    (lambda: perfect_tree(0, 3, 10), "k must be an int >= 1"),
    (lambda: Tree(1, {2: 3, 3: 2}), "does not form one tree"),
])
def test_bad_tree_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_format_input_raises():
    ex = make_example(perfect_tree(2, 2, 7, 0), 0)
    with pytest.raises(ValueError, match="task must be one of"):
        encode([ex], 7, "sideways")
    with pytest.raises(ValueError, match="vocab=5 is too small"):
        encode([ex], 5, "backward")
    with pytest.raises(ValueError, match="n_heads must be between 1 and 4"):
        TheoryModel(7, 5)
    with pytest.raises(ValueError, match="stage must be 0"):
        step_token(1, 2, 2, 7)
    with pytest.raises(ValueError, match="name must be one of"):
        TheoryModel(7, 1).slot("c")
    with pytest.raises(ValueError, match="head must be in"):
        TheoryModel(7, 1).block(1, "b", "b")
    with pytest.raises(ValueError, match="divisible by n_heads"):
        TransformerConfig(10, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match="vocab is needed"):
        make_example(perfect_tree(2, 2, 7, 0), 0, n_distractors=2)
    with pytest.raises(ValueError, match="too small for 30 distractor edges"):
        distractor_edges(perfect_tree(2, 2, 7, 0), ex.goal, 30, 20, 0)


# --------------------------------------------------------------------------------------------
# the token format


def test_sequence_of_a_hand_worked_example():
    # root 4 → 2 → 1, goal 1; edges listed (4,2), (2,1); vocab N = 5: END = 5, empty = 6
    toks, tgt, stage, nxt, key, marker = sequence([(4, 2), (2, 1)], 4, [1, 2, 4], 5, "forward")
    assert toks == [(6, 6, BOS), (4, 2, EDGE), (2, 1, EDGE), (6, 4, ROOT), (5, 1, BWD), (1, 2, BWD), (2, 4, BWD),
                    (6, 2, FWD), (6, 1, FWD)]
    # climb 2, 4; at the root turn to 2 (the switch); descend 1, END
    assert tgt == [-1, -1, -1, -1, 2, 4, 2, 1, 5]
    assert stage == [-1, -1, -1, -1, 0, 0, 0, 1, 1]
    assert nxt == [-1, -1, -1, -1, 0, 0, 1, 1, 1]  # the stage signal turns at the root's prediction
    # climbing reads the edge whose child is the current node; at the root, the root's own
    # chain-of-thought token; descending, the chain-of-thought token whose slot b is the current
    # node (GOAL at the goal)
    assert key == [-1, -1, -1, -1, 2, 1, 6, 5, 4]
    assert marker == [-1, -1, -1, -1, -1, -1, 3, -1, -1]  # the ROOT token, at the switch only
    toks_b, tgt_b, _, nxt_b, key_b, _ = sequence([(4, 2), (2, 1)], 4, [1, 2, 4], 5, "backward")
    assert toks_b[3] == (5, 4, ROOT) and tgt_b[-3:] == [2, 4, 5] and key_b[-1] == 3  # END read off ROOT
    assert set(nxt_b) == {-1}  # no stage to predict
    toks_d, tgt_d, _, _, key_d, _ = sequence([(4, 2), (2, 1)], 4, [1, 2, 4], 5, "direct")
    assert toks_d[-3:] == [(6, 4, FWD), (6, 2, FWD), (6, 1, FWD)] and tgt_d[-3:] == [2, 1, 5]
    assert key_d[-3:] == [-1, -1, -1]
    assert target_steps([1, 2, 4], 5, "forward") == [(2, 0), (4, 0), (2, 1), (1, 1), (5, 1)]


def _loop_perfect_batch(k, m, vocab, batch, seed, task):
    """The same draws as perfect_batch, encoded example by example through ``sequence``."""
    rng = np.random.default_rng(seed)
    n = sum(k ** i for i in range(m + 1))
    parent = [-1] + [(i - 1) // k for i in range(1, n)]
    labels = np.argsort(rng.random((batch, vocab)), axis=1)[:, :n]
    leaf = rng.integers(n - k ** m, n, size=batch)
    order = np.argsort(rng.random((batch, n - 1)), axis=1) + 1
    rows = []
    for i in range(batch):
        lab = labels[i]
        edges = [(int(lab[parent[j]]), int(lab[j])) for j in order[i]]
        back, j = [int(lab[leaf[i]])], leaf[i]
        while j:
            j = parent[j]
            back.append(int(lab[j]))
        rows.append(sequence(edges, int(lab[0]), back, vocab, task))
    return _pad(rows, [m] * batch, vocab, task)


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("k, m, vocab", [(2, 3, 25), (3, 2, 20), (1, 4, 6)])
def test_perfect_batch_equals_the_example_by_example_encoding(task, k, m, vocab):
    b = perfect_batch(k, m, vocab, 32, np.random.default_rng(7), task)
    ref = _loop_perfect_batch(k, m, vocab, 32, 7, task)
    for f in ("tokens", "targets", "stage", "next_stage", "key", "marker", "depth"):
        assert torch.equal(getattr(b, f), getattr(ref, f)), f


def test_perfect_batch_matches_the_format():
    b = perfect_batch(2, 3, 20, 16, np.random.default_rng(0), "forward")
    m = construction(20, "forward")
    assert per_step_accuracy(m, b) == {"all": 1.0, "backward": 1.0, "forward": 1.0, "stage": 1.0, "switch": 1.0}
    assert (b.depth == 3).all() and ((b.targets >= 0).sum(1) == 2 * 3 + 1).all()
    assert ((b.marker >= 0).sum(1) == 1).all()


# --------------------------------------------------------------------------------------------
# constructions, decoding, metrics


@pytest.mark.parametrize("task", ["backward", "forward"])
def test_constructions_solve_unseen_trees_exactly(task):
    rng = np.random.default_rng(1)
    exs = [make_example(random_tree(3, 30, rng, max_depth=7), rng) for _ in range(100)]
    exs += [make_example(spine_tree(12, 30, rng), rng, goal=None) for _ in range(20)]
    exs += [make_example(random_tree(3, 30, rng, max_depth=4, max_nodes=16), rng, n_distractors=6, vocab=30)
            for _ in range(30)]
    m = construction(30, task)
    r = evaluate(m, exs, 30, task)
    assert r["exact"] == 1.0 and r["per_step"] == 1.0
    if task == "forward":
        assert r["switch"] == 1.0
    assert mse_loss(m, encode(exs, 30, task)).item() < 1e-6


def test_untrained_theory_model_fails():
    rng = np.random.default_rng(2)
    exs = [make_example(random_tree(3, 30, rng, max_depth=5, min_depth=3), rng) for _ in range(50)]
    assert evaluate(TheoryModel(30, 1), exs, 30, "backward")["exact"] == 0.0
    r = evaluate(TheoryModel(30, 2), exs, 30, "forward")
    assert r["exact"] == 0.0 and r["switch"] == 0.0


class Scripted(torch.nn.Module):
    """A fake model that answers a fixed script of (node, stage) predictions, to check decoding."""

    stage_threshold = 0.5

    def __init__(self, vocab, script):
        super().__init__()
        self.vocab, self.script, self.calls = vocab, script, 0
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.seen = []

    def forward(self, tokens):
        self.seen.append(tokens.clone())
        node, stage = self.script[min(self.calls, len(self.script) - 1)]
        out = torch.zeros(tokens.shape[0], tokens.shape[1], self.vocab + 2)
        out[:, :, node] = 1
        out[:, :, -1] = stage
        self.calls += 1
        return out


class Teacher(torch.nn.Module):
    """A fake theory-style model for one encoded batch: the true next node while climbing (stage 0),
    a wrong one while descending (stage 1), and stage logit 0 ("backward") everywhere."""

    stage_threshold = 0.5

    def __init__(self, batch, vocab):
        super().__init__()
        self.vocab, self.batch = vocab, batch
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        out = torch.zeros(tokens.shape[0], tokens.shape[1], self.vocab + 2)
        t, stage = self.batch.targets, self.batch.stage
        right = (t >= 0) & (stage == 0)
        out[right.nonzero(as_tuple=True) + (t[right],)] = 1.0
        wrong = (t >= 0) & (stage == 1)
        out[wrong.nonzero(as_tuple=True) + ((t[wrong] + 1) % (self.vocab + 1),)] = 1.0
        return out


def test_per_step_accuracy_counts_each_stage_from_the_batch():
    b = perfect_batch(2, 3, 20, 16, np.random.default_rng(0), "forward")
    acc = per_step_accuracy(Teacher(b, 20), b)
    where = b.targets >= 0
    n0, n1 = int(((b.stage == 0) & where).sum()), int(((b.stage == 1) & where).sum())
    has = b.next_stage >= 0
    assert n0 > 0 and n1 > 0
    assert acc["backward"] == 1.0 and acc["forward"] == 0.0 and acc["switch"] == 0.0
    assert acc["all"] == pytest.approx(n0 / (n0 + n1))
    assert acc["stage"] == pytest.approx(float((b.next_stage[has] == 0).float().mean()))


def test_losses_of_a_zero_output_model_by_counting():
    b = perfect_batch(2, 3, 20, 16, np.random.default_rng(1), "forward")
    where = b.targets >= 0
    n, n_fwd, n_stage = int(where.sum()), int((b.next_stage == 1).sum()), int((b.next_stage >= 0).sum())

    class Zero(torch.nn.Module):
        vocab = 20

        def forward(self, tokens):
            return torch.zeros(tokens.shape[0], tokens.shape[1], 22)

    # squared loss: ||0 − e_y||² = 1 per prediction, plus (0 − 1)² for every next token in the forward stage
    assert mse_loss(Zero(), b).item() == pytest.approx(1 + n_fwd / n)
    # cross-entropy: log(N + 1) per node; binary cross-entropy log 2 per stage label, summed and divided by n
    assert ce_loss(Zero(), b).item() == pytest.approx(math.log(21) + math.log(2) * n_stage / n)


def test_greedy_decode_appends_only_what_the_model_predicted():
    t = Tree(4, {2: 4, 1: 2})
    ex = make_example(t, 0, goal=1)
    END = 5
    # a perfect script for the forward task: climb 2, 4; switch at the root to 2; descend 1, END
    script = [(2, 0), (4, 0), (2, 1), (1, 1), (END, 1)]
    model = Scripted(5, script)
    emitted = greedy_decode(model, [ex], 5, "forward")
    assert emitted == [script] == [target_sequence(ex, 5, "forward")]
    assert exact_path_accuracy(emitted, [ex], 5, "forward").tolist() == [True]
    assert stage_switch_accuracy(emitted, [ex]).tolist() == [True]
    # the last sequence the model saw is the prompt plus exactly the tokens of its own predictions
    last = [tuple(x) for x in model.seen[-1][0].tolist()]
    assert last == prompt(ex.edges, 4, 1, 5, "forward") + [(1, 2, BWD), (2, 4, BWD), (6, 2, FWD), (6, 1, FWD)]


def test_a_model_that_never_signals_the_switch_never_switches():
    t = Tree(4, {2: 4, 1: 2})
    ex = make_example(t, 0, goal=1)
    # the right nodes, but the stage signal stays "backward": decoding never turns forward
    model = Scripted(5, [(2, 0), (4, 0), (2, 0), (1, 0), (5, 0)])
    emitted = greedy_decode(model, [ex], 5, "forward")
    assert [s for _, s in emitted[0]] == [0] * 5
    assert not any(kind == FWD for *_, kind in model.seen[-1][0].tolist())
    assert stage_switch_accuracy(emitted, [ex]).tolist() == [False]
    assert exact_path_accuracy(emitted, [ex], 5, "forward").tolist() == [False]
    # switching one step early is also wrong
    early = Scripted(5, [(2, 0), (4, 1), (2, 1), (1, 1), (5, 1)])
    assert not stage_switch_accuracy(greedy_decode(early, [ex], 5, "forward"), [ex])[0]


def test_greedy_decode_bounds_and_one_stage_tasks():
    t = Tree(4, {2: 4, 1: 2})
    ex = make_example(t, 0, goal=1)
    # a model that never says END stops at max_steps and is wrong
    emitted = greedy_decode(Scripted(5, [(2, 1)]), [ex], 5, "backward", max_steps=7)
    assert emitted == [[(2, 0)] * 7] and exact_path_accuracy(emitted, [ex], 5, "backward").tolist() == [False]
    # in the one-stage tasks the model's stage output is not read
    assert greedy_decode(Scripted(5, [(2, 0), (1, 0), (5, 0)]), [ex], 5, "direct") == [[(2, 1), (1, 1), (5, 1)]]
    # a wrong node mid-way makes the path wrong even if it ends correctly
    assert not exact_path_accuracy([[(2, 0), (3, 0), (5, 0)]], [ex], 5, "backward")[0]


def test_decoding_and_training_arguments_are_checked():
    t = Tree(4, {2: 4, 1: 2})
    ex = make_example(t, 0, goal=1)
    with pytest.raises(ValueError, match="vocab=6 does not match the model's vocab=5"):
        greedy_decode(Scripted(5, [(2, 0)]), [ex], 6, "backward")
    with pytest.raises(ValueError, match="batch_size must be an int >= 1"):
        greedy_decode(Scripted(5, [(2, 0)]), [ex], 5, "backward", batch_size=0)
    with pytest.raises(ValueError, match="max_steps must be an int >= 1"):
        greedy_decode(Scripted(5, [(2, 0)]), [ex], 5, "backward", max_steps=0)
    # sequence wants the goal → root path: the forward path (root first) is refused, not encoded upside down
    with pytest.raises(ValueError, match="back must be the goal → root path"):
        sequence(ex.edges, ex.root, ex.forward, 5, "forward")
    with pytest.raises(ValueError, match=r"labels in \[0, 3\)"):
        sequence(ex.edges, ex.root, ex.backward, 3, "backward")
    for kw, match in ((dict(n_checkpoints=0), "n_checkpoints must be an int >= 1"),
                      (dict(steps=0), "steps must be an int >= 1"), (dict(snapshots=0), "snapshots must be"),
                      (dict(curve_n=-5), "curve_n must be"), (dict(test=[]), "test must be None")):
        with pytest.raises(ValueError, match=match):
            train.train_theory("backward", **{"steps": 2, **kw})
    with pytest.raises(ValueError, match=r"attention_example must be None or an index into test, an int in \[0, 1\)"):
        train.train_transformer("forward", steps=2, test=[ex], attention_example=1)
    with pytest.raises(ValueError, match="n_checkpoints must be"):
        train.train_filter_sort("cot", steps=2, n_checkpoints=-1)


def test_a_resumed_theory_run_is_the_run_from_scratch():
    V = train.THEORY["forward"].vocab
    test = train.test_trees(24, V)
    kw = dict(batch=16, test=test, n_checkpoints=4, seed=3, init_std=0.1, progress=False, curve_n=16)
    short = train.train_theory("forward", steps=20, **kw)
    whole_model, whole = train.train_theory("forward", steps=40, **kw)
    model, log = train.train_theory("forward", steps=40, resume=short, **kw)
    assert torch.equal(model.W, whole_model.W)
    assert {k: v for k, v in log.items() if k != "H"} == {k: v for k, v in whole.items() if k != "H"}
    assert sorted(log["H"]) == sorted(whole["H"])
    assert all(np.array_equal(log["H"][k], whole["H"][k]) for k in whole["H"])
    assert not torch.equal(short[0].W, model.W)   # trained on a copy: the short run's model is untouched
    for change, match in ((dict(seed=4), "resume's run has seed=3, this one seed=4"),
                          (dict(batch=8), "resume's run has batch=16"),
                          (dict(test=train.test_trees(24, V, seed=99)), "evaluated on other test trees"),
                          (dict(n_checkpoints=3), "are not among the resumed run's"),
                          (dict(steps=20), "steps must be > the resumed run's 20 steps")):
        with pytest.raises(ValueError, match=match):
            train.train_theory("forward", **{"steps": 40, **kw, **change, "resume": short})
    few = train.train_theory("forward", steps=20, snapshots=1, **kw)   # H kept at steps 0 and 20 only
    with pytest.raises(ValueError, match=r"H snapshots \[10\] of this run are not among the resumed run's"):
        train.train_theory("forward", steps=40, resume=few, **kw)
    with pytest.raises(ValueError, match="not a 'backward' theory model"):
        train.train_theory("backward", steps=40, **{**kw, "test": None}, resume=short)
    with pytest.raises(TypeError, match=r"resume must be the \(model, log\)"):
        train.train_theory("forward", steps=40, **kw, resume=short[1])


def test_random_child_baseline_is_what_random_descent_scores():
    from helpers.tree_cot.analysis import random_child_baseline
    # root 0 with children 1, 2, 3; node 1 with children 4, 5; node 2 with one child 6
    t = Tree(0, {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2})
    exs = [make_example(t, 0, goal=g) for g in (4, 6, 3)]
    base = random_child_baseline(exs)
    assert base == pytest.approx({2: (1 / 6 + 1 / 3) / 2, 1: 1 / 3})
    # the same by simulation: descend from the root to a random child until a leaf
    rng = np.random.default_rng(0)

    def descend():
        v = t.root
        while t.children(v):
            kids = t.children(v)
            v = kids[rng.integers(len(kids))]
        return v
    reached = [descend() for _ in range(20_000)]
    assert np.mean([v == 4 for v in reached]) == pytest.approx(1 / 6, abs=0.01)
    assert np.mean([v == 6 for v in reached]) == pytest.approx(1 / 3, abs=0.01)
    # a chain leaves no choice
    assert random_child_baseline([make_example(Tree(4, {2: 4, 1: 2}), 0, goal=1)]) == {2: 1.0}


def test_by_depth_by_hand():
    assert by_depth(np.array([1, 0, 1, 1]), [1, 1, 2, 3]) == {1: 0.5, 2: 1.0, 3: 1.0}
    with pytest.raises(ValueError, match="same length"):
        by_depth(np.array([1, 0]), [1])


def test_head_usage_and_roles_of_the_forward_construction():
    rng = np.random.default_rng(3)
    exs = [make_example(random_tree(3, 30, rng, max_depth=5, min_depth=2), rng) for _ in range(40)]
    m, b = construction(30, "forward"), encode(exs, 30, "forward")
    u = head_usage(m, b)
    assert u["backward"]["lookup"][0] > 0.99 and u["backward"]["bos"][1] > 0.99  # head 0 climbs, head 1 parks
    assert u["switch"]["lookup"][0] > 0.99 and u["switch"]["root"][1] > 0.99    # head 1 finds the root
    assert u["forward"]["lookup"][0] > 0.99 and u["forward"]["stage_bit"][1] > 0.99
    r = roles(m, b)
    np.testing.assert_allclose(r, [[1, 0], [0, 1]], atol=1e-3)
    a = role_assignment(r)
    assert (a["traverse_head"], a["control_head"]) == (0, 1) and a["strength"] > 0.99
    # swap the heads: the assignment follows
    with torch.no_grad():
        m.W.copy_(m.W.flip(0))
    assert role_assignment(roles(m, b))["traverse_head"] == 1


def test_roles_read_each_heads_share_of_the_prediction():
    # the prediction is the sum of the heads' shares: the node column of roles sums to the
    # model's mean score on the right node
    rng = np.random.default_rng(4)
    exs = [make_example(random_tree(3, 20, rng, max_depth=4, min_depth=2), rng) for _ in range(20)]
    m = TheoryModel(20, 2, init_std=0.5, generator=torch.Generator().manual_seed(0))
    b = encode(exs, 20, "forward")
    y = m(b.tokens)
    where = b.targets >= 0
    node_score = y[where].gather(1, b.targets[where][:, None]).mean().item()
    fwd = b.next_stage == 1
    assert roles(m, b)[:, 0].sum() == pytest.approx(node_score, rel=1e-5)
    assert roles(m, b)[:, 1].sum() == pytest.approx(y[..., -1][fwd].mean().item(), rel=1e-5)


def test_role_assignment_by_hand_and_bad_input():
    a = role_assignment([[0.5, 0.5], [0.5, 0.5]])
    assert a["strength"] == 0.0
    a = role_assignment([[0.2, 0.9], [0.8, 0.1]])
    assert (a["traverse_head"], a["control_head"]) == (1, 0) and a["strength"] == pytest.approx(0.6)
    with pytest.raises(ValueError, match="roles must have shape"):
        role_assignment([[1.0, 0.0]])


def test_zero_init_heads_stay_identical_and_random_init_differs():
    from helpers.tree_cot.train import theory_batch
    for std, identical in ((0.0, True), (0.1, False)):
        m = TheoryModel(25, 2, init_std=std, generator=torch.Generator().manual_seed(1))
        opt = torch.optim.SGD(m.parameters(), lr=0.2)
        for s in range(5):
            loss = mse_loss(m, theory_batch("forward", 32, np.random.default_rng(s)))
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert ((m.W[0] - m.W[1]).abs().max().item() == 0.0) == identical
    with pytest.raises(ValueError, match="init_std"):
        TheoryModel(10, 2, init_std=-1.0)
    with pytest.raises(ValueError, match="n_heads"):
        TheoryModel(10, 5)


def test_block_summary_reads_the_construction():
    m = construction(12, "forward", lam=20.0)
    bs = block_summary(m)
    assert bs["child_is_me"] == [20.0, 20.0] and bs["parent_is_me"] == [0.0, 0.0]
    # rows: key kinds edge, root, bwd, fwd, bos; columns: query kinds bwd, fwd
    assert bs["kind"][0][0] == [10.0, -20.0]   # head 0 prefers edges when climbing, avoids them descending
    assert bs["kind"][1][4] == [10.0, 0.0]     # head 1 parks on BOS when climbing


# --------------------------------------------------------------------------------------------
# training


def test_theory_model_learns_backward_from_zero():
    torch.manual_seed(0)
    m = TheoryModel(15, 1)
    opt = torch.optim.SGD(m.parameters(), lr=1.0)
    for s in range(300):
        loss = mse_loss(m, perfect_batch(2, 3, 15, 64, np.random.default_rng(s), "backward"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    rng = np.random.default_rng(99)
    exs = [make_example(random_tree(3, 15, rng, max_depth=4), rng) for _ in range(100)]
    assert evaluate(m, exs, 15, "backward")["exact"] >= 0.95
    H = m.H.detach()
    assert H.diag().mean() > 5 * H[~torch.eye(15, dtype=bool)].abs().max()


def test_transformer_shapes_and_loss():
    cfg = TransformerConfig(12, d_model=16, n_heads=2, n_layers=2, d_mlp=32)
    m = TreeTransformer(cfg)
    b = perfect_batch(2, 2, 12, 4, np.random.default_rng(0), "forward")
    logits, att = m(b.tokens, return_attention=True)
    assert logits.shape == (4, b.tokens.shape[1], 14)  # 12 labels, END, the stage logit
    assert len(att) == 2 and att[0].shape == (4, 2, b.tokens.shape[1], b.tokens.shape[1])
    assert torch.allclose(att[0].sum(-1), torch.ones(4, 2, b.tokens.shape[1]))
    assert torch.isfinite(ce_loss(m, b))
    with pytest.raises(ValueError, match="shape"):
        m(b.tokens[..., :2])


# --------------------------------------------------------------------------------------------
# filter -> sort


def test_filter_sort_format_by_hand():
    ex = FilterSortExample(values=(5, 1, 3, 0), colours=(1, 0, 1, 1), target=1)
    assert ex.answer == [0, 3, 5]
    assert filter_sort_target(ex, 8, "cot") == [5, 3, 0, 8, 0, 3, 5, 8]
    assert filter_sort_target(ex, 8, "direct") == [0, 3, 5, 8]
    toks, tgt, stage, _, key, _ = filter_sort_sequence(ex, 8, "cot")
    assert toks[6:10] == [(5, 1, BWD), (3, 1, BWD), (0, 1, BWD), (9, 9, FWD)]
    assert tgt[5:13] == [5, 3, 0, 8, 0, 3, 5, 8] and key[5] == 1  # the item holding 5
    enc = filter_sort_encode([ex], 8, "direct")
    assert enc.targets[0][enc.targets[0] >= 0].tolist() == [0, 3, 5, 8]
    # the control: direct, but every answer token carries the query colour, as the CoT's filter tokens do
    assert filter_sort_target(ex, 8, "tagged") == [0, 3, 5, 8]
    toks, tgt, *_ = filter_sort_sequence(ex, 8, "tagged")
    assert toks[5:] == [(8, 1, ROOT), (0, 1, FWD), (3, 1, FWD), (5, 1, FWD)] and tgt[5:9] == [0, 3, 5, 8]
    assert filter_sort_sequence(ex, 8, "direct")[0][6:] == [(0, 9, FWD), (3, 9, FWD), (5, 9, FWD)]


@pytest.mark.parametrize("task", ["cot", "direct", "tagged"])
def test_filter_sort_encode_matches_one_sequence_at_a_time(task):
    """The batched encoder against :func:`filter_sort_sequence` per instance, padded by hand:
    mixed item counts (one to all values), several colours, instances that keep one or every item."""
    for seed, (V, n_items, colours) in enumerate([(32, (4, 12), 2), (20, (1, 20), 5), (8, (1, 3), 3)] * 4):
        exs = filter_sort_sample(1 + 7 * seed, V, seed, n_items=n_items, colours=colours)
        enc = filter_sort_encode(exs, V, task)
        T = max(len(filter_sort_sequence(ex, V, task)[0]) for ex in exs)
        assert enc.tokens.shape == (len(exs), T, 3) and enc.task == task and enc.vocab == V
        assert enc.depth.tolist() == [len(ex.kept) for ex in exs]
        for i, ex in enumerate(exs):
            toks, *cols = filter_sort_sequence(ex, V, task)
            pad = T - len(toks)
            assert enc.tokens[i].tolist() == [list(t) for t in toks] + [[V + 1, V + 1, PAD]] * pad
            for name, col in zip(("targets", "stage", "next_stage", "key", "marker"), cols):
                assert getattr(enc, name)[i].tolist() == list(col) + [-1] * pad, (name, i)


def test_filter_sort_decoder_writes_only_values_and_the_formats_colour(monkeypatch):
    from helpers.tree_cot import analysis
    ex = FilterSortExample(values=(5, 1, 3, 0), colours=(1, 0, 1, 1), target=1)
    real_loop = analysis.greedy_loop
    for task in FILTER_SORT_TASKS:
        target, seen = filter_sort_target(ex, 8, task), []

        def oracle(model, live, vocab, device):   # a perfect model: the target's next value
            seen.append(list(live[0]))
            return [target[len(seen) - 1]]
        monkeypatch.setattr(analysis, "greedy_loop",
                            lambda *a, **k: real_loop(*a, **k, predict=oracle))  # noqa: B023
        assert analysis.filter_sort_decode(torch.nn.Linear(1, 1), [ex], 8, task) == [target]
        written = seen[-1][len(filter_sort_prompt(ex, 8)):]
        colour = {"cot": [1, 1, 1, 9, 9, 9, 9], "direct": [9, 9, 9], "tagged": [1, 1, 1]}[task]
        assert [b for _, b, _ in written] == colour, (task, written)


@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_filter_sort_samples(seed):
    for ex in filter_sort_sample(5, 20, seed, n_items=(2, 9), colours=3):
        assert len(set(ex.values)) == len(ex.values) and 2 <= len(ex.values) <= 9
        assert ex.kept and ex.target in ex.colours
        assert all(0 <= v < 20 for v in ex.values) and all(0 <= c < 3 for c in ex.colours)
        # the answer by brute force: every value in [0, vocab), in order, kept if its item has the target colour
        assert ex.answer == [v for v in range(20) if v in ex.values and ex.colours[ex.values.index(v)] == ex.target]


def test_filter_sort_bad_input():
    with pytest.raises(ValueError, match="vocab=5 is too small"):
        filter_sort_sample(3, 5, 0, n_items=(2, 8))
    with pytest.raises(ValueError, match="colours must be an int >= 2"):
        filter_sort_sample(3, 20, 0, colours=1)
    with pytest.raises(ValueError, match="task must be one of"):
        filter_sort_encode(filter_sort_sample(1, 20, 0), 20, "backward")


# --------------------------------------------------------------------------------------------
# exercise checkers and the full-run pipeline


def test_exercise_checkers_accept_the_constructions_and_explain_mistakes():
    from helpers.tree_cot.exercises import ExerciseError, check_backward_construction, check_forward_head1
    assert check_backward_construction(lambda V, lam: construction(V, "backward").W[0]).startswith("Correct")
    assert check_forward_head1(lambda V, lam: construction(V, "forward").W[1]).startswith("Correct")

    def diagonal_only(slots):  # a W with λ·I on one node block and nothing else
        def make(V, lam):
            m = TheoryModel(V, 1)
            W = torch.zeros(m.D, m.D)
            W[m.slot(slots[0]), m.slot(slots[1])][:V, :V] = lam * torch.eye(V)
            return W
        return make

    with pytest.raises(ExerciseError, match="wrong slots"):
        check_backward_construction(diagonal_only("aa"))
    with pytest.raises(ExerciseError, match=r"shape \(D, D\)"):
        check_backward_construction(lambda V, lam: torch.zeros(3, 3))
    with pytest.raises(ExerciseError, match="prefer edges"):
        check_backward_construction(diagonal_only("bb"))

    def no_parking(V, lam):
        W = construction(V, "forward").W[1].clone()
        W[-5:, -5:][ROOT, BWD] = 2 * lam  # the ROOT marker wins over BOS while climbing
        return W

    with pytest.raises(ExerciseError, match="Park it on BOS"):
        check_forward_head1(no_parking)

    def no_root(V, lam):
        W = construction(V, "forward").W[1].clone()
        W[-5:, -5:][ROOT, BWD] = -2 * lam  # the ROOT token is never found
        return W

    with pytest.raises(ExerciseError, match="does not switch at the root"):
        check_forward_head1(no_root)


def test_exercise_error_is_the_books_one():
    import helpers
    from helpers.tree_cot.exercises import ExerciseError
    assert ExerciseError is helpers.ExerciseError


def test_full_run_pipeline_in_smoke_mode(monkeypatch):
    from helpers.tree_cot.__main__ import main
    monkeypatch.setenv("BOOK_MODE", "smoke")
    assert main(["--mode", "smoke", "--no-progress"]) == 0
    out = train.store(output_root("smoke"))
    assert out.dir.parts[-3:] == (".scratch", "smoke", "tree_cot")
    table = out.load_claims()
    assert len(table) == len(CLAIM_IDS) and all(isinstance(c.holds, bool) for c in table.claims)
    assert {c.kind for c in table.claims} == {"paper", "extension"}
    assert out.read_run()["mode"] == "smoke"
    metrics = out.load_json("metrics.json")
    assert set(metrics) >= {"theory", "standard", "robustness", "filter_sort", "seconds"}
    assert any(k.startswith("std_cot_att_") for k in out.load_arrays("arrays.npz"))
    # the stored metrics alone give the same claims as the run did
    assert [c.to_dict() for c in claims.evaluate(metrics)] == [c.to_dict() for c in table.claims]
    assert main(["--mode", "smoke", "--claims-only"]) == 0


def test_sizes_per_mode():
    for mode in ("smoke", "default", "full"):
        s = train.sizes(mode)
        assert isinstance(s, train.Sizes)
        stored = s.as_metrics()
        assert stored["theory_steps"] == {"backward": s.theory_steps("backward"), "forward": s.theory_steps("forward")}
        assert stored["std_steps"] == {"forward": s.cot_steps, "direct": s.direct_steps}
        assert stored["std_seeds"] == list(s.std_seeds) and stored["broken_seeds"] == list(s.broken_seeds)
        assert stored["fs_test"] == s.fs_test and 0 in s.seeds
    assert len(train.sizes("full").broken_seeds) >= 5 and len(train.sizes("full").std_seeds) >= 5
    with pytest.raises(ValueError, match="broken_seeds must hold"):
        train.Sizes(1, 1, 1, 1, 1, (), 2, 1, 1, 1, (0,), 1, (1,), 1, 1)
    with pytest.raises(ValueError, match="task must be one of"):
        train.sizes("smoke").theory_steps("direct")
    with pytest.raises(ValueError, match="mode must be one of"):
        train.sizes("huge")


def test_committed_metrics_hold_every_number_the_claims_need():
    store = train.store()
    if not store.exists("metrics.json"):
        pytest.skip("no committed results")
    judged = claims.evaluate(store.load_json("metrics.json"))
    assert [c.id for c in judged] == [record["id"] for record in store.load_json("claims.json")]


# --------------------------------------------------------------------------------------------
# claims: each flips on its own number


def planted_metrics() -> dict:
    """A metrics dict (the layout of metrics.json, keys as JSON strings) under which every claim holds."""
    usage = {"backward": {"lookup": [0.9, 0.1], "bos": [0.0, 0.5]},
             "forward": {"lookup": [0.1, 0.8], "bos": [0.7, 0.0]}}
    def robust():  # a fresh dict each time (a deep copy keeps shared objects shared)
        return {"depth": {"1": 1.0, "10": 0.99}, "branching": {"1": 1.0, "6": 0.98},
                "size": {"8": 1.0, "32": 0.97}, "distractors": {"0": 1.0, "12": 0.96}}

    def direct_depth():
        return {"depth": {"1": 0.9, "10": 0.3}}

    # teacher-forced accuracies: descending solved at 600, when climbing is a quarter of its way
    curves = {"step": [0, 600, 1200, 2400, 3000], "forward": [0.1, 0.99, 1.0, 1.0, 1.0],
              "switch": [0.0, 0.5, 0.99, 1.0, 1.0], "backward": [0.2, 0.4, 0.7, 0.99, 1.0]}

    def switch(root):   # each head's attention on the ROOT marker at the switch
        return {"switch": {"root": root}}

    def broken(seed, roles, phases, root):
        return {"seed": seed, "final": {"exact": 1.0, "switch": 1.0},
                "log": {"roles": [roles], "usage": [switch(root)], **curves}, "phases": phases}

    def long_run(seed):   # the same seeds trained 4× longer: split by step 12000 and kept
        clean = [[0.9, 0.1], [0.1, 0.9]]
        return {"seed": seed, "final": {"exact": 1.0, "switch": 1.0},
                "log": {"step": [0, 6000, 12000, 18000, 24000], "roles": [[[0.5, 0.5], [0.5, 0.5]]] + [clean] * 4,
                        "usage": [switch([0.5, 0.5])] + [switch([0.1, 0.8])] * 4}}

    phases = {"climb": 2400, "switch": 1200, "descend": 600, "division": 3000,
              "order": ["descend", "switch", "climb", "division"]}
    cot_run = {"final": {"exact": 0.999, "by_depth": {"1": 1.0, "3": 1.0, "5": 0.99}}, "log": {"usage": [usage]}}
    direct_run = {"final": {"by_depth": {"1": 0.95, "3": 0.4, "5": 0.2}}}
    return {
        "sizes": {"test": 2000, "robust_n": 1000, "fs_test": 2000, "theory_steps": {"backward": 2000, "forward": 6000}},
        "theory": {
            "backward": {"runs": [{"final": {"exact": 1.0}, "log": {"h": [{"diag": 8.0, "offdiag_max": 0.5}]}}]},
            "forward": {"runs": [{"final": {"exact": 1.0, "switch": 1.0}, "log": {"head_difference": [0.0], **curves},
                                  "phases": phases}]},
            "forward_broken": {"init_std": 0.1, "runs": [broken(1, [[0.9, 0.1], [0.1, 0.9]], phases, [0.2, 0.7]),
                                                         broken(2, [[0.2, 0.95], [0.85, 0.05]], phases, [0.9, 0.1])]},
            "forward_broken_long": {"init_std": 0.1, "steps": 24000, "runs": [long_run(1), long_run(2)]},
        },
        "standard": {
            "cot": {"runs": [cot_run, cot_run]},
            "direct": {"1": {"runs": [direct_run, direct_run]},
                       "2": {"runs": [{"final": {"by_depth": {"1": 0.99, "3": 0.6, "5": 0.3}}}]}},
            "baseline_random_child": {"1": 0.5, "3": 0.1, "5": 0.02},
        },
        "robustness": {"standard_cot": {"0": robust(), "1": robust()},
                       "standard_direct": {"0": direct_depth(), "1": direct_depth()},
                       "theory_backward": {"0": robust()}, "theory_forward": {"0": robust()}},
        "filter_sort": {"cot": {"exact": [0.0, 0.99]}, "direct": {"exact": [0.0, 0.1]},
                        "tagged": {"exact": [0.0, 0.2]}},
    }


def _set(metrics: dict, path: str, value) -> dict:
    """A deep copy of ``metrics`` with the entry at ``a/b/0/c`` set to ``value``."""
    import copy
    m = copy.deepcopy(metrics)
    *head, last = path.split("/")
    node = m
    for key in head:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return m


# perturbations, at least one per claim and one per condition of its criterion that the planted
# metrics can break alone: the claim's id, the entry to change, a value just past the pass mark
FLIPS = [
    ("theory_backward_generalises", "theory/backward/runs/0/final/exact", claims.MIN_EXACT - 0.001),
    ("theory_backward_H_diagonal", "theory/backward/runs/0/log/h/0", {"diag": 4.9, "offdiag_max": 0.5}),
    ("theory_backward_H_diagonal", "theory/backward/runs/0/log/h/0", {"diag": 0.0, "offdiag_max": 0.0}),  # W = 0
    ("theory_forward_generalises", "theory/forward/runs/0/final/switch", claims.MIN_SWITCH - 0.001),
    ("theory_forward_generalises", "theory/forward/runs/0/final/exact", claims.MIN_EXACT - 0.001),
    ("zero_init_heads_identical", "theory/forward/runs/0/log/head_difference/0", 1e-3),
    # seed 2's division: the traversal head supplies only 0.45 more of the node prediction
    ("theory_forward_heads_specialise", "theory/forward_broken/runs/1/log/roles/0", [[0.3, 0.95], [0.75, 0.05]]),
    ("theory_forward_heads_specialise", "theory/forward_broken/runs/1/final/exact", claims.MIN_EXACT - 0.01),
    # seed 2's traversal head (head 1) finds the ROOT marker at the switch as much as the stage-control head
    ("theory_forward_heads_specialise", "theory/forward_broken/runs/1/log/usage/0/switch/root", [0.5, 0.5]),
    # seed 2 trained longer loses its split at the last checkpoint (strength 0.3 < 0.5)
    ("heads_split_with_longer_training", "theory/forward_broken_long/runs/1/log/roles/4", [[0.6, 0.3], [0.3, 0.6]]),
    ("heads_split_with_longer_training", "theory/forward_broken_long/runs/0/final/exact", claims.MIN_EXACT - 0.01),
    # seed 1 trained longer: at one checkpoint of the last quarter its traversal head finds the ROOT marker
    ("heads_split_with_longer_training", "theory/forward_broken_long/runs/0/log/usage/3/switch/root", [0.6, 0.4]),
    ("theory_forward_phases", "theory/forward_broken/runs/1/phases",
     {"climb": 700, "switch": 650, "descend": 600, "division": None, "order": []}),  # (700 − 600) / 700 < 0.2
    ("standard_cot_solves_forward", "standard/cot/runs/1/final/exact", 0.98),
    ("standard_direct_fails_with_depth", "standard/direct/1/runs/1/final/by_depth/1", 0.45),  # drop 0.25 < 0.3
    # the drop is still 0.35, but 0.6 at depth 5 is more than half the CoT's 0.99
    ("standard_direct_fails_with_depth", "standard/direct/1/runs/1/final/by_depth/5", 0.6),
    ("standard_heads_do_lookups", "standard/cot/runs/1/log/usage/0/forward/lookup", [0.1, 0.49]),
    ("standard_heads_do_lookups", "standard/cot/runs/1/log/usage/0/backward/lookup", [0.4, 0.1]),
    ("standard_direct_fails_on_deep_spines", "robustness/standard_direct/1/depth/10", 0.51),
    ("robust[standard_cot]", "robustness/standard_cot/1/size/32", 0.94),
    ("robust[theory_backward]", "robustness/theory_backward/0/size/32", 0.9),
    ("robust[theory_forward]", "robustness/theory_forward/0/distractors/12", 0.5),
    ("filter_sort_cot", "filter_sort/direct/exact/1", 0.6),
]

CLAIM_IDS = list(dict.fromkeys(f[0] for f in FLIPS))   # each claim once, in the table's order
PAPER_CLAIMS = {"theory_backward_generalises", "theory_backward_H_diagonal", "theory_forward_generalises",
                "theory_forward_heads_specialise", "theory_forward_phases"}


def test_planted_metrics_make_every_claim_hold():
    judged = claims.evaluate(planted_metrics())
    assert [c.id for c in judged] == CLAIM_IDS
    assert all(c.holds for c in judged), [c.id for c in judged if not c.holds]
    assert {c.id: c.kind for c in judged} == {i: ("paper" if i in PAPER_CLAIMS else "extension") for i in CLAIM_IDS}
    assert all(c.criterion for c in judged)


@pytest.mark.parametrize("claim_id, path, value", FLIPS, ids=[f"{f[0]}:{f[1].split('/')[-1]}" for f in FLIPS])
def test_each_claim_flips_on_its_own_number(claim_id, path, value):
    judged = {c.id: c.holds for c in claims.evaluate(_set(planted_metrics(), path, value))}
    assert not judged[claim_id], f"{claim_id} should fail after setting {path} = {value!r}"
    assert all(judged[i] for i in judged if i != claim_id), [i for i in judged if not judged[i]]


def test_conditions_the_planted_metrics_cannot_break_alone():
    # one seed is not evidence of specialisation, however clean its split
    one = [{"seed": 1, "switch_root": [0.1, 0.8], **role_assignment([[0.9, 0.1], [0.1, 0.9]])}]
    assert not claims.theory_forward_heads_specialise(one, [1.0], 0.1).holds
    assert not claims.theory_forward_heads_specialise(one * 2, [1.0, 1.0], 0.1).holds      # the same seed twice
    two = one + [{**one[0], "seed": 2, "switch_root": [0.8, 0.1]}]   # seed 2: the traversal head finds the ROOT
    c = claims.theory_forward_heads_specialise(two, [1.0, 1.0], 0.1)
    assert not c.holds and c.why == ("seed 2: at the switch the traversal head finds the ROOT marker, not the "
                                     "stage-control head (0.80 against 0.10)")
    with pytest.raises(ValueError, match=r"exact must hold one accuracy per seed of assignments \(2\); got 1"):
        claims.theory_forward_heads_specialise(two, [1.0], 0.1)
    # deep spines: the direct model failing is not enough; the CoT model must keep solving the task
    assert claims.standard_direct_fails_on_deep_spines([{10: 0.3}], [{10: 0.9}]).holds is False
    assert claims.standard_direct_fails_on_deep_spines([{10: 0.3}], [{10: 0.96}]).holds is True


def test_claims_refuse_empty_or_partial_evidence():
    with pytest.raises(ValueError, match="usages must hold one head_usage per seed"):
        claims.standard_heads_do_lookups([])
    full = planted_metrics()["robustness"]["standard_cot"]["0"]
    with pytest.raises(ValueError, match="each with the axes"):
        claims.robust("standard_cot", {"0": {"depth": full["depth"]}}, 10)
    c = claims.robust("standard_cot", {"0": full}, 10)
    assert "depth (1–10), branching (1–6), size (8–32 nodes) and number of distractor edges (0–12)" in c.criterion


def test_claims_read_int_and_string_depth_keys_alike():
    m = planted_metrics()
    as_ints = _set(m, "standard/direct", {1: {"runs": [{"final": {"by_depth": {1: 0.95, 3: 0.4, 5: 0.2}}}] * 2}})
    a, b = claims.evaluate(m), claims.evaluate(as_ints)
    assert [c.holds for c in a] == [c.holds for c in b]


def test_phase_gaps_are_read_in_the_run_s_own_time():
    # the same dynamics judged from a run twice as long: the verdict does not change
    record = {"run": "seed 1", "climb": 2400, "switch": 1200, "descend": 600, "division": None,
              "order": ["descend", "switch", "climb"], "last_progress": 0.3}
    short, long = (claims.theory_forward_phases([record], steps) for steps in (4000, 8000))
    assert short.holds and long.holds
    assert short.measured["gap / step the last part is solved"] == [0.75]      # (2400 − 600) / 2400
    with pytest.raises(ValueError, match="solved at step 2400, after the run's 2000 steps"):
        claims.theory_forward_phases([record], 2000)


def test_phases_must_follow_one_another():
    # climbing already 70% of its way when descending is solved: learned together, not in phases
    m = _set(planted_metrics(), "theory/forward_broken/runs/1/log/backward", [0.2, 0.75, 0.8, 0.99, 1.0])
    failed = {c.id: c.why for c in claims.evaluate(m) if not c.holds}
    assert list(failed) == ["theory_forward_phases"] and "70% of its way" in failed["theory_forward_phases"]


def test_longer_training_claim_wants_the_split_kept_not_passed_through():
    def run(seed, strength, traverse=(0, 0, 0, 0, 0), exact=1.0):   # the control head finds the ROOT marker
        return {"seed": seed, "step": [0, 4000, 8000, 12000, 16000], "strength": strength, "exact": exact,
                "traverse_head": list(traverse), "control_head": [1 - t for t in traverse],
                "switch_root": [[0.2, 0.7] if t == 0 else [0.7, 0.2] for t in traverse]}
    kept = [run(1, [0.0, 0.45, 0.6, 0.7, 0.8]), run(2, [0.0, 0.3, 0.5, 0.55, 0.6])]
    c = claims.heads_split_with_longer_training(kept, 4000, 16000)
    assert c.holds and c.kind == "extension" and "4 times as long" in c.claim and not c.why
    assert c.measured["per seed"][0] == {"seed": 1, "at step 4000": 0.45, "peak": 0.8, "peak step": 16000,
                                         "lowest in the last 25%": 0.7, "end": 0.8,
                                         "heads change roles in the last 25%": False,
                                         "least ROOT-marker lead of the stage-control head in the last 25%": 0.5}
    # exactly at the mark still holds
    assert claims.heads_split_with_longer_training([run(1, [0, .5, .5, .5, .5]), kept[1]], 4000, 16000).holds
    # a peak inside the run, lost by the end (seed 1 of the full run: 0.47 at 4800, 0.15 at 16000)
    passed_through = [run(1, [0.0, 0.45, 0.6, 0.3, 0.15]), kept[1]]
    c = claims.heads_split_with_longer_training(passed_through, 4000, 16000)
    assert not c.holds and c.why.startswith("seed 1: 0.15 at its lowest in the last 25%")
    assert "peak 0.60 at step 8000" in c.why
    # the last quarter starts at step 12000: a dip there fails even if the end recovers
    assert not claims.heads_split_with_longer_training([run(1, [0, .5, .9, .49, .9]), kept[1]], 4000, 16000).holds
    # strong at every checkpoint, but the heads swap roles in the last quarter: not a split that is kept
    swap = run(1, [0.0, 0.6, 0.7, 0.7, 0.7], traverse=(0, 0, 0, 0, 1))
    c = claims.heads_split_with_longer_training([swap, kept[1]], 4000, 16000)
    assert not c.holds and c.why == "seed 1: the heads change roles in the last 25%"
    # split and kept, but at one checkpoint of the last quarter the traversal head finds the ROOT marker
    lost = dict(kept[0], switch_root=kept[0]["switch_root"][:3] + [[0.6, 0.4], [0.2, 0.7]])
    c = claims.heads_split_with_longer_training([lost, kept[1]], 4000, 16000)
    assert not c.holds and c.why == ("seed 1: at the switch the traversal head finds the ROOT marker, not the "
                                     "stage-control head (the stage-control head's lead at its lowest in the "
                                     "last 25%: -0.20)")
    # a swap before the last quarter is allowed
    early = run(1, [0.0, 0.6, 0.7, 0.7, 0.7], traverse=(1, 1, 0, 0, 0))
    assert claims.heads_split_with_longer_training([early, kept[1]], 4000, 16000).holds
    # one seed, or the same seed twice, is not evidence; a model that does not solve the task fails
    assert not claims.heads_split_with_longer_training(kept[:1], 4000, 16000).holds
    c = claims.heads_split_with_longer_training([kept[0], {**kept[1], "seed": 1}], 4000, 16000)
    assert not c.holds and c.why.startswith("only 1 distinct seed")
    assert not claims.heads_split_with_longer_training([kept[0], {**kept[1], "exact": 0.9}], 4000, 16000).holds
    # the step label says which checkpoint it is when none falls on short_steps
    odd = [dict(r, step=[0, 3000, 8000, 12000, 16000]) for r in kept]
    assert "at step 3000" in claims.heads_split_with_longer_training(odd, 4000, 16000).measured["per seed"][0]
    with pytest.raises(ValueError, match="short_steps and long_steps"):
        claims.heads_split_with_longer_training(kept, 16000, 4000)
    with pytest.raises(ValueError, match="last at long_steps = 20000"):
        claims.heads_split_with_longer_training(kept, 4000, 20000)
    with pytest.raises(ValueError, match="runs must hold"):
        claims.heads_split_with_longer_training([], 4000, 16000)


def test_division_curve_reads_every_checkpoint():
    from helpers.tree_cot import division_curve
    usage = [{"switch": {"root": [0.5, 0.5]}}, {"switch": {"root": [0.7, 0.3]}}]
    log = {"step": [0, 10], "roles": [[[0.5, 0.5], [0.5, 0.5]], [[0.2, 0.9], [0.8, 0.1]]], "usage": usage}
    d = division_curve(log)
    assert d["step"] == [0, 10] and d["traverse_head"][1] == 1 and d["control_head"][1] == 0
    assert d["strength"] == pytest.approx([0.0, 0.6])          # min(0.8 − 0.2, 0.9 − 0.1)
    assert d["switch_root"] == [[0.5, 0.5], [0.7, 0.3]]
    with pytest.raises(ValueError, match="one roles and one usage entry per checkpoint"):
        division_curve({"step": [0], "roles": [], "usage": []})


def test_plot_division_draws_one_line_per_run():
    from helpers.tree_cot import plot_division
    fig = plot_division({"seed 1": ([0, 8, 16], [0.0, 0.6, 0.2]), "seed 2": ([0, 8, 16], [0.0, 0.1, 0.7])},
                        short_steps=4, mark=0.5, tail=0.25)
    ax = fig.axes[0]
    assert [list(line.get_ydata()) for line in ax.lines[:2]] == [[0.0, 0.6, 0.2], [0.0, 0.1, 0.7]]
    assert ax.get_xlim() == (0, 16)
    with pytest.raises(ValueError, match="runs must hold"):
        plot_division({}, short_steps=4, mark=0.5, tail=0.25)


def test_sizes_train_the_longer_runs_longer():
    from helpers.tree_cot.train import SIZES, Sizes
    assert SIZES["full"].broken_long_steps == 4 * SIZES["full"].theory_forward_steps   # page 2 says "four times"
    with pytest.raises(ValueError, match="broken_long_steps must be > theory_forward_steps"):
        Sizes(**{**SIZES["smoke"].__dict__, "broken_long_steps": 20})


def test_filter_sort_needs_the_tagged_control_to_fail_too():
    m = _set(planted_metrics(), "filter_sort/tagged/exact/1", 0.97)   # the colour alone is enough
    failed = {c.id: c.why for c in claims.evaluate(m) if not c.holds}
    assert list(failed) == ["filter_sort_cot"] and "query colour" in failed["filter_sort_cot"]
    old = planted_metrics()
    del old["filter_sort"]["tagged"]                                   # a run from before the control
    assert {c.id: c.holds for c in claims.evaluate(old)}["filter_sort_cot"]


def test_filter_sort_demo_check_is_looser_than_the_claim():
    assert claims.FS_DEMO_MIN_COT < claims.FS_MIN_COT
    assert claims.filter_sort_demo_holds(0.92, 0.1) and not claims.filter_sort_holds(0.92, 0.1)
