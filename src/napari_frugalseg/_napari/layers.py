"""Translation between napari layers and the core's arrays; one place for layer naming."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from napari.layers import Image, Labels, Shapes
from napari.utils.colormaps import DirectLabelColormap

from ..core.axes import planes
from ..core.device import available_bytes
from ..core.errors import FrugalsegError
from ..core.io import check_finite, declared_axes, declared_channel_axis, without_ome

META = "frugalseg_image"  # metadata key linking our layers to their image layer
CHANNELS_FIRST = "frugalseg_channels_first"  # image metadata: its first axis holds channels
MOVED_AXIS = "frugalseg_moved_axis"  # image metadata: the axis of its source we moved first
SOURCE = "frugalseg_source"  # image metadata: the file its pixels come from
MOVED = " (channels first)"  # the name of a layer with a channel axis moved first: its image's + this
SUFFIX = {"scribbles": " scribbles", "prediction": " prediction", "uncertainty": " uncertainty",
          "instances": " instances", "consensus": " consensus", "agreement": " agreement",
          "disagreement": " disagreement", "proposals": " label here next"}
# our layers of an image's spatial shape that are written in place (made when it is picked)
IN_PLACE = ("scribbles", "prediction", "uncertainty", "disagreement")


def full_resolution(image: Image):
    """The layer's pixels: of a multiscale (pyramid) layer, its finest level."""
    return image.data[0] if image.multiscale else image.data


def channels_first(image: Image) -> bool:
    """Whether the layer's first axis holds channels (a (C, Y, X) or (C, Z, Y, X) layer, as the
    user said, e.g. from napari's *Merge to stack* of one layer per channel)."""
    return bool(image.metadata.get(CHANNELS_FIRST)) and not image.rgb and image.ndim >= 3


def spatial_shape(image: Image) -> tuple[int, ...]:
    shape = full_resolution(image).shape
    return tuple(shape[:-1] if image.rgb else shape[1:] if channels_first(image) else shape)


def set_channels_first(viewer, image: Image, on: bool) -> None:
    """Read the layer's first axis as channels (or as slices again); refused for a layer with
    no such axis, and once our layers were made for the other reading."""
    if on and (image.rgb or image.ndim < 3):
        raise FrugalsegError(f"layer '{image.name}' has no axis before its planes to read as channels")
    made = [layer.name for role in IN_PLACE
            if (layer := find(viewer, image, role)) is not None]
    if made and on != channels_first(image):
        raise FrugalsegError(
            f"layers {', '.join(repr(n) for n in made)} were made for '{image.name}' read the "
            f"other way; delete them to read its first axis as {'channels' if on else 'slices'}"
        )
    image.metadata[CHANNELS_FIRST] = on  # said, even where unchanged: no file's reading overrides it


MAX_CHANNELS = 16  # a longer axis is not offered as channels (Y, X, or a deep stack's Z)


def channel_axes(image: Image) -> list[int]:
    """The axes a user may read as channels: those of at most ``MAX_CHANNELS`` of a non-RGB
    layer of 3 axes or more (e.g. C of (Z, C, Y, X), or of (Y, X, C) where C is not 3 or 4)."""
    shape = full_resolution(image).shape
    return [] if image.rgb or image.ndim < 3 else [a for a, n in enumerate(shape) if n <= MAX_CHANNELS]


def read_channels(viewer, image: Image, axis: int | None) -> Image:
    """The layer to work on with ``image``'s ``axis`` read as channels (None: every axis
    spatial): the layer itself for its first axis; for another, a layer showing the same pixels
    (not copied) with that axis moved first, made once, the original hidden. napari lines up
    layers by their last axes, so our layers of a (Z, C, Y, X) image could not follow its Z."""
    if axis is None or axis == 0:
        set_channels_first(viewer, image, axis == 0)
        return image
    if axis not in channel_axes(image):
        raise FrugalsegError(f"layer '{image.name}' has no axis {axis} to read as channels")
    name = image.name + MOVED
    if name in viewer.layers and viewer.layers[name].metadata.get(MOVED_AXIS) == axis:
        return viewer.layers[name]
    check_fits_in_memory(image)  # a lazy array may be read whole when moved

    def move(a):
        return np.moveaxis(a, axis, 0)  # a view of a numpy array, lazy for dask

    order = [axis, *(i for i in range(image.ndim) if i != axis)]
    moved = viewer.add_image(
        [move(level) for level in image.data] if image.multiscale else move(image.data),
        name=name, multiscale=image.multiscale, colormap=image.colormap,
        contrast_limits=image.contrast_limits, scale=np.asarray(image.scale)[order],
        translate=np.asarray(image.translate)[order],
        metadata={CHANNELS_FIRST: True, MOVED_AXIS: axis, SOURCE: source(image)},
    )
    image.visible = False
    return moved


def declared_reading(viewer, image: Image) -> tuple[Image, int | None]:
    """The layer to work on with a layer picked for the first time, read by the channel axis
    its file declares (a Fiji hyperstack or OME-TIFF opened by napari, e.g. (Z, C, Y, X)), and
    that axis; ``image`` and None where the user has chosen or the file declares none."""
    if CHANNELS_FIRST in image.metadata or find(viewer, image, "scribbles") is not None:
        return image, None
    axis = declared_channel_axis_of(image)
    if axis not in channel_axes(image):  # none declared, or too many channels to offer
        return image, None
    return read_channels(viewer, image, axis), axis


def declared_channel_axis_of(image: Image) -> int | None:
    """The axis holding channels by the axes the layer's file declares (a Fiji hyperstack or
    OME-TIFF, e.g. 1 for ZCYX); None where it declares none, or has other axes than the layer."""
    path = image.source.path
    if not path or image.rgb or image.multiscale:
        return None
    axes = declared_axes(path)
    axis = declared_channel_axis(axes)
    return axis if isinstance(axis, int) and len(axes) == image.ndim else None


def export_name(image: Image) -> str:
    """The name masks of ``image`` are written under: its own; of a layer we made with a channel
    axis moved first, its original's; without ".ome", as the command line names outputs."""
    return without_ome(image.name.removesuffix(MOVED) if MOVED_AXIS in image.metadata else image.name)


def source(image: Image) -> str | None:
    """The file the layer's pixels come from (for a layer we made from another, that one's)."""
    path = image.source.path or image.metadata.get(SOURCE)
    return str(path) if path else None


def channel_count(image: Image) -> int:
    """Channels a model of this image takes: 3 for RGB(A), the first axis's length for a
    channels-first layer, else 1."""
    return 3 if image.rgb else full_resolution(image).shape[0] if channels_first(image) else 1


# bytes per pixel the plugin holds for an image beyond its pixels: scribbles and prediction (1
# each), the uncertainty layer (4), a training run's coded labels (4), Predict all's
# uncertainty and disagreement (8); and per channel, the normalised float32 copy (4)
HELD_PER_PIXEL, HELD_PER_CHANNEL = 18, 4


def check_fits_in_memory(image: Image) -> None:
    """Refuse an image whose full-resolution layers and working copies would not fit in the
    free memory (e.g. a whole-slide pyramid), before anything is made for it."""
    data = full_resolution(image)
    shape = spatial_shape(image)
    channels = channel_count(image)
    need = math.prod(shape) * (HELD_PER_PIXEL + HELD_PER_CHANNEL * channels)
    if not isinstance(data, np.ndarray):  # a lazy array (dask, zarr) is read whole
        need += int(getattr(data, "nbytes", 0))
    free = available_bytes()
    if free is None or need <= 0.8 * free:
        return
    what = "its finest level" if image.multiscale else "it"
    raise FrugalsegError(
        f"layer '{image.name}': {what} ({' x '.join(map(str, shape))} px) would need about "
        f"{need / 2**30:.1f} GiB for scribbles, prediction and training at full resolution, but "
        f"{free / 2**30:.1f} GiB is free; open a crop of the region to segment (or a coarser "
        "level) as its own layer"
    )


def plane_index(shape: Sequence[int], z: int | None) -> tuple[int, ...]:
    """The index, in an array of ``shape``, of the plane a flat slice number ``z`` of
    ``planes`` names: () for a 2D array, (z,) for a stack, (t, z) for a time series."""
    return () if z is None else tuple(int(i) for i in np.unravel_index(z, tuple(shape[:-2])))


def image_array(image: Image, ndim: int = 2) -> np.ndarray:
    """The image as (C, *spatial) for a ``ndim``-D model: RGB(A) -> 3 channels, a
    channels-first layer as it is, otherwise one; a time series as one series of planes or
    stacks (``planes``)."""
    data = np.asarray(full_resolution(image))
    check_finite(data, f"layer '{image.name}'")
    if image.rgb:
        array = np.moveaxis(data[..., :3], -1, 0)
    else:
        array = data if channels_first(image) else data[None]
    return planes(array, keep=1, ndim=ndim)


def colormap(colors: Sequence[str]) -> DirectLabelColormap:
    """Value k gets colours[k-1]; 0 and unknown values are transparent."""
    mapping: dict[int | None, object] = {None: "transparent", 0: "transparent"}
    mapping.update({k: c for k, c in enumerate(colors, start=1)})
    return DirectLabelColormap(color_dict=mapping)


def set_colors(layer: Labels, colors: Sequence[str]) -> None:
    """Give ``layer`` the class colours unless its colormap shows them already: a new colormap
    costs napari a shader rebuild and a redraw (17 ms of our call under a profiler, when it was
    set at every prediction shown)."""
    wanted, values = colormap(colors), np.arange(len(colors) + 2)  # 0, the classes, one unknown
    if not np.array_equal(layer.colormap.map(values), wanted.map(values)):
        layer.colormap = wanted


def find(viewer, image: Image, role: str):
    """Our layer of ``role`` for this image: by metadata link, else by conventional name."""
    name = image.name + SUFFIX[role]
    for layer in viewer.layers:
        if layer.metadata.get(META) == image.name and layer.metadata.get("role") == role:
            return layer
    if name in viewer.layers:
        return viewer.layers[name]
    return None


def owner(viewer, layer) -> str | None:
    """The image layer ``layer`` belongs to: by metadata link, else by conventional name (e.g.
    a sample's 'blobs scribbles' beside 'blobs'); None for a layer of no image."""
    if layer.metadata.get(META):
        return layer.metadata[META]
    for suffix in SUFFIX.values():
        base = layer.name.removesuffix(suffix)
        if base != layer.name and base in viewer.layers and isinstance(viewer.layers[base], Image):
            return base
    return None


def relink(viewer, old: str, new: str) -> None:
    """Our layers of an image renamed from ``old`` to ``new``: linked to ``new``, and those
    carrying the old name under its convention renamed."""
    for layer in list(viewer.layers):
        if layer.metadata.get(META) != old:
            continue
        layer.metadata[META] = new
        role = layer.metadata.get("role")
        if role in SUFFIX and layer.name == old + SUFFIX[role]:
            layer.name = new + SUFFIX[role]


def ensure_labels(viewer, image: Image, role: str, colors: Sequence[str]) -> Labels:
    """Our Labels layer of ``role`` for ``image``, created empty with the image's shape."""
    layer = find(viewer, image, role)
    if layer is None:
        layer = viewer.add_labels(
            np.zeros(spatial_shape(image), np.uint8),
            name=image.name + SUFFIX[role],
            metadata={META: image.name, "role": role},
            scale=image.scale[-len(spatial_shape(image)):],
            translate=image.translate[-len(spatial_shape(image)):],
            opacity=0.5 if role == "prediction" else 0.8,
        )
    elif not isinstance(layer, Labels):
        raise FrugalsegError(f"layer '{layer.name}' should be a Labels layer for {role}")
    check_shape(image, layer)
    layer.metadata.update({META: image.name, "role": role})
    set_colors(layer, colors)
    return layer


def edit_history(labels: Labels) -> tuple[int, int] | None:
    """Lengths of the layer's undo and redo histories: they change when a stroke is undone or
    redone, which napari announces only as a redraw (``set_data``, also sent when the view
    moves to another slice). None where napari keeps them elsewhere."""
    undo, redo = getattr(labels, "_undo_history", None), getattr(labels, "_redo_history", None)
    return None if undo is None or redo is None else (len(undo), len(redo))


def check_shape(image: Image, labels: Labels) -> None:
    if tuple(labels.data.shape) != spatial_shape(image):
        raise FrugalsegError(
            f"layer '{labels.name}' has shape {tuple(labels.data.shape)} but image "
            f"'{image.name}' has {spatial_shape(image)}; pick or create a matching labels layer"
        )


def shape_masks(shapes: Shapes, plane: tuple[int, int]) -> np.ndarray:
    """One 2D mask per shape of a Shapes layer (in-plane coordinates of every shape)."""
    if not len(shapes.data):
        raise FrugalsegError(f"shapes layer '{shapes.name}' has no shape: draw a region first")
    flat = Shapes([s[:, -2:] for s in shapes.data], shape_type=shapes.shape_type)
    return np.asarray(flat.to_masks(plane), bool)


def shapes_mask(shapes: Shapes, plane: tuple[int, int]) -> np.ndarray:
    """Union of a Shapes layer's shapes as a 2D mask."""
    return np.any(shape_masks(shapes, plane), axis=0)


def add_image_overlay(viewer, image: Image, role: str, data: np.ndarray, **kwargs) -> Image:
    """Add our Image layer of ``role`` (e.g. uncertainty) for ``image``."""
    return viewer.add_image(
        data, name=image.name + SUFFIX[role], metadata={META: image.name, "role": role},
        scale=image.scale[-data.ndim:], translate=image.translate[-data.ndim:], **kwargs,
    )


PREVIEW_PIXELS_3D = 2**20  # in napari's 3D view, a preview covers up to this many pixels


def shown_slab(image: Image, z: int) -> tuple[int, int]:
    """napari's 3D view shows a whole stack: the slices a preview covers, as (first, count):
    the stack that slice ``z`` is in, or as many slices around ``z`` as ``PREVIEW_PIXELS_3D``
    allows (a preview costs training time)."""
    shape = spatial_shape(image)
    n = shape[-3]
    depth = int(np.clip(PREVIEW_PIXELS_3D // (shape[-2] * shape[-1]), 1, n))
    stack, z = divmod(z, n)
    return stack * n + min(max(z - depth // 2, 0), n - depth), depth


def visible_box(image: Image, viewer) -> tuple[int | None, tuple[slice, slice]]:
    """The current slice (its number in ``planes``; None for a 2D image) and the visible
    in-plane field, in data pixels."""
    shape = spatial_shape(image)
    z = None
    if len(shape) > 2:
        axes = range(-len(shape), -2)
        point = [(viewer.dims.point[a] - image.translate[a]) / image.scale[a] for a in axes]
        index = np.clip(np.round(point).astype(int), 0, np.array(shape[:-2]) - 1)
        z = int(np.ravel_multi_index(tuple(index), shape[:-2]))
    corners = np.asarray(image.corner_pixels)[:, -2:].astype(float)
    corners[1] += 1  # the last visible pixel's far edge
    if image.multiscale:  # corners are in pixels of the level on screen
        corners *= np.asarray(image.downsample_factors)[image.data_level][-2:]
    box = []
    for axis, size in enumerate(shape[-2:]):
        lo, hi = int(corners[0, axis]), int(np.ceil(corners[1, axis]))
        if hi - lo < 16:  # not drawn yet: the whole plane
            lo, hi = 0, size
        box.append(slice(max(0, lo), min(size, hi)))
    return z, (box[0], box[1])
