"""The closing chapter (helpers.one_lens) and the lens's events in helpers.dynamics: turns of
paths with known corners, LLC changes of planted steps, matching against hand-computed distances,
the claims on hand-made readings, chapter 3's record against its own summary, and the smoke run."""
from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.dynamics import change_points, log_distance, match_events, simplify_path, turns
from helpers.one_lens import analysis, claims, train

# ------------------------------------------------------------------------------ the lens's events

def _polyline_distance(points, vertices):
    """Brute force: each point's distance to the nearest segment of the polyline through ``vertices``."""
    out = []
    for p in points:
        best = math.inf
        for a, b in zip(vertices, vertices[1:]):
            for t in np.linspace(0, 1, 2001):
                best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
        out.append(best)
    return np.array(out)


def test_simplify_path_keeps_corners_and_stays_within_tolerance():
    rng = np.random.default_rng(0)
    leg1 = np.stack([np.linspace(0, 10, 30), np.zeros(30)], 1)
    leg2 = np.stack([np.full(30, 10.0), np.linspace(0, 6, 30)], 1)[1:]
    path = np.concatenate([leg1, leg2]) + rng.normal(0, 0.05, (59, 2))
    kept = simplify_path(path, 0.5)
    assert kept[0] == 0 and kept[-1] == len(path) - 1
    assert 28 <= kept[1] <= 30 and len(kept) == 3
    assert _polyline_distance(path, path[kept]).max() <= 0.5 + 1e-3
    # a tolerance below the noise keeps more vertices, and still every point stays within it
    fine = simplify_path(path, 0.02)
    assert len(fine) > 3 and _polyline_distance(path, path[fine]).max() <= 0.02 + 1e-3


def test_turns_finds_the_corner_and_its_angle():
    steps = np.arange(41) * 10
    leg1 = np.stack([np.linspace(0, 1, 21), np.zeros(21)], 1)
    leg2 = np.stack([np.ones(21), np.linspace(0, 1, 21)], 1)[1:]
    found = turns(np.concatenate([leg1, leg2]), steps, tolerance=0.1, min_angle=30)
    assert [(t["index"], t["step"]) for t in found] == [(20, 200)]
    assert found[0]["angle"] == pytest.approx(90.0)
    # a straight line has no turn; a sharp turn below min_angle is not one
    line = np.stack([np.linspace(0, 1, 20), np.linspace(0, 2, 20)], 1)
    assert turns(line, np.arange(20), tolerance=0.1, min_angle=30) == []
    assert turns(np.concatenate([leg1, leg2]), steps, tolerance=0.1, min_angle=91) == []
    # going back the way it came: 180 degrees
    back = np.concatenate([leg1, leg1[::-1][1:]])
    assert turns(back, np.arange(41), tolerance=0.1, min_angle=30)[0]["angle"] == pytest.approx(180.0)


def test_change_points_on_a_planted_step():
    steps = [10, 20, 40, 80, 160]
    values = [5.0, 5.1, 5.0, 9.0, 9.1]
    out = change_points(steps, values, [0.1] * 5, min_sigmas=3, min_fraction=0.1)
    assert len(out) == 1
    ev = out[0]
    assert (ev["from"], ev["to"]) == (40, 80)
    assert ev["step"] == pytest.approx(math.sqrt(41 * 81) - 1)
    assert ev["delta"] == pytest.approx(4.0) and ev["sigmas"] == pytest.approx(4.0 / math.hypot(0.1, 0.1))
    # the same jump within the chains' spread, or below the fraction, is no change
    assert change_points(steps, values, [1.0] * 5, min_sigmas=3, min_fraction=0.1) == []
    assert change_points(steps, values, [0.1] * 5, min_sigmas=3, min_fraction=0.5) == []


def test_match_events_against_hand_computed_distances():
    assert log_distance(99, 999) == pytest.approx(1.0)
    out = match_events({"a": 99, "b": 999, "c": None}, [120, 5000], window=0.1)
    assert out["phases"]["a"]["nearest"] == 120 and out["phases"]["a"]["seen"]
    assert out["phases"]["a"]["decades"] == pytest.approx(math.log10(121 / 100))
    assert out["phases"]["b"]["nearest"] == 5000 and not out["phases"]["b"]["seen"]
    assert out["phases"]["c"]["seen"] is None
    assert out["seen"] == ["a"] and out["missed"] == ["b"] and out["unmatched"] == [5000.0]
    assert match_events({"a": 10}, [], window=0.1)["missed"] == ["a"]


@pytest.mark.parametrize("call, message", [
    (lambda: turns(np.zeros((5, 2)), range(5), tolerance=1.5, min_angle=30), "tolerance"),
    (lambda: turns(np.zeros((5, 2)), range(5), tolerance=0.1, min_angle=200), "min_angle"),
    (lambda: turns(np.zeros((5, 2)), range(4), tolerance=0.1, min_angle=30), "path"),
    (lambda: change_points([1, 2], [1.0], [0.1], min_sigmas=3, min_fraction=0.1), "equal length"),
    (lambda: change_points([1, 2], [1, 2], [0, 0], min_sigmas=3, min_fraction=1.5), "min_fraction"),
    (lambda: match_events({"a": 1}, [1], window=0), "window"),
    (lambda: simplify_path(np.zeros(3), 0.1), "path"),
    (lambda: log_distance(-1, 3), "steps"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------------------------------ the chapter's pieces

def test_llc_events_ignore_unsettled_estimates():
    llc = {"step": [10, 20, 40, 80], "llc": [5.0, -50.0, 5.0, 20.0], "llc_std": [0.1] * 4,
           "settled": [True, False, True, True]}
    out = analysis.llc_events(llc, min_sigmas=3, min_fraction=0.1)
    assert [(e["from"], e["to"]) for e in out] == [(40, 80)]


def test_stage_phases_are_chapter_2s_rule():
    steps = [0, 10, 20, 30, 40]
    assert train.stage_phases(steps, [4.0, 3.0, 1.9, 0.05, 0.01]) == {"slow stage ends": 20, "fast stage ends": 40}
    assert train.stage_phases(steps, [4.0, 3.9, 3.8, 3.7, 3.6]) == {"slow stage ends": None, "fast stage ends": None}
    with pytest.raises(ValueError, match="equal length"):
        train.stage_phases(steps, [1.0])


def test_llc_steps_are_log_spaced_and_distinct():
    s = train.llc_steps(4000, 16)
    assert s[0] == 10 and s[-1] == 4000 and len(s) == 16 and s == sorted(set(s))
    ratios = np.diff(np.log10(s))
    assert np.allclose(ratios, ratios.mean(), atol=0.01)
    with pytest.raises(ValueError, match="points"):
        train.llc_steps(100, 1)


def _row(label, phases, events, kind="pca"):
    m = match_events(phases, events, claims.WINDOW_DECADES)
    other = "llc" if kind == "pca" else "pca"
    return {"label": label, "phases": phases, other: None,
            kind: {"events": [{"step": e} for e in events], "match": m, "chance": 0.25}}


def test_read_setting_reads_only_the_phases_of_a_chapter_1_record():
    """Chapter 1's phase record also holds the order and the last part's progress: neither is a phase."""
    from helpers.tree_cot.analysis import phases
    log = {"step": [0, 100, 200, 300, 400], "backward": [0.1, 0.5, 0.99, 1.0, 1.0],
           "switch": [0.0, 0.99, 1.0, 1.0, 1.0], "forward": [0.0, 0.2, 0.5, 0.995, 1.0], "roles": []}
    record = phases(log)
    assert "order" in record and "last_progress" in record
    path = np.cumsum(np.random.default_rng(0).normal(size=(5, train.PCA_COMPONENTS)), axis=0).tolist()
    rows = analysis.read_setting({"runs": [{"label": "seed 1", "step": log["step"], "path": path, "phases": record}]},
                                 **claims.thresholds())
    assert rows[0]["phases"] == {"climb": 200, "switch": 100, "descend": 300, "division": None}
    assert set(rows[0]["pca"]["match"]["seen"]) | set(rows[0]["pca"]["match"]["missed"]) == {"climb", "switch",
                                                                                          "descend"}


def test_sees_holds_only_when_every_phase_of_every_run_is_seen():
    good = _row("seed 1", {"a": 100, "b": 1000, "c": None}, [110, 1050, 30])
    bad = _row("seed 2", {"a": 100, "b": 1000}, [110, 3000])
    c = claims.sees("tree", "pca", [good])
    assert c.holds and c.kind == "extension" and c.why == ""
    c = claims.sees("tree", "pca", [good, bad])
    assert not c.holds and "seed 2: b at 1000" in c.why and "3000" in c.why
    assert c.measured[0]["events near no phase"] == 1 and c.measured[0]["seen by chance"] == 0.25
    blind = _row("seed 3", {"a": 100}, [])
    assert claims.sees("tree", "pca", [good, blind]).why == "seed 3: no event at all"
    # a run in which no phase happened gives the lens nothing to see: the claim is not credited with it, alone or
    # beside a run that sees everything, whether or not the lens has events; the reason names the run
    for events in ([110], []):
        quiet = _row("seed 4", {"a": None}, events)
        for rows in ([quiet], [good, quiet]):
            c = claims.sees("tree", "pca", rows)
            assert not c.holds and c.why == "seed 4: no phase happened, so there was nothing to see", c.why
    assert claims.sees("tree", "pca", [_row("seed 4", {"a": None}, [110])]).measured[0]["phases"] == {}
    # a run without this lens's estimate is left out, not failed
    c = claims.sees("tree", "pca", [good, _row("seed 5", {"a": 100}, [], kind="llc")])
    assert c.holds and [r["run"] for r in c.measured] == ["seed 1"]
    with pytest.raises(ValueError, match="no run"):
        claims.sees("tree", "llc", [good])
    with pytest.raises(ValueError, match="setting"):
        claims.sees("nope", "pca", [good])


def test_ridge_record_reads_chapter_3s_own_phases():
    rec = train.ridge_record()
    from helpers.transient_ridge import train as ridge_train
    sweep = ridge_train.cpu_store().load_json("metrics.json")["sweep"]
    labels = [s["M"] for s in sweep["summary"]]
    chosen = [s["M"] for s in sweep["summary"] if s["ridge_phase"] and s["crossed"]]
    assert chosen and [r["M"] for r in rec["runs"]] == chosen
    for run in rec["runs"]:
        summary = sweep["summary"][labels.index(run["M"])]
        assert run["phases"]["crosses to dMMSE"] == summary["t_cross"]
        ridge_like = run["phases"]["ridge-like"]
        assert ridge_like is not None and ridge_like <= summary["t_cross"]
        # the first checkpoint nearer ridge than dMMSE_M and under half the untrained distance, found by hand
        g = labels.index(run["M"])
        dr, dd = np.asarray(sweep["d_ridge"])[:, g], np.asarray(sweep["d_dmmse"])[:, g]
        first = next(i for i in range(len(dr)) if dr[i] < dd[i] and dr[i] < 0.5 * sweep["d_zero_ridge"][g])
        assert ridge_like == int(sweep["step"][first])
        assert np.asarray(run["path"]).shape == (len(sweep["step"]), train.PCA_COMPONENTS)
    lot = ridge_train.cpu_store().load_json("metrics.json")["llc_over_training"]
    with_llc = [r for r in rec["runs"] if r["llc"] is not None]   # only chapter 3's LLC run holds the LLC
    assert [r["M"] for r in with_llc] == [str(lot["M"])]
    assert with_llc[0]["llc"]["llc"] == lot["llc"] and with_llc[0]["llc"]["step"] == [int(s) for s in lot["groups"]]
    assert sum(rec["explained"]) <= 1 + 1e-9


def test_ridge_record_reads_each_run_s_own_path_when_the_sweep_has_several_seeds(monkeypatch):
    # chapter 3 stores probe features for the first seed of every M only (the joint PCA's runs): a
    # second seed, interleaved in the sweep, must neither shift which features a run's path is read
    # from nor get a path of its own
    import copy

    from helpers.transient_ridge import train as ridge_train
    real = ridge_train.cpu_store()          # the run the closing chapter reads: the CPU configuration's, one seed
    m, arrays, run = real.load_json("metrics.json"), real.load_arrays("arrays.npz"), real.read_run()
    one_seed = train.ridge_record()
    sw = copy.deepcopy(m["sweep"])
    G = len(sw["summary"])
    order = [g for g in range(G) for _ in range(2)]                 # every group twice: seed 0, then seed 1
    two = copy.deepcopy(m)
    two["sweep"].update(groups=[[sw["groups"][g][0], i % 2] for i, g in enumerate(order)],
                        summary=[dict(sw["summary"][g], seed=i % 2) for i, g in enumerate(order)],
                        d_zero_ridge=[sw["d_zero_ridge"][g] for g in order])
    for key in ("d_ridge", "d_dmmse"):
        two["sweep"][key] = [[row[g] for g in order] for row in sw[key]]

    class Store:
        def load_json(self, name):
            return two

        def load_arrays(self, name):
            return arrays

        def read_run(self):
            return run

    monkeypatch.setattr(ridge_train, "cpu_store", lambda: Store())
    rec = train.ridge_record()
    assert [r["label"] for r in rec["runs"]] == [f"{r['label']}, seed 0" for r in one_seed["runs"]]
    for a, b in zip(rec["runs"], one_seed["runs"]):
        assert a["M"] == b["M"] and a["phases"] == b["phases"] and a["d_ridge"] == b["d_ridge"]
        assert np.allclose(a["path"], b["path"]) and (a["llc"] is None) == (b["llc"] is None)


def test_full_run_pipeline_in_smoke_mode(monkeypatch):
    from helpers.one_lens.__main__ import main
    from helpers.results import output_root
    monkeypatch.setenv("BOOK_MODE", "smoke")
    assert main(["--mode", "smoke", "--no-progress"]) == 0
    out = train.store(output_root("smoke"))
    metrics = out.load_json("metrics.json")
    cfg = train.sizes("smoke")
    assert len(metrics["tree"]["runs"]) == len(cfg.tree_runs)
    for setting in ("tree", "standard", "cot", "balanced"):
        for run in metrics[setting]["runs"]:
            assert len(run["path"]) == len(run["step"]) and len(run["path"][0]) == train.PCA_COMPONENTS
            if setting != "standard":
                assert len(run["llc"]["llc"]) == len(run["llc"]["step"]) <= cfg.llc_points
    assert len(metrics["standard"]["runs"]) == len(cfg.std_seeds)
    table = out.load_claims()
    expected = {f"{lens}_sees_{s}" for s in analysis.SETTINGS for lens in claims.LENSES} - {"llc_sees_standard"}
    assert {c.id for c in table.claims} == expected
    assert all(c.kind == "extension" for c in table.claims)
    assert main(["--mode", "smoke", "--claims-only"]) == 0


def test_event_coverage_against_hand_computed_fractions():
    from helpers.dynamics import event_coverage
    # the span log10(1 + step) from 0 to 4; an event at 10**2 - 1 covers 0.2 decades of 4
    assert event_coverage([99], 0.1, 0, 9999) == pytest.approx(0.2 / 4)
    # two overlapping windows count once; a window past the end is cut
    assert event_coverage([99, 99 * 1.1], 0.1, 0, 9999) == pytest.approx(
        (math.log10(1 + 99 * 1.1) + 0.1 - (2 - 0.1)) / 4)
    assert event_coverage([9999], 0.1, 0, 9999) == pytest.approx(0.1 / 4)
    assert event_coverage([], 0.1, 0, 9999) == 0.0
    # brute force on a grid of log-uniform steps
    events = [3, 40, 41, 700, 5000]
    grid = np.linspace(0, 4, 40001)
    seen = [any(abs(g - math.log10(1 + e)) <= 0.1 for e in events) for g in grid]
    assert event_coverage(events, 0.1, 0, 9999) == pytest.approx(np.mean(seen), abs=1e-3)
    with pytest.raises(ValueError, match="last"):
        event_coverage([1], 0.1, 5, 5)


def test_summary_table_has_a_row_per_run_and_lens():
    rows = [_row("seed 1", {"a": 100, "b": 1000}, [110, 3000]), _row("seed 2", {"a": 100}, [], kind="llc")]
    lines = claims.summary_table({"tree": rows}, "tree").splitlines()
    assert lines[0].startswith("| run | lens |") and len(lines) == 2 + 2
    assert lines[2] == "| seed 1 | PCA | a 100, b 1000 | 110, 3000 | a | b | 1 | 25% |"
    assert lines[3] == "| seed 2 | LLC | a 100 | none | none | a | 0 | 25% |"
    with pytest.raises(ValueError, match="setting"):
        claims.summary_table({"tree": rows}, "cot")
