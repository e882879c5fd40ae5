"""Held-out strokes as a yardstick: fixed patches centred on them, and the score on those."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .labels import dice_per_class
from .sampling import Sample, crop


def held_out_patches(samples: Sequence[Sample], n_classes: int, size: Sequence[int],
                     per_class: int = 4) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, labels) patches of ``size`` centred on held-out strokes, a few per class spread
    over all of them (``samples`` hold only the held-out labels)."""
    out = []
    for value in range(1, n_classes + 1):
        pix = [np.flatnonzero(s.labels.reshape(-1) == value) for s in samples]
        owner = np.repeat(np.arange(len(samples)), [len(p) for p in pix])
        if not len(owner):
            continue
        flat = np.concatenate(pix)
        for pick in np.unique(np.linspace(0, len(flat) - 1, per_class).astype(int)):
            s, idx = samples[owner[pick]], flat[pick]
            center = np.unravel_index(idx, s.labels.shape)
            start = [c - p // 2 for c, p in zip(center, size)]
            out.append((crop(s.image, start, size, "reflect"), crop(s.labels, start, size, "constant")))
    return out


def held_out_score(probs: Sequence[np.ndarray], truths: Sequence[np.ndarray], n_classes: int) -> float | None:
    """Mean Dice over the classes that have held-out strokes (None if no class scores).

    A class without held-out strokes would score 0 as soon as one held-out pixel is called that
    class and be left out otherwise: a jump, not a measure."""
    preds = np.concatenate([p.argmax(0).ravel() + 1 for p in probs])
    truth = np.concatenate([t.ravel() for t in truths])
    held = np.bincount(truth, minlength=n_classes + 1)[1:] > 0
    dice = dice_per_class(preds, truth, n_classes)[held]
    return float(np.nanmean(dice)) if np.isfinite(dice).any() else None
