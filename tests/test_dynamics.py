"""The dynamics toolkit (helpers.dynamics): joint trajectory PCA on planted structure; the SGLD LLC
on models with a known answer; smoothing and rank correlation against closed forms."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import dynamics
from helpers.dynamics import (
    NonFiniteSamplingError,
    estimate_llc,
    fit_joint_pca,
    quadratic_llc,
    smooth,
    spearman,
)


def test_chapter_3_uses_the_toolkit_itself():
    from helpers.transient_ridge import analysis
    for name in ("estimate_llc", "settled", "quadratic_llc", "estimate_llc_devinterp", "complexity_tradeoff",
                 "smooth", "spearman", "fit_joint_pca", "JointPCA", "prediction_features", "SMOOTHING_DECADES"):
        assert getattr(analysis, name) is getattr(dynamics, name), name


def test_pca_recovers_a_planted_plane():
    g = torch.Generator().manual_seed(0)
    F = 50
    basis = torch.linalg.qr(torch.randn(F, 2, generator=g, dtype=torch.float64))[0].T  # (2, F) orthonormal
    offset = torch.randn(F, generator=g, dtype=torch.float64)
    runs = []
    for r in range(3):  # three "trajectories" moving in the plane, plus tiny noise
        t = torch.linspace(0, 1, 20, dtype=torch.float64)[:, None]
        coords = torch.cat([torch.cos(3 * t + r), (r + 1) * torch.sin(2 * t)], 1) * torch.tensor([5.0, 2.0])
        runs.append(coords @ basis + offset + 1e-4 * torch.randn(20, F, generator=g, dtype=torch.float64))
    pca = fit_joint_pca(runs, n_components=3)
    assert pca.explained[:2].sum() > 0.9999 and pca.explained[2] < 1e-6
    # the first two components span the planted plane
    overlap = torch.linalg.svdvals(pca.components[:2] @ basis.T)
    assert torch.allclose(overlap, torch.ones(2, dtype=torch.float64), atol=1e-6)
    # projection of a point in the plane reconstructs it exactly
    x = torch.tensor([1.0, -2.0], dtype=torch.float64) @ basis + offset
    back = pca.project(x) @ pca.components + pca.mean
    assert torch.allclose(back, x, atol=1e-3)  # up to the planted noise
    assert torch.allclose(pca.components @ pca.components.T, torch.eye(3, dtype=torch.float64), atol=1e-10)


def test_pca_bad_input():
    with pytest.raises(ValueError, match="same F"):
        fit_joint_pca([torch.zeros(3, 4), torch.zeros(3, 5)])
    with pytest.raises(ValueError, match="n_components must be <="):
        fit_joint_pca([torch.randn(3, 4)], n_components=5)
    pca = fit_joint_pca([torch.randn(5, 4)], n_components=2)
    with pytest.raises(ValueError, match="4 columns"):
        pca.project(torch.zeros(3))


def _linear_regression(d=6, n=4000, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = X @ torch.randn(d, generator=g, dtype=torch.float64) + 0.5 * torch.randn(n, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(torch.linalg.lstsq(X, y[:, None]).solution.T)  # w* = the minimum of the loss
    loss = lambda m, batch: 0.5 * ((m(X).squeeze(-1) - y) ** 2).mean()
    H = X.T @ X / n
    return model, loss, torch.linalg.eigvalsh(H)


def test_llc_of_a_regular_model_is_half_its_dimension():
    model, loss, eig = _linear_regression()
    nbeta, gamma = 2000.0, 1.0
    est = estimate_llc(model, loss, lambda i: None, lr=2e-4, nbeta=nbeta, localization=gamma, num_chains=4,
                       num_draws=1500, num_burnin=300, init_batches=1)
    target = quadratic_llc(eig, nbeta, gamma)
    assert target == pytest.approx(3.0, rel=0.01)  # d/2 with d = 6
    assert est.llc.item() == pytest.approx(target, rel=0.10)
    # the chains settled: the second half of the draws has the same mean loss as the first half
    draws = est.loss_trace[:, 300:, 0]
    first, second = draws[:, :750].mean(), draws[:, 750:].mean()
    assert abs(first - second) < 0.2 * (draws.mean() - est.init_loss[0])


def test_llc_restores_the_parameters_and_handles_groups():
    model, loss, _ = _linear_regression(d=3, n=500)
    w = model.weight.detach().clone()
    two = lambda m, batch: torch.stack([loss(m, batch), 2 * loss(m, batch)])
    est = estimate_llc(model, two, lambda i: None, lr=1e-4, nbeta=500.0, localization=1.0, num_chains=2,
                       num_draws=50, num_burnin=10, init_batches=1)
    assert est.llc.shape == (2,) and est.loss_trace.shape == (2, 60, 2)
    assert torch.equal(model.weight, w)
    # the groups share one chain (the sampler steps on their summed loss), and the second loss is twice the
    # first everywhere: its trace, its ℓ_n(w*) and so its LLC are exactly twice the first's
    assert torch.allclose(est.loss_trace[..., 1], 2 * est.loss_trace[..., 0])
    assert torch.allclose(est.init_loss[1], 2 * est.init_loss[0]) and torch.allclose(est.llc[1], 2 * est.llc[0])


def test_llc_bad_input_and_divergence():
    model, loss, _ = _linear_regression(d=3, n=200)
    for name, kw in (("lr", dict(lr=0.0)), ("nbeta", dict(nbeta=-1.0)), ("localization", dict(localization=math.nan))):
        args = dict(lr=1e-3, nbeta=100.0, localization=1.0)
        args.update(kw)
        with pytest.raises(ValueError, match=name):
            estimate_llc(model, loss, lambda i: None, **args)
    with pytest.raises(NonFiniteSamplingError, match="lower lr"):
        estimate_llc(model, loss, lambda i: None, lr=10.0, nbeta=1e6, localization=1.0, num_draws=200,
                     num_burnin=0, init_batches=1)


def test_sgld_pieces_bad_input():
    w = torch.zeros(3)
    with pytest.raises(ValueError, match="same shape"):
        dynamics.sgld_step(w, w, torch.zeros(3, 1), w, lr=0.1, nbeta=1.0, localization=1.0)
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        dynamics.sgld_step(w, w, w, w, lr=-0.1, nbeta=1.0, localization=1.0)
    # NumPy scalars are numbers too
    assert torch.equal(dynamics.sgld_step(w, w, w, w, lr=np.float32(0.1), nbeta=1.0, localization=1.0), w)
    with pytest.raises(ValueError, match="the eigenvalues, not the Hessian itself"):
        quadratic_llc(torch.eye(3), 10.0, 1.0)
    with pytest.raises(ValueError, match="finite values >= 0"):
        quadratic_llc(torch.tensor([1.0, -2.0]), 10.0, 1.0)
    with pytest.raises(ValueError, match="localization"):
        quadratic_llc(torch.tensor([1.0]), 10.0, 0.0)
    with pytest.raises(ValueError, match="finite numbers"):
        dynamics.complexity_tradeoff(1.0, math.nan, 0.5, 3.0)
    with pytest.raises(ValueError, match="n_max must be a number > 2"):
        dynamics.complexity_tradeoff(1.0, 1.0, 0.5, 3.0, n_max=1)
    model, loss, _ = _linear_regression(d=3, n=200)
    with pytest.raises(NonFiniteSamplingError, match="before any sampling"):
        estimate_llc(model, lambda m, b: torch.tensor(math.nan), lambda i: None, lr=1e-3, nbeta=1.0, localization=1.0)
    frozen = torch.nn.Linear(2, 1).requires_grad_(False)
    with pytest.raises(ValueError, match="no parameters with requires_grad"):
        estimate_llc(frozen, loss, lambda i: None, lr=1e-3, nbeta=1.0, localization=1.0)


def test_smoothing_and_rank_correlation_against_closed_forms():
    steps = np.array([0, 9, 99, 999])                     # log10(1 + step) = 0, 1, 2, 3
    assert np.allclose(smooth(steps, [2.0] * 4), 2.0)     # a constant stays constant
    assert np.allclose(smooth(steps, [0, 1, 2, 3], bandwidth=0), [0, 1, 2, 3])
    w = np.exp(-0.5 * (1 / 0.5) ** 2)                     # neighbours one decade apart, bandwidth ½ decade
    w2 = np.exp(-0.5 * (2 / 0.5) ** 2)
    w3 = np.exp(-0.5 * (3 / 0.5) ** 2)
    assert smooth(steps, [1.0, 0, 0, 0], bandwidth=0.5)[0] == pytest.approx(1 / (1 + w + w2 + w3))
    rng = np.random.default_rng(0)
    x = np.arange(0, 10_001, 100)
    curve = (x / 5000 - 1) ** 2 + 0.05 * rng.standard_normal(len(x))
    assert abs(x[np.argmin(smooth(x, curve, 0.05))] - 5000) <= 600      # the noisy minimum is recovered
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert spearman([1, 2, 3, 4], [4, 1, 3, 2]) == pytest.approx(np.corrcoef([0, 1, 2, 3], [3, 0, 2, 1])[0, 1])
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(np.corrcoef([0, 1, 2], [0.5, 0.5, 2])[0, 1])
    assert np.isnan(spearman([1, 2], [2, 1]))
    with pytest.raises(ValueError, match="bandwidth"):
        smooth(steps, [1, 2, 3, 4], bandwidth=-1)
    with pytest.raises(ValueError, match="same length"):
        spearman([1, 2, 3], [1, 2])


def test_settled_flags_a_drifting_trace():
    model, loss, _ = _linear_regression(d=3, n=500)
    est = estimate_llc(model, loss, lambda i: None, lr=4e-4, nbeta=500.0, localization=1.0, num_chains=2,
                       num_draws=2000, num_burnin=100, init_batches=1)
    assert dynamics.settled(est) == [True]
    drifting = torch.linspace(0, 1, 500).reshape(1, 500, 1).expand(2, 500, 1).clone()   # still climbing
    est.loss_trace, est.init_loss = drifting, torch.zeros(1)
    assert dynamics.settled(est) == [False]


def test_complexity_tradeoff_crossover():
    t = dynamics.complexity_tradeoff(loss_simple=1.0, llc_simple=2.0, loss_complex=0.9, llc_complex=12.0)
    n = t["n_star"]
    # at n*: n ΔL ≈ Δλ log n (to the 5% grid), and just below it the simple solution still wins
    assert n * 0.1 == pytest.approx(10 * math.log(n), rel=0.06)
    assert (n / 1.1) * 0.1 < 10 * math.log(n / 1.1)
    assert dynamics.complexity_tradeoff(1.0, 12.0, 0.9, 2.0)["n_star"] is None    # the better fit is also simpler


def test_llc_agrees_with_devinterp_on_a_regular_model():
    pytest.importorskip("devinterp")
    model, loss, eig = _linear_regression(d=4, n=2000)
    kw = dict(lr=1e-3, nbeta=200.0, localization=1.0, num_chains=4, num_draws=1000, num_burnin=100)
    ours = estimate_llc(model, loss, lambda i: None, init_batches=1, **kw)
    ref = dynamics.estimate_llc_devinterp(model, loss, [None], init_loss=float(ours.init_loss[0]), **kw)
    target = quadratic_llc(eig, kw["nbeta"], kw["localization"])
    assert ours.llc.item() == pytest.approx(target, rel=0.15)
    assert ref["llc"] == pytest.approx(target, rel=0.15)
