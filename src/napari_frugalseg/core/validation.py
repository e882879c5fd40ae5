"""Held-out strokes as a yardstick: fixed patches centred on them, and the score on those."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .labels import dice_per_class
from .sampling import Sample, crop


# Held-out patches per class. With 4, a dense or partial-class set's score rested on a
# handful of held-out objects: on Drosophila VNC it fell by 0.03 (synapse recall on four
# patches) while the Dice on unseen slices rose by 0.03, and early weights were kept
# (docs/benchmark-notes.md, "Partial classes"); a validation costs one forward pass of them.
PATCHES_PER_CLASS = 16


def held_out_patches(samples: Sequence[Sample], n_classes: int, size: Sequence[int],
                     per_class: int = PATCHES_PER_CLASS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, labels) patches of ``size`` centred on held-out strokes, up to ``per_class`` per
    class spread over all of them (``samples`` hold only the held-out labels)."""
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


def held_out_score(probs: Sequence[np.ndarray], truths: Sequence[np.ndarray], n_classes: int,
                   allowed: np.ndarray | None = None) -> float | None:
    """Mean Dice over the classes that have held-out strokes (None if no class scores).

    A class without held-out strokes would score 0 as soon as one held-out pixel is called that
    class and be left out otherwise: a jump, not a measure. With partial-class labels,
    ``allowed`` ((M, K) bool, ``losses.allowed_table``) says which classes a held-out "one of
    these" pixel (code > K) may be: calling it another class is a false positive of that class,
    as the region declared that class complete. Without it, such pixels do not count, and
    weights that over-call the declared classes would score as well as those that do not."""
    k = n_classes
    preds = np.concatenate([p.argmax(0).ravel() + 1 for p in probs])
    codes = np.concatenate([t.ravel() for t in truths])
    truth = np.where(codes <= k, codes, 0)
    if allowed is not None:  # a region pixel called a class it excludes: known not that class
        group = np.flatnonzero(codes > k)
        truth[group[~allowed[codes[group], preds[group] - 1]]] = k + 1
    held = np.bincount(truth, minlength=k + 2)[1 : k + 1] > 0
    dice = dice_per_class(preds, truth, k)[held]
    return float(np.nanmean(dice)) if np.isfinite(dice).any() else None
