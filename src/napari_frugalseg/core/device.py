"""Pick the compute device (CUDA, then Apple MPS, then CPU, unless the user asks) and the
reduced precision it computes fast in."""

from __future__ import annotations

import os

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


def autocast_dtype(device: torch.device, ndim: int = 2) -> torch.dtype | None:
    """The reduced precision for mixed-precision training of an ``ndim``-D net on ``device``,
    and for its predictions (``predict.Predictor``), or None for float32.

    float16 on CUDA. bfloat16 for 2D nets on CPUs with AVX512-BF16 or AMX instructions (1.7x per
    training step of the default 2D net on a 2-core AMD EPYC, ``benchmarks/step_speed.py``);
    other CPUs would emulate it slower than float32. Not for 3D nets on a CPU: there (torch
    2.13, oneDNN) a bfloat16 3D convolution over 1 or 2 slices gets non-finite or wrong weight
    gradients, and a 3D U-Net's deeper levels can be that thin. None on MPS.
    """
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and ndim == 2:
        cpu = torch.cpu
        for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
            if getattr(cpu, check, lambda: False)():
                return torch.bfloat16
    return None


def available_bytes(device: torch.device | None = None) -> int | None:
    """Free memory on ``device`` (the host's for a CPU, MPS or None), None when it cannot be told."""
    if device is not None and device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
