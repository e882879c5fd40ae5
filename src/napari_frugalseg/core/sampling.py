"""Normalisation, training samples, class-balanced patches around labelled pixels, augmentation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from .errors import FrugalsegError


def percentile_normalize(
    image: np.ndarray, percentiles: Sequence[float] = (1.0, 99.8), max_samples: int = 2_000_000
) -> np.ndarray:
    """Scale each channel of a (C, *spatial) image so that its percentiles map to 0 and 1.

    Percentiles are estimated on a regular subsample for large images (same result every time).
    """
    image = np.asarray(image)
    if image.dtype == bool:  # a mask as the image: numpy cannot subtract booleans
        image = image.view(np.uint8)
    out = np.empty(image.shape, np.float32)
    for c in range(image.shape[0]):
        flat = image[c].reshape(-1)
        step = max(1, flat.size // max_samples)
        lo, hi = np.percentile(flat[::step], percentiles)
        scale = hi - lo if hi > lo else 1.0
        np.subtract(image[c], lo, out=out[c], casting="unsafe")
        out[c] /= scale
    return out


@dataclass
class Sample:
    """One training item for a model of the sample's dimensionality: image (C, *spatial)."""

    image: np.ndarray
    labels: np.ndarray
    weights: np.ndarray | None = None  # per-pixel loss weights (e.g. annotator agreement)


def model_samples(
    image: np.ndarray, labels: np.ndarray, ndim: int, weights: np.ndarray | None = None
) -> list[Sample]:
    """Cut an image into samples a ``ndim``-D model trains on.

    An image of one axis more than the model's is a series along its first axis, seen unit by
    unit (only the units with labels): a stack slice by slice for a 2D model, a time series of
    stacks stack by stack for a 3D model. ``image`` is (C, *spatial), ``labels`` has the
    spatial shape.
    """
    spatial = image.ndim - 1
    if spatial == ndim:
        return [Sample(image, labels, weights)]
    if spatial == ndim + 1:
        labelled = np.flatnonzero(labels.reshape(labels.shape[0], -1).any(axis=1))
        return [Sample(image[:, z], labels[z], None if weights is None else weights[z])
                for z in labelled]
    raise FrugalsegError(f"a {ndim}D model cannot be trained on a {spatial}D image")


def crop(array: np.ndarray, start: Sequence[int], size: Sequence[int], mode: str) -> np.ndarray:
    """Crop the last len(size) axes at ``start``; pad outside the array (reflect or zeros)."""
    lead = array.ndim - len(size)
    shape = array.shape[lead:]
    src, pads = [], []
    for st, sz, n in zip(start, size, shape):
        a, b = max(st, 0), min(st + sz, n)
        src.append(slice(a, max(a, b)))
        pads.append((a - st, st + sz - max(a, b)))
    out = array[(slice(None),) * lead + tuple(src)]
    if any(p for pair in pads for p in pair):
        pad_width = [(0, 0)] * lead + pads
        if mode == "reflect" and min(out.shape[lead:]) > 1:
            out = np.pad(out, pad_width, mode="reflect")
        else:
            out = np.pad(out, pad_width, mode="constant")
    return out


class PatchSampler:
    """Draws class-balanced patches centred (with jitter) on labelled pixels.

    A class is picked uniformly among the labelled ones, then one of its pixels, so a class with
    a few short strokes is seen as often as one with long strokes. Partial-class codes (above
    ``n_classes``, "one of these classes") share one draw as "the rest": each real class keeps
    the share it has with dense labels however many groups the labels declare.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        patch_size: Sequence[int],
        rng: np.random.Generator,
        n_classes: int,
        augment: bool = True,
        intensity_jitter: float = 0.15,
        elastic: bool = False,
        scale_jitter: float = 0.0,
    ):
        self.samples = list(samples)
        self.patch_size = tuple(int(p) for p in patch_size)
        self.rng = rng
        self.augment = augment
        self.intensity_jitter = intensity_jitter
        self.elastic = elastic
        self.scale_jitter = scale_jitter
        self.index: dict[int, list[tuple[int, np.ndarray]]] = {}
        for i, s in enumerate(self.samples):
            flat = s.labels.reshape(-1)
            nz = np.flatnonzero(flat)
            values = flat[nz]
            for v in np.unique(values):
                key = min(int(v), n_classes + 1)  # partial-class codes share one key
                self.index.setdefault(key, []).append((i, nz[values == v]))
        self.classes = sorted(self.index)
        if not self.classes:
            raise FrugalsegError("no labelled pixel to train on")

    def draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch: images (B, C, *patch) float32, labels (B, *patch) int64 and pixel
        weights (B, *patch) float32 (ones where the samples carry none)."""
        xs, ys, ws = zip(*(self._one() for _ in range(batch_size)))
        return np.stack(xs), np.stack(ys).astype(np.int64), np.stack(ws).astype(np.float32)

    def _one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng
        entries = self.index[self.classes[rng.integers(len(self.classes))]]
        counts = np.array([len(pix) for _, pix in entries], float)
        i, pix = entries[rng.choice(len(entries), p=counts / counts.sum())]
        sample = self.samples[i]
        center = np.unravel_index(pix[rng.integers(len(pix))], sample.labels.shape)
        size = self._zoomed_size()
        start = [
            c - p // 2 + int(rng.integers(-(p // 4), p // 4 + 1))
            for c, p in zip(center, size)
        ]
        x = crop(sample.image, start, size, "reflect").astype(np.float32)
        y = crop(sample.labels, start, size, "constant")
        if sample.weights is None:
            w = np.ones(y.shape, np.float32)
        else:
            w = crop(sample.weights, start, size, "constant").astype(np.float32)
        if size != self.patch_size:
            x, (y, w) = resize(x, [y, w], self.patch_size)
        if self.augment:
            x, y, w = self._augment(x, y, w)
        return tuple(np.ascontiguousarray(a) for a in (x, y, w))

    def _zoomed_size(self) -> tuple[int, ...]:
        """The region a patch is cut from: the patch itself, or with ``scale_jitter`` s a
        region 1/(1+s) to (1+s) times its in-plane side (log-uniform), resized to the patch,
        so the network meets objects a little smaller and larger than the strokes show."""
        if not (self.augment and self.scale_jitter):
            return self.patch_size
        zoom = float(np.exp(self.rng.uniform(-1, 1) * np.log1p(self.scale_jitter)))
        plane = tuple(max(2, round(p * zoom)) for p in self.patch_size[-2:])
        return self.patch_size[:-2] + plane

    def _augment(self, x: np.ndarray, y: np.ndarray, w: np.ndarray):
        """The same flips, rotation and deformation for image, labels and weights."""
        rng = self.rng
        nd = y.ndim
        for ax in range(nd):
            if rng.random() < 0.5:
                x, y, w = np.flip(x, ax + 1), np.flip(y, ax), np.flip(w, ax)
        if y.shape[-1] == y.shape[-2]:
            k = int(rng.integers(4))
            x, y, w = (np.rot90(a, k, axes=(-2, -1)) for a in (x, y, w))
        if self.elastic:
            x, (y, w) = elastic_deform(x, [y, w], rng)
        j = self.intensity_jitter
        if j:
            shape = (x.shape[0],) + (1,) * nd
            x = x * (1 + rng.uniform(-j, j, shape)) + rng.uniform(-j, j, shape)
        return x.astype(np.float32), y, w


def resize(x: np.ndarray, ys: Sequence[np.ndarray], shape: Sequence[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Image ``x`` (C, *spatial) linearly and the spatial arrays ``ys`` (labels, weights) by
    nearest neighbours to the spatial ``shape`` (pixel centres aligned; axis by axis, which
    costs a fraction of scipy's zoom on a patch)."""
    ys = list(ys)
    for axis, n in zip(range(-len(shape), 0), shape):
        m = ys[0].shape[axis]
        if m == n:
            continue
        pos = np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0, m - 1)
        lo = np.floor(pos).astype(np.intp)
        hi = np.minimum(lo + 1, m - 1)
        f = (pos - lo).astype(np.float32).reshape((-1,) + (1,) * (-axis - 1))
        x = np.take(x, lo, axis) * (1 - f) + np.take(x, hi, axis) * f
        nearest = np.rint(pos).astype(np.intp)
        ys = [np.take(y, nearest, axis) for y in ys]
    return x, ys


def elastic_deform(
    x: np.ndarray, ys: Sequence[np.ndarray], rng: np.random.Generator, alpha: float = 6.0,
    sigma: float = 8.0,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Smooth random displacement of the in-plane axes of image ``x`` (C, *spatial) and of the
    spatial arrays ``ys`` (labels, weights: nearest neighbours)."""
    shape = ys[0].shape
    grid = np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij")
    coords = []
    for ax, g in enumerate(grid):
        if ax >= len(shape) - 2:
            d = ndi.gaussian_filter(rng.uniform(-1, 1, shape).astype(np.float32), sigma)
            g = g + alpha * d / (np.abs(d).max() + 1e-6)
        coords.append(g)
    xd = np.stack([ndi.map_coordinates(c, coords, order=1, mode="reflect") for c in x])
    return xd, [ndi.map_coordinates(y, coords, order=0, mode="constant") for y in ys]
