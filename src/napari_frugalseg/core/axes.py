"""How an array of more axes than a model's is seen: a series of planes (or of stacks)."""

from __future__ import annotations

import numpy as np


def planes(array: np.ndarray, keep: int = 0, ndim: int = 2) -> np.ndarray:
    """The array as a ``ndim``-D model sees it: several axes before the model's own (a time
    series of stacks for a 2D model) flattened in C order into one, a series of planes
    (N, Y, X), or of stacks (N, Z, Y, X) for a 3D model; the first ``keep`` axes (channels)
    stay as they are. Others as they are."""
    if array.ndim - keep <= ndim + 1:
        return array
    return array.reshape(*array.shape[:keep], -1, *array.shape[-ndim:])
