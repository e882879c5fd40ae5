"""Edits made from the prediction (accept it into the scribbles, split it into objects) and
from a label file (load it into the scribbles)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Shapes

from ..core.errors import FrugalsegError
from ..core.instances import instances
from ..core.labels import fit_labels
from . import layers as L
from .overlays import view_on_screen
from .state import new_class

if TYPE_CHECKING:
    from .controller import Controller


def accept_prediction(
    ctl: Controller, image: Image, value: int | None = None, region: Shapes | None = None
) -> int:
    """Copy the prediction into unlabelled scribble pixels; returns how many were set.

    Only inside ``region`` (the shapes' area on the current slice) when given, else in the
    field a preview covers (``overlays.view_on_screen``: the current slice's visible field; in
    napari's 3D view, the slices of the shown slab); only class ``value`` when given. Undoable.
    """
    pred, scrib = L.find(ctl.viewer, image, "prediction"), ctl.scribbles(image)
    if not isinstance(pred, Labels) or scrib is None:
        raise FrugalsegError(f"image '{image.name}' has no prediction to accept yet")
    if region is not None:
        slices = [L.visible_box(image, ctl.viewer)[0]]
        area = L.shapes_mask(region, L.spatial_shape(image)[-2:])
    else:
        view = view_on_screen(image, ctl.viewer)
        slices = [None] if view.z is None else range(view.z, view.z + view.depth)
        area = np.zeros(L.spatial_shape(image)[-2:], bool)
        area[view.box] = True
    indices, values = [], []
    for z in slices:
        plane = L.plane_index(pred.data.shape, z)
        p, s = np.asarray(pred.data[plane]), np.asarray(scrib.data[plane])
        take = area & (s == 0) & (p > 0)
        if value is not None:
            take &= p == value
        where = np.nonzero(take)
        indices.append(tuple(np.full(len(where[0]), i) for i in plane) + where)
        values.append(p[where])
    n = sum(len(v) for v in values)
    if n:  # one edit, one undo
        index = tuple(np.concatenate(axis) for axis in zip(*indices))
        scrib.data_setitem(index, np.concatenate(values).astype(scrib.data.dtype))
    return n


def load_scribbles(ctl: Controller, image: Image, path, labels: np.ndarray) -> tuple[int, int]:
    """Write a label file's labelled pixels (``labels``, read from ``path`` by ``read_labels``:
    e.g. ``cells_labels.tif`` of the command line, or an annotation tool's palette PNG) into the
    image's scribbles, as one undoable edit; strokes where the file is unlabelled stay. The class
    table grows to the file's largest class. Returns (pixels written, classes added)."""
    if image not in ctl.viewer.layers:
        raise FrugalsegError(f"{path}: image '{image.name}' was closed while the file was read")
    scrib = ctl.scribbles(image)
    if scrib is None:
        scrib = ctl.select_image(image)
    # checked (classes 1..255) and fitted to the layer as the command line fits label files
    labels = fit_labels(labels, scrib.data.shape, str(path), f"image '{image.name}'")
    where = np.nonzero(labels)
    if not where[0].size:
        raise FrugalsegError(f"{path}: no labelled pixel (0 = unlabelled, k = class k)")
    top = int(labels.max())
    added = max(0, top - len(ctl.classes))
    if added:
        ctl.set_classes(ctl.classes + [new_class(k) for k in range(len(ctl.classes) + 1, top + 1)])
    scrib.data_setitem(where, labels[where].astype(scrib.data.dtype))
    return len(where[0]), added


def make_instances(ctl: Controller, image: Image, object_values: list[int]) -> Labels:
    """An instance layer from the prediction: one id per object of the chosen classes."""
    pred = L.find(ctl.viewer, image, "prediction")
    if not isinstance(pred, Labels):
        raise FrugalsegError(f"image '{image.name}' has no prediction yet: predict first")
    if not object_values:
        raise FrugalsegError("choose the object class(es) to split into instances")
    ndim = 2 if ctl.config is None else ctl.config.ndim  # objects in planes, or in stacks
    classes = np.asarray(pred.data)
    units = L.planes(classes, ndim=ndim)
    objects = instances(units, object_values, slicewise=units.ndim > ndim).reshape(classes.shape)
    layer = L.find(ctl.viewer, image, "instances")
    if layer is None:
        return ctl.viewer.add_labels(
            objects, name=image.name + L.SUFFIX["instances"],
            metadata={L.META: image.name, "role": "instances"},
            scale=pred.scale, translate=pred.translate,
        )
    layer.data = objects
    return layer
