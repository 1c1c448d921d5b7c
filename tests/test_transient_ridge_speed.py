"""Chapter 3's fast step: on-device vectorised batches, the step loop, precision, partial runs, the benchmark."""
from __future__ import annotations

import json
import math
import sys
import tarfile

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers.results import git_commit
from helpers.training import NonFiniteLossError
from helpers.transient_ridge import GroupedTransformer, ModelConfig, SweepConfig, TaskPool, bench, claims, train
from helpers.transient_ridge.data import sample_groups
from helpers.transient_ridge.models import forward_flops

TINY = ModelConfig(D=3, K=4, d_model=8, n_layers=1, n_heads=2, d_mlp=16)


def test_sample_groups_draws_each_group_from_its_own_pool():
    pool = TaskPool(3).tasks(16)
    Ms = torch.tensor([1.0, 4.0, 16.0, math.inf])
    g = torch.Generator().manual_seed(0)
    xs, ys = sample_groups(pool, Ms, 2000, 5, 1e-10, g)
    assert xs.shape == (4, 2000, 5, 3) and ys.shape == (4, 2000, 5)
    # recover each sequence's task by least squares (5 pairs, 3 unknowns, no noise to speak of)
    t = torch.linalg.lstsq(xs, ys.unsqueeze(-1)).solution.squeeze(-1)          # (G, B, D)
    nearest = torch.cdist(t, pool).argmin(-1)                                  # (G, B)
    assert set(nearest[0].tolist()) == {0}
    assert set(nearest[1].tolist()) == {0, 1, 2, 3} and set(nearest[2].tolist()) == set(range(16))
    assert (torch.cdist(t[3], pool).min(-1).values > 0.3).float().mean() > 0.9   # fresh tasks: rarely a pool task
    xs, ys = sample_groups(pool, Ms, 2000, 5, 0.1, g)
    noise = ys[0] - xs[0] @ pool[0]                                           # M = 1: the task is t_1
    assert noise.var().item() == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match="pool must be"):
        sample_groups(pool[0], Ms, 2, 5, 0.1)
    with pytest.raises(ValueError, match="batch"):
        sample_groups(pool, Ms, 0, 5, 0.1)


def test_batch_of_a_step_is_the_same_whenever_it_is_drawn():
    cfg = SweepConfig(Ms=(1, 4, math.inf), seeds=(0, 1), model=TINY, batch=3, steps=5)
    a = train.batch_fn(cfg, TaskPool(3))
    b = train.batch_fn(cfg, TaskPool(3))
    first = [a(s) for s in range(4)]
    again = [b(s) for s in (3, 1, 0, 2)]
    for s, j in zip((3, 1, 0, 2), range(4)):
        assert torch.equal(first[s][0], again[j][0]) and torch.equal(first[s][1], again[j][1])
    assert not torch.equal(first[0][0], first[1][0])
    tokens, ys = first[0]
    assert tokens.shape == (6, 3, 8, 4) and torch.equal(tokens[..., 1::2, 0], ys)


def test_forward_flops_match_a_flop_counter():
    c = ModelConfig(D=4, K=8, d_model=32, n_layers=2, n_heads=2, d_mlp=64)
    model = GroupedTransformer(c, 3)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(3, 5, 16, 5), return_attention=True)       # attention as explicit matmuls
    assert counter.get_total_flops() == forward_flops(c) * 3 * 5
    S = train.sizes("full", "gpu")
    assert S.flops_per_step() == 3 * forward_flops(S.model) * S.batch * len(S.sweep_config().groups)


def test_the_gpu_configuration_is_the_papers_task():
    S = train.sizes("full", "gpu")
    assert (S.model.D, S.model.K, S.sigma2, S.model.n_layers) == (8, 16, 0.125, 2)
    finite = [M for M in S.Ms if M != math.inf]
    assert len(finite) >= 12 and min(finite) == 1 and max(finite) >= 1024 and math.inf in S.Ms
    assert len(S.seeds) >= 3 and S.eval_n >= claims.T_CRIT_MIN_OOD
    assert GroupedTransformer(S.model).parameter_count() >= 400_000
    # projected at <= 6 minutes on one GPU at a stated 40 TFLOP/s and 1.5 ms per step (without the curriculum,
    # which the run skips when --max-minutes leaves no time for it)
    step = S.flops_per_step() / 40e12 + 1.5e-3
    assert bench.projected_seconds(S, step, 40.0, 1.5e-3)["total_without_curriculum"] <= 360
    assert train.sizes("full") == S and train.sizes("full", "cpu").model.D == 4


def test_precisions_and_compile_fallback(monkeypatch):
    cfg = SweepConfig(Ms=(1, math.inf), model=TINY, batch=8, steps=30)
    check = train.precision_check(cfg, [0, 10, 20, 30], precisions=("tf32", "bf16"), eval_n=64)
    assert check["fp32"]["max_relative_difference"] == 0
    assert check["tf32"]["max_relative_difference"] < 1e-3          # no TF32 cores on a CPU: the same arithmetic
    # bf16 really changes the arithmetic (a switch that did nothing would leave the curves equal), and not by much
    assert 0 < check["bf16"]["max_relative_difference"] < 0.2, check["bf16"]["max_relative_difference"]
    with pytest.raises(ValueError, match="precision must be one of"):
        with train.precision("fp64"):
            pass

    def broken(model, enabled):
        def fail(*a, **k):
            raise RuntimeError("no compiler")
        return fail if enabled else model
    monkeypatch.setattr(train, "compiled", broken)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        _, log = train.train_sweep(cfg, [0, 30], eval_n=8, n_probe=2, progress=False, compile=True)
    assert log["compile"].startswith("failed") and len(log["ood"]) == 2


def test_the_backward_pass_runs_in_the_steps_arithmetic(monkeypatch):
    """TF32 is a global switch read when each kernel starts: a backward pass outside the
    ``precision`` block would run in full float32 (the benchmark once timed it so)."""
    cfg = SweepConfig(Ms=(1, math.inf), model=TINY, batch=8, steps=4)
    seen = []
    real = train.sweep_loss

    def watched(model, batch):
        loss = real(model, batch)
        loss.register_hook(lambda g: seen.append(torch.get_float32_matmul_precision()))
        return loss
    monkeypatch.setattr(train, "sweep_loss", watched)
    train.time_grouped_vs_separate(cfg, steps=1, precision_mode="tf32")
    train.train_sweep(cfg, [0, 4], eval_n=8, n_probe=2, progress=False, precision_mode="tf32")
    assert len(seen) == 4 + 4 * len(cfg.groups) + 4 and set(seen) == {"high"}, seen


def test_precision_sets_the_arithmetic_and_restores_it():
    a = torch.ones(2, 2)
    before = torch.get_float32_matmul_precision()
    with train.precision("bf16"):
        assert (a @ a).dtype == torch.bfloat16
    with train.precision("fp32"):
        assert (a @ a).dtype == torch.float32 and torch.get_float32_matmul_precision() == before
    with train.precision("tf32"):
        assert torch.get_float32_matmul_precision() == "high" and (a @ a).dtype == torch.float32
    assert torch.get_float32_matmul_precision() == before and (a @ a).dtype == torch.float32
    with pytest.raises(RuntimeError, match="inside"):
        with train.precision("tf32"):
            raise RuntimeError("inside")
    assert torch.get_float32_matmul_precision() == before          # restored after an exception too


def test_nonfinite_loss_names_the_step_range(monkeypatch):
    cfg = SweepConfig(Ms=(1, 4), model=TINY, batch=4, steps=30)
    real = train.batch_fn

    def poisoned(cfg_, pool, device="cpu", seed=0):
        draw = real(cfg_, pool, device, seed)
        return lambda step: (lambda t, y: (t, y * (math.nan if step == 13 else 1.0)))(*draw(step))
    monkeypatch.setattr(train, "batch_fn", poisoned)
    with pytest.raises(NonFiniteLossError, match="between steps 10 and 20"):
        train.train_sweep(cfg, [0, 30], eval_n=8, n_probe=2, progress=False, check_every=10)
    with pytest.raises(ValueError, match="check_every"):
        train.train_sweep(cfg, [0, 30], eval_n=8, n_probe=2, progress=False, check_every=0)


def test_a_run_cut_short_leaves_complete_results(tmp_path):
    saved = []
    store = train.store(tmp_path)

    def save(run):
        saved.append(run.extra["stage"])
        store.save_run(run, claims.evaluate(run.metrics), mode="smoke")

    run = train.full_run("smoke", progress=False, max_minutes=1e-6, save=save)
    assert saved[0] == "pca" and saved[-1] == "done"
    record = store.read_run()["extra"]
    assert record["stopped_by"] == "max_minutes" and record["complete"] is False
    assert record["steps_done"] < record["steps"] and "curriculum" in record["skipped"]
    m = store.load_json("metrics.json")
    assert m["sweep"]["step"][-1] == record["steps_done"] and "curriculum" not in m
    ids = [c.id for c in store.load_claims().claims]
    assert "transient_ridge" in ids and "curriculum_matches_fixed_M" not in ids
    assert run.extra == record
    with pytest.raises(ValueError, match="max_minutes"):
        train.full_run("smoke", progress=False, max_minutes=0)
    with pytest.raises(ValueError, match="scale must be one of"):
        train.sizes("full", "tpu")


def test_a_second_call_finishes_the_curriculum_a_run_skipped(tmp_path, capsys):
    from helpers.transient_ridge import gpu
    whole = train.full_run("smoke", progress=False)                  # the same run, uninterrupted
    store = train.store(tmp_path)
    cut = train.full_run("smoke", progress=False, max_minutes=1e-6)
    store.save_run(cut, claims.evaluate(cut.metrics), mode="smoke")
    store.rederive_claims(claims.evaluate)                            # an earlier re-judging, to be dropped
    first = store.read_run()
    assert gpu.main(["--finish-curriculum", str(store.dir)]) == 0
    run, m = store.read_run(), store.load_json("metrics.json")
    # the curriculum trains a model of its own from seeded batches: the same curves as in one call
    np.testing.assert_allclose(m["curriculum"]["ood"], whole.metrics["curriculum"]["ood"], rtol=1e-5)
    assert m["curriculum"]["stages"] == whole.metrics["curriculum"]["stages"]
    assert m["sweep"]["step"] == cut.metrics["sweep"]["step"]        # the sweep as it was
    np.testing.assert_allclose(m["sweep"]["ood"], cut.metrics["sweep"]["ood"])
    extra = run["extra"]
    assert "skipped" not in extra and extra["skipped_first"] == first["extra"]["skipped"]
    assert extra["curriculum_call"]["git_commit"] == git_commit()[0] and extra["curriculum_call"]["seconds"] > 0
    assert extra["complete"] is False                                  # its sweep was still cut short
    assert (run["git_commit"], run["date"]) == (first["git_commit"], first["date"])   # the first call's provenance
    assert "claims_rederived" in first and "claims_rederived" not in run   # the claims were judged anew
    assert "curriculum_matches_fixed_M" in [c.id for c in store.load_claims().claims]
    # nothing left to finish; no run there at all
    assert gpu.main(["--finish-curriculum", str(store.dir)]) == 2
    assert "did not skip its curriculum" in capsys.readouterr().err
    assert gpu.main(["--finish-curriculum", str(tmp_path / "nothing")]) == 2
    assert "holds no run.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu.main([])                                                   # --out is required otherwise


def test_finishing_a_gpu_run_s_curriculum_needs_a_gpu(tmp_path, monkeypatch, capsys):
    from helpers.results import RunOutput, jsonable
    from helpers.transient_ridge import gpu
    store = train.store(tmp_path)
    metrics = {"sizes": jsonable(train.sizes("full", "gpu").to_json()), "scale": "gpu", "seconds": {}}
    store.save_run(RunOutput(metrics=metrics, seeds=[0], device="cpu", seconds=1.0,
                             extra={"skipped": "curriculum (stopped at step 5 by max_minutes)"}), [], mode="full")
    monkeypatch.setattr(train, "train_curriculum", lambda *a, **k: pytest.fail("it must not train"))
    assert gpu.main(["--finish-curriculum", str(store.dir)]) == 2
    assert "no GPU" in capsys.readouterr().err
    assert "skipped" in store.read_run()["extra"]                      # the run is left as it was


def test_claims_only_rederives_the_stored_run(tmp_path):
    from helpers.transient_ridge.__main__ import main
    assert main(["--mode", "smoke", "--no-progress", "--out", str(tmp_path)]) == 0
    store = train.store(tmp_path)
    before = store.load_json("metrics.json")
    assert main(["--mode", "smoke", "--claims-only", "--out", str(tmp_path)]) == 0
    after = store.load_json("metrics.json")
    assert after["sweep"]["summary"] == before["sweep"]["summary"] and after["pca"]["bend"] == before["pca"]["bend"]
    assert "claims_rederived" in store.read_run()


def test_bench_command_and_gpu_script_at_smoke_size(tmp_path, capsys):
    assert bench.main(["--mode", "smoke", "--steps", "1", "--no-separate", "--json", str(tmp_path / "b.json")]) == 0
    record = json.loads((tmp_path / "b.json").read_text())
    row = record["rows"][0]
    assert record["git_commit"] == git_commit()[0]                    # which code was timed
    assert row["grouped_ms_per_step"] > 0 and row["achieved_tflops"] > 0
    assert row["projected_seconds"]["sweep"] == pytest.approx(train.sizes("smoke").steps
                                                              * row["grouped_ms_per_step"] / 1e3)
    assert bench.main(["--assume-tflops", "40"]) == 0 and "projected_seconds" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
    from helpers.transient_ridge import gpu
    assert gpu.main(["--mode", "smoke", "--out", str(tmp_path / "run"), "--bench-steps", "1", "--precisions", "fp32",
                     "tf32", "--check-steps", "5"]) == 0
    assert set(json.loads((tmp_path / "run" / "precision.json").read_text())) == {"fp32", "tf32"}
    names = tarfile.open(tmp_path / "run.tar.gz").getnames()
    for f in ("device.json", "bench.json", "precision.json", "log.txt", "transient_ridge/run.json",
              "transient_ridge/claims.json", "transient_ridge/metrics.json"):
        assert f"run/{f}" in names, f


def test_the_gpu_call_s_checks_report_each_exit_status(tmp_path, monkeypatch):
    from helpers.transient_ridge import gpu
    quick = {"ok": "pass", "broken": "import sys; sys.exit(3)", "slow": "import time; time.sleep(60)"}
    monkeypatch.setattr(gpu, "chapter_command", lambda ch, out: [sys.executable, "-c", quick[ch]])
    (tmp_path / "test_ok.py").write_text("def test_ok():\n    pass\n")
    result = gpu.run_checks(tmp_path, tests=(str(tmp_path / "test_ok.py"),), chapters=tuple(quick), timeout=6)
    assert result["unit tests"]["exit"] == 0 and "1 passed" in (tmp_path / "checks" / "pytest.log").read_text()
    assert [result[f"smoke {ch}"]["exit"] for ch in quick] == [0, 3, None]     # None: stopped at the time limit
    assert result["smoke slow"]["seconds"] < 30 and result["smoke broken"]["seconds"] < result["smoke slow"]["seconds"]
    assert {p.name for p in (tmp_path / "checks").iterdir()} == {"pytest.log", "smoke-ok.log", "smoke-broken.log",
                                                                "smoke-slow.log"}


def test_bf16_training_steps_on_the_current_weights():
    """autocast keeps its bf16 copies of the weights until its block ends: one block around the whole
    training loop (as the sweep once had) ran every step's forward pass on the first step's weights."""
    cfg = SweepConfig(Ms=(1,), model=TINY, batch=16, lr=3e-3, steps=150)
    logs = {p: train.train_sweep(cfg, [0, 150], eval_n=64, n_probe=2, progress=False, precision_mode=p)[1]
            for p in ("fp32", "bf16")}
    start, fp32, bf16 = logs["fp32"]["id"][0][0], logs["fp32"]["id"][-1][0], logs["bf16"]["id"][-1][0]
    assert fp32 < 0.5 * start                                   # it learns in float32 …
    assert abs(bf16 - fp32) < 0.1 * fp32, (start, fp32, bf16)   # … and as well in bf16


def test_a_shown_command_leaves_out_the_machine_s_output_paths():
    run = {"command": "python -m helpers.transient_ridge.gpu --out /tmp/x/run --max-minutes 8.3 --archive /o/r.tar.gz"}
    assert train.shown_command(run) == "python -m helpers.transient_ridge.gpu --max-minutes 8.3"
    assert train.shown_command({"command": "python -m helpers.transient_ridge --mode full"}) == \
        "python -m helpers.transient_ridge --mode full"
