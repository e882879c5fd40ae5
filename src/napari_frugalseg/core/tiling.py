"""Tiled prediction as a pure function over a predict callable.

Tiles overlap and are blended with a smooth (Hann) window. Tiles are visited row by row along
the first axis and each finished band is handed out at once, so the working memory is one band
of tiles (tile height x image width x classes), whatever the image height; the input can be any
array that slices (numpy, memmap, zarr) and is read one tile at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import product

import numpy as np

PredictFn = Callable[[np.ndarray], np.ndarray]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap``."""
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def _window(shape: Sequence[int]) -> np.ndarray:
    w = np.ones((), np.float32)
    for n in shape:
        axis = np.sin(np.pi * (np.arange(n, dtype=np.float32) + 0.5) / n) ** 2
        w = np.multiply.outer(w, np.maximum(axis, 1e-3))
    return w


def tile_shape(spatial: Sequence[int], tile: Sequence[int]) -> tuple[int, ...]:
    return tuple(min(int(t), int(s)) for t, s in zip(tile, spatial))


def n_bands(spatial: Sequence[int], tile: Sequence[int], overlap: float = 0.25) -> int:
    """How many bands ``iter_tiled`` yields (for progress bars)."""
    t = tile_shape(spatial, tile)
    return len(tile_starts(spatial[0], t[0], int(round(t[0] * overlap))))


def iter_tiled(
    image: np.ndarray,
    predict: PredictFn,
    tile: Sequence[int],
    n_classes: int,
    overlap: float = 0.25,
) -> Iterator[tuple[tuple[slice, ...], np.ndarray]]:
    """Yield (region, probabilities) for finished bands of ``image`` (C, *spatial).

    ``predict`` maps a (C, *tile) array to (n_classes, *tile) probabilities. Regions cover the
    image exactly once, in order along the first spatial axis.
    """
    spatial = tuple(image.shape[1:])
    if len(tile) != len(spatial):
        raise ValueError(f"tile {tuple(tile)} does not match image axes {spatial}")
    t = tile_shape(spatial, tile)
    starts = [tile_starts(s, ts, int(round(ts * overlap))) for s, ts in zip(spatial, t)]
    window = _window(t)
    rest = spatial[1:]
    band = t[0]
    acc = np.zeros((n_classes, band) + rest, np.float32)
    wsum = np.zeros((band,) + rest, np.float32)
    rows = starts[0]
    for r, z0 in enumerate(rows):
        for others in product(*starts[1:]):
            region = (slice(z0, z0 + t[0]),) + tuple(
                slice(o, o + ts) for o, ts in zip(others, t[1:])
            )
            probs = np.asarray(predict(np.asarray(image[(slice(None),) + region])), np.float32)
            if probs.shape != (n_classes,) + t:
                raise ValueError(
                    f"predict returned shape {probs.shape}, expected {(n_classes,) + t}"
                )
            local = (slice(0, t[0]),) + region[1:]
            acc[(slice(None),) + local] += probs * window
            wsum[local] += window
        end = rows[r + 1] if r + 1 < len(rows) else z0 + t[0]
        done = end - z0
        yield (slice(z0, end),) + tuple(slice(0, s) for s in rest), acc[:, :done] / wsum[:done]
        # shift the band: what the next row of tiles still adds to stays
        keep = band - done
        acc[:, :keep] = acc[:, done:]
        acc[:, keep:] = 0
        wsum[:keep] = wsum[done:]
        wsum[keep:] = 0


def class_dtype(n_classes: int) -> type:
    """The smallest unsigned integer type holding class values 1..n_classes."""
    return np.uint8 if n_classes < 255 else np.uint16


def predict_tiled(
    image: np.ndarray,
    predict: PredictFn,
    tile: Sequence[int],
    n_classes: int,
    overlap: float = 0.25,
    probabilities: bool = False,
    out: np.ndarray | None = None,
    probs_out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Class map (values 1..K) and optionally per-class probabilities (K, *spatial).

    ``out`` and ``probs_out`` may be given (any writable array: numpy, memmap, zarr) to keep
    the image-sized results out of memory.
    """
    spatial = tuple(image.shape[1:])
    if out is None:
        out = np.zeros(spatial, class_dtype(n_classes))
    if probabilities and probs_out is None:
        probs_out = np.zeros((n_classes,) + spatial, np.float32)
    for region, probs in iter_tiled(image, predict, tile, n_classes, overlap):
        out[region] = probs.argmax(0) + 1
        if probabilities:
            probs_out[(slice(None),) + region] = probs
    return out, probs_out if probabilities else None
