"""Class priors: strokes do not hold the classes in the image's proportions.

Scribbles label each class about as much as the others (and the patch sampler draws classes
evenly), while an image may be 5 % nucleus. A network's probabilities lean towards the shares
the classes had among the labelled pixels it learned from; at prediction, each image's own
shares are estimated from its probabilities and the probabilities re-weighted to them (after
Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a classifier to new a priori
probabilities").
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MIN_SHARE = 1e-3  # floor of a class's share, so that no ratio divides by zero
# a model trained from scratch is corrected from this many steps on: before, it draws thin
# classes too thin around strokes it already gets right, and the correction thinned them
# further (at 30 and 50 steps it cost on ISBI, DSB and Drosophila VNC; from 70 it helped)
MIN_STEPS = 60


def labelled_prior(labels: Sequence[np.ndarray], n_classes: int) -> tuple[float, ...]:
    """Share of each class 1..K among the labelled pixels (partial-class codes left out)."""
    counts = np.zeros(n_classes, np.float64)
    for lab in labels:
        values = lab[(lab > 0) & (lab <= n_classes)]
        counts += np.bincount(values.astype(np.int64), minlength=n_classes + 1)[1:]
    if counts.sum() == 0:
        return tuple([1.0 / n_classes] * n_classes)
    share = np.maximum(counts / counts.sum(), MIN_SHARE)
    return tuple(float(s) for s in share / share.sum())


def every_class_held_out(labels: Sequence[np.ndarray], n_classes: int) -> bool:
    """Whether held-out ``labels`` hold strokes of each class 1..K: what ``model_lean`` needs."""
    seen = np.zeros(n_classes + 1, bool)
    for lab in labels:
        seen[np.unique(lab[lab <= n_classes])] = True
    return bool(seen[1:].all())


def model_lean(probs: Sequence[np.ndarray], labels: Sequence[np.ndarray],
               shares: Sequence[float]) -> tuple[float, ...]:
    """What a model's probabilities lean towards: the strokes' class ``shares`` with each
    class's strokes counted as the model's mean probabilities (K, ...) ``probs`` on ``labels``
    (held-out strokes, values 1..K; other values, e.g. partial-class codes, do not count). A
    model that fits its strokes leans to their shares; one early in training leans less to
    classes it has not learned yet (dividing by the shares then thinned those classes further).
    Every class needs held-out strokes: counting an unmeasured class as learned tilts the lean
    towards it (a single background stroke, never held out, and the blobs grew), and taking
    the shares as its lean over-segmented a deep-supervised model's softer probabilities
    there; without a measured lean (``every_class_held_out``), predictions are not corrected
    (train.Trainer)."""
    k = len(shares)
    sums, counts = np.zeros((k, k)), np.zeros(k)
    for p, lab in zip(probs, labels):
        flat, lab = p.reshape(k, -1), lab.reshape(-1)
        for c in range(k):
            m = lab == c + 1
            sums[c] += flat[:, m].sum(1, dtype=np.float64)
            counts[c] += m.sum()
    if not counts.all():
        raise ValueError("the lean needs held-out strokes of every class")
    lean = np.maximum(np.asarray(shares, np.float64) @ (sums / counts[:, None]), MIN_SHARE)
    return tuple(float(s) for s in lean / lean.sum())


def _ratio(train_prior: Sequence[float], prior: np.ndarray) -> np.ndarray:
    return (np.asarray(prior, np.float64) / np.asarray(train_prior, np.float64)).astype(np.float32)


def shift_prior(probs: np.ndarray, train_prior: Sequence[float], prior: np.ndarray) -> np.ndarray:
    """Probabilities (K, ...) of a model trained at ``train_prior`` re-weighted to ``prior``."""
    ratio = _ratio(train_prior, prior).reshape((-1,) + (1,) * (probs.ndim - 1))
    q = probs.astype(np.float32) * ratio
    q /= np.maximum(q.sum(0, keepdims=True), 1e-12)
    return q


def shift_members(probs: np.ndarray, train_prior: Sequence[float],
                  priors: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Members' probabilities (M, K, ...) each re-weighted to its own ``priors[m]`` (by
    default estimated from them), then averaged: an ensemble's prediction. Correcting the
    members' mean instead lets one member's soft or skewed probabilities move the shares used
    for all (on DSB's out-of-domain images the corrected mean fell below the mean corrected
    member: README, Guidance benchmarks)."""
    if priors is None:
        priors = [estimate_prior(p) for p in probs]
    return np.mean([shift_prior(p, train_prior, prior) for p, prior in zip(probs, priors)], 0)


def estimate_prior(probs: np.ndarray, max_pixels: int = 1 << 18) -> np.ndarray:
    """The class shares of the image that ``probs`` (K, ...) were predicted for: the mean
    probability of each class (over at most ``max_pixels`` evenly strided pixels).

    This is the first step of Saerens' EM; iterating to its fixed point sharpens the shares
    further, and with a model that is still soft (early in training) it empties whole classes
    (README, Label conventions: the figures).
    """
    k = probs.shape[0]
    flat = probs.reshape(k, -1)
    flat = flat[:, :: max(1, flat.shape[1] // max_pixels)]
    share = np.maximum(flat.mean(1, dtype=np.float64), MIN_SHARE)
    return share / share.sum()
