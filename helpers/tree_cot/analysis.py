"""Chapter 1's analysis: decoding and metrics, what the heads do, phases, baselines, robustness.

**Decoding and metrics.** Any model that maps tokens (B, T, 3) to scores (B, T, N+1) over the
next node (or END) can be decoded greedily (:func:`greedy_decode`): the theory model (scores =
ŷ) and the standard transformer (scores = logits). Metrics:

- **exact-path accuracy** — the whole generated sequence (chain of thought included) equals the
  target, END included (:func:`exact_path_accuracy`);
- **per-step accuracy** — teacher-forced: the fraction of positions whose argmax is the target
  (:func:`per_step_accuracy`);
- both **by depth** of the goal (:func:`by_depth`); :func:`evaluate` reports all of them.

**What the heads do.**

- :func:`head_usage` — for every head, the mean attention a query puts on the token a correct
  one-step lookup reads (``Encoded.key``), on BOS (where a head "parks" when it has nothing to
  do), on the ROOT marker at the switch and on stage-bit tokens, per group of queries
  (climbing, the switch, descending).
- :func:`roles`, :func:`role_assignment` — each theory-model head's exact share of the node
  prediction (traverse) and of the stage signal (control), and which head does which job.
- :func:`h_summary` — the theory model's ``H`` (key slot b × query slot b): mean diagonal, mean
  and largest off-diagonal entry; :func:`block_summary` — the key–query block entries per head.
- :func:`attention_for_example` — one example's attention maps per generated step.
- :func:`phases` — when climbing, the switch and descending are learned, and when the heads'
  division of labour reaches a strength (forward theory model).

**Baselines and generalisation.** :func:`random_child_baseline` (descend by a random child),
:func:`robustness` (accuracy on the sets of :func:`~helpers.tree_cot.data.robustness_sets`), and
the filter → sort task's decoding and accuracy (:func:`filter_sort_decode`,
:func:`filter_sort_evaluate`).

Used in: every notebook of book/tree_cot/ and ``python -m helpers.tree_cot``.
"""
from __future__ import annotations

import numpy as np
import torch

from ..checks import check_int
from .claims import MIN_ROLE_GAP, PHASE_SOLVED_ACCURACY
from .data import (
    BOS,
    BWD,
    FWD,
    PAD,
    ROOT,
    Encoded,
    Example,
    FilterSortExample,
    check_filter_sort_task,
    check_task,
    encode,
    filter_sort_prompt,
    prompt,
    step_token,
    target_steps,
)


def target_sequence(ex: Example, vocab: int, task: str) -> list[tuple[int, int]]:
    """What a perfect model emits for ``ex``: ``(node, stage)`` pairs (stage 0 backward, 1 forward),
    END last. In the forward task the stage turns to 1 at the root's prediction (the first node down)."""
    return target_steps(ex.backward, vocab, task)


def _predict(model, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, 3) tokens → the greedy next node (B, T) and the predicted next stage (B, T) in {0, 1}."""
    scores = model(tokens)
    S = model.vocab + 1
    return scores[..., :S].argmax(-1), (scores[..., S] > model.stage_threshold).long()


@torch.no_grad()
def next_steps(model, seqs: list[list[tuple[int, int, int]]], vocab: int, device) -> list[tuple[int, int]]:
    """The model's greedy prediction ``(node, stage)`` after the last token of each sequence (one padded batch)."""
    T = max(len(s) for s in seqs)
    tokens = np.empty((len(seqs), T, 3), dtype=np.int64)
    tokens[:] = (vocab + 1, vocab + 1, PAD)
    for r, s in enumerate(seqs):
        tokens[r, :len(s)] = s
    last = torch.tensor([len(s) - 1 for s in seqs], device=device)
    node, stage = _predict(model, torch.from_numpy(tokens).to(device))
    rows = torch.arange(len(seqs), device=device)
    return list(zip(node[rows, last].tolist(), stage[rows, last].tolist()))


def next_nodes(model, seqs: list[list[tuple[int, int, int]]], vocab: int, device) -> list[int]:
    """The model's greedy next node (or END) after the last token of each sequence."""
    return [v for v, _ in next_steps(model, seqs, vocab, device)]


@torch.no_grad()
def greedy_decode(model, examples: list[Example], vocab: int, task: str, *, max_steps: int | None = None,
                  batch_size: int = 512, device=None) -> list[list[tuple[int, int]]]:
    """Generate each example's output greedily; returns the emitted ``(node, stage)`` pairs (END included).

    A pure loop over the model's own predictions after the prompt
    (:func:`~helpers.tree_cot.data.prompt`): at each step the model predicts a node ``v`` and
    (forward task) a stage ``s``; the decoder appends :func:`~helpers.tree_cot.data.step_token`
    ``(u, v, BWD)`` or ``(·, v, FWD)`` — ``u`` is the current node, the last token's slot b — and
    stops at END. Nothing is inserted and no stage is decided by the decoder: a model that never
    predicts the forward stage never switches. In the one-stage tasks the stage is fixed (backward:
    0, direct: 1) and the model's stage output is not read. ``max_steps`` (default: 2·(number of
    edges + 2)) bounds a model that never says END.
    """
    check_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    if getattr(model, "vocab", vocab) != vocab:
        raise ValueError(f"vocab={vocab} does not match the model's vocab={model.vocab}: decode with the vocabulary "
                         "the model was built for")
    check_int("batch_size", batch_size, 1)
    if max_steps is not None:
        check_int("max_steps", max_steps, 1)
    device = device or next(model.parameters()).device
    out: list[list[tuple[int, int]]] = []
    for start in range(0, len(examples), batch_size):
        out += _decode_chunk(model, examples[start:start + batch_size], vocab, task, max_steps, device)
    return out


def greedy_loop(model, seqs: list[list[tuple[int, int, int]]], vocab: int, limit: int, device,
                append, predict=next_nodes) -> list[list]:
    """Run greedy generation on all ``seqs`` at once for at most ``limit`` steps.

    After each step, ``append(i, p)`` receives sequence ``i``'s prediction ``p`` (from ``predict``:
    a node by default), extends ``seqs[i]`` by the format's rule and returns whether sequence ``i``
    goes on. Returns the emitted predictions.
    """
    emitted: list[list] = [[] for _ in seqs]
    live = list(range(len(seqs)))
    for _ in range(limit):
        if not live:
            break
        pred = predict(model, [seqs[i] for i in live], vocab, device)
        still = []
        for i, p in zip(live, pred):
            emitted[i].append(p)
            if append(i, p):
                still.append(i)
        live = still
    return emitted


def _decode_chunk(model, examples, vocab, task, max_steps, device):
    END = vocab
    seqs = [prompt(ex.edges, ex.root, ex.goal, vocab, task) for ex in examples]
    fixed = {"backward": 0, "direct": 1}.get(task)  # one-stage tasks: the stage is the task's

    def predict(m, live_seqs, V, dev) -> list[tuple[int, int]]:
        steps = next_steps(m, live_seqs, V, dev)
        return steps if fixed is None else [(v, fixed) for v, _ in steps]

    def append(i: int, p: tuple[int, int]) -> bool:
        v, s = p
        if v == END:
            return False
        seqs[i].append(step_token(seqs[i][-1][1], v, s, vocab))
        return True

    limit = max_steps or 2 * (max(len(ex.edges) for ex in examples) + 2)
    return greedy_loop(model, seqs, vocab, limit, device, append, predict=predict)


def exact_path_accuracy(emitted: list[list[tuple[int, int]]], examples: list[Example], vocab: int,
                        task: str) -> np.ndarray:
    """(n,) bool: whether each emitted sequence — nodes and stages — equals the target sequence."""
    return np.array([list(e) == target_sequence(ex, vocab, task) for e, ex in zip(emitted, examples)])


def stage_switch_accuracy(emitted: list[list[tuple[int, int]]], examples: list[Example]) -> np.ndarray:
    """(n,) bool, forward task: whether the model switched to the forward stage exactly at the root —
    its predictions stay backward for the ``L − 1`` climbing steps that reach the root and turn
    forward at the root's prediction (whatever nodes it emitted)."""
    out = []
    for e, ex in zip(emitted, examples):
        stages = [s for _, s in e]
        L = ex.depth
        out.append(len(stages) > L and stages[:L] == [0] * L and stages[L] == 1)
    return np.array(out)


@torch.no_grad()
def per_step_accuracy(model, batch: Encoded) -> dict:
    """Teacher-forced accuracy of the node: overall, per stage (backward/forward); and of the stage
    prediction, where the task has one (``"stage"``) and at the switch itself (``"switch"``)."""
    node, stage = _predict(model, batch.tokens)
    where = batch.targets >= 0
    hit = (node == batch.targets) & where
    out = {"all": (hit.sum() / where.sum()).item()}
    for s, name in ((0, "backward"), (1, "forward")):
        m = batch.stage == s
        if m.any():
            out[name] = (hit[m].sum() / m.sum()).item()
    has = batch.next_stage >= 0
    if has.any():
        out["stage"] = (stage[has] == batch.next_stage[has]).float().mean().item()
        sw = batch.marker >= 0
        out["switch"] = (stage[sw] == 1).float().mean().item()
    return out


def by_depth(correct: np.ndarray, depths) -> dict[int, float]:
    """Mean of ``correct`` per depth: ``{depth: accuracy}``."""
    depths = np.asarray(depths)
    if len(correct) != len(depths):
        raise ValueError(f"correct ({len(correct)}) and depths ({len(depths)}) must have the same length")
    return {int(d): float(np.mean(correct[depths == d])) for d in np.unique(depths)}


def evaluate(model, examples: list[Example], vocab: int, task: str, **kw) -> dict:
    """Exact-path accuracy (overall and by depth), teacher-forced per-step accuracy and, for the
    forward task, the stage-switch accuracy (:func:`stage_switch_accuracy`) of free generation."""
    model_was_training = getattr(model, "training", False)
    model.eval()
    emitted = greedy_decode(model, examples, vocab, task, **kw)
    correct = exact_path_accuracy(emitted, examples, vocab, task)
    depths = [ex.depth for ex in examples]
    device = next(model.parameters()).device
    steps = [per_step_accuracy(model, encode(examples[i:i + 512], vocab, task).to(device))["all"]
             for i in range(0, len(examples), 512)]
    sizes = [len(examples[i:i + 512]) for i in range(0, len(examples), 512)]
    model.train(model_was_training)
    out = {"exact": float(correct.mean()), "by_depth": by_depth(correct, depths),
           "per_step": float(np.average(steps, weights=sizes)), "n": len(examples)}
    if task == "forward":
        out["switch"] = float(stage_switch_accuracy(emitted, examples).mean())
    return out


# --------------------------------------------------------------------------------------------
# what the heads do


def _attention(model, tokens: torch.Tensor, layer: int = -1) -> torch.Tensor:
    _, att = model(tokens, return_attention=True)
    return att[layer] if isinstance(att, (list, tuple)) else att  # (B, H, T, T)


@torch.no_grad()
def head_usage(model, batch: Encoded, layer: int = -1) -> dict:
    """Where each head looks, per group of queries (mean attention, one number per head):

    - ``"backward"`` (climbing, the switch excluded): on the lookup token (``"lookup"``) and on BOS;
    - ``"switch"`` (the root's query, forward task): on the lookup token — the root's own
      chain-of-thought token, which holds the first node down — and on the ROOT marker (``"root"``);
    - ``"forward"`` (descending): on the lookup token, on BOS, and on tokens that carry the stage
      bit (``"stage_bit"``: ROOT and forward-stage tokens).

    Groups without queries (e.g. ``"switch"`` in the backward task) are left out.
    """
    att = _attention(model, batch.tokens, layer)
    kind = batch.tokens[..., 2]
    out = {}
    groups = (("backward", (batch.stage == 0) & (batch.marker < 0)), ("switch", batch.marker >= 0),
              ("forward", batch.stage == 1))
    for name, where in groups:
        where = where & (batch.key >= 0)
        if not where.any():
            continue
        bi, qi = where.nonzero(as_tuple=True)
        a = att[bi, :, qi, :]  # (n, H, T)
        rows = torch.arange(len(bi), device=a.device)
        g = {"lookup": a[rows, :, batch.key[bi, qi]].mean(0).tolist()}
        if name == "switch":
            g["root"] = a[rows, :, batch.marker[bi, qi]].mean(0).tolist()
        else:
            g["bos"] = (a * (kind[bi] == BOS)[:, None, :]).sum(-1).mean(0).tolist()
        if name == "forward":
            bit = (kind[bi] == ROOT) | (kind[bi] == FWD)
            g["stage_bit"] = (a * bit[:, None, :]).sum(-1).mean(0).tolist()
        out[name] = g
    return out


@torch.no_grad()
def roles(model, batch: Encoded) -> np.ndarray:
    """(n_heads, 2): how much each head of the theory model **traverses** and how much it
    **controls the stage**, read off the prediction itself.

    The theory model's prediction is a sum over heads, ``ŷ = Σ_h ŷ_h`` with ``ŷ_h = Σ_k att^h_k R x_k``,
    so each head's share of it can be read exactly. Traverse = head ``h``'s mean contribution to
    the correct node's score over all predictions; control = its mean contribution to the stage
    score where the next token is forward (the switch and the descent). Each column sums to about 1
    over the heads of a model that predicts well: (1, 0) / (0, 1) is a clean division of labour,
    (½, ½) / (½, ½) two heads doing the same."""
    _, att = model(batch.tokens, return_attention=True)  # (B, H, T, T)
    parts = att @ model.readout(model.embed(batch.tokens))[:, None]  # (B, H, T, N+2): ŷ_h
    where = batch.targets >= 0
    bi, qi = where.nonzero(as_tuple=True)
    node = parts[bi, :, qi, batch.targets[bi, qi]].mean(0)  # (H,)
    fwd = batch.next_stage == 1
    if fwd.any():
        bi, qi = fwd.nonzero(as_tuple=True)
        stage = parts[bi, :, qi, -1].mean(0)
    else:
        stage = torch.full_like(node, float("nan"))
    return torch.stack([node, stage], 1).cpu().numpy()


def role_assignment(r) -> dict:
    """Which head traverses and which controls the stage, from :func:`roles` ``(n_heads, 2)``:
    the traversal head is the one that traverses most, the stage-control head the one of the
    others that controls most. ``strength`` = min(traverse gap, control gap) between the two
    heads, about 1 for a clean division of labour, about 0 for two heads doing the same, negative
    when one head does most of both."""
    r = np.asarray(r, dtype=float)
    if r.ndim != 2 or r.shape[1] != 2 or r.shape[0] < 2:
        raise ValueError(f"roles must have shape (n_heads >= 2, 2); got {r.shape}")
    t = int(np.nanargmax(r[:, 0]))
    others = [h for h in range(r.shape[0]) if h != t]
    c = others[int(np.nanargmax(r[others, 1]))]
    strength = float(min(r[t, 0] - r[c, 0], r[c, 1] - r[t, 1]))
    return {"traverse_head": t, "control_head": c, "strength": strength,
            "traverse": r[:, 0].tolist(), "control": r[:, 1].tolist()}


def division_curve(log: dict) -> dict:
    """The division of labour over a theory-model run, from its ``log`` (``step``, ``roles`` and
    ``usage``): ``{"step", "strength", "traverse_head", "control_head", "switch_root"}``, one entry
    per checkpoint (:func:`role_assignment` of each checkpoint's roles; ``switch_root``: each head's
    attention on the ROOT marker at the switch, from :func:`head_usage`)."""
    if not log["step"] or not len(log["step"]) == len(log["roles"]) == len(log["usage"]):
        raise ValueError(f"log must hold one roles and one usage entry per checkpoint step; got "
                         f"{len(log['step'])} steps, {len(log['roles'])} roles and {len(log['usage'])} usages")
    a = [role_assignment(r) for r in log["roles"]]
    return {"step": [int(s) for s in log["step"]], "strength": [x["strength"] for x in a],
            "traverse_head": [x["traverse_head"] for x in a], "control_head": [x["control_head"] for x in a],
            "switch_root": [u["switch"]["root"] for u in log["usage"]]}


@torch.no_grad()
def h_summary(model) -> dict:
    """Mean diagonal, mean off-diagonal and max |off-diagonal| of the theory model's ``H``."""
    H = model.H.detach().cpu()
    N = H.shape[0]
    off = H[~torch.eye(N, dtype=torch.bool)]
    return {"diag": H.diag().mean().item(), "offdiag": off.mean().item(), "offdiag_max": off.abs().max().item()}


KEY_KINDS = ("edge", "root", "bwd", "fwd", "bos")  # rows of the kind × kind block
QUERY_KINDS = ("bwd", "fwd")                       # the query kinds that predict


@torch.no_grad()
def block_summary(model) -> dict:
    """The entries of each head's key–query blocks that the constructions use, per head:

    - ``"child_is_me"``: mean diagonal of ``W_h[b, b]`` (node part) — "attend to the token whose
      slot b is my current node": the edge whose child is me when climbing, my own
      chain-of-thought token when descending (the paper's ``H`` for one head);
    - ``"parent_is_me"``: mean diagonal of ``W_h[a, b]`` — "attend to the edges whose parent is
      me" (a descent through the edge list, which the constructions do not use);
    - ``"kind"``: ``W_h[kind, kind]`` for key kinds :data:`KEY_KINDS` × query kinds
      :data:`QUERY_KINDS` — which tokens each stage prefers (e.g. edges when climbing, the ROOT
      marker: the stage detection).
    """
    N = model.vocab
    out = {"child_is_me": [], "parent_is_me": [], "kind": []}
    q_idx = [KEY_KINDS.index(k) for k in QUERY_KINDS]  # KEY_KINDS is the embedding's kind order
    for h in range(model.n_heads):
        out["child_is_me"].append(model.block(h, "b", "b")[:N, :N].diag().mean().item())
        out["parent_is_me"].append(model.block(h, "a", "b")[:N, :N].diag().mean().item())
        K = model.block(h, "kind", "kind")
        out["kind"].append(K[:, q_idx].cpu().tolist())
    return out


@torch.no_grad()
def attention_for_example(model, batch: Encoded, i: int = 0, layer: int = -1) -> dict:
    """Example ``i``'s attention (n_heads, queries, T) for the positions that predict something,
    with the tokens' labels for plotting."""
    tokens = batch.tokens[i:i + 1]
    att = _attention(model, tokens, layer)[0]
    T = int((batch.tokens[i, :, 2] != PAD).sum())
    q = (batch.targets[i] >= 0).nonzero().flatten()
    q = q[q < T]
    return {"att": att[:, q, :T].cpu().numpy(), "queries": q.tolist(), "tokens": tokens[0, :T].tolist(),
            "targets": batch.targets[i, q].tolist(), "keys": batch.key[i, q].tolist(),
            "stage": batch.stage[i, q].tolist(), "next_stage": batch.next_stage[i, q].tolist()}


def token_label(tok, vocab: int) -> str:
    """A short label for a token ``(a, b, kind)``: ``p→c`` for an edge, ``ROOT r``, ``u↑v`` for a
    climbing step from u to v, ``↓v`` for a descending one, ``GOAL g``."""
    a, b, kind = tok
    name = lambda x: "END" if x == vocab else ("·" if x == vocab + 1 else str(x))
    if kind == BWD and a == vocab:
        return f"GOAL {name(b)}"
    return {0: f"{name(a)}→{name(b)}", 1: f"ROOT {name(b)}", 2: f"{name(a)}↑{name(b)}", 3: f"↓{name(b)}",
            4: "BOS", 5: ""}[kind]


def steps_text(emitted: list[tuple[int, int]], vocab: int) -> str:
    """A generated sequence as a reader would write it: ``3 ↑ 7 ↑ 1 | ↓ 7 ↓ 3 ↓ END``, with ``|``
    where the model switched to the forward stage."""
    out, prev = [], 0
    for v, s in emitted:
        if s == 1 and prev == 0 and out:
            out.append("|")
        out.append(("↑ " if s == 0 else "↓ ") + ("END" if v == vocab else str(v)))
        prev = s
    return " ".join(out)


# --------------------------------------------------------------------------------------------
# phases, baselines, robustness


def phases(log: dict, threshold: float = PHASE_SOLVED_ACCURACY, strength: float = MIN_ROLE_GAP) -> dict:
    """When each part of the forward task is learned, from a forward-task log of
    :func:`~helpers.tree_cot.train.train_theory` (keys ``step``, ``backward``, ``forward``, ``switch``,
    ``roles``): the first checkpoint at which teacher-forced accuracy reaches ``threshold`` for
    climbing (``"climb"``), the stage switch at the root (``"switch"``) and descending
    (``"descend"``), and at which the heads' division of labour reaches ``strength``
    (``"division"``, :func:`role_assignment`); None where it never happens. ``"order"`` lists the
    parts that happen, by step (ties share a step); ``"last_progress"`` is :func:`last_part_progress`."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}")
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1]; got {strength}")
    steps = log["step"]

    def first(values, ok):
        return next((s for s, v in zip(steps, values) if v is not None and ok(v)), None)

    out = {part: first(log[key], lambda v: v >= threshold) for part, key in PHASE_CURVES.items()}
    if log.get("roles") and np.asarray(log["roles"][-1]).shape[0] >= 2:   # a model whose heads have roles
        out["division"] = first([role_assignment(r)["strength"] for r in log["roles"]], lambda v: v >= strength)
    else:
        out["division"] = None
    happened = sorted((v, k) for k, v in out.items() if v is not None)
    out["order"] = [k for _, k in happened]
    out["last_progress"] = last_part_progress(log, out, threshold)
    return out


PHASE_CURVES = {"climb": "backward", "switch": "switch", "descend": "forward"}   # part → its accuracy in the log
PHASE_RECORD_EXTRAS = ("order", "last_progress")   # the keys of a :func:`phases` record that are not phases


def last_part_progress(log: dict, phases: dict, threshold: float = PHASE_SOLVED_ACCURACY) -> float | None:
    """How far the part learned last had come when the part learned first was solved: its
    teacher-forced accuracy at that step, as a fraction of the way from its first logged value to
    ``threshold`` (0: not started, 1: solved too). Small values mean the parts are learned one after
    the other rather than together. ``phases``: :func:`phases` of the same ``log``; None where a
    part is never solved."""
    at = {k: phases[k] for k in PHASE_CURVES}
    if None in at.values():
        return None
    first, last = min(at, key=at.get), max(at, key=at.get)
    curve = log[PHASE_CURVES[last]]
    a0, a = curve[0], curve[log["step"].index(at[first])]
    return float((a - a0) / (threshold - a0)) if threshold > a0 else 1.0


def random_child_baseline(examples: list[Example]) -> dict[int, float]:
    """Exact accuracy by depth of descending by a uniformly random child at each step: ``E[Π 1/#children]``."""
    acc = np.array([np.prod([1 / len(ex.tree.children(v)) for v in ex.forward[:-1]]) for ex in examples])
    return by_depth(acc, [ex.depth for ex in examples])


def robustness(model, sets: dict[str, dict], vocab: int, task: str) -> dict[str, dict]:
    """Exact-path accuracy of ``model`` on each set of :func:`~helpers.tree_cot.data.robustness_sets`:
    ``{axis: {value: accuracy}}``."""
    out = {}
    for axis, by_value in sets.items():
        out[axis] = {}
        for value, exs in by_value.items():
            out[axis][value] = evaluate(model, exs, vocab, task)["exact"]
    return out


# --------------------------------------------------------------------------------------------
# filter -> sort: decoding and accuracy


def filter_sort_target(ex: FilterSortExample, vocab: int, task: str) -> list[int]:
    """What a perfect model emits: (``"cot"``) the kept values largest first and END, then (both)
    the kept values ascending and END."""
    END = vocab
    check_filter_sort_task(task)
    return (sorted(ex.kept, reverse=True) + [END] if task == "cot" else []) + ex.answer + [END]


@torch.no_grad()
def filter_sort_decode(model, examples: list[FilterSortExample], vocab: int, task: str) -> list[list[int]]:
    """Greedy generation with the format's rules: END closes a stage, the STAGE token is supplied,
    and the query colour c* is written into the tokens whose format carries it (the CoT's filter
    stage, every ``"tagged"`` token) — only the values and END are the model's predictions."""
    check_filter_sort_task(task)
    if not examples:
        raise ValueError("examples must be a non-empty list")
    END, EMPTY = vocab, vocab + 1
    seqs = [filter_sort_prompt(ex, vocab) for ex in examples]
    stage = [BWD if task == "cot" else FWD] * len(examples)

    def append(i: int, v: int) -> bool:
        if v == END:
            if stage[i] == BWD:
                stage[i] = FWD
                seqs[i].append((EMPTY, EMPTY, FWD))
                return True
            return False
        carries_colour = stage[i] == BWD or task == "tagged"   # the format writes c* into these tokens
        seqs[i].append((v, examples[i].target if carries_colour else EMPTY, stage[i]))
        return True

    return greedy_loop(model, seqs, vocab, 2 * max(len(ex.values) for ex in examples) + 4,
                       next(model.parameters()).device, append)


def filter_sort_evaluate(model, examples: list[FilterSortExample], vocab: int, task: str) -> dict:
    """Exact accuracy (whole output, END included), overall and by number of kept items."""
    model.eval()
    emitted = filter_sort_decode(model, examples, vocab, task)
    correct = np.array([e == filter_sort_target(ex, vocab, task) for e, ex in zip(emitted, examples)])
    kept = np.array([len(ex.kept) for ex in examples])
    return {"exact": float(correct.mean()),
            "by_kept": {int(k): float(correct[kept == k].mean()) for k in np.unique(kept)}, "n": len(examples)}
