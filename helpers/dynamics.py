"""The dynamics toolkit: instruments for what a model passes through while it learns, for any
model and loss. Chapter 3 introduced them; every chapter can use them.

- **Curves over checkpoints**: :func:`smooth` (a Gaussian kernel in ``log10(1 + step)``) and
  :func:`spearman` (rank correlation). The checkpoint schedule itself is
  :func:`helpers.training.checkpoint_schedule`.
- **Joint trajectory PCA** (:func:`fit_joint_pca`): every checkpoint of every run encoded by a
  feature vector of its outputs on a fixed probe set (:func:`prediction_features`), stacked,
  centred and decomposed by SVD; :class:`JointPCA` projects anything encoded the same way.
- **The local learning coefficient** (Lau et al. 2023; Watanabe's λ), estimated with SGLD
  (:func:`estimate_llc`). At a trained ``w*`` with empirical loss ``ℓ_n``,

      λ̂(w*) = nβ · ( E_w[ℓ_n(w)] − ℓ_n(w*) ),   w ~ p(w) ∝ exp(−nβ ℓ_n(w) − (γ/2)‖w − w*‖²),

  with ``nβ`` the inverse temperature times the sample size and ``γ`` the localisation strength;
  the expectation is over SGLD draws (:func:`sgld_step`)

      w ← w − (ε/2) · ( γ (w − w*) + nβ ∇ℓ_batch(w) ) + N(0, ε I),

  in ``num_chains`` chains from ``w*``, the first ``num_burnin`` steps discarded. The loss trace
  is returned so a reader can check the chains have settled (:func:`settled`, the calibration
  check). For a regular model with ``d`` parameters λ = d/2 (:func:`quadratic_llc`). ``loss_fn``
  may return G independent losses (a grouped model): one run estimates G LLCs at once.
  :func:`estimate_llc_devinterp` is the reference library's estimate, for a cross-check, and
  :func:`complexity_tradeoff` compares two solutions by Watanabe's free energy.
- **Events of a lens** (where a trajectory changes): :func:`turns` (the corners of a PCA path,
  after Ramer–Douglas–Peucker simplification), :func:`change_points` (jumps between successive
  LLC estimates, beyond their chains' spread) and :func:`match_events` (is each phase step of a
  chapter's own metric within a window, in decades of steps, of some event?), with
  :func:`event_coverage`, the chance that a phase at a random step would be "seen" anyway.

Used in: chapter 3 (``helpers.transient_ridge``) and the closing chapter (``helpers.one_lens``).
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_int
from .seeds import torch_generator

# ------------------------------------------------------------------------------ curves over checkpoints

SMOOTHING_DECADES = 0.05   # bandwidth of the Gaussian kernel in log10(1 + step)
                           # (ours: the paper says "lightly smoothed")


def smooth(steps, values, bandwidth: float = SMOOTHING_DECADES) -> np.ndarray:
    """A curve over checkpoints, lightly smoothed: a Gaussian kernel in ``log10(1 + step)`` of
    width ``bandwidth`` decades (so it averages a similar *fraction* of training early, where the
    checkpoints are log-spaced, and late, where they are linear). ``bandwidth = 0``: unchanged.

    (n,), (n,) → (n,); the ends average only the side they have."""
    x, v = np.log10(1.0 + np.asarray(steps, dtype=float)), np.asarray(values, dtype=float)
    if x.shape != v.shape or x.ndim != 1:
        raise ValueError(f"steps and values must be 1-d and of equal length; got {x.shape} and {v.shape}")
    if not (isinstance(bandwidth, (int, float)) and bandwidth >= 0):
        raise ValueError(f"bandwidth must be a number >= 0 (decades); got {bandwidth!r}")
    if bandwidth == 0 or len(v) < 2:
        return v.copy()
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / bandwidth) ** 2)
    return (w @ v) / w.sum(1)


def spearman(x, y) -> float:
    """Spearman's rank correlation of two sequences (average ranks for ties); NaN if fewer than 3 points."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length; got {len(x)} and {len(y)}")
    if len(x) < 3:
        return float("nan")

    def ranks(v):
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v), dtype=float)
        for u in np.unique(v):                      # ties share their mean rank
            r[v == u] = r[v == u].mean()
        return r
    rx, ry = ranks(x), ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


# ------------------------------------------------------------------------------ joint trajectory PCA

@dataclass
class JointPCA:
    """``mean`` (F,), ``components`` (n, F) orthonormal rows, ``explained`` (n,) variance ratios,
    ``singular_values`` (n,)."""

    mean: torch.Tensor
    components: torch.Tensor
    explained: torch.Tensor
    singular_values: torch.Tensor

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """(..., F) → (..., n): coordinates in the principal components."""
        if features.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"features must have {self.mean.shape[0]} columns (the fit's feature size); "
                             f"got {features.shape[-1]}")
        return (features.to(self.mean) - self.mean) @ self.components.T


def fit_joint_pca(trajectories: list[torch.Tensor] | dict, n_components: int = 4) -> JointPCA:
    """Fit PCA to the stacked rows of all trajectories (each (n_checkpoints, F)).

    Returns the :class:`JointPCA`; ``explained[i]`` is the fraction of the total variance of
    the stacked rows along component ``i``.
    """
    runs = list(trajectories.values()) if isinstance(trajectories, dict) else list(trajectories)
    if not runs:
        raise ValueError("trajectories must hold at least one (n_checkpoints, F) tensor")
    F_ = runs[0].shape[-1]
    for r in runs:
        if r.ndim != 2 or r.shape[1] != F_:
            raise ValueError(f"every trajectory must be (n_checkpoints, F) with the same F={F_}; got {tuple(r.shape)}")
    X = torch.cat([r.double() for r in runs])
    check_int("n_components", n_components, 1)
    if n_components > min(X.shape):
        raise ValueError(f"n_components must be <= min(rows, features) = {min(X.shape)}; got {n_components}")
    mean = X.mean(0)
    U, S, Vh = torch.linalg.svd(X - mean, full_matrices=False)
    total = (S ** 2).sum()
    return JointPCA(mean, Vh[:n_components], (S[:n_components] ** 2) / total, S[:n_components])


def prediction_features(predict, probe_tokens: torch.Tensor) -> torch.Tensor:
    """A model's feature vector: its predictions (B, K) on the probe sequences, flattened to (B·K,).

    ``predict(tokens) -> (B, K)``; wrap grouped models with ``lambda t: model(t[None])[0]``.
    """
    with torch.no_grad():
        return predict(probe_tokens).reshape(-1)


# ------------------------------------------------------------------------------ the LLC

def complexity_tradeoff(loss_simple: float, llc_simple: float, loss_complex: float, llc_complex: float,
                        n_max: float = 1e12) -> dict:
    """Bayesian internal model selection between two solutions (Watanabe's free energy
    F_n ≈ n·L + λ·log n): the complex one (lower loss, higher λ) is preferred once
    ``n·(L_simple − L_complex) > (λ_complex − λ_simple)·log n``. Returns the losses and λs,
    ``delta_loss``, ``delta_llc`` and ``n_star``, the smallest such n (None if there is no trade-off:
    the complex one is not both better-fitting and more complex, or n_star > ``n_max``)."""
    values = {"loss_simple": loss_simple, "llc_simple": llc_simple, "loss_complex": loss_complex,
              "llc_complex": llc_complex}
    bad = {k: v for k, v in values.items() if isinstance(v, bool) or not isinstance(v, numbers.Real)
           or not math.isfinite(v)}
    if bad:
        raise ValueError(f"the losses and LLCs must be finite numbers; got {bad}")
    if not (isinstance(n_max, numbers.Real) and n_max > 2):
        raise ValueError(f"n_max must be a number > 2; got {n_max!r}")
    dL, dl = loss_simple - loss_complex, llc_complex - llc_simple
    n_star = None
    if dL > 0 and dl > 0:
        n = 2.0
        while n * dL <= dl * math.log(n) and n < n_max:
            n *= 1.05
        n_star = n if n < n_max else None
    return {"loss_simple": loss_simple, "llc_simple": llc_simple, "loss_complex": loss_complex,
            "llc_complex": llc_complex, "delta_loss": dL, "delta_llc": dl, "n_star": n_star}


class NonFiniteSamplingError(ValueError):
    """SGLD produced a NaN or infinite loss; the message names the chain, the step and what to try."""


@dataclass
class LLCEstimate:
    """``llc``: (G,) mean over chains (G = 1 for a scalar loss); ``llc_per_chain``: (chains, G);
    ``loss_trace``: (chains, burnin + draws, G); ``init_loss``: (G,) the loss at ``w*``."""

    llc: torch.Tensor
    llc_per_chain: torch.Tensor
    loss_trace: torch.Tensor
    init_loss: torch.Tensor
    settings: dict

    @property
    def llc_std(self) -> torch.Tensor:
        """Standard deviation over chains."""
        return self.llc_per_chain.std(0) if self.llc_per_chain.shape[0] > 1 else torch.zeros_like(self.llc)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def sgld_step(w: torch.Tensor, w_star: torch.Tensor, grad: torch.Tensor, noise: torch.Tensor, *, lr: float,
              nbeta: float, localization: float) -> torch.Tensor:
    """One SGLD step (any shape; all four tensors alike):
    ``w − (ε/2)(γ (w − w*) + nβ ∇ℓ_batch(w)) + √ε · ξ`` with ``ξ = noise`` ~ N(0, I)."""
    lr, nbeta, localization = _positive("lr", lr), _positive("nbeta", nbeta), _positive("localization", localization)
    if not w.shape == w_star.shape == grad.shape == noise.shape:
        raise ValueError(f"w, w_star, grad and noise must have the same shape; got {tuple(w.shape)}, "
                         f"{tuple(w_star.shape)}, {tuple(grad.shape)}, {tuple(noise.shape)}")
    return w - 0.5 * lr * (localization * (w - w_star) + nbeta * grad) + math.sqrt(lr) * noise


def estimate_llc(model: torch.nn.Module, loss_fn, batch_fn, *, lr: float, nbeta: float, localization: float,
                 num_chains: int = 4, num_draws: int = 200, num_burnin: int = 100, init_batches: int = 8,
                 seed: int = 0) -> LLCEstimate:
    """SGLD estimate of the LLC at the model's current parameters ``w*``.

    Args:
        loss_fn: ``loss_fn(model, batch) -> loss`` (a scalar, or (G,) independent losses).
        batch_fn: ``batch_fn(i) -> batch``: ``i = 0, 1, …`` for the sampling steps (fresh data each
            step), ``i = −1, −2, …`` for the ``init_batches`` that estimate ``ℓ_n(w*)``.
        lr: SGLD step ε > 0. nbeta: nβ > 0. localization: γ > 0.
        init_batches: batches averaged for ``ℓ_n(w*)``.

    The model's parameters are restored to ``w*`` afterwards.
    """
    lr, nbeta, localization = (_positive(n, v) for n, v in (("lr", lr), ("nbeta", nbeta),
                                                           ("localization", localization)))
    check_int("num_chains", num_chains, 1)
    check_int("num_draws", num_draws, 1)
    check_int("num_burnin", num_burnin, 0)
    check_int("init_batches", init_batches, 1)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameters with requires_grad=True: there is nothing to sample")
    w_star = [p.detach().clone() for p in params]
    gen = torch_generator(seed, device=params[0].device)
    with torch.no_grad():
        init = torch.stack([torch.as_tensor(loss_fn(model, batch_fn(-1 - i))).reshape(-1).float()
                            for i in range(init_batches)]).mean(0)
    if not torch.isfinite(init).all():
        raise NonFiniteSamplingError(f"the loss at w* (over the {init_batches} init_batches) is "
                                     f"{init.flatten().tolist()[:4]}: the model or its batches are broken before "
                                     "any sampling")
    steps = num_burnin + num_draws
    trace = torch.empty(num_chains, steps, init.numel())
    try:
        for c in range(num_chains):
            with torch.no_grad():
                for p, w in zip(params, w_star):
                    p.copy_(w)
            for t in range(steps):
                loss = torch.as_tensor(loss_fn(model, batch_fn(c * steps + t)))
                if not torch.isfinite(loss).all():
                    raise NonFiniteSamplingError(
                        f"SGLD loss became {loss.detach().flatten().tolist()[:4]} in chain {c} at step {t}: lower "
                        f"lr (now {lr}) or raise localization (now {localization})")
                trace[c, t] = loss.detach().reshape(-1).float().cpu()
                grads = torch.autograd.grad(loss.sum(), params)
                with torch.no_grad():
                    for p, w, g in zip(params, w_star, grads):
                        noise = torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)
                        p.copy_(sgld_step(p, w, g, noise, lr=lr, nbeta=nbeta, localization=localization))
    finally:
        with torch.no_grad():
            for p, w in zip(params, w_star):
                p.copy_(w)
    per_chain = nbeta * (trace[:, num_burnin:].mean(1) - init.cpu())
    settings = dict(lr=lr, nbeta=nbeta, localization=localization, num_chains=num_chains, num_draws=num_draws,
                    num_burnin=num_burnin)
    return LLCEstimate(per_chain.mean(0), per_chain, trace, init.cpu(), settings)


def quadratic_llc(hessian_eigenvalues: torch.Tensor, nbeta: float, localization: float) -> float:
    """The estimator's exact target for a quadratic loss ``½ (w − w*)ᵀ H (w − w*)``:
    ``Σ_i ½ · nβ h_i / (nβ h_i + γ)`` — d/2 when every ``nβ h_i ≫ γ``."""
    nbeta, localization = _positive("nbeta", nbeta), _positive("localization", localization)
    h = torch.as_tensor(hessian_eigenvalues, dtype=torch.float64)
    if h.ndim != 1 or not bool(torch.isfinite(h).all()) or bool((h < 0).any()):
        raise ValueError(f"hessian_eigenvalues must be a 1-d array of finite values >= 0 (the eigenvalues, not the "
                         f"Hessian itself); got shape {tuple(h.shape)}")
    return float((0.5 * nbeta * h / (nbeta * h + localization)).sum())


def settled(est: LLCEstimate, tolerance: float = 0.1) -> list[bool]:
    """Calibration check per group: the chains' mean loss over the first and the second half of the
    draws differ by at most ``tolerance`` × (mean draw loss − ``ℓ_n(w*)``) — the trace has stopped
    drifting, so more draws would not change the estimate much."""
    if not 0 < tolerance:
        raise ValueError(f"tolerance must be > 0; got {tolerance!r}")
    draws = est.loss_trace[:, est.settings["num_burnin"]:].mean(0)          # (draws, G)
    half = draws.shape[0] // 2
    if half < 1:
        raise ValueError("settled needs at least 2 draws")
    first, second = draws[:half].mean(0), draws[half:].mean(0)
    excess = draws.mean(0) - est.init_loss
    return [bool(abs(a - b) <= tolerance * max(float(e), 1e-12)) for a, b, e in zip(first, second, excess)]


def estimate_llc_devinterp(model: torch.nn.Module, loss_fn, loader, *, lr: float, nbeta: float, localization: float,
                           num_chains: int = 4, num_draws: int = 200, num_burnin: int = 100, seed: int = 0,
                           init_loss: float | None = None) -> dict:
    """The same estimate with the reference library ``devinterp`` (v1.3.2, SGLD), for a cross-check.

    ``loss_fn(model, batch) -> scalar``; ``loader`` iterates batches (e.g. a ``DataLoader``);
    ``init_loss``: ``ℓ_n(w*)`` to use (None: devinterp takes the loss on its first batch).
    Returns ``{"llc": mean, "llc_std": std over chains}``. Raises ``ImportError`` with the install
    command when ``devinterp`` is missing.
    """
    try:
        from devinterp.optim.sgld import SGLD
        from devinterp.slt.sampler import estimate_learning_coeff_with_summary
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the cross-check needs devinterp: pip install devinterp==1.3.2") from e
    from torch.utils.data import DataLoader
    if not isinstance(loader, DataLoader):   # devinterp wants a DataLoader; serve the given batches as they are
        loader = DataLoader(list(loader), batch_size=1, collate_fn=lambda items: items[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # its notes on nbeta given by hand and on cycling batches
        out = estimate_learning_coeff_with_summary(
            model, loader, evaluate=lambda m, batch: (loss_fn(m, batch), {}), sampling_method=SGLD,
            optimizer_kwargs=dict(lr=lr, nbeta=nbeta, localization=localization), num_chains=num_chains,
            num_draws=num_draws, num_burnin_steps=num_burnin, seed=seed, verbose=False, online=False,
            init_loss=init_loss, device=next(model.parameters()).device)   # its default would move the model to CPU
    return {"llc": float(out["llc/mean"]), "llc_std": float(out["llc/std"])}


# ------------------------------------------------------------------------------ events of a lens

def log_distance(a: float, b: float) -> float:
    """Distance of two steps in decades: ``|log10((1 + a) / (1 + b))|`` (steps >= 0)."""
    if a < 0 or b < 0:
        raise ValueError(f"steps must be >= 0; got {a!r} and {b!r}")
    return abs(math.log10((1.0 + a) / (1.0 + b)))


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance of each row of ``points`` (m, c) to the segment ``a``–``b``."""
    ab = b - a
    denom = float(ab @ ab)
    t = np.zeros(len(points)) if denom == 0 else np.clip((points - a) @ ab / denom, 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def simplify_path(path, tolerance: float) -> list[int]:
    """Ramer–Douglas–Peucker: the indices of the vertices of the simplest polyline through
    ``path`` (n, c) that no point of the path leaves by more than ``tolerance`` (absolute). The
    first and last indices are always kept."""
    P = np.asarray(path, dtype=float)
    if P.ndim != 2 or len(P) < 1:
        raise ValueError(f"path must be (n_points, n_coordinates) with n_points >= 1; got shape {P.shape}")
    if not (isinstance(tolerance, (int, float)) and tolerance >= 0):
        raise ValueError(f"tolerance must be a number >= 0; got {tolerance!r}")
    keep = {0, len(P) - 1}
    stack = [(0, len(P) - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        dist = _segment_distance(P[i + 1:j], P[i], P[j])
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            m = i + 1 + k
            keep.add(m)
            stack += [(i, m), (m, j)]
    return sorted(keep)


def turns(path, steps, *, tolerance: float, min_angle: float) -> list[dict]:
    """The corners of a trajectory: the interior vertices of its simplified polyline
    (:func:`simplify_path` with ``tolerance`` × the path's extent, the largest distance between
    two of its points) at which the direction turns by at least ``min_angle`` degrees.

    ``path``: (n, c) coordinates (e.g. the first principal components) at checkpoint ``steps`` (n,).
    Returns ``[{"step", "index", "angle"}]`` in order along the path.
    """
    P, steps = np.asarray(path, dtype=float), np.asarray(steps)
    if P.ndim != 2 or len(P) != len(steps):
        raise ValueError(f"path must be (n, c) with n = len(steps) = {len(steps)}; got shape {P.shape}")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance < 1):
        raise ValueError(f"tolerance must be a fraction in (0, 1) of the path's extent; got {tolerance!r}")
    if not (isinstance(min_angle, (int, float)) and 0 <= min_angle < 180):
        raise ValueError(f"min_angle must be in [0, 180) degrees; got {min_angle!r}")
    if len(P) < 3:
        return []
    extent = float(np.max(np.linalg.norm(P[:, None] - P[None], axis=-1)))
    if extent == 0:
        return []
    vertices = simplify_path(P, tolerance * extent)
    out = []
    for u, v, w in zip(vertices, vertices[1:], vertices[2:]):
        a, b = P[v] - P[u], P[w] - P[v]
        cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        if angle >= min_angle:
            out.append({"step": int(steps[v]), "index": int(v), "angle": angle})
    return out


def change_points(steps, values, stds, *, min_sigmas: float, min_fraction: float) -> list[dict]:
    """Jumps of a quantity estimated at checkpoints (e.g. the LLC): successive estimates ``a`` and
    ``b`` whose difference exceeds both ``min_sigmas`` × ``√(std_a² + std_b²)`` (their spread over
    chains) and ``min_fraction`` × the largest |value|. The change is placed at the geometric
    middle of the two steps, ``√((1 + s_a)(1 + s_b)) − 1``.

    Returns ``[{"step", "from", "to", "delta", "sigmas"}]``.
    """
    s, v, e = (np.asarray(x, dtype=float) for x in (steps, values, stds))
    if not (s.shape == v.shape == e.shape) or s.ndim != 1:
        raise ValueError(f"steps, values and stds must be 1-d and of equal length; got {s.shape}, {v.shape}, {e.shape}")
    if not (isinstance(min_sigmas, (int, float)) and min_sigmas >= 0):
        raise ValueError(f"min_sigmas must be a number >= 0; got {min_sigmas!r}")
    if not (isinstance(min_fraction, (int, float)) and 0 <= min_fraction < 1):
        raise ValueError(f"min_fraction must be in [0, 1); got {min_fraction!r}")
    if len(v) < 2:
        return []
    scale = float(np.max(np.abs(v)))
    out = []
    for i in range(len(v) - 1):
        delta = v[i + 1] - v[i]
        spread = math.hypot(e[i], e[i + 1])
        sigmas = abs(delta) / spread if spread > 0 else float("inf")
        if abs(delta) > min_fraction * scale and sigmas > min_sigmas:
            mid = math.sqrt((1 + s[i]) * (1 + s[i + 1])) - 1
            out.append({"step": float(mid), "from": int(s[i]), "to": int(s[i + 1]), "delta": float(delta),
                        "sigmas": float(sigmas)})
    return out


def match_events(phases: dict, events, window: float) -> dict:
    """Does a lens see each phase? ``phases``: ``{name: step or None}`` (the chapter's own
    metric); ``events``: the steps at which the lens changes. A phase is *seen* when some event is
    within ``window`` decades of it (:func:`log_distance`).

    Returns ``{"phases": {name: {"step", "nearest", "decades", "seen"}}, "unmatched": [events
    near no phase], "seen": names seen, "missed": names not seen}`` (a phase that never happened
    is neither).
    """
    if not (isinstance(window, (int, float)) and window > 0):
        raise ValueError(f"window must be a number of decades > 0; got {window!r}")
    events = [float(e) for e in events]
    rows, seen, missed = {}, [], []
    for name, step in phases.items():
        if step is None:
            rows[name] = {"step": None, "nearest": None, "decades": None, "seen": None}
            continue
        if events:
            near = min(events, key=lambda e: log_distance(e, step))
            dist = log_distance(near, step)
        else:
            near, dist = None, None
        ok = dist is not None and dist <= window
        rows[name] = {"step": step, "nearest": near, "decades": dist, "seen": ok}
        (seen if ok else missed).append(name)
    happened = [s for s in phases.values() if s is not None]
    unmatched = [e for e in events if not any(log_distance(e, s) <= window for s in happened)]
    return {"phases": rows, "unmatched": unmatched, "seen": seen, "missed": missed}


def event_coverage(events, window: float, first: float, last: float) -> float:
    """The fraction of a run's span ``[first, last]`` in ``log10(1 + step)`` that lies within
    ``window`` decades of some event: the chance that a phase at a log-uniformly random step of
    the run would count as seen. A lens with many events sees phases by chance."""
    if not (isinstance(window, (int, float)) and window > 0):
        raise ValueError(f"window must be a number of decades > 0; got {window!r}")
    lo, hi = math.log10(1 + first), math.log10(1 + last)
    if not hi > lo:
        raise ValueError(f"last must be > first >= 0; got first={first!r}, last={last!r}")
    spans = sorted((max(lo, math.log10(1 + e) - window), min(hi, math.log10(1 + e) + window)) for e in events)
    covered, end = 0.0, lo
    for a, b in spans:
        a = max(a, end)
        if b > a:
            covered += b - a
            end = b
    return covered / (hi - lo)
