import math
import multiprocessing

import numpy as np
import pytest
import torch

from helpers.seeds import step_generator
from helpers.training import NonFiniteLossError, checkpoint_schedule, train

# ---------------------------------------------------------------- checkpoint schedule

def test_schedule_linear_part_only():
    assert checkpoint_schedule(100, every=25) == [0, 25, 50, 75, 100]


def test_schedule_is_union_of_linear_and_log_points():
    total, every, n_log = 10_000, 1_000, 30
    schedule = checkpoint_schedule(total, every=every, n_log=n_log)
    linear = set(range(0, total + 1, every))
    log = set(int(round(v)) for v in np.logspace(0, 4, n_log))
    assert set(schedule) == linear | log | {0, total}
    assert schedule == sorted(set(schedule))


def test_schedule_always_has_start_and_end():
    assert checkpoint_schedule(7) == [0, 7]
    schedule = checkpoint_schedule(7, every=3)
    assert schedule[0] == 0 and schedule[-1] == 7


def test_schedule_log_points_are_dense_early():
    schedule = checkpoint_schedule(100_000, n_log=50)
    early = sum(1 for s in schedule if s <= 1000)
    late = sum(1 for s in schedule if s > 1000)
    assert early > late  # 3 of 5 decades lie below step 1000


@pytest.mark.parametrize("kwargs, match", [
    (dict(total_steps=0), "total_steps must be an int >= 1"),
    (dict(total_steps=10, every=0), r"every must be an int in \[1, total_steps=10\]"),
    (dict(total_steps=10, every=11), r"every must be an int in \[1, total_steps=10\]"),
    (dict(total_steps=10, n_log=-1), "n_log must be an int >= 0"),
    (dict(total_steps=2.5), "total_steps must be an int >= 1"),
])
def test_schedule_bad_input(kwargs, match):
    total = kwargs.pop("total_steps")
    with pytest.raises(ValueError, match=match):
        checkpoint_schedule(total, **kwargs)


# ---------------------------------------------------------------- the loop

def regression_problem():
    w_true = torch.tensor([[2.0], [-1.0], [0.5]])

    def batch_fn(step):
        g = step_generator(0, step)
        x = torch.randn(32, 3, generator=g)
        return x, x @ w_true

    def loss_fn(model, batch):
        x, y = batch
        return torch.mean((model(x) - y) ** 2)

    return w_true, batch_fn, loss_fn


def fresh_model():
    torch.manual_seed(0)
    return torch.nn.Linear(3, 1, bias=False)


def test_train_fits_linear_regression_and_logs():
    w_true, batch_fn, loss_fn = regression_problem()
    model = fresh_model()
    history = train(model, loss_fn, batch_fn, steps=200, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                    log_every=20, checkpoint_steps=[0, 50, 200],
                    eval_fn=lambda m: {"err": float(torch.sum((m.weight.T - w_true) ** 2))}, progress=False)
    assert torch.allclose(model.weight.T, w_true, atol=1e-3)
    assert history.train_steps == list(range(20, 201, 20))
    assert history.eval_steps == [0, 50, 200]
    err = history.eval_array("err")
    assert err[0] > 1.0 and err[-1] < 1e-5
    assert history.train_loss[0] > history.train_loss[-1]


def test_train_logs_mean_loss_since_last_log():
    model = torch.nn.Linear(1, 1)
    losses = iter([1.0, 3.0, 5.0, 7.0, 9.0])

    def loss_fn(m, batch):
        return m.weight.sum() * 0 + next(losses)

    history = train(model, loss_fn, lambda s: None, steps=5, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                    log_every=2, progress=False)
    assert history.train_steps == [2, 4, 5]
    assert history.train_loss == [2.0, 6.0, 9.0]


def test_on_checkpoint_sees_the_model_after_that_many_steps():
    _, batch_fn, loss_fn = regression_problem()
    model = fresh_model()
    seen = {}
    train(model, loss_fn, batch_fn, steps=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
          checkpoint_steps=[0, 1, 3], on_checkpoint=lambda s, m: seen.__setitem__(s, m.weight.detach().clone()),
          progress=False)
    reference = fresh_model()
    opt = torch.optim.SGD(reference.parameters(), lr=0.1)
    assert torch.equal(seen[0], reference.weight)
    for step in range(3):
        opt.zero_grad()
        loss_fn(reference, batch_fn(step)).backward()
        opt.step()
        if step + 1 in seen:
            assert torch.equal(seen[step + 1], reference.weight)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="prefetching needs fork")
def test_prefetched_batches_are_the_same_batches():
    """Drawn ahead in a worker process, the batches (tensors, NumPy arrays, plain values) arrive
    whole and in order: the same weights and the same log as drawing them in the loop."""
    _, batch_fn, loss_fn = regression_problem()
    seen = {0: [], 3: []}

    def rich_batch(step):
        x, y = batch_fn(step)
        return {"xy": (x, y), "step": step, "array": np.arange(step, step + 3)}

    def make_loss(log):
        def rich_loss(model, batch):
            log.append((batch["step"], batch["array"].tolist()))
            return loss_fn(model, batch["xy"])
        return rich_loss

    models = {}
    for depth in seen:
        models[depth] = fresh_model()
        train(models[depth], make_loss(seen[depth]), rich_batch, steps=25,
              optimizer=torch.optim.Adam(models[depth].parameters(), lr=0.05), prefetch=depth, progress=False)
    assert seen[3] == seen[0] == [(s, [s, s + 1, s + 2]) for s in range(25)]
    assert torch.equal(models[0].weight, models[3].weight)


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    _, batch_fn, loss_fn = regression_problem()

    def run(model, fn, path):
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        # log_every does not divide save_every: the save at step 20 falls inside the log window 15–21
        return train(model, loss_fn, fn, steps=40, optimizer=opt, log_every=7, checkpoint_steps=[0, 10, 40],
                     eval_fn=lambda m: {"w0": float(m.weight[0, 0])}, resume_path=path, save_every=10,
                     progress=False)

    straight = fresh_model()
    history_straight = run(straight, batch_fn, None)

    def interrupted(step):
        if step == 27:
            raise KeyboardInterrupt
        return batch_fn(step)

    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        run(fresh_model(), interrupted, path)
    assert path.exists()
    resumed = fresh_model()
    history_resumed = run(resumed, batch_fn, path)
    assert torch.equal(resumed.weight, straight.weight)
    assert history_resumed.state_dict() == history_straight.state_dict()


def test_resume_saves_and_restores_the_cuda_rng_where_there_is_cuda(tmp_path, monkeypatch):
    """The CUDA RNG states go into the saved state and come back on resume; a state saved without
    CUDA (``None``) resumes anywhere. CUDA is faked, so the test runs on a CPU machine too."""
    _, batch_fn, loss_fn = regression_problem()
    path = tmp_path / "state.pt"
    saved = [torch.tensor([1, 2, 3], dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.append)

    def run(steps):
        model = fresh_model()
        train(model, loss_fn, batch_fn, steps=steps, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
              resume_path=path, save_every=5, progress=False)

    run(10)
    assert torch.equal(torch.load(path, weights_only=False)["cuda_rng"][0], saved[0])
    run(20)
    assert len(restored) == 1 and torch.equal(restored[0][0], saved[0])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    state = torch.load(path, weights_only=False)
    state["cuda_rng"] = None
    torch.save(state, path)
    run(25)                                      # resumes from step 20 without touching CUDA
    assert len(restored) == 1


def test_start_step_continues_a_run_kept_in_memory():
    _, batch_fn, loss_fn = regression_problem()
    seen = []

    def fn(step):
        seen.append(step)
        return batch_fn(step)

    def run(model, opt, steps, start):
        checks = []
        train(model, loss_fn, fn, steps=steps, optimizer=opt,
              checkpoint_steps=[c for c in (0, 10, 20, 30) if c <= steps],
              on_checkpoint=lambda s, m: checks.append(s), start_step=start, progress=False)
        return checks

    straight = fresh_model()
    run(straight, torch.optim.Adam(straight.parameters(), lr=0.01), 30, 0)
    seen.clear()
    model = fresh_model()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    assert run(model, opt, 12, 0) == [0, 10]
    # the second part trains steps 12 … 29 only and checkpoints after step 12 only
    seen.clear()
    assert run(model, opt, 30, 12) == [20, 30]
    assert seen == list(range(12, 30))
    assert torch.equal(model.weight, straight.weight)
    with pytest.raises(ValueError, match=r"start_step must be an int in \[0, steps=30\]"):
        run(model, opt, 30, 31)
    with pytest.raises(ValueError, match="start_step and resume_path cannot be used together"):
        train(model, loss_fn, fn, steps=30, optimizer=opt, start_step=5, resume_path="state.pt", progress=False)


def test_non_finite_loss_names_the_step():
    model = torch.nn.Linear(1, 1)

    def loss_fn(m, step):
        return m.weight.sum() * (math.nan if step == 3 else 1.0)

    with pytest.raises(NonFiniteLossError, match="loss became nan at step 3"):
        train(model, loss_fn, lambda s: s, steps=10, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
              progress=False)


def test_loss_and_eval_functions_must_return_what_train_records():
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.ones(4, 2)
    with pytest.raises(TypeError, match=r"loss_fn must return a scalar \(0-d\) tensor; got shape \(4, 1\)"):
        train(model, lambda m, b: m(x) ** 2, lambda s: None, steps=1, optimizer=opt, progress=False)
    with pytest.raises(TypeError, match="loss_fn must return a scalar .* got float"):
        train(model, lambda m, b: 1.0, lambda s: None, steps=1, optimizer=opt, progress=False)
    with pytest.raises(TypeError, match=r"eval_fn must return a \{name: float\} mapping; got float"):
        train(model, lambda m, b: m(x).pow(2).mean(), lambda s: None, steps=1, optimizer=opt, progress=False,
              checkpoint_steps=[0], eval_fn=lambda m: 0.5)


def test_grad_clip_bounds_the_update_norm():
    def one_step(grad_clip, weights):
        model = torch.nn.Linear(len(weights), 1, bias=False)
        with torch.no_grad():
            model.weight.zero_()
        w = torch.tensor(weights)
        # loss = w·θ: the gradient is w, and one SGD step with lr 1 moves θ by −(clipped) w
        train(model, lambda m, b: (m.weight[0] * w).sum(), lambda s: None, steps=1, grad_clip=grad_clip,
              optimizer=torch.optim.SGD(model.parameters(), lr=1.0), progress=False)
        return model.weight.detach()[0]

    assert torch.allclose(one_step(None, [10.0]), torch.tensor([-10.0]))
    assert torch.allclose(one_step(1.0, [10.0]), torch.tensor([-1.0]))
    # two parameters: the whole gradient is rescaled to norm 1, its direction kept (3, 4) / 5
    assert torch.allclose(one_step(1.0, [3.0, 4.0]), torch.tensor([-0.6, -0.8]))
    assert torch.allclose(one_step(10.0, [3.0, 4.0]), torch.tensor([-3.0, -4.0]))   # under the clip: untouched


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=-1), "steps must be an int >= 0"),
    (dict(steps=5, log_every=0), "log_every must be an int >= 1"),
    (dict(steps=5, save_every=0), "save_every must be an int >= 1"),
    (dict(steps=5, grad_clip=0.0), "grad_clip must be > 0"),
    (dict(steps=5, checkpoint_steps=[0, 6]), r"checkpoint_steps must lie in \[0, steps=5\]"),
])
def test_train_bad_input(kwargs, match):
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match=match):
        train(model, lambda m, b: m.weight.sum(), lambda s: None,
              optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False, **kwargs)


def test_eval_fn_must_keep_its_keys():
    model = torch.nn.Linear(1, 1)
    keys = iter([{"a": 1.0}, {"b": 2.0}])
    with pytest.raises(ValueError, match="same keys"):
        train(model, lambda m, b: m.weight.sum(), lambda s: None, steps=2, checkpoint_steps=[0, 2],
              eval_fn=lambda m: next(keys), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)


def test_step_generator_depends_only_on_seed_and_step():
    a = torch.rand(3, generator=step_generator(1, 5))
    assert torch.equal(a, torch.rand(3, generator=step_generator(1, 5)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(1, 6)))
    assert not torch.equal(a, torch.rand(3, generator=step_generator(2, 5)))
    with pytest.raises(ValueError, match="seed keys must be ints >= 0; key 0 is -1"):
        step_generator(-1, 0)
