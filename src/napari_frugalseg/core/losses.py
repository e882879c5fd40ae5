"""Partial-label losses: learn only from labelled pixels.

Label convention (see ``labels.py``): 0 = unlabelled, k >= 1 = class k, so class k is
channel k-1 of the logits. Pure functions first, thin ``nn.Module`` wrappers after.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _zero_like(logits: torch.Tensor) -> torch.Tensor:
    """A zero loss that keeps the graph connected (no labelled pixel in the batch)."""
    return logits.sum() * 0.0


def partial_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over labelled pixels only.

    logits: (B, K, *spatial); labels: (B, *spatial) integers with 0 = unlabelled.
    """
    mask = labels > 0
    if not bool(mask.any()):
        return _zero_like(logits)
    target = labels.long() - 1  # unlabelled becomes -1
    return F.cross_entropy(logits.float(), target, ignore_index=-1)


def masked_soft_dice(logits: torch.Tensor, labels: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice computed on labelled pixels, per class, averaged over the classes present.

    Unlabelled pixels contribute neither to the overlap nor to the denominators.
    """
    mask = labels > 0
    if not bool(mask.any()):
        return _zero_like(logits)
    n_classes = logits.shape[1]
    probs = torch.softmax(logits.float(), dim=1)
    onehot = F.one_hot((labels.long() - 1).clamp(min=0), n_classes).movedim(-1, 1).float()
    maskf = mask.unsqueeze(1).float()
    dims = [0] + list(range(2, logits.ndim))
    probs = probs * maskf
    onehot = onehot * maskf
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    dice = (2.0 * inter + eps) / (denom + eps)
    present = onehot.sum(dims) > 0
    return 1.0 - dice[present].mean()


def partial_loss(
    logits: torch.Tensor, labels: torch.Tensor, ce_weight: float = 1.0, dice_weight: float = 1.0
) -> torch.Tensor:
    """The default objective: weighted partial cross-entropy plus masked soft Dice."""
    loss = ce_weight * partial_cross_entropy(logits, labels)
    if dice_weight:
        loss = loss + dice_weight * masked_soft_dice(logits, labels)
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
