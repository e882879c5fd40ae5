"""Deterministic synthetic scribbles drawn from a dense truth (for benchmarks and simulations).

Strokes are short pieces of the skeleton of each class's regions, as an annotator would drag
the brush along the middle of a structure. Each class gets an equal share of the pixel budget.
"""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize


def skeleton_scribbles(
    truth: np.ndarray, fraction: float, seed: int = 0, stroke_radius: int = 12
) -> np.ndarray:
    """Scribbles covering about ``fraction`` of the pixels of a dense 2D label image (1..K)."""
    rng = np.random.default_rng(seed)
    out = np.zeros(truth.shape, np.int32)
    classes = [int(c) for c in np.unique(truth) if c > 0]
    budget = max(1, int(round(fraction * truth.size / max(1, len(classes)))))
    for c in classes:
        coords = np.argwhere(skeletonize(truth == c))
        if len(coords) == 0:
            continue
        available = np.ones(len(coords), bool)
        drawn = 0
        while drawn < budget and available.any():
            seed_pt = coords[rng.choice(np.flatnonzero(available))]
            near = available & (np.abs(coords - seed_pt).max(axis=1) <= stroke_radius)
            take = np.flatnonzero(near)[: budget - drawn]
            out[tuple(coords[take].T)] = c
            available[take] = False
            available &= ~near
            drawn += len(take)
    return out
