"""Partial-label losses: learn only from labelled pixels.

Label convention (see ``labels.py``): 0 = unlabelled, k >= 1 = class k, so class k is
channel k-1 of the logits. Partial-class annotations add codes above K, each standing for a
set of classes the pixel may belong to (``allowed_table``); the marginal loss learns from
them. Pure functions first, thin ``nn.Module`` wrappers after.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def _zero_like(logits: torch.Tensor) -> torch.Tensor:
    """A zero loss that keeps the graph connected (no labelled pixel in the batch)."""
    return logits.sum() * 0.0


def _weighted_mean(values: torch.Tensor, mask: torch.Tensor, weights: torch.Tensor | None):
    if weights is None:
        return values[mask].mean()
    w = weights.to(values.dtype)[mask]
    return (values[mask] * w).sum() / w.sum().clamp_min(1e-6)


def partial_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy averaged over labelled pixels only (weighted by ``weights`` if given).

    logits: (B, K, *spatial); labels: (B, *spatial) integers with 0 = unlabelled.
    """
    mask = labels > 0
    if not bool(mask.any()):
        return _zero_like(logits)
    target = labels.long() - 1  # unlabelled becomes -1
    ce = F.cross_entropy(logits.float(), target, ignore_index=-1, reduction="none")
    return _weighted_mean(ce, mask, weights)


def generalized_cross_entropy(
    logits: torch.Tensor, codes: torch.Tensor, allowed: torch.Tensor, q: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Noise-robust (1 - P^q) / q over labelled pixels (Zhang & Sabuncu 2018), P being the
    probability of the pixel's label (or of its allowed set): q -> 0 is cross-entropy, q = 1
    the mean absolute error, which a wrong label cannot pull as hard."""
    table = allowed.to(logits.device)[codes.long()].movedim(-1, 1)
    n_allowed = table.sum(1)
    informative = (n_allowed > 0) & (n_allowed < logits.shape[1])
    if not bool(informative.any()):
        return _zero_like(logits)
    probs = torch.softmax(logits.float(), dim=1)
    mass = (probs * table).sum(1).clamp_min(1e-7)
    return _weighted_mean((1 - mass**q) / q, informative, weights)


def masked_soft_dice(
    logits: torch.Tensor,
    labels: torch.Tensor,
    eps: float = 1.0,
    weights: torch.Tensor | None = None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """1 - soft Dice computed on labelled pixels, per label code, averaged over the codes present.

    Unlabelled pixels contribute neither to the overlap nor to the denominators; ``weights``
    scale each pixel's contribution. With an ``allowed`` table (partial-class codes above K)
    each code c is scored as the probability mass on its classes: a pixel is a positive for c
    if its own code's classes all lie in c's, a negative if they share none, and left out of
    c's Dice otherwise (so a pixel known to be "glia, synapse or cytoplasm" counts against
    membrane, and towards that group, as in heartSeg's merged-background Dice). With singleton
    codes only this is the per-class masked Dice.
    """
    mask = labels > 0
    if not bool(mask.any()):
        return _zero_like(logits)
    n_classes = logits.shape[1]
    table = (allowed if allowed is not None else allowed_table(n_classes)).to(logits.device)
    sets = table[1:].float()  # (M-1, K): the classes of codes 1..M-1
    shared = sets @ sets.T  # classes two codes have in common
    positive = (shared == sets.sum(1, keepdim=True)).float()  # [d, c]: d's classes within c's
    known = positive + (shared == 0).float()  # [d, c]: d says yes or no about c
    codes = (labels.long() - 1).clamp(min=0)
    pixel = mask.float() if weights is None else mask.float() * weights.float()
    pos = positive[codes].movedim(-1, 1) * pixel.unsqueeze(1)  # (B, M-1, *spatial)
    valid = known[codes].movedim(-1, 1) * pixel.unsqueeze(1)
    probs = torch.softmax(logits.float(), dim=1)
    mass = torch.einsum("bk...,ck->bc...", probs, sets)
    dims = [0] + list(range(2, logits.ndim))
    inter = (mass * pos).sum(dims)
    denom = (mass * valid).sum(dims) + pos.sum(dims)
    dice = (2.0 * inter + eps) / (denom + eps)
    # scored: the codes labelled in this batch that say something (not "any class")
    seen = torch.zeros(len(sets), dtype=torch.bool, device=logits.device)
    seen[codes[mask & (pixel > 0)].unique()] = True
    present = seen & (sets.sum(1) < n_classes)
    return 1.0 - dice[present].mean() if bool(present.any()) else _zero_like(logits)


def allowed_table(n_classes: int, extra: Sequence[Iterable[int]] = ()) -> torch.Tensor:
    """(M, K) bool: row 0 (unlabelled) allows every class, row k only class k, and row K+i
    the classes (1-based) of ``extra[i-1]``: a pixel with code K+i is one of those."""
    table = torch.zeros(1 + n_classes + len(extra), n_classes, dtype=torch.bool)
    table[0] = True
    table[1 : n_classes + 1] = torch.eye(n_classes, dtype=torch.bool)
    for i, classes in enumerate(extra, start=n_classes + 1):
        table[i, [c - 1 for c in classes]] = True
    return table


def marginal_cross_entropy(
    logits: torch.Tensor, codes: torch.Tensor, allowed: torch.Tensor,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """-log of the probability mass on the classes each pixel may belong to, averaged over
    informative pixels (code allows some but not all classes).

    Singleton codes (1..K) make this the partial cross-entropy; a code allowing the classes
    outside a set S is the marginal loss of partial-class labels; code 0 is ignored.
    """
    table = allowed.to(logits.device)[codes.long()].movedim(-1, 1)  # (B, K, *spatial)
    n_allowed = table.sum(1)
    informative = (n_allowed > 0) & (n_allowed < logits.shape[1])
    if not bool(informative.any()):
        return _zero_like(logits)
    logp = torch.log_softmax(logits.float(), dim=1)
    mass = torch.logsumexp(logp.masked_fill(~table, float("-inf")), dim=1)
    return -_weighted_mean(mass, informative, weights)


def exclusion_loss(logits: torch.Tensor, codes: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Soft overlap between each class's probability and the pixels known not to be it
    (codes that exclude it), averaged over classes with such pixels: 0 when none leaks."""
    table = allowed.to(logits.device)[codes.long()].movedim(-1, 1)
    excluded = (~table & (codes > 0).unsqueeze(1)).float()
    dims = [0] + list(range(2, logits.ndim))
    present = excluded.sum(dims) > 0
    if not bool(present.any()):
        return _zero_like(logits)
    probs = torch.softmax(logits.float(), dim=1)
    overlap = 2 * (probs * excluded).sum(dims) / (probs.sum(dims) + excluded.sum(dims) + 1.0)
    return overlap[present].mean()


def _neighbour_offsets(ndim: int, radius: int) -> list[tuple[int, ...]]:
    """Half of the nonzero offsets in the (2 radius + 1)^ndim cube: each pair once."""
    cube = itertools.product(range(-radius, radius + 1), repeat=ndim)
    return [o for o in cube if o > (0,) * ndim]


class _PairDisagreement(torch.autograd.Function):
    """sum over pairs (a, b, w) of sum(w * (1 - probs[a] . probs[b])), with a backward that
    adds every pair's gradient into one tensor: autograd's own backward of the slices would
    allocate and zero a full copy of ``probs`` per slice (half of the term's time on a CPU)."""

    @staticmethod
    def forward(ctx, probs: torch.Tensor, pairs: list) -> torch.Tensor:
        ctx.save_for_backward(probs)
        ctx.pairs = pairs
        total = probs.new_zeros(())
        for a, b, w in pairs:
            total += (w * (1 - torch.linalg.vecdot(probs[a], probs[b], dim=1))).sum()
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (probs,) = ctx.saved_tensors
        out = torch.zeros_like(probs)
        for a, b, w in ctx.pairs:
            scale = (w * grad).unsqueeze(1)
            out[a].addcmul_(scale, probs[b], value=-1)
            out[b].addcmul_(scale, probs[a], value=-1)
        return out, None


def affinity_loss(
    logits: torch.Tensor, image: torch.Tensor, labels: torch.Tensor | None = None,
    radius: int = 2, sigma: float = 0.15,
) -> torch.Tensor:
    """Edge-aware neighbour agreement that reaches the unlabelled pixels (a local CRF loss,
    after Tang et al. 2018's regularised losses for scribbles).

    For each pair of pixels at most ``radius`` apart on every axis, the chance that they get
    different classes (1 - p_i . p_j) is weighted by their image similarity
    exp(-|I_i - I_j|^2 / 2 sigma^2), so a prediction is pushed to follow the image's edges
    into the unlabelled pixels between the strokes instead of stopping where the strokes end.
    ``image`` (B, C, *spatial) is the normalised input (intensities about 0..1). With ``labels``
    only pairs with an unlabelled pixel (0) count: labelled pixels have their own supervision,
    and densely or partially annotated images (a code on every pixel) get no term at all.
    The result is the mean over offsets of each offset's mean over its pairs.
    """
    probs = torch.softmax(logits.float(), dim=1)
    img = image.float().detach()
    unlabelled = None if labels is None else (labels == 0)
    spatial = probs.shape[2:]
    offsets = _neighbour_offsets(len(spatial), radius)
    pairs = []
    for offset in offsets:
        # the spatial axes come last in every tensor: index them after an Ellipsis
        a = (...,) + tuple(slice(max(0, -o), n - max(0, o)) for o, n in zip(offset, spatial))
        b = (...,) + tuple(slice(max(0, o), n - max(0, -o)) for o, n in zip(offset, spatial))
        weight = torch.exp(-((img[a] - img[b]) ** 2).sum(1) / (2 * sigma**2))
        if unlabelled is not None:
            weight = weight * (unlabelled[a] | unlabelled[b])
        pairs.append((a, b, weight / (weight.numel() * len(offsets))))
    return _PairDisagreement.apply(probs, pairs)


def partial_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    ce_weight: float = 1.0,
    dice_weight: float = 1.0,
    allowed: torch.Tensor | None = None,
    exclusion_weight: float = 0.0,
    weights: torch.Tensor | None = None,
    robust_q: float = 0.0,
) -> torch.Tensor:
    """The label part of the default objective: weighted partial cross-entropy plus masked
    soft Dice (the Trainer adds ``affinity_loss``, which reads the image and where pixels are
    unlabelled, never a label's class).

    With an ``allowed`` table (partial-class codes above K) the cross-entropy becomes the
    marginal loss, the Dice term scores each code's group of classes, and an exclusion term
    can be added. ``weights`` (B, *spatial) scale pixels (e.g. annotator agreement). ``robust_q``
    > 0 makes the noise-robust generalized cross-entropy the whole label loss, without the
    Dice term (with it, GCE scored lower and less steadily on corrupted DSB masks:
    docs/benchmark-notes.md).
    """
    if robust_q > 0:
        table = allowed if allowed is not None else allowed_table(logits.shape[1])
        loss = ce_weight * generalized_cross_entropy(logits, labels, table, robust_q, weights)
    else:
        ce = (partial_cross_entropy(logits, labels, weights) if allowed is None
              else marginal_cross_entropy(logits, labels, allowed, weights))
        loss = ce_weight * ce
        if dice_weight:
            loss = loss + dice_weight * masked_soft_dice(logits, labels, weights=weights, allowed=allowed)
    if allowed is not None and exclusion_weight:
        loss = loss + exclusion_weight * exclusion_loss(logits, labels, allowed)
    return loss


class PartialCrossEntropy(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return partial_cross_entropy(logits, labels)


class MaskedDiceLoss(nn.Module):
    def __init__(self, eps: float = 1.0):
        super().__init__()
        self.eps = eps

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return masked_soft_dice(logits, labels, self.eps)


class PartialLoss(nn.Module):
    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0):
        super().__init__()
        self.ce_weight, self.dice_weight = ce_weight, dice_weight

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return partial_loss(logits, labels, self.ce_weight, self.dice_weight)
