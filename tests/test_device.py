import random

import numpy as np
import pytest
import torch

from helpers.device import describe_device, environment, pick_device, seed_everything


def test_pick_device_prefers_cuda_then_mps_then_cpu():
    device = pick_device()
    if torch.cuda.is_available():
        assert device.type == "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        assert device.type == "mps"
    else:
        assert device.type == "cpu"


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                                  (False, False, "cpu")])
def test_pick_device_order_on_every_machine(monkeypatch, cuda, mps, expected):
    from helpers import device as dev
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(dev, "_mps_available", lambda: mps)
    assert dev.pick_device().type == expected
    assert dev.pick_device("cpu").type == "cpu"                 # asked for, always available
    if not mps:
        with pytest.raises(ValueError, match="no Apple MPS device"):
            dev.pick_device("mps")


def test_pick_device_rejects_unknown_kind():
    with pytest.raises(ValueError, match="prefer must be one of"):
        pick_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_pick_device_refuses_unavailable_cuda():
    with pytest.raises(ValueError, match="no CUDA device"):
        pick_device("cuda")


def test_describe_device_names_the_device_and_torch():
    text = describe_device("cpu")
    assert text.startswith("device: cpu") and torch.__version__ in text


def test_seed_everything_makes_all_generators_repeatable():
    seed_everything(123)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    seed_everything(124)
    assert torch.rand(1).item() != first[2]


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (2**32, ValueError), (1.5, TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seeds(bad, error):
    with pytest.raises(error, match="seed must be"):
        seed_everything(bad)


def test_environment_reports_versions_device_and_mode():
    env = environment()
    assert env["torch"] == torch.__version__.split("+")[0] or env["torch"].startswith(torch.__version__.split("+")[0])
    assert env["mode"] in ("smoke", "default", "full")
    assert env["helpers"] != "not installed"
