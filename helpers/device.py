"""Device choice and seeding.

Used in: every notebook (``pick_device``, ``seed_everything``) and every full-mode command.
"""
from __future__ import annotations

import platform
import random

import numpy as np
import torch

DEVICE_KINDS = ("cuda", "mps", "cpu")


def pick_device(prefer: str | None = None) -> torch.device:
    """The device experiments run on: ``cuda`` if available, then ``mps``, then ``cpu``.

    ``prefer`` forces one of ``'cuda' | 'mps' | 'cpu'``; asking for one that is not available
    raises ``ValueError`` rather than silently falling back.
    """
    if prefer is not None:
        if prefer not in DEVICE_KINDS:
            raise ValueError(f"prefer must be one of {DEVICE_KINDS} or None; got {prefer!r}")
        if prefer == "cuda" and not torch.cuda.is_available():
            raise ValueError("prefer='cuda' but no CUDA device is available (torch.cuda.is_available() is False)")
        if prefer == "mps" and not _mps_available():
            raise ValueError("prefer='mps' but no Apple MPS device is available")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def device_name(device: torch.device | str | None = None) -> str:
    """A human-readable name of ``device`` (the GPU model, or the CPU's architecture)."""
    device = pick_device() if device is None else torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    threads = torch.get_num_threads()
    return f"CPU ({platform.machine()}, {threads} torch threads)"


def describe_device(device: torch.device | str | None = None) -> str:
    """One line saying which device runs the experiments and why that one."""
    device = pick_device() if device is None else torch.device(device)
    return f"device: {device.type} — {device_name(device)} (torch {torch.__version__})"


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's ``random``, NumPy and torch (all devices); return a seeded CPU generator."""
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32); got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def environment() -> dict[str, str]:
    """Versions of the packages the book needs, the device and the run mode, as a dict."""
    import importlib.metadata as md

    from .modes import get_mode

    report = {"python": platform.python_version()}
    for package in ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "helpers"):
        try:
            report[package] = md.version(package)
        except md.PackageNotFoundError:
            report[package] = "not installed"
    device = pick_device()
    report["device"] = f"{device.type} ({device_name(device)})"
    report["mode"] = get_mode()
    return report
