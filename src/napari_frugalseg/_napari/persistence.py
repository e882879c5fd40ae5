"""Everything the plugin writes or reads: autosave, masks, model bundles, sessions.

All writes are atomic (core.io) and read layers on the GUI thread, but for the autosave after
a stroke, written by a background thread. What is read from disk (a model, a session)
is read in a worker (``Controller.read_then``) and reaches the layers here, on the GUI thread.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image
from superqt.utils import ensure_main_thread

from ..core.bundle import Bundle, load_bundle, save_bundle
from ..core.errors import FrugalsegError
from ..core.export import mask_path, write_mask
from ..core.io import read_array
from ..core.library import check_name, library_dir
from ..core.session import Session, SessionImage, autosave_dir, load_session, save_session
from ..core.transfer import transfer
from . import imperfect
from . import layers as L
from .state import PALETTE, ClassSpec

if TYPE_CHECKING:
    from .controller import Controller


@dataclass
class SessionRead:
    """A session as read from disk by ``read_session``, before it reaches the viewer."""

    folder: Path
    session: Session
    pixels: dict[str, np.ndarray]  # image name -> pixels read from the image's file
    model: Bundle | None


def session_folder(ctl: Controller) -> Path:
    """The folder autosaves go to: the open session's, else a new one under ``autosave_dir()``."""
    if ctl.session_dir is None:
        ctl.session_dir = autosave_dir() / time.strftime("%Y%m%d-%H%M%S")
    return ctl.session_dir


def _session(ctl: Controller) -> Session:
    items = []
    for image in ctl.image_layers():
        layer = ctl.scribbles(image)
        if layer is None:
            continue
        source = L.source(image)
        # pixels without a file, as the layer holds them: a lazy (dask) array is read only
        # where they are written, once per session folder, by the writer (not on the GUI thread)
        data = None if source else L.full_resolution(image)
        axis = None  # the axis of the file's pixels (or of those saved) that holds channels
        if L.channels_first(image):
            axis = image.metadata.get(L.MOVED_AXIS, 0) if source else 0
        complete = list(layer.metadata.get(imperfect.COMPLETE) or [])
        regions = imperfect.regions_record(ctl.viewer, layer)
        items.append(SessionImage(image.name, np.asarray(layer.data), source, data, image.rgb,
                                  axis, complete, regions))
    classes = [{"name": c.name, "color": c.color} for c in ctl.classes]
    kept = ("ndim", "patch_size", "robust_q", "scale_jitter", "affinity_weight")  # how this project trains
    return Session(items, classes, {k: getattr(ctl.settings, k) for k in kept})


def _autosave_failed(ctl: Controller, what: str, exc: OSError) -> None:
    """An autosave the system refuses (disk full, no permission) is said, not raised: the work
    is still in napari, and the user can save it elsewhere."""
    ctl.fail(FrugalsegError(f"autosave of the {what} failed ({FrugalsegError.from_os(exc)}); "
                            "they are still in napari: save the session into another folder"))


# Autosaves after strokes are written by one thread, in the order of the strokes: writing a
# large stack's scribbles takes seconds, which napari's event loop must not wait for.
_WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frugalseg-autosave")
_writing: set[Future] = set()


def writing() -> bool:
    """Whether autosaves of strokes are still being written."""
    return bool(_writing)


def autosave(ctl: Controller, image: Image) -> None:
    """After a stroke: that image's scribbles (and the session index) to the session folder,
    written in the background from the layer's array (a stroke made while it is read is written
    again by the autosave that stroke triggers, queued after this one)."""
    session = _session(ctl)
    names = [im.name for im in session.images]
    if image.name not in names:
        return
    future = _WRITER.submit(save_session, session_folder(ctl), session, names.index(image.name))
    _writing.add(future)
    future.add_done_callback(lambda f: _autosaved(ctl, f))


@ensure_main_thread
def _autosaved(ctl: Controller, future: Future) -> None:
    _writing.discard(future)
    error = future.exception()
    if isinstance(error, OSError):
        _autosave_failed(ctl, "scribbles", error)
    elif error is not None:
        ctl.fail(error)


def autosave_model(ctl: Controller) -> None:
    if ctl.settings.autosave and ctl.model is not None:
        try:
            save_bundle(Session.model_dir(session_folder(ctl)), ctl.models, ctl.config, None, ctl.history)
        except OSError as exc:
            _autosave_failed(ctl, "model", exc)


def model_info(ctl: Controller) -> dict:
    """What the model library lists beside the classes: data shape and validation score."""
    image = ctl.image
    shape = [L.channel_count(image), *L.spatial_shape(image)] if image is not None else None
    return {"data_shape": shape, "val_score": ctl.val_score}


def save_model(ctl: Controller, path: str | os.PathLike) -> Path:
    if ctl.model is None:
        raise FrugalsegError("no model yet: train or load one first")
    return save_bundle(path, ctl.models, ctl.config, None, ctl.history, model_info(ctl))


def keep_in_library(ctl: Controller, name: str) -> Path:
    """Save the current model into the local model library under ``name``."""
    return save_model(ctl, library_dir() / check_name(name.strip()))


def start_from(ctl: Controller, bundle: Bundle, name: str) -> None:
    """Fine-tune a saved model (``name``, read as ``bundle``) on the current classes: what it
    learned is kept; with other classes its output head is new. Raises when the image's
    channels or dimensions differ."""
    if ctl.image is None:
        raise FrugalsegError("pick an image first: the model must fit its channels")
    names = tuple(c.name for c in ctl.classes)
    ndim = bundle.config.ndim if len(L.spatial_shape(ctl.image)) >= 3 else 2
    channels = L.channel_count(ctl.image)
    ctl.models, ctl.config = transfer(bundle, names, channels, ndim, f"model '{name}'")
    ctl.history, ctl.val_score = [], None
    ctl.change_settings(ndim=ndim)
    kept = "same classes" if names == bundle.config.classes else "new output head for these classes"
    ctl.say(f"starting from '{name}' ({kept}): press Train to fine-tune")
    ctl.model_changed.emit()


def use_model(ctl: Controller, bundle: Bundle) -> None:
    """Use a saved bundle: its classes replace the table (colours kept where possible)."""
    ctl.models, ctl.config, ctl.history = bundle.models, bundle.config, list(bundle.history)
    ctl.change_settings(ndim=bundle.config.ndim)
    colors = ctl.colors + PALETTE[len(ctl.colors):] + PALETTE
    ctl.set_classes([ClassSpec(n, colors[i]) for i, n in enumerate(bundle.config.classes)])
    ctl.model_changed.emit()


def export_masks(ctl: Controller, image: Image, folder: str | os.PathLike, fmt: str,
                 role: str = "prediction") -> Path:
    """Write the prediction (or instances) of ``image`` as ``folder/<image name>`` in ``fmt``."""
    layer = L.find(ctl.viewer, image, role)
    if layer is None:
        raise FrugalsegError(f"image '{image.name}' has no {role} yet: predict first")
    target, source = mask_path(folder, L.export_name(image), fmt), L.source(image)
    if source and target.resolve() == Path(source).resolve():  # a layer is named after its file
        raise FrugalsegError(f"{target}: the {role} would be written over the image's own file; "
                             "export into another folder")
    return write_mask(target, np.asarray(layer.data), fmt)


def save(ctl: Controller, folder: str | os.PathLike) -> Path:
    """Save the whole state to ``folder``, which becomes the autosave folder."""
    folder = Path(folder)
    session = _session(ctl)
    if not session.images:
        raise FrugalsegError("nothing to save: no image has a scribble layer yet")
    save_session(folder, session)
    if ctl.model is not None:
        save_bundle(Session.model_dir(folder), ctl.models, ctl.config, None, ctl.history)
    ctl.session_dir = folder
    return folder


def read_session(folder: str | os.PathLike, open_names: set[str]) -> SessionRead:
    """What opening the session in ``folder`` needs from disk (no layer is touched: it runs in a
    worker): the session, the pixels of its images kept as file paths that no open layer named
    in ``open_names`` stands for, and its model when it has one."""
    folder = Path(folder)
    session = load_session(folder)
    pixels = {item.name: read_array(item.source) for item in session.images
              if item.data is None and item.name not in open_names}
    model = Session.model_dir(folder)
    return SessionRead(folder, session, pixels, load_bundle(model) if model.is_dir() else None)


def _session_layers(ctl: Controller, read: SessionRead) -> list:
    """Each session image with the layer it goes to: the open layer of its name, or pixels to
    add as one (with their metadata); all checked against their scribbles' shape before
    anything is added, so that a session that does not fit is refused whole."""
    folder, session = read.folder, read.session
    found = []
    for item in session.images:
        layer, data, meta = ctl.viewer.layers[item.name] if item.name in ctl.viewer.layers else None, None, {}
        if layer is not None and not isinstance(layer, Image):
            raise FrugalsegError(f"{folder}: the open layer '{item.name}' is a {type(layer).__name__} "
                                 "layer, not the session's image of that name; rename or close it first")
        if layer is None:
            data = item.data if item.data is not None else (
                read.pixels[item.name] if item.name in read.pixels else read_array(item.source))
            meta = {L.SOURCE: item.source} if item.source else {}
            if item.data is None and item.channel_axis:  # a file's axis moved first
                data, meta[L.MOVED_AXIS] = np.moveaxis(data, item.channel_axis, 0), item.channel_axis
        shape = L.full_resolution(layer).shape if layer is not None else data.shape
        rgb = layer.rgb if layer is not None else item.rgb
        spatial = shape[:-1] if rgb else shape[1:] if item.channel_axis is not None else shape
        if tuple(spatial) != item.scribbles.shape:
            what = (f"the open layer '{item.name}' is {tuple(spatial)}: close or rename it first"
                    if layer is not None else f"{item.source} is now {tuple(spatial)}: the file "
                    "changed since the session was saved" if item.source else
                    f"its saved pixels are {tuple(spatial)}: the session is damaged")
            raise FrugalsegError(f"{folder}: image '{item.name}' has scribbles of {item.scribbles.shape}, "
                                 f"but {what}")
        found.append((item, layer, data, meta))
    return found


def open_session(ctl: Controller, read: SessionRead) -> None:
    """Add the session's images and scribbles (``read_session``) to the viewer; restore classes
    and model."""
    session = read.session
    found = _session_layers(ctl, read)
    ctl.set_classes([ClassSpec(c["name"], c["color"]) for c in session.classes])
    ctl.change_settings(**{k: v for k, v in session.settings.items() if hasattr(ctl.settings, k)})
    first = None
    for item, image, data, meta in found:
        if image is None:
            image = ctl.viewer.add_image(data, name=item.name, rgb=item.rgb, metadata=meta)
        image.metadata[L.CHANNELS_FIRST] = item.channel_axis is not None
        layer = ctl.select_image(image)
        layer.data = item.scribbles.astype(layer.data.dtype)
        imperfect.declare_complete(layer, item.complete)
        if item.regions:
            imperfect.restore_regions(ctl.viewer, layer, item.regions)
        first = first or image
    ctl.forget_edits()  # restoring scribbles is not a stroke
    if read.model is not None:
        use_model(ctl, read.model)
    ctl.session_dir = read.folder
    if first is not None:
        ctl.select_image(first)
