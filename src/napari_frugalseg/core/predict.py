"""Applying a model to whole images: normalisation, tiling, stacks slice by slice."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from .bundle import check_image_fits, grey_as_colour
from .config import ModelConfig
from .device import autocast_dtype
from .model import UNet
from .priors import estimate_prior, shift_members
from .sampling import percentile_normalize
from .tiling import class_dtype, iter_tiled, n_bands, predict_tiled


@dataclass
class Prediction:
    classes: np.ndarray  # values 1..K, the image's spatial shape
    probabilities: np.ndarray | None  # (K, *spatial) float32, or None
    uncertainty: np.ndarray | None = None  # normalised entropy of the mean, spatial float32
    disagreement: np.ndarray | None = None  # share of members disagreeing with the mean

    @property
    def score(self) -> float | None:
        """Per-image uncertainty score: the mean of the per-pixel uncertainty map."""
        return None if self.uncertainty is None else float(self.uncertainty.mean())


@dataclass
class PredictProgress:
    done: int
    total: int


# a 2D plane up to this many px a side is predicted as one tile: overlapping 256 px tiles
# compute a 512 px plane 2.25 times over, at the same Dice (benchmark notes, Prediction tiles)
WHOLE_PLANE = 512


def default_tile(config: ModelConfig, spatial: Sequence[int]) -> tuple[int, ...]:
    """Tiles of twice the patch (256 px at least in 2D), or a small 2D plane (``spatial``'s
    last two axes) whole."""
    if config.ndim == 2 and max(spatial[-2:]) <= WHOLE_PLANE:
        return tuple(spatial[-2:])
    return tuple(max(2 * p, 256) if config.ndim == 2 else 2 * p for p in config.patch_size)


# test-time augmentation: flips that keep the tile's shape (identity, flip Y, flip X, rot180)
TTA_FLIPS: tuple[tuple[int, ...], ...] = ((), (-2,), (-1,), (-2, -1))


class Predictor:
    """Turns (C, *tile) normalised arrays into (K, *tile) probabilities with one model or the
    mean of an ensemble, optionally averaged over test-time flips.

    Puts each model in eval mode for the call and restores its previous mode, so a training
    loop can ask for previews between steps. ``outputs`` can also give each model's
    probabilities and the members' disagreement.
    """

    def __init__(self, model: UNet | Sequence[UNet], device: torch.device | str | None = None,
                 tta: bool = False):
        self.models = [model] if isinstance(model, torch.nn.Module) else list(model)
        # the models must be on ``device``; by default, wherever the (first) model is
        self.device = (torch.device(device) if device is not None
                       else next(self.models[0].parameters()).device)
        self.flips = TTA_FLIPS if tta else TTA_FLIPS[:1]

    @property
    def model(self) -> UNet:
        return self.models[0]

    @property
    def n_members(self) -> int:
        return len(self.models) * len(self.flips)

    def members(self, tile: np.ndarray) -> torch.Tensor:
        """(members, K, *tile) probabilities on the CPU."""
        return self._batch_members(np.asarray(tile)[None])[:, 0]

    def many(self, tiles: Sequence[np.ndarray], batch: int = 8) -> list[np.ndarray]:
        """The mean probabilities (K, *tile) of each of several tiles of one shape, ``batch`` at
        a time (on a CPU a 3D net takes ~8 times less time per tile so than tile by tile)."""
        out: list[np.ndarray] = []
        for i in range(0, len(tiles), batch):
            out += list(self._batch_members(np.stack(tiles[i : i + batch])).mean(0).numpy())
        return out

    @torch.no_grad()
    def _batch_members(self, tiles: np.ndarray) -> torch.Tensor:
        """(members, B, K, *tile) probabilities on the CPU of (B, C, *tile) tiles."""
        x = torch.from_numpy(np.ascontiguousarray(tiles, np.float32)).to(self.device)
        out = []
        for model in self.models:
            was_training = model.training
            model.eval()
            dtype = autocast_dtype(self.device, model.ndim)  # as training: where it is fast
            try:
                for dims in self.flips:
                    xi = torch.flip(x, dims) if dims else x
                    with torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None):
                        logits = model(xi)
                    p = torch.softmax(logits.float(), 1)
                    out.append((torch.flip(p, dims) if dims else p).cpu())
            finally:
                model.train(was_training)
        return torch.stack(out)

    def outputs(self, tile: np.ndarray, per_model: bool = False, disagreement: bool = False) -> np.ndarray:
        """The mean probabilities (K, *tile), or with ``per_model`` each model's over its
        flips (models x K, *tile); then, with ``disagreement``, one more channel: the share
        of members (models x flips) whose class differs from the mean's."""
        probs = self.members(tile)
        mean = probs.mean(0)
        parts = [probs.reshape(len(self.models), len(self.flips), *mean.shape).mean(1).flatten(0, 1)
                 if per_model else mean]
        if disagreement:
            parts.append((probs.argmax(1) != mean.argmax(0)[None]).float().mean(0)[None])
        return torch.cat(parts).numpy()

    def __call__(self, tile: np.ndarray) -> np.ndarray:
        return self.outputs(tile)


@contextmanager
def models_on(models: Sequence[UNet], device: torch.device | str) -> Iterator[list[UNet]]:
    """The models moved to ``device`` for the block, and back to the CPU after it (whatever
    ends it), so that the device's memory is free between jobs."""
    try:
        yield [m.to(device) for m in models]
    finally:
        for m in models:
            m.cpu()


def predict_image(
    model: UNet | Sequence[UNet],
    config: ModelConfig,
    image: np.ndarray,
    device: torch.device | str | None = None,
    tile: Sequence[int] | None = None,
    probabilities: bool = False,
    name: str = "image",
    tta: bool = False,
    uncertainty: bool = False,
    prior_correction: bool = True,
) -> Generator[PredictProgress, None, Prediction]:
    """Predict a raw (C, *spatial) image; yields progress, returns the Prediction.

    ``model`` may be an ensemble (a list: their mean is predicted); ``tta`` averages over
    flips; ``uncertainty`` also returns the entropy and disagreement maps (of the model's own
    probabilities). An image of one axis more than the model's is a series predicted unit by
    unit: a stack given to a 2D model slice by slice, a time series of stacks given to a 3D
    model stack by stack. With ``prior_correction`` and a model that knows the class shares of
    its labels (``config.class_prior``), the probabilities of each image (each unit of a
    series) are re-weighted to the image's own shares (``priors.py``; an ensemble's models each
    to their own estimate of them, then averaged); that holds the image's probabilities
    (float16, per model) until it is done. It runs on ``device`` (the models must be there), by
    default where the models are.
    """
    check_image_fits(config, image, name)
    image = grey_as_colour(config, image)
    predictor = Predictor(model, device, tta)
    tile = tuple(tile or default_tile(config, image.shape[1:]))
    k = config.n_classes
    spatial = image.shape[1:]
    classes = np.zeros(spatial, class_dtype(k))
    probs = np.zeros((k,) + spatial, np.float32) if probabilities else None
    entropy = np.zeros(spatial, np.float32) if uncertainty else None
    differ = np.zeros(spatial, np.float32) if uncertainty else None
    train_prior = config.class_prior if prior_correction else None
    # the correction re-weights each model's probabilities to its own estimate of the shares
    m = len(predictor.models) if train_prior else 1
    channels = m * k + bool(uncertainty)
    outputs = partial(predictor.outputs, per_model=m > 1, disagreement=uncertainty)
    slicewise = len(spatial) == config.ndim + 1
    planes = range(spatial[0]) if slicewise else [None]
    plane_shape = spatial[1:] if slicewise else spatial
    total = len(planes) * n_bands(plane_shape, tile)
    done = 0
    for z in planes:
        raw = image[:, z] if slicewise else image
        norm = percentile_normalize(raw, config.norm_percentiles)
        held = np.empty((m, k) + tuple(plane_shape), np.float16) if train_prior else None
        for region, p in iter_tiled(norm, outputs, tile, channels):
            target = (z,) + region if slicewise else region
            each = p[: m * k].reshape((m, k) + p.shape[1:])
            mean = each.mean(0)
            if held is not None:
                held[(slice(None), slice(None)) + region] = each
            else:
                classes[target] = mean.argmax(0) + 1
                if probs is not None:
                    probs[(slice(None),) + target] = mean
            if uncertainty:
                entropy[target] = normalized_entropy(mean)
                differ[target] = p[-1]
            done += 1
            yield PredictProgress(done, total)
        if held is not None:
            priors = [estimate_prior(h) for h in held]
            for rows in range(0, held.shape[2], 64):  # float32 copies of 64 rows at a time
                region = (slice(rows, rows + 64),)
                target = (z,) + region if slicewise else region
                q = shift_members(held[(slice(None), slice(None)) + region], train_prior, priors)
                classes[target] = q.argmax(0) + 1
                if probs is not None:
                    probs[(slice(None),) + target] = q
    return Prediction(classes, probs, entropy, differ)


def predict_view(
    predictor: Predictor,
    config: ModelConfig,
    norm_image: np.ndarray,
    z: int | None,
    box: tuple[slice, slice],
    tile: int = 512,
    prior_correction: bool = True,
    depth: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Class map and uncertainty (normalised entropy) of one visible plane region.

    ``norm_image`` is normalised (C, *spatial); ``z`` picks the slice of a stack (a 3D model
    sees the slab of its patch depth around it; of a time series of stacks, ``z`` counts the
    slices of all stacks in turn); ``box`` the in-plane field; ``depth`` > 1: that many slices
    from ``z`` on, within its stack (napari's 3D view), as (depth, h, w). The class map is
    corrected to the region's class shares as ``predict_image`` corrects a whole image.
    """
    k = config.n_classes
    train_prior = config.class_prior if prior_correction else None
    m = len(predictor.models) if train_prior else 1  # corrected model by model, as predict_image
    outputs = partial(predictor.outputs, per_model=m > 1)
    if z is None or config.ndim == 2:
        planes = [norm_image] if z is None else [norm_image[:, s] for s in range(z, z + depth)]
        probs = np.stack([predict_tiled(plane[(slice(None),) + box], outputs, (tile, tile), m * k,
                                        probabilities=True)[1] for plane in planes], axis=1)
    else:
        if norm_image.ndim == 5:  # (C, T, Z, Y, X): the stack the slice is in
            t, z = divmod(z, norm_image.shape[2])
            norm_image = norm_image[:, t]
        need = max(depth, config.patch_size[0])  # the slab the model sees: its patch depth at least
        z0 = int(np.clip(z + depth // 2 - need // 2, 0, max(0, norm_image.shape[1] - need)))
        slab = norm_image[(slice(None), slice(z0, z0 + need)) + box]
        tile3d = (config.patch_size[0], min(tile, 256), min(tile, 256))
        _, probs = predict_tiled(slab, outputs, tile3d, m * k, probabilities=True)
        probs = probs[:, z - z0 : z - z0 + depth]
    if depth == 1:
        probs = probs[:, 0]
    each = probs.reshape((m, k) + probs.shape[1:])
    mean = each.mean(0)
    final = shift_members(each, train_prior) if train_prior else mean
    return (final.argmax(0) + 1).astype(class_dtype(k)), normalized_entropy(mean)


def normalized_entropy(probs: np.ndarray) -> np.ndarray:
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
