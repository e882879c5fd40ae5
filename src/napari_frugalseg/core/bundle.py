"""Model bundles: one folder with weights, configuration and training history.

Layout: ``config.json`` (model and training configuration, package version, number of
ensemble members, descriptive ``info``: name, date, data shape, validation score),
``weights.pt`` (a state dict; an ensemble adds ``weights_1.pt`` ...), ``history.json``
(progress records). Written atomically as a whole.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .errors import FrugalsegError
from .io import atomic_dir, check_replaceable
from .model import UNet, build_model

FORMAT = 1


@dataclass
class Bundle:
    models: list[UNet]  # one, or the members of an ensemble
    config: ModelConfig
    train_config: TrainConfig | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> UNet:
        return self.models[0]


def weights_name(member: int) -> str:
    return "weights.pt" if member == 0 else f"weights_{member}.pt"


def bundle_files(names: list[str]) -> bool:
    """Whether the names of a folder's entries are those of a model bundle (it may be replaced)."""
    return all(n in ("config.json", "history.json") or re.fullmatch(r"weights(_\d+)?\.pt", n)
               for n in names)


def check_model_target(path: str | os.PathLike) -> None:
    """Refuse a file, or a folder holding other files than a model, as where a model goes
    (``frugalseg train --out`` checks it before training)."""
    check_replaceable(path, bundle_files, "model")


def save_bundle(
    path: str | os.PathLike,
    model: UNet | Sequence[UNet],
    config: ModelConfig,
    train_config: TrainConfig | None = None,
    history: list[dict[str, Any]] | None = None,
    info: dict[str, Any] | None = None,
) -> Path:
    """Write a bundle folder atomically (an existing bundle is replaced only when complete).

    ``model`` may be the list of an ensemble's members. ``info`` (name, data_shape,
    val_score, ...) is what the model library lists; the date is added here.
    """
    models = [model] if isinstance(model, torch.nn.Module) else list(model)
    blobs = []
    for m in models:
        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in m.state_dict().items()}, buffer)
        blobs.append(buffer.getvalue())
    info = {"name": Path(path).name, **(info or {}), "created": time.strftime("%Y-%m-%d %H:%M")}
    meta = {
        "format": FORMAT,
        "model": config.to_dict(),
        "train": train_config.to_dict() if train_config else None,
        "members": len(models),
        "info": info,
    }

    def fill(tmp: Path) -> None:
        for i, blob in enumerate(blobs):
            (tmp / weights_name(i)).write_bytes(blob)
        (tmp / "config.json").write_text(json.dumps(meta, indent=2))
        (tmp / "history.json").write_text(json.dumps(history or [], indent=1))

    return atomic_dir(path, fill, replaces=bundle_files, what="model")


def read_meta(path: str | os.PathLike) -> tuple[dict[str, Any], ModelConfig]:
    """config.json of a bundle and its ModelConfig, checking that every weights file is there
    (no weights are read: cheap enough for listing a model library)."""
    path = Path(path)
    if not path.is_dir():
        raise FrugalsegError(f"{path}: no model folder here")
    if not (path / "config.json").is_file():
        raise FrugalsegError(f"{path}: not a frugalseg model (missing config.json)")
    try:
        meta = json.loads((path / "config.json").read_text())
        config = ModelConfig.from_dict(meta["model"])
        members = int(meta.get("members", 1))
    except (ValueError, KeyError, TypeError) as exc:
        raise FrugalsegError(f"{path / 'config.json'}: unreadable model config ({exc})") from None
    if meta.get("format", 0) > FORMAT:
        raise FrugalsegError(
            f"{path}: written by a newer napari-frugalseg ({config.version}); please upgrade"
        )
    for i in range(members):
        if not (path / weights_name(i)).is_file():
            raise FrugalsegError(f"{path}: not a frugalseg model (missing {weights_name(i)})")
    return meta, config


def load_bundle(path: str | os.PathLike, device: torch.device | str = "cpu") -> Bundle:
    """Load a bundle, saying exactly what is wrong when it is not one or does not fit."""
    path = Path(path)
    meta, config = read_meta(path)
    try:
        train = TrainConfig.from_dict(meta["train"]) if meta.get("train") else None
    except (ValueError, TypeError) as exc:
        raise FrugalsegError(f"{path / 'config.json'}: unreadable train config ({exc})") from None
    models = []
    for i in range(int(meta.get("members", 1))):
        try:
            state = torch.load(path / weights_name(i), map_location="cpu", weights_only=True)
        except Exception as exc:
            raise FrugalsegError(f"{path / weights_name(i)}: cannot be read ({exc})") from None
        model = build_model(config)
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise FrugalsegError(f"{path}: weights do not match config.json ({first})") from None
        models.append(model.to(device).eval())
    history = []
    if (path / "history.json").is_file():
        history = json.loads((path / "history.json").read_text())
    return Bundle(models, config, train, history, dict(meta.get("info") or {}))


def grey_for_colour(config: ModelConfig, channels: int) -> bool:
    """A grey image (1 channel) for a model of RGB images: it is predicted with its grey value
    in each colour (``grey_as_colour``)."""
    return channels == 1 and config.in_channels == 3


def grey_as_colour(config: ModelConfig, image: np.ndarray) -> np.ndarray:
    """A (C, *spatial) image as the model takes it: a grey one for a model of RGB images with
    its grey value in each of the 3 channels, as an RGB file of grey content (e.g. DSB's
    fluorescence images) holds it; others as they are."""
    return np.repeat(image, 3, axis=0) if grey_for_colour(config, image.shape[0]) else image


def check_image_fits(config: ModelConfig, image: np.ndarray, name: str) -> None:
    """Raise if a (C, *spatial) image cannot go through a model with this config."""
    spatial = image.ndim - 1
    if image.shape[0] != config.in_channels and not grey_for_colour(config, image.shape[0]):
        raise FrugalsegError(
            f"{name}: image has {image.shape[0]} channel(s) but the model expects "
            f"{config.in_channels}"
        )
    if spatial in (config.ndim, config.ndim + 1):  # one image, or a series of them
        return
    raise FrugalsegError(f"{name}: a {config.ndim}D model cannot segment a {spatial}D image")
