"""The overlay layers: live previews while training, whole-image predictions, uncertainty.

Functions here run on the GUI thread, except the body of the job ``prediction_job`` returns.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels

from ..core.bundle import check_image_fits
from ..core.device import resolve_device
from ..core.errors import FrugalsegError
from ..core.predict import Prediction, predict_image, uncertainty
from . import layers as L
from .state import Preview, background_priority

if TYPE_CHECKING:
    from .controller import Controller


def uncertainty_layer(ctl: Controller, image: Image) -> Image:
    layer = L.find(ctl.viewer, image, "uncertainty")
    if layer is None:
        layer = L.add_image_overlay(
            ctl.viewer, image, "uncertainty", np.zeros(L.spatial_shape(image), np.float32),
            colormap="magma", contrast_limits=(0, 1), opacity=0.6, blending="additive",
            visible=ctl.show_uncertainty,
        )
    return layer


def show_preview(ctl: Controller, preview: Preview) -> None:
    """Write a preview of the visible region into the prediction (and uncertainty) layer."""
    view = preview.view
    if view.image not in ctl.viewer.layers:
        return
    image = ctl.viewer.layers[view.image]
    key = view.box if view.z is None else (view.z,) + view.box
    layer = L.find(ctl.viewer, image, "prediction")
    if not isinstance(layer, Labels):
        layer = L.ensure_labels(ctl.viewer, image, "prediction", ctl.colors)
    layer.data[key] = preview.classes
    layer.refresh()
    if ctl.show_uncertainty:
        unc = uncertainty_layer(ctl, image)
        unc.data[key] = preview.uncertainty
        unc.refresh()
    ctl.preview_shown.emit(time.perf_counter())


def prediction_job(ctl: Controller, image: Image | None):
    """Check everything on the GUI thread; return the generator function for the worker."""
    if image is None:
        raise FrugalsegError("pick an image layer first")
    if ctl.model is None:
        raise FrugalsegError("no model yet: train or load one first")
    array = L.image_array(image)
    model, config, name = ctl.model, ctl.config, image.name
    check_image_fits(config, array, f"layer '{name}'")
    device = resolve_device(ctl.settings.device)

    def job():
        background_priority()
        try:
            result = yield from predict_image(
                model.to(device), config, array, device, probabilities=True, name=f"layer '{name}'"
            )
            return name, result
        finally:
            model.cpu()

    return job


def show_prediction(ctl: Controller, result: tuple[str, Prediction] | None) -> None:
    if result is None:
        return
    name, pred = result
    if name not in ctl.viewer.layers:
        return
    image = ctl.viewer.layers[name]
    # written in place: replacing .data resets the layer, which costs napari more time
    for layer, values in (
        (L.ensure_labels(ctl.viewer, image, "prediction", ctl.colors), pred.classes),
        (uncertainty_layer(ctl, image), uncertainty(pred.probabilities)),
    ):
        layer.data[...] = values
        layer.refresh()
    ctl.say(f"predicted '{name}'")
