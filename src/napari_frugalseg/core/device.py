"""Pick the compute device: CUDA, then Apple MPS, then CPU, unless the user asks."""

from __future__ import annotations

import torch

from .errors import FrugalsegError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    name = (name or "auto").lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_ok else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FrugalsegError("device 'cuda' was asked for, but torch sees no CUDA GPU")
    if name == "mps" and not mps_ok:
        raise FrugalsegError("device 'mps' was asked for, but Apple MPS is not available")
    if name not in DEVICE_CHOICES and not name.startswith("cuda:"):
        raise FrugalsegError(f"unknown device '{name}' (use one of {', '.join(DEVICE_CHOICES)})")
    return torch.device(name)
