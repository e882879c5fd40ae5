"""Applying a model to whole images: normalisation, tiling, stacks slice by slice."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .bundle import check_image_fits
from .config import ModelConfig
from .model import UNet
from .sampling import percentile_normalize
from .tiling import iter_tiled, n_bands, predict_tiled


@dataclass
class Prediction:
    classes: np.ndarray  # values 1..K, the image's spatial shape
    probabilities: np.ndarray | None  # (K, *spatial) float32, or None


@dataclass
class PredictProgress:
    done: int
    total: int


def default_tile(config: ModelConfig) -> tuple[int, ...]:
    return tuple(max(2 * p, 256) if config.ndim == 2 else 2 * p for p in config.patch_size)


class Predictor:
    """Turns (C, *tile) normalised arrays into (K, *tile) probabilities with a model.

    Puts the model in eval mode for the call and restores its previous mode, so a training
    loop can ask for previews between steps.
    """

    def __init__(self, model: UNet, device: torch.device | str = "cpu"):
        self.model = model
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, tile: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(tile, np.float32))[None].to(self.device)
            with torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
                logits = self.model(x)
            return torch.softmax(logits.float(), 1)[0].cpu().numpy()
        finally:
            self.model.train(was_training)


def predict_image(
    model: UNet,
    config: ModelConfig,
    image: np.ndarray,
    device: torch.device | str = "cpu",
    tile: Sequence[int] | None = None,
    probabilities: bool = False,
    name: str = "image",
) -> Generator[PredictProgress, None, Prediction]:
    """Predict a raw (C, *spatial) image; yields progress, returns the Prediction.

    A stack given to a 2D model is predicted slice by slice.
    """
    check_image_fits(config, image, name)
    predictor = Predictor(model, device)
    tile = tuple(tile or default_tile(config))
    k = config.n_classes
    spatial = image.shape[1:]
    classes = np.zeros(spatial, np.uint8 if k < 255 else np.uint16)
    probs = np.zeros((k,) + spatial, np.float32) if probabilities else None
    slicewise = len(spatial) == 3 and config.ndim == 2
    planes = range(spatial[0]) if slicewise else [None]
    plane_shape = spatial[1:] if slicewise else spatial
    total = len(planes) * n_bands(plane_shape, tile)
    done = 0
    for z in planes:
        raw = image[:, z] if slicewise else image
        norm = percentile_normalize(raw, config.norm_percentiles)
        for region, p in iter_tiled(norm, predictor, tile, k):
            target = (z,) + region if slicewise else region
            classes[target] = p.argmax(0) + 1
            if probs is not None:
                probs[(slice(None),) + target] = p
            done += 1
            yield PredictProgress(done, total)
    return Prediction(classes, probs)


def predict_view(
    predictor: Predictor,
    config: ModelConfig,
    norm_image: np.ndarray,
    z: int | None,
    box: tuple[slice, slice],
    tile: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Class map and uncertainty (normalised entropy) of one visible plane region.

    ``norm_image`` is normalised (C, *spatial); ``z`` picks the slice of a stack (a 3D model
    sees the slab of its patch depth around it); ``box`` the in-plane field.
    """
    k = config.n_classes
    if z is None or config.ndim == 2:
        plane = norm_image if z is None else norm_image[:, z]
        region = plane[(slice(None),) + box]
        classes, probs = predict_tiled(region, predictor, (tile, tile), k, probabilities=True)
    else:
        depth = config.patch_size[0]
        z0 = int(np.clip(z - depth // 2, 0, max(0, norm_image.shape[1] - depth)))
        slab = norm_image[(slice(None), slice(z0, z0 + depth)) + box]
        tile3d = (depth, min(tile, 256), min(tile, 256))
        classes, probs = predict_tiled(slab, predictor, tile3d, k, probabilities=True)
        classes, probs = classes[z - z0], probs[:, z - z0]
    return classes, uncertainty(probs)


def uncertainty(probs: np.ndarray) -> np.ndarray:
    """Entropy of per-class probabilities (K, ...) divided by log K: 0 sure, 1 undecided."""
    p = np.clip(probs, 1e-7, 1.0)
    return (-(p * np.log(p)).sum(0) / np.log(p.shape[0])).astype(np.float32)


def run_to_end(gen: Generator):
    """Drain a progress generator synchronously and return its result."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
