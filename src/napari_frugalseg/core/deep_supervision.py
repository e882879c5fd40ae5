"""Deep supervision: the label loss also on the U-Net's coarser decoder levels.

A 1 x 1 convolution on a decoder level's features gives class logits at that level's
resolution; upsampled to the patch, they take the same partial (or marginal) cross-entropy as
the output, which sends the strokes' gradient straight into the deeper layers and speeds up the
few hundred steps a CPU run has (docs/benchmark-notes.md). The heads belong to the training,
not to the model: a bundle holds the U-Net alone and predicts without them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .losses import partial_loss
from .model import UNet


class DeepSupervision(nn.Module):
    """Heads on the decoder levels of ``model`` from the second finest up, one per weight (of
    ``weights``; levels the network lacks are dropped). ``capture()`` around a training forward
    pass, then ``loss()``."""

    def __init__(self, model: UNet, n_classes: int, weights: Sequence[float]):
        super().__init__()
        conv = nn.Conv2d if model.ndim == 2 else nn.Conv3d
        depth = len(model.up_convs)
        self.weights = [float(w) for w in weights][: depth - 1]
        levels = range(1, len(self.weights) + 1)  # up_convs[depth - 1 - level] makes a level
        self.blocks = [model.up_convs[depth - 1 - level] for level in levels]
        # per level and axis, how much smaller than the (padded) input its features are
        self.factors = [[math.prod(f[a] for f in model.factors[:level]) for a in range(model.ndim)]
                        for level in levels]
        self.heads = nn.ModuleList(conv(b[-3].out_channels, n_classes, 1) for b in self.blocks)
        self.ndim = model.ndim
        self._features: list[torch.Tensor | None] = [None] * len(self.blocks)

    @contextlib.contextmanager
    def capture(self):
        """Keep the decoder features of the forward passes run inside."""
        handles = [block.register_forward_hook(self._keeper(i)) for i, block in enumerate(self.blocks)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _keeper(self, i: int):
        def keep(module, inputs, output):
            self._features[i] = output
        return keep

    def loss(self, labels: torch.Tensor, allowed: torch.Tensor | None = None,
             weights: torch.Tensor | None = None, robust_q: float = 0.0) -> torch.Tensor:
        """The weighted label loss (cross-entropy part of ``partial_loss``) of each head's
        logits, upsampled to the labels' size and cropped where the model padded."""
        total = labels.new_zeros((), dtype=torch.float32)
        mode = "bilinear" if self.ndim == 2 else "trilinear"
        spatial = labels.shape[1:]
        for head, w, factor, features in zip(self.heads, self.weights, self.factors, self._features):
            if features is None or not w:
                continue
            size = [n * f for n, f in zip(features.shape[2:], factor)]
            features = features.to(head.weight.dtype)  # bfloat16 / float16 under autocast
            logits = F.interpolate(head(features), size=size, mode=mode, align_corners=False)
            logits = logits[(...,) + tuple(slice(0, s) for s in spatial)]
            total = total + w * partial_loss(logits, labels, dice_weight=0.0, allowed=allowed,
                                             weights=weights, robust_q=robust_q)
        self._features = [None] * len(self.blocks)
        return total
