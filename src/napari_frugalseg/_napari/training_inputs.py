"""What a training run is made of, read from the layers on the GUI thread: the images, coded
labels and pixel weights of every image with scribbles, and the model configuration; new
strokes into a running training."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from qtpy.QtCore import QTimer

from ..core.bundle import Bundle
from ..core.config import ModelConfig, new_model_config
from ..core.errors import FrugalsegError
from ..core.transfer import transfer
from . import imperfect
from . import layers as L

if TYPE_CHECKING:
    from .controller import Controller


def gather(ctl: Controller, sets: list[list[int]]):
    """Names, images, coded labels and pixel weights of every image with scribbles."""
    if ctl.image is None:
        raise FrugalsegError("pick an image layer first")
    names, images, labels, weights = [], [], [], []
    for image in ctl.image_layers():
        layer = ctl.scribbles(image)
        if layer is None or not np.any(layer.data):
            continue
        L.check_shape(image, layer)
        names.append(image.name)
        images.append(L.image_array(image, ctl.settings.ndim))
        lab, w = imperfect.coded_labels(ctl.viewer, layer, len(ctl.classes), sets,
                                        ndim=ctl.settings.ndim)
        labels.append(lab)
        weights.append(w)
    if not names:
        scrib = ctl.image.name + L.SUFFIX["scribbles"]
        raise FrugalsegError(f"no scribbles yet: paint strokes of at least two classes on '{scrib}'")
    for name, image in zip(names, images):
        if image.shape[0] != images[0].shape[0]:
            raise FrugalsegError(
                f"image '{name}' has {image.shape[0]} channel(s) but '{names[0]}' has "
                f"{images[0].shape[0]}; a model trains on one kind of image: erase the "
                f"strokes of '{name}{L.SUFFIX['scribbles']}' (or of the other) first"
            )
    return names, images, labels, weights


def model_config(ctl: Controller, images: list[np.ndarray]) -> ModelConfig:
    """The configuration to train: the current model's when it still fits (classes renamed);
    with classes added or removed, the current model with a new output head (``transfer``:
    what it learned is kept); else a new one (and the current model is dropped)."""
    names = tuple(c.name for c in ctl.classes)
    ndim = ctl.settings.ndim
    if ndim == 3 and any(im.ndim < 4 for im in images):
        raise FrugalsegError("a 3D model needs a 3D stack; choose a 2D model for 2D images")
    channels = images[0].shape[0]
    old = ctl.config if ctl.models else None
    if old and (old.in_channels, old.ndim) == (channels, ndim):
        if old.n_classes == len(names):
            return old.replace(classes=names)  # renamed classes, same network
        ctl.models, config = transfer(Bundle(ctl.models, old), names, channels, ndim, "the current model")
        ctl.say(f"{len(names)} classes now: the model keeps what it learned, with a new output layer")
        return config
    if old:
        ctl.say("channels or dimensionality changed: training a new model")
    ctl.models = []
    depth = min(im.shape[-3] for im in images) if ndim == 3 else None
    return new_model_config(names, channels, ndim, depth, ctl.settings.patch_size)


def into_running(ctl: Controller, index: int, layer) -> bool:
    """New strokes of the running training's image ``index`` (its scribble ``layer``) into its
    data (``ctl.strokes_used`` is emitted once it uses them); False, said, where they cannot go
    in (the class table changed, a bad stroke)."""
    trainer = ctl.trainer
    if len(ctl.classes) != trainer.config.n_classes:
        ctl.say("the class table changed during training: new strokes wait for the next Train "
                "(the model keeps what it learned, with outputs for the new classes)")
        return False
    try:
        coded, _ = imperfect.coded_labels(ctl.viewer, layer, len(ctl.classes), trainer.data.partial_sets,
                                          grow=False, ndim=trainer.config.ndim)
    except FrugalsegError as exc:
        ctl.fail(exc)
        return False
    trainer.data.set_labels(index, coded)
    _await_pickup(ctl, trainer)
    return True


def _await_pickup(ctl: Controller, trainer) -> None:
    """Emit ``ctl.strokes_used`` once the running ``trainer`` has rebuilt its data."""
    wanted = trainer.data.version

    def check():
        if trainer is not ctl.trainer:
            return
        if trainer.labels_in_use >= wanted:
            ctl.strokes_used.emit(time.perf_counter())
        else:
            QTimer.singleShot(50, check)

    QTimer.singleShot(50, check)
