"""Model bundles: one folder with weights, configuration and training history.

Layout: ``config.json`` (model and training configuration, package version), ``weights.pt``
(a state dict), ``history.json`` (progress records). Written atomically as a whole.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .errors import FrugalsegError
from .io import atomic_dir
from .model import UNet, build_model

FORMAT = 1


@dataclass
class Bundle:
    model: UNet
    config: ModelConfig
    train_config: TrainConfig | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def save_bundle(
    path: str | os.PathLike,
    model: UNet,
    config: ModelConfig,
    train_config: TrainConfig | None = None,
    history: list[dict[str, Any]] | None = None,
) -> Path:
    """Write a bundle folder atomically (an existing bundle is replaced only when complete)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    meta = {
        "format": FORMAT,
        "model": config.to_dict(),
        "train": train_config.to_dict() if train_config else None,
    }

    def fill(tmp: Path) -> None:
        (tmp / "weights.pt").write_bytes(buffer.getvalue())
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        (tmp / "history.json").write_text(json.dumps(history or [], indent=1))

    return atomic_dir(path, fill)


def load_bundle(path: str | os.PathLike, device: torch.device | str = "cpu") -> Bundle:
    """Load a bundle, saying exactly what is wrong when it is not one or does not fit."""
    path = Path(path)
    if not path.is_dir():
        raise FrugalsegError(f"{path}: no model folder here")
    for name in ("config.json", "weights.pt"):
        if not (path / name).is_file():
            raise FrugalsegError(f"{path}: not a frugalseg model (missing {name})")
    try:
        meta = json.loads((path / "config.json").read_text())
        config = ModelConfig.from_dict(meta["model"])
        train = TrainConfig.from_dict(meta["train"]) if meta.get("train") else None
    except (ValueError, KeyError, TypeError) as exc:
        raise FrugalsegError(f"{path / 'config.json'}: unreadable model config ({exc})") from None
    if meta.get("format", 0) > FORMAT:
        raise FrugalsegError(
            f"{path}: written by a newer napari-frugalseg ({config.version}); please upgrade"
        )
    try:
        state = torch.load(path / "weights.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise FrugalsegError(f"{path / 'weights.pt'}: cannot be read ({exc})") from None
    model = build_model(config)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise FrugalsegError(f"{path}: weights do not match config.json ({first})") from None
    history = []
    if (path / "history.json").is_file():
        history = json.loads((path / "history.json").read_text())
    return Bundle(model.to(device).eval(), config, train, history)


def check_image_fits(config: ModelConfig, image: np.ndarray, name: str) -> None:
    """Raise if a (C, *spatial) image cannot go through a model with this config."""
    spatial = image.ndim - 1
    if image.shape[0] != config.in_channels:
        raise FrugalsegError(
            f"{name}: image has {image.shape[0]} channel(s) but the model expects "
            f"{config.in_channels}"
        )
    if spatial == config.ndim or (spatial == 3 and config.ndim == 2):
        return
    raise FrugalsegError(f"{name}: a {config.ndim}D model cannot segment a {spatial}D image")
