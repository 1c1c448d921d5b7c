import warnings

import numpy as np
import pytest
import torch

from helpers.multistep_gd import (LinearSelfAttention, SparseLSA, UnstableStepWarning, covariance_with_condition,
                                  gd_iterates, gd_weights, looped_predict, no_cot_predict, one_step_error,
                                  one_step_optimum, predict_next, prompt_matrix, rollout, sample_prompts,
                                  squared_error, stability_bound, teacher_forced)
from helpers.multistep_gd import experiments as ex

F64 = torch.float64


def prompts(batch=8, n=20, d=5, seed=0, **kw):
    return sample_prompts(batch, n, d, generator=torch.Generator().manual_seed(seed), dtype=F64, **kw)


def gd_model(d, eta, dtype=F64):
    W_PV, W_KQ = gd_weights(d, eta, dtype=dtype)
    model = LinearSelfAttention(d, dtype=dtype)
    with torch.no_grad():
        model.W_PV.copy_(W_PV)
        model.W_KQ.copy_(W_KQ)
    return model


# ---------------------------------------------------------------- data

def test_prompt_shapes_and_noiseless_labels():
    P = prompts(batch=3, n=7, d=4)
    assert P.X.shape == (3, 4, 7) and P.y.shape == (3, 7) and P.w_star.shape == (3, 4)
    assert torch.allclose(P.y, torch.einsum("bdn,bd->bn", P.X, P.w_star))


def test_gd_iterates_match_the_closed_form():
    P = prompts(batch=4, n=30, d=5)
    eta, k = 0.3, 7
    W = gd_iterates(P.X, P.y, eta, k)
    for b in range(4):
        X, y = P.X[b].numpy(), P.y[b].numpy()
        S = X @ X.T / 30
        M = np.eye(5) - eta * S
        # w_k = (I − M^k) S⁻¹ X y / n for w_0 = 0
        expected = (np.eye(5) - np.linalg.matrix_power(M, k)) @ np.linalg.solve(S, X @ y / 30)
        assert np.allclose(W[b, k].numpy(), expected, atol=1e-10)
    assert torch.equal(W[:, 0], torch.zeros(4, 5, dtype=F64))


def test_one_step_closed_forms_against_monte_carlo():
    n, d = 20, 10
    P = sample_prompts(40_000, n, d, generator=torch.Generator().manual_seed(1), dtype=F64)
    for eta in (0.3, one_step_optimum(n, d), 0.9):
        w1 = gd_iterates(P.X, P.y, eta, 1, warn=False)[:, 1]
        mc = squared_error(w1, P.w_star).mean().item()
        assert abs(mc - one_step_error(n, d, eta)) / one_step_error(n, d, eta) < 0.02
    assert one_step_error(n, d) == pytest.approx(110 / 31)
    assert one_step_error(n, d, one_step_optimum(n, d)) == pytest.approx(one_step_error(n, d))
    # η* is the minimiser
    assert all(one_step_error(n, d, e) > one_step_error(n, d) for e in (0.6, 0.7))


def test_stability_bound_and_warning():
    P = prompts(batch=2000, n=20, d=10)
    bound = stability_bound(P.X)
    S = P.X @ P.X.transpose(1, 2) / 20
    assert torch.allclose(bound, 2 / torch.linalg.eigvalsh(S)[:, -1])
    with pytest.warns(UnstableStepWarning, match=r"stability bound 2/λ_max"):
        gd_iterates(P.X, P.y, float(bound.min()) * 1.01, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gd_iterates(P.X, P.y, float(bound.min()) * 0.99, 3)


def test_covariance_with_condition():
    Sigma = covariance_with_condition(6, 50.0, generator=torch.Generator().manual_seed(0), dtype=F64)
    ev = torch.linalg.eigvalsh(Sigma)
    assert ev[-1].item() == pytest.approx(1.0) and (ev[-1] / ev[0]).item() == pytest.approx(50.0)
    P = prompts(batch=20_000, n=1, d=6, Sigma=Sigma)
    empirical = P.X[:, :, 0].T @ P.X[:, :, 0] / 20_000
    assert torch.allclose(empirical, Sigma, atol=0.05)


@pytest.mark.parametrize("call, error, match", [
    (lambda: sample_prompts(4, 0, 3), ValueError, "n must be an int >= 1"),
    (lambda: sample_prompts(4, 5, 0), ValueError, "d must be an int >= 1"),
    (lambda: sample_prompts(0, 5, 3), ValueError, "batch must be an int >= 1"),
    (lambda: sample_prompts(4, 5.0, 3), TypeError, "n must be an int"),
    (lambda: sample_prompts(4, 5, 3, Sigma=torch.eye(3)[:2]), ValueError, r"square \(3, 3\)"),
    (lambda: sample_prompts(4, 5, 2, Sigma=torch.tensor([[1.0, 2.0], [2.0, 1.0]])), ValueError, "positive definite"),
    (lambda: sample_prompts(4, 5, 2, Sigma=torch.tensor([[1.0, 0.5], [0.0, 1.0]])), ValueError, "symmetric"),
    (lambda: gd_iterates(torch.zeros(1, 2, 3), torch.zeros(1, 3), 0.1, -1), ValueError, "k must be an int >= 0"),
    (lambda: gd_iterates(torch.zeros(1, 2, 3), torch.zeros(1, 3), 0.0, 1), ValueError, "eta must be > 0"),
    (lambda: gd_iterates(torch.zeros(1, 2, 3), torch.zeros(1, 4), 0.1, 1), ValueError, r"y \(B, n\)"),
    (lambda: covariance_with_condition(3, 0.5), ValueError, "kappa"),
    (lambda: gd_weights(3, -0.1), ValueError, "eta must be > 0"),
    (lambda: LinearSelfAttention(0), ValueError, "d must be an int >= 1"),
    (lambda: rollout(SparseLSA(2), torch.zeros(1, 2, 3), torch.zeros(1, 3), -1), ValueError, "k must be"),
])
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------- the LSA layer

def test_hand_set_layer_is_exactly_one_gd_step():
    d, eta = 5, 0.37
    P = prompts(d=d)
    W = gd_iterates(P.X, P.y, eta, 4)
    model = gd_model(d, eta)
    for j in range(4):
        Z = prompt_matrix(P.X, P.y, W[:, :j + 1])
        full = model(Z, n=P.n)[:, d + 1:2 * d + 1, -1]             # the whole layer, last column
        assert torch.allclose(full, W[:, j + 1], atol=1e-12, rtol=0)
        assert torch.allclose(predict_next(model, Z, P.n), W[:, j + 1], atol=1e-12, rtol=0)


def test_hand_set_layer_leaves_data_tokens_unchanged():
    d = 4
    P = prompts(d=d)
    Z = prompt_matrix(P.X, P.y)
    assert torch.allclose(gd_model(d, 0.5)(Z, P.n)[:, :, :-1], Z[:, :, :-1], atol=1e-12)


def test_rollout_with_hand_set_weights_is_k_step_gd():
    d, eta, k = 5, 0.3, 15
    P = prompts(d=d, n=40)
    expected = gd_iterates(P.X, P.y, eta, k)
    assert torch.allclose(rollout(gd_model(d, eta), P.X, P.y, k), expected, atol=1e-10)
    sparse = SparseLSA(d, V31=-eta * torch.eye(d), W13=torch.eye(d), dtype=F64)
    assert torch.allclose(rollout(sparse, P.X, P.y, k), expected, atol=1e-10)
    assert torch.allclose(looped_predict(sparse, P.X, P.y, k, return_all=True), expected, atol=1e-10)
    assert torch.allclose(no_cot_predict(sparse, P.X, P.y), expected[:, 1], atol=1e-12)


def test_teacher_forced_equals_one_prediction_per_prefix():
    d = 3
    P = prompts(d=d, batch=5, n=9)
    model = LinearSelfAttention(d, init_std=0.3, generator=torch.Generator().manual_seed(3), dtype=F64)
    W = torch.randn(5, 6, d, dtype=F64)
    got = teacher_forced(model, P.X, P.y, W)
    expected = torch.stack([predict_next(model, prompt_matrix(P.X, P.y, W[:, :j + 1]), P.n) for j in range(6)], 1)
    assert got.shape == (5, 6, d) and torch.allclose(got, expected, atol=1e-12)


def test_rollout_feeds_back_its_own_predictions():
    d = 3
    P = prompts(d=d, batch=4, n=9)
    model = LinearSelfAttention(d, init_std=0.2, generator=torch.Generator().manual_seed(4), dtype=F64)
    R = rollout(model, P.X, P.y, 3)
    assert torch.allclose(teacher_forced(model, P.X, P.y, R[:, :-1]), R[:, 1:], atol=1e-12)


# ---------------------------------------------------------------- measurements used by the chapter

def test_measurements_on_the_construction():
    setting = ex.Setting(d=4, n=12, k=5, eta=0.4)
    P, W = ex.test_prompts(setting, 500)
    model = gd_model(4, 0.4, dtype=torch.float32)
    eta_hat, residual = ex.effective_eta(model, P)
    assert eta_hat == pytest.approx(0.4, rel=1e-5) and residual < 1e-10
    report = ex.sparsity_report(model)
    assert report["eta_hat"] == pytest.approx(0.4) and report["product_offdiag"] == 0 and report["mass_outside"] == 0
    curve = ex.evaluate_cot(model, P, W, setting.k)
    assert torch.allclose(curve["model_mean"], curve["gd_mean"], rtol=1e-4) and curve["model_mean"].shape == (6,)
    batch = ex.batch_fn(setting, 16, seed=0)(0)
    assert ex.cot_loss(model, batch).item() < 1e-10
    assert ex.looped_loss(setting.k)(model, batch).item() == pytest.approx(
        squared_error(batch[1][:, -1], batch[0].w_star).mean().item(), rel=1e-4)


def test_random_layer_is_not_sparse():
    report = ex.sparsity_report(LinearSelfAttention(4, init_std=1.0, generator=torch.Generator().manual_seed(0)))
    assert report["mass_outside"] > 0.5


def test_two_stage_times_on_a_planted_history():
    from helpers.training import History
    h = History()
    losses = [4.0, 3.9, 3.8, 3.5, 1.0, 0.01]
    for step, (loss, v, w) in enumerate(zip(losses, [0, 0.01, 0.02, 0.05, 0.4, 0.5], [0, 0.2, 0.3, 0.5, 0.9, 1.0])):
        h.record_eval(step * 100, {"loss": loss, "v": v, "w": w})
    t = ex.two_stage_times(h)
    assert t["t_half"] == 400 and t["t_end"] == 500 and t["fast_fraction"] == pytest.approx(0.25)
    assert t["v_at_half"] == pytest.approx(0.8) and t["w_at_half"] == pytest.approx(0.9)


def test_full_run_pipeline_in_smoke_mode(monkeypatch):
    from helpers.multistep_gd import __main__ as cli
    monkeypatch.setenv("BOOK_MODE", "smoke")
    out = cli.run("smoke", progress=False)
    assert out.dir.parts[-3:] == (".scratch", "smoke", "multistep_gd")
    table = out.load_claims()
    assert len(table) == 7 + 3 and all(isinstance(c.holds, bool) for c in table.claims)
    assert out.read_run()["mode"] == "smoke"
    assert set(out.load_json("metrics.json")) >= {"settings", "balanced", "generalisation_n", "generalisation_kappa"}


# ---------------------------------------------------------------- exercise checkers

def test_check_gd_weights_accepts_the_construction_and_explains_mistakes():
    from helpers.multistep_gd.exercises import ExerciseError, check_gd_weights
    assert check_gd_weights(gd_weights).startswith("Correct")

    def wrong_sign(d, eta):
        W_PV, W_KQ = gd_weights(d, eta)
        return -W_PV, W_KQ

    def no_pairing(d, eta):
        W_PV, W_KQ = gd_weights(d, eta)
        W_KQ[d, 2 * d + 1] = 0.0
        return W_PV, W_KQ

    for bad, match in [(wrong_sign, "wrong sign"), (no_pairing, "X y / n term is missing"),
                       (lambda d, eta: (torch.zeros(3, 3), torch.zeros(3, 3)), r"must be \(8, 8\)"),
                       (lambda d, eta: torch.zeros(3), "return a tuple")]:
        with pytest.raises(ExerciseError, match=match):
            check_gd_weights(bad)


def test_check_rollout_accepts_rollout_and_explains_mistakes():
    from helpers.multistep_gd.exercises import ExerciseError, check_rollout
    assert check_rollout(rollout).startswith("Correct")

    def only_latest_token(model, X, y, k):
        ws = [torch.zeros(X.shape[0], X.shape[1], dtype=X.dtype)]
        for _ in range(k):
            ws.append(predict_next(model, prompt_matrix(X, y, ws[-1].unsqueeze(1)), X.shape[-1]))
        return torch.stack(ws, 1)

    with pytest.raises(ExerciseError, match="keep ALL earlier CoT tokens"):
        check_rollout(only_latest_token)
    with pytest.raises(ExerciseError, match="shape"):
        check_rollout(lambda model, X, y, k: torch.zeros(1))
