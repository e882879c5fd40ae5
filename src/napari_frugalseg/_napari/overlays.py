"""The overlay layers: live previews while training, whole-image predictions, uncertainty.

Functions here run on the GUI thread, except the body of the job ``prediction_job`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from napari.layers import Image, Labels
from qtpy.QtCore import QTimer

from ..core.axes import channels_hint
from ..core.bundle import check_image_fits, grey_for_colour
from ..core.device import resolve_device
from ..core.errors import FrugalsegError
from ..core.predict import Prediction, models_on, predict_image
from . import layers as L
from .state import Preview, TrainState, View, background_priority

if TYPE_CHECKING:
    from .controller import Controller


def uncertainty_layer(ctl: Controller, image: Image, role: str = "uncertainty") -> Image:
    """The uncertainty (entropy of the mean) or the ensemble's disagreement layer, 0..1."""
    layer = L.find(ctl.viewer, image, role)
    if layer is None:
        layer = L.add_image_overlay(
            ctl.viewer, image, role, np.zeros(L.spatial_shape(image), np.float32),
            colormap="magma" if role == "uncertainty" else "viridis", contrast_limits=(0, 1),
            opacity=0.6, blending="additive", visible=ctl.show_uncertainty,
        )
    return layer


def shows_disagreement(ctl: Controller) -> bool:
    """Whether predictions come with a disagreement map: of flips, or of ensemble members."""
    return ctl.settings.tta or ctl.settings.ensemble > 1 or len(ctl.models) > 1


def make_overlays(ctl: Controller, image: Image) -> None:
    """Make the layers that previews and predictions of ``image`` are written to, where missing:
    making a layer stalls napari briefly (~0.2 s on a slow CPU), so it is done when the image is
    picked, before any work starts."""
    L.ensure_labels(ctl.viewer, image, "prediction", ctl.colors)
    uncertainty_layer(ctl, image)
    if shows_disagreement(ctl):
        uncertainty_layer(ctl, image, "disagreement")


def view_on_screen(image: Image, viewer) -> View:
    """What a preview of ``image`` covers: the current slice's visible field; in napari's 3D
    view, where a stack is shown whole, the slices ``shown_slab`` allows, each whole."""
    z, box = L.visible_box(image, viewer)
    if viewer.dims.ndisplay == 3 and z is not None:
        first, depth = L.shown_slab(image, z)
        return View(image.name, first, (slice(None), slice(None)), depth)
    return View(image.name, z, box)


def show_preview(ctl: Controller, preview: Preview) -> None:
    """Write a preview of the visible region into the prediction (and uncertainty) layer."""
    view = preview.view
    if view.image not in ctl.viewer.layers:
        return
    image = ctl.viewer.layers[view.image]
    layer = L.find(ctl.viewer, image, "prediction")
    if not isinstance(layer, Labels):
        layer = L.ensure_labels(ctl.viewer, image, "prediction", ctl.colors)
    key = L.plane_index(layer.data.shape, view.z)
    if view.depth > 1:  # slices from z on, in its stack
        key = key[:-1] + (slice(key[-1], key[-1] + view.depth),)
    key += view.box
    if layer.data[key].shape != preview.classes.shape:  # the layer changed since the view
        return
    layer.data[key] = preview.classes
    layer.refresh()
    if ctl.show_uncertainty:
        unc = uncertainty_layer(ctl, image)
        unc.data[key] = preview.uncertainty
        unc.refresh()
    ctl.preview_shown.emit(time.perf_counter())


def prediction_job(ctl: Controller, image: Image | None, work: Callable[[Prediction], Any] | None = None):
    """Check everything on the GUI thread; return the generator function for the worker, which
    returns (image name, prediction, ``work(prediction)`` or None)."""
    if image is None:
        raise FrugalsegError("pick an image layer first")
    if ctl.model is None:
        raise FrugalsegError("no model yet: train or load one first")
    if L.find(ctl.viewer, image, "prediction") is None:  # nothing made for it yet
        L.check_fits_in_memory(image)
    array = L.image_array(image, ctl.config.ndim)
    models, config, name, s = list(ctl.models), ctl.config, image.name, ctl.settings
    spatial = L.spatial_shape(image)
    axis = channels_hint(spatial, config.in_channels) if array.shape[0] == 1 else None
    if axis is not None and not grey_for_colour(config, 1):
        raise FrugalsegError(f"layer '{name}' is read as one channel, but the model expects "
                             f"{config.in_channels}; if its axis {axis} holds them, choose "
                             f"'axis {axis}' under channels")
    check_image_fits(config, array, f"layer '{name}'")
    device = resolve_device(s.device)

    def job():
        background_priority()
        with models_on(models, device) as on_device:
            result = yield from predict_image(
                on_device, config, array, device, name=f"layer '{name}'", tta=s.tta, uncertainty=True,
                prior_correction=s.prior_correction,
            )
        return name, result, work(result) if work is not None else None

    return job


def show_prediction(ctl: Controller, result: tuple[str, Prediction, Any] | None) -> bool:
    """Show a finished prediction in its image's layers; False where there is none to show
    (stopped, or the image removed meanwhile)."""
    if result is None:
        return False
    name, pred, _ = result
    if name not in ctl.viewer.layers:
        ctl.say(f"image '{name}' was removed while it was predicted: its prediction is dropped")
        return False
    image = ctl.viewer.layers[name]
    outputs = [(L.ensure_labels(ctl.viewer, image, "prediction", ctl.colors), pred.classes),
               (uncertainty_layer(ctl, image), pred.uncertainty)]
    if shows_disagreement(ctl):
        outputs.append((uncertainty_layer(ctl, image, "disagreement"), pred.disagreement))
    # written in place: replacing .data resets the layer, which costs napari more time
    for layer, values in outputs:
        layer.data[...] = values.reshape(layer.data.shape)  # a time series: from its planes
        layer.refresh()
    image.metadata["frugalseg_uncertainty_score"] = pred.score
    ctl.say(f"predicted '{name}' (uncertainty score {pred.score:.3f}: 0 sure, 1 undecided)")
    return True


def predict_series(ctl: Controller) -> None:
    """Predict all, image layer after image layer: one the model cannot take (other channels or
    dimensions) is skipped and named at the end; Stop ends the series and says how far it came.
    A layer read in another with its channels moved first is left to that one."""
    queue = [im for im in ctl.image_layers() if im.name + L.MOVED not in ctl.viewer.layers]
    done, skipped = [], []

    def start_next(name: str | None = None) -> None:
        if name is not None:
            done.append(name)
            if ctl.state != TrainState.IDLE:  # other work started in between: the series ends
                return
        while queue:
            image = queue.pop(0)
            if image not in ctl.viewer.layers:
                continue
            try:  # the next image once this one's worker has finished and the state is idle
                ctl.start_prediction(image, then=lambda n, w: QTimer.singleShot(0, lambda: start_next(n)),
                                     stopped=lambda: report("stopped: "))
                return
            except FrugalsegError as exc:
                skipped.append(f"'{image.name}' ({exc})")
        report()

    def report(prefix: str = "") -> None:
        note = f"; skipped {'; '.join(skipped)}" if skipped else ""
        ctl.say(f"{prefix}predicted {len(done)} image(s): {', '.join(repr(n) for n in done) or 'none'}{note}")

    start_next()
