"""How an array of more axes than a model's is seen: a series of planes (or of stacks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def planes(array: np.ndarray, keep: int = 0, ndim: int = 2) -> np.ndarray:
    """The array as a ``ndim``-D model sees it: several axes before the model's own (a time
    series of stacks for a 2D model) flattened in C order into one, a series of planes
    (N, Y, X), or of stacks (N, Z, Y, X) for a 3D model; the first ``keep`` axes (channels)
    stay as they are. Others as they are."""
    if array.ndim - keep <= ndim + 1:
        return array
    return array.reshape(*array.shape[:keep], -1, *array.shape[-ndim:])


def channels_hint(spatial: Sequence[int], channels: int) -> int | None:
    """For an image read as one channel, of ``spatial`` shape, given to a model of ``channels``
    (> 1): the first axis before its planes that is that long, which may hold the channels (the
    command line and the plugin name it); None where there is none."""
    lead = tuple(spatial[:-2])
    return lead.index(channels) if channels > 1 and channels in lead else None
