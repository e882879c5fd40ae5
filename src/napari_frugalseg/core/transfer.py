"""Starting from an earlier model (after the TEM virus study): keep what it learned, fit the
new task's classes with a new head.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

from .bundle import Bundle
from .config import ModelConfig
from .errors import FrugalsegError
from .model import UNet


def transfer(bundle: Bundle, classes: Sequence[str], in_channels: int, ndim: int, name: str
             ) -> tuple[list[UNet], ModelConfig]:
    """Copies of the bundle's members ready to fine-tune on a task with ``classes``.

    Encoder and decoder are kept. With other classes the 1x1 output head is replaced; the rows
    of classes whose names the old model knew are carried over. Other channels or another
    dimensionality cannot be adapted and raise a clear error naming ``name`` (the bundle).
    """
    old = bundle.config
    if old.ndim != ndim:
        raise FrugalsegError(f"{name}: a {old.ndim}D model cannot start a {ndim}D model")
    if old.in_channels != in_channels:
        raise FrugalsegError(
            f"{name}: model was trained on {old.in_channels}-channel images, these have "
            f"{in_channels}; start from a model trained on {in_channels}-channel images or train "
            "from scratch"
        )
    # the class shares are those of the new labels, set when training starts
    config = old.replace(classes=tuple(classes), class_prior=None)
    models = [copy.deepcopy(m).cpu() for m in bundle.models]
    if tuple(classes) == old.classes:
        return models, config
    for model in models:
        head = model.head
        fresh = type(head)(head.in_channels, len(classes), 1)
        with torch.no_grad():
            for k, cls in enumerate(classes):
                if cls in old.classes:
                    j = old.classes.index(cls)
                    fresh.weight[k] = head.weight[j]
                    fresh.bias[k] = head.bias[j]
        model.head = fresh
    return models, config
