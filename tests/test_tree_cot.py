"""Chapter 1 helpers: tree generators, the token format, constructions, decoding, metrics, bad input, claims."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.results import output_root

from helpers.tree_cot import claims, train
from helpers.tree_cot.analysis import (by_depth, evaluate, exact_path_accuracy, filter_sort_target, greedy_decode,
                                       head_usage, per_step_accuracy, specialisation, target_sequence)
from helpers.tree_cot.data import (BWD, EDGE, FWD, ROOT, FilterSortExample, Tree, backward_path, chain_tree,
                                   distractor_edges, encode, filter_sort_encode, filter_sort_sample,
                                   filter_sort_sequence, forward_path, make_example, perfect_batch, perfect_tree,
                                   random_tree, sequence, sized_tree, spine_tree, star_tree)
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
    with pytest.raises(ValueError, match="n_heads must be 1 or 2"):
        TheoryModel(7, 3)
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
    toks, tgt, stage, key = sequence([(4, 2), (2, 1)], 4, [1, 2, 4], 5, "forward")
    assert toks == [(6, 6, 4), (4, 2, EDGE), (2, 1, EDGE), (5, 4, ROOT), (1, 5, BWD), (2, 1, BWD), (4, 2, BWD),
                    (4, 6, FWD), (2, 4, FWD), (1, 2, FWD)]
    assert tgt == [-1, -1, -1, -1, 2, 4, 5, 2, 1, 5]
    assert stage == [-1, -1, -1, -1, 0, 0, 0, 1, 1, 1]
    # climbing reads the edge whose child is the current node (ROOT at the root); descending reads
    # the chain-of-thought token whose slot a is the current node (GOAL at the goal)
    assert key == [-1, -1, -1, -1, 2, 1, 3, 6, 5, 4]
    toks_d, tgt_d, _, key_d = sequence([(4, 2), (2, 1)], 4, [1, 2, 4], 5, "direct")
    assert toks_d[-3:] == [(4, 6, FWD), (2, 4, FWD), (1, 2, FWD)] and tgt_d[-3:] == [2, 1, 5]
    assert key_d[-3:] == [-1, -1, -1]


def test_perfect_batch_matches_the_format():
    b = perfect_batch(2, 3, 20, 16, np.random.default_rng(0), "forward")
    m = construction(20, "forward")
    assert per_step_accuracy(m, b) == {"all": 1.0, "backward": 1.0, "forward": 1.0}
    assert (b.depth == 3).all() and ((b.targets >= 0).sum(1) == 2 * 3 + 2).all()


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
    assert mse_loss(m, encode(exs, 30, task)).item() < 1e-6


def test_untrained_theory_model_fails():
    rng = np.random.default_rng(2)
    exs = [make_example(random_tree(3, 30, rng, max_depth=5, min_depth=3), rng) for _ in range(50)]
    assert evaluate(TheoryModel(30, 1), exs, 30, "backward")["exact"] == 0.0


class Scripted(torch.nn.Module):
    """A fake model that answers a fixed script, to check decoding's bookkeeping."""

    def __init__(self, vocab, script):
        super().__init__()
        self.vocab, self.script, self.calls = vocab, script, 0
        self.p = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        out = torch.zeros(tokens.shape[0], tokens.shape[1], self.vocab + 1)
        out[:, :, self.script[min(self.calls, len(self.script) - 1)]] = 1
        self.calls += 1
        return out


def test_greedy_decode_follows_the_format():
    t = Tree(4, {2: 4, 1: 2})
    ex = make_example(t, 0, goal=1)
    END = 5
    # a perfect script for the forward task: climb 2, 4, END; then descend 2, 1, END
    emitted = greedy_decode(Scripted(5, [2, 4, END, 2, 1, END]), [ex], 5, "forward")
    assert emitted == [[2, 4, END, 2, 1, END]] == [target_sequence(ex, 5, "forward")]
    assert exact_path_accuracy(emitted, [ex], 5, "forward").tolist() == [True]
    # a model that never says END stops at max_steps and is wrong
    emitted = greedy_decode(Scripted(5, [2]), [ex], 5, "backward", max_steps=7)
    assert emitted == [[2] * 7] and exact_path_accuracy(emitted, [ex], 5, "backward").tolist() == [False]
    # a wrong node mid-way makes the path wrong even if it ends correctly
    assert not exact_path_accuracy([[2, 3, END]], [ex], 5, "backward")[0]


def test_by_depth_by_hand():
    assert by_depth(np.array([1, 0, 1, 1]), [1, 1, 2, 3]) == {1: 0.5, 2: 1.0, 3: 1.0}
    with pytest.raises(ValueError, match="same length"):
        by_depth(np.array([1, 0]), [1])


def test_head_usage_of_the_constructions():
    rng = np.random.default_rng(3)
    exs = [make_example(random_tree(3, 30, rng, max_depth=5, min_depth=2), rng) for _ in range(40)]
    spec = specialisation(head_usage(construction(30, "forward"), encode(exs, 30, "forward")))
    assert spec[0, 0] > 0.99 and spec[1, 1] > 0.99  # head 0 climbs, head 1 descends
    assert spec[0, 1] < 0.01 and spec[1, 0] < 0.01


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
    assert logits.shape == (4, b.tokens.shape[1], 13)
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
    toks, tgt, stage, key = filter_sort_sequence(ex, 8, "cot")
    assert toks[6:10] == [(5, 1, BWD), (3, 1, BWD), (0, 1, BWD), (9, 9, FWD)]
    assert tgt[5:13] == [5, 3, 0, 8, 0, 3, 5, 8] and key[5] == 1  # the item holding 5
    enc = filter_sort_encode([ex], 8, "direct")
    assert enc.targets[0][enc.targets[0] >= 0].tolist() == [0, 3, 5, 8]


@settings(max_examples=30, deadline=None)
@given(seed=seeds)
def test_filter_sort_samples(seed):
    for ex in filter_sort_sample(5, 20, seed, n_items=(2, 9), colours=3):
        assert len(set(ex.values)) == len(ex.values) and 2 <= len(ex.values) <= 9
        assert ex.kept and ex.answer == sorted(ex.answer)


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

    def wrong_slots(V, lam):
        m = TheoryModel(V, 1)
        W = torch.zeros(m.D, m.D)
        W[m.slot("a"), m.slot("a")][:V, :V] = lam * torch.eye(V)
        return W

    with pytest.raises(ExerciseError, match="wrong slots"):
        check_backward_construction(wrong_slots)
    with pytest.raises(ExerciseError, match=r"shape \(D, D\)"):
        check_backward_construction(lambda V, lam: torch.zeros(3, 3))

    def no_parking(V, lam):
        W = construction(V, "forward").W[1].clone()
        W[-5:, -5:] = 0
        W[-5:, -5:][2, 3] = lam  # keeps the BWD-key / FWD-query preference, drops the parking
        return W

    with pytest.raises(ExerciseError, match="Park it on BOS"):
        check_forward_head1(no_parking)


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
    assert len(table) == 12 and all(isinstance(c.holds, bool) for c in table.claims)
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
        assert stored["seeds"] == list(s.seeds) and stored["fs_test"] == s.fs_test
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
    forward_log = {"specialisation": [[[0.9, 0.01], [0.02, 0.95]]], "h": []}
    usage = {"backward": {"lookup": [0.9, 0.1], "bos": [0.0, 0.5]},
             "forward": {"lookup": [0.1, 0.8], "bos": [0.7, 0.0]}}
    robust = {"depth": {"1": 1.0, "10": 0.99}, "branching": {"1": 1.0, "6": 0.98}, "size": {"8": 1.0, "32": 0.97},
              "distractors": {"0": 1.0, "12": 0.96}}
    return {
        "sizes": {"test": 2000, "robust_n": 1000, "fs_test": 2000, "theory_steps": {"backward": 2000, "forward": 6000}},
        "theory": {
            "backward": {"runs": [{"final": {"exact": 1.0}, "log": {"h": [{"diag": 8.0, "offdiag_max": 0.5}]}},
                                  {"final": {"exact": 0.995}, "log": {"h": [{"diag": 7.0, "offdiag_max": 0.6}]}}]},
            "forward": {"runs": [{"final": {"exact": 1.0}, "log": forward_log,
                                  "phases": {"forward_solved": 600, "backward_solved": 3000}},
                                 {"final": {"exact": 0.999}, "log": forward_log,
                                  "phases": {"forward_solved": 800, "backward_solved": 4000}}]},
        },
        "standard": {
            "cot": {"final": {"exact": 0.999, "by_depth": {"1": 1.0, "3": 1.0, "5": 0.99}}, "usage": [usage]},
            "direct": {"1": {"final": {"by_depth": {"1": 0.95, "3": 0.4, "5": 0.2}}},
                       "2": {"final": {"by_depth": {"1": 0.99, "3": 0.6, "5": 0.3}}}},
            "baseline_random_child": {"1": 0.5, "3": 0.1, "5": 0.02},
        },
        "robustness": {"standard_cot": robust, "theory_backward": robust, "theory_forward": robust},
        "filter_sort": {"cot": {"exact": [0.0, 0.99]}, "direct": {"exact": [0.0, 0.1]}},
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


# one perturbation per claim: the claim's id, the entry to change, a value just past the pass mark
FLIPS = [
    ("theory_backward_generalises", "theory/backward/runs/1/final/exact", claims.MIN_EXACT - 0.001),
    ("theory_backward_H_diagonal", "theory/backward/runs/0/log/h/0", {"diag": 2.4, "offdiag_max": 0.5}),
    ("theory_forward_generalises", "theory/forward/runs/0/final/exact", claims.MIN_EXACT - 0.001),
    ("theory_forward_heads_specialise", "theory/forward/runs/1/log",
     {"specialisation": [[[0.9, 0.06], [0.02, 0.95]]]}),  # the climbing head leaks 0.06 > 0.05 into descending
    ("theory_forward_phases", "theory/forward/runs/1/phases", {"forward_solved": 800, "backward_solved": 1900}),
    ("standard_cot_solves_forward", "standard/cot/final/exact", 0.98),
    ("standard_direct_fails_with_depth", "standard/direct/1/final/by_depth/1", 0.45),  # drop 0.25 < 0.3
    ("standard_heads_do_lookups", "standard/cot/usage/0/forward/lookup", [0.1, 0.49]),
    ("robust[standard_cot]", "robustness/standard_cot", {"depth": {"1": 1.0, "10": 0.94}}),
    ("robust[theory_backward]", "robustness/theory_backward", {"size": {"32": 0.9}}),
    ("robust[theory_forward]", "robustness/theory_forward", {"distractors": {"12": 0.5}}),
    ("filter_sort_cot", "filter_sort/direct/exact/1", 0.6),
]


def test_planted_metrics_make_every_claim_hold():
    judged = claims.evaluate(planted_metrics())
    assert [c.id for c in judged] == [f[0] for f in FLIPS]
    assert all(c.holds for c in judged), [c.id for c in judged if not c.holds]
    assert {c.id: c.kind for c in judged} == {f[0]: ("paper" if f[0].startswith("theory_") else "extension")
                                               for f in FLIPS}
    assert all(c.criterion for c in judged)


@pytest.mark.parametrize("claim_id, path, value", FLIPS, ids=[f[0] for f in FLIPS])
def test_each_claim_flips_on_its_own_number(claim_id, path, value):
    judged = {c.id: c.holds for c in claims.evaluate(_set(planted_metrics(), path, value))}
    assert not judged[claim_id], f"{claim_id} should fail after setting {path} = {value!r}"
    assert all(judged[i] for i in judged if i != claim_id), [i for i in judged if not judged[i]]


def test_claims_read_int_and_string_depth_keys_alike():
    m = planted_metrics()
    as_ints = _set(m, "standard/direct", {1: {"final": {"by_depth": {1: 0.95, 3: 0.4, 5: 0.2}}}})
    a, b = claims.evaluate(m), claims.evaluate(as_ints)
    assert [c.holds for c in a] == [c.holds for c in b]


def test_filter_sort_demo_check_is_looser_than_the_claim():
    assert claims.FS_DEMO_MIN_COT < claims.FS_MIN_COT
    assert claims.filter_sort_demo_holds(0.92, 0.1) and not claims.filter_sort_holds(0.92, 0.1)
