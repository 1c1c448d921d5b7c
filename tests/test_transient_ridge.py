import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.transient_ridge import (
    TaskPool,
    detokenize,
    dmmse_estimates,
    dmmse_predictor,
    mse,
    predictor_distance,
    ridge_estimates,
    ridge_predictor,
    sample_batch,
    tokenize,
)

F64 = torch.float64


def gaussian_data(B=6, K=5, D=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, D, generator=g, dtype=F64), torch.randn(B, K, generator=g, dtype=F64)


# ---------------------------------------------------------------- data

def test_pools_are_nested_bit_for_bit():
    pool = TaskPool(D=4, seed=3)
    big = pool.tasks(3000)
    for M in (1, 7, 1024, 1025, 2999):
        assert torch.equal(TaskPool(D=4, seed=3).tasks(M), big[:M])
    assert not torch.equal(TaskPool(D=4, seed=4).tasks(5), big[:5])


def test_finite_M_draws_only_pool_tasks_and_infinite_M_fresh_ones():
    pool = TaskPool(D=3)
    g = torch.Generator().manual_seed(0)
    b = sample_batch(pool, 4, batch=500, K=2, sigma2=0.1, generator=g)
    pool4 = pool.tasks(4)
    matches = (b.tasks.unsqueeze(1) == pool4.unsqueeze(0)).all(-1)
    assert matches.any(1).all() and (matches.sum(0) > 50).all()  # every draw is a pool task; all 4 used
    fresh = sample_batch(pool, math.inf, batch=500, K=2, sigma2=0.1, generator=g)
    assert len(torch.unique(fresh.tasks, dim=0)) == 500


def test_labels_follow_the_task_with_the_stated_noise():
    pool = TaskPool(D=4)
    b = sample_batch(pool, math.inf, batch=4000, K=8, sigma2=0.125, generator=torch.Generator().manual_seed(1))
    noise = b.ys - torch.einsum("bkd,bd->bk", b.xs, b.tasks)
    assert abs(noise.var().item() - 0.125) < 0.01 and abs(noise.mean().item()) < 0.01


def test_tokenize_layout_and_round_trip():
    xs, ys = gaussian_data(B=2, K=3, D=2)
    tokens = tokenize(xs, ys)
    assert tokens.shape == (2, 6, 3)
    assert torch.equal(tokens[:, 0, 1:], xs[:, 0]) and (tokens[:, 0, 0] == 0).all()
    assert torch.equal(tokens[:, 1, 0], ys[:, 0]) and (tokens[:, 1, 1:] == 0).all()
    back_x, back_y = detokenize(tokens)
    assert torch.equal(back_x, xs) and torch.equal(back_y, ys)


@pytest.mark.parametrize("call, match", [
    (lambda: sample_batch(TaskPool(3), 0, 4, 4, 0.1), "M must be an int >= 1"),
    (lambda: sample_batch(TaskPool(3), 4, 4, 0, 0.1), "K must be an int >= 1"),
    (lambda: sample_batch(TaskPool(3), 4, 4, 4, 0.0), "sigma2"),
    (lambda: sample_batch(TaskPool(3), 4, 4, 4, -1.0), "sigma2"),
    (lambda: TaskPool(0), "D must be an int >= 1"),
    (lambda: dmmse_predictor(*gaussian_data(D=3), torch.zeros(4, 2), 0.1), "dimension D=2 but xs has D=3"),
    (lambda: dmmse_predictor(*gaussian_data(D=3), torch.zeros(0, 3), 0.1), "non-empty"),
    (lambda: ridge_predictor(*gaussian_data(), sigma2=0.0), "sigma2"),
    (lambda: ridge_predictor(torch.full((1, 2, 3), math.nan), torch.zeros(1, 2), 0.1), "finite"),
    (lambda: ridge_predictor(torch.zeros(1, 2, 3), torch.zeros(1, 3), 0.1), r"ys \(B, K\)"),
    (lambda: predictor_distance(torch.zeros(2, 3), torch.zeros(2, 4), 3), "same shape"),
])
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---------------------------------------------------------------- predictors against brute force

@settings(max_examples=20, deadline=None)
@given(K=st.integers(1, 6), D=st.integers(1, 4), sigma2=st.floats(0.01, 2.0), seed=st.integers(0, 10_000))
def test_ridge_equals_least_squares_on_augmented_rows(K, D, sigma2, seed):
    xs, ys = gaussian_data(B=2, K=K, D=D, seed=seed)
    est = ridge_estimates(xs, ys, sigma2)
    for b in range(2):
        for k in range(K):
            X = np.vstack([xs[b, :k].numpy(), math.sqrt(sigma2) * np.eye(D)])
            y = np.concatenate([ys[b, :k].numpy(), np.zeros(D)])
            expected = np.linalg.lstsq(X, y, rcond=None)[0]
            assert np.allclose(est[b, k].numpy(), expected, atol=1e-9)
    assert torch.equal(est[:, 0], torch.zeros(2, D, dtype=F64))


def test_dmmse_equals_the_explicit_posterior_mean():
    xs, ys = gaussian_data(B=3, K=5, D=2, seed=1)
    tasks = torch.randn(4, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    sigma2 = 0.3
    est = dmmse_estimates(xs, ys, tasks, sigma2, chunk=3)  # chunks of 3 and 1: the online softmax is used
    for b in range(3):
        for k in range(5):
            likelihood = [math.exp(-sum((ys[b, j] - xs[b, j] @ t).item() ** 2 for j in range(k)) / (2 * sigma2))
                          for t in tasks]
            posterior = np.array(likelihood) / sum(likelihood)
            assert np.allclose(est[b, k].numpy(), posterior @ tasks.numpy(), atol=1e-10)
    assert torch.allclose(est[:, 0], tasks.mean(0).expand(3, 2))


def test_dmmse_is_stable_for_large_residuals():
    xs, ys = gaussian_data(B=2, K=16, D=8, seed=3)
    xs, ys = xs.float() * 10, ys.float() * 100
    tasks = 30 * torch.randn(64, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float32)
    sigma2 = 0.01
    preds = dmmse_predictor(xs, ys, tasks, sigma2)
    assert torch.isfinite(preds).all()
    # chunks of 7 tasks (9 of 7 and one of 1): the running log-sum-exp rescales across chunks on logits of
    # order −sse/(2σ²) ~ −1e9, where a plain softmax over exp(logits) would be 0/0
    est = dmmse_estimates(xs, ys, tasks, sigma2, chunk=7).double().numpy()
    assert np.isfinite(est).all()
    T = tasks.double().numpy()
    # k = 0 (no pairs before it): every task has likelihood 1, so the estimate is the pool's mean task
    assert np.allclose(est[:, 0], T.mean(0), rtol=0, atol=1e-5)
    # independently, in float64: each task's sum of squared errors over the pairs before k
    X, Y = xs.double().numpy(), ys.double().numpy()
    sse = np.zeros((2, 16, 64))
    for k in range(1, 16):
        sse[:, k] = sse[:, k - 1] + (Y[:, k - 1, None] - X[:, k - 1] @ T.T) ** 2
    assert sse[:, 1:].max() > 1e7                                  # extreme: exp(−sse/(2σ²)) underflows
    ordered = np.sort(sse, -1)
    gap = ordered[..., 1] - ordered[..., 0]
    best = sse.argmin(-1)
    # where the runner-up is ≫ 2σ² behind (its weight below e^−100) and the gap dwarfs float32 rounding of the
    # sse, the posterior is a point mass: the estimate is the best task itself
    decisive = (gap >= 100 * 2 * sigma2) & (gap >= 1e-4 * ordered[..., 1])
    decisive[:, 0] = False
    assert decisive[:, 1:].mean() >= 0.9                           # the check is not vacuous …
    chunk_of_best = best[decisive] // 7                            # … chunks before the best one are rescaled
    assert (chunk_of_best > 0).any() and (chunk_of_best < 9).any()  # away, and chunks after it add weight 0
    assert np.allclose(est[decisive], T[best[decisive]], rtol=0, atol=1e-6), \
        np.abs(est[decisive] - T[best[decisive]]).max()


def test_dmmse_approaches_ridge_as_M_grows():
    D, K, sigma2 = 4, 8, 0.25
    pool = TaskPool(D, seed=0)
    b = sample_batch(pool, math.inf, batch=512, K=K, sigma2=sigma2, generator=torch.Generator().manual_seed(5))
    ridge = ridge_predictor(b.xs, b.ys, sigma2)
    distances = [predictor_distance(dmmse_predictor(b.xs, b.ys, pool.tasks(M), sigma2), ridge, D)
                 for M in (4, 64, 4096)]
    assert distances[0] > distances[1] > distances[2]
    assert distances[2] < 0.1 * distances[0]


def test_each_predictor_is_best_on_its_own_prior():
    D, K, sigma2, M = 4, 8, 0.25, 4
    pool = TaskPool(D, seed=0)
    g = torch.Generator().manual_seed(6)
    gauss = sample_batch(pool, math.inf, batch=4000, K=K, sigma2=sigma2, generator=g)
    in_pool = sample_batch(pool, M, batch=4000, K=K, sigma2=sigma2, generator=g)
    tasks = pool.tasks(M)
    assert mse(ridge_predictor(gauss.xs, gauss.ys, sigma2), gauss.ys) < mse(
        dmmse_predictor(gauss.xs, gauss.ys, tasks, sigma2), gauss.ys)
    assert mse(dmmse_predictor(in_pool.xs, in_pool.ys, tasks, sigma2), in_pool.ys) < mse(
        ridge_predictor(in_pool.xs, in_pool.ys, sigma2), in_pool.ys)


# ---------------------------------------------------------------- the command line

class _Ran(Exception):
    """Raised by the stand-in full run: the command got past its checks."""


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """``main(args, device)``: the chapter's command with the device pick faked and the training
    replaced by a stand-in that records its keyword arguments and stops; returns the exit status
    (or the recorded arguments when the run started)."""
    from helpers.transient_ridge import __main__ as command
    from helpers.transient_ridge import train

    def fake_run(mode, progress=True, **kwargs):
        raise _Ran(dict(kwargs, mode=mode))

    monkeypatch.setattr(train, "full_run", fake_run)

    def main(args, device="cpu"):
        monkeypatch.setattr(command, "pick_device", lambda: torch.device(device))
        try:
            return command.main([*args, "--out", str(tmp_path), "--no-progress"])
        except _Ran as ran:
            return ran.args[0]
    return main


def test_full_run_without_scale_is_refused_on_a_cpu(cli, capsys):
    assert cli(["--mode", "full"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "the default full run is the GPU configuration" in err
    assert "--scale cpu" in err and "about 80 minutes on 2 CPU cores" in err and "--scale gpu" in err
    assert cli([]) == 2                                           # --mode full is the default


@pytest.mark.parametrize("args, device, scale", [
    (["--mode", "full", "--scale", "cpu"], "cpu", "cpu"),
    (["--mode", "full", "--scale", "gpu"], "cpu", "gpu"),
    (["--mode", "full"], "cuda", None),
    (["--mode", "full"], "mps", None),
    (["--mode", "smoke"], "cpu", None),
])
def test_scale_or_a_gpu_or_smoke_mode_lets_the_run_start(cli, args, device, scale):
    ran = cli(args, device)
    assert isinstance(ran, dict) and ran["scale"] == scale and ran["mode"] == args[1]


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "soon"])
def test_max_minutes_must_be_finite_and_positive(cli, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        cli(["--mode", "smoke", f"--max-minutes={value}"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --max-minutes: must be a finite number of minutes > 0" in err and repr(value) in err
    assert cli(["--mode", "smoke", "--max-minutes", "0.5"])["max_minutes"] == 0.5


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_gpu_script_max_minutes_must_be_finite_and_positive(tmp_path, capsys, value):
    from helpers.transient_ridge import gpu
    with pytest.raises(SystemExit) as exit_:
        gpu.main(["--mode", "smoke", "--out", str(tmp_path / "run"), f"--max-minutes={value}"])
    assert exit_.value.code == 2
    assert "argument --max-minutes: must be a finite number of minutes > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()                        # refused before any work
