"""Imperfect labels in napari: classes complete on an image (or inside its regions),
several annotators merged into a consensus with an agreement map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Shapes

from ..core.consensus import Consensus, majority_vote, staple
from ..core.errors import FrugalsegError
from ..core.labels import as_label_array, code_complete_regions
from . import layers as L

if TYPE_CHECKING:
    from .controller import Controller

COMPLETE = "frugalseg_complete"  # scribble-layer metadata: values annotated exhaustively
REGIONS = "frugalseg_regions"  # ... and the Shapes layer limiting where (None: everywhere)
AGREEMENT = "frugalseg_agreement"  # per-pixel loss weights of a consensus layer


def coded_labels(
    viewer, layer: Labels, n_classes: int, sets: list[list[int]], grow: bool = True, ndim: int = 2
) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's labels for training a ``ndim``-D model, and its pixel weights (or None); of
    a time series, as one series of planes or stacks (``layers.planes``), as the image is given.

    Where the layer declares complete classes S (on the whole image, or per shape of its
    regions layer), unlabelled pixels become the code of "one of the classes outside S"
    (``sets`` gains it when ``grow``); see ``core.labels.code_complete_regions``.
    """
    labels = L.planes(as_label_array(np.asarray(layer.data), f"layer '{layer.name}'"), ndim=ndim)
    if labels.max(initial=0) > n_classes:
        raise FrugalsegError(
            f"layer '{layer.name}' uses class {labels.max()} but the class table has "
            f"{n_classes} classes; add a class or erase those strokes"
        )
    regions, names = _regions(viewer, layer)
    labels = code_complete_regions(labels, regions, n_classes, sets, grow, names)
    weights = layer.metadata.get(AGREEMENT)
    return labels, None if weights is None else L.planes(np.asarray(weights, np.float32), ndim=ndim)


def shape_sets(shapes: Shapes) -> list[list[int]]:
    """The complete classes each shape declares (empty: none)."""
    if COMPLETE not in shapes.features:
        return [[] for _ in range(len(shapes.data))]
    return [[int(v) for v in str(text).split(",") if v.strip()] for text in shapes.features[COMPLETE]]


def _regions(viewer, layer: Labels) -> tuple[list, list[str]]:
    """(mask or None, complete classes) per declaring region, and names for messages."""
    name = layer.metadata.get(REGIONS)
    if not name:
        return [(None, layer.metadata.get(COMPLETE) or [])], [f"layer '{layer.name}'"]
    if name not in viewer.layers or not isinstance(viewer.layers[name], Shapes):
        raise FrugalsegError(f"layer '{layer.name}': its regions layer '{name}' is gone")
    shapes = viewer.layers[name]
    masks = L.shape_masks(shapes, layer.data.shape[-2:])
    regions = [(m, s) for m, s in zip(masks, shape_sets(shapes))]
    return regions, [f"shape {i + 1} of layer '{name}'" for i in range(len(regions))]


def declare_complete(layer: Labels, values: list[int], regions: Shapes | None = None,
                     shapes: list[int] | None = None) -> None:
    """Mark classes as annotated exhaustively on this scribble layer: everywhere, or inside
    the given shapes of ``regions`` (default: the selected ones, else all)."""
    layer.metadata[COMPLETE] = sorted(int(v) for v in values)
    layer.metadata[REGIONS] = regions.name if regions is not None else None
    if regions is None:
        return
    chosen = shapes if shapes is not None else sorted(regions.selected_data) or range(len(regions.data))
    column = [",".join(map(str, s)) for s in shape_sets(regions)]
    for i in chosen:
        column[i] = ",".join(map(str, layer.metadata[COMPLETE]))
    regions.features = regions.features.assign(**{COMPLETE: column})
    regions.feature_defaults = {**regions.feature_defaults.iloc[0].to_dict(), COMPLETE: ""}  # new shapes declare nothing


def regions_record(viewer, layer: Labels) -> dict | None:
    """The layer's declaring regions as plain data (for sessions), or None."""
    name = layer.metadata.get(REGIONS)
    if not name or name not in viewer.layers or not isinstance(viewer.layers[name], Shapes):
        return None
    shapes = viewer.layers[name]
    return {"layer": name, "shapes": [
        {"type": t, "points": np.asarray(d).tolist(), "complete": c}
        for t, d, c in zip(shapes.shape_type, shapes.data, shape_sets(shapes))]}


def restore_regions(viewer, layer: Labels, record: dict) -> Shapes:
    """Recreate a regions layer from ``regions_record`` output (reusing one of that name)."""
    name, items = record["layer"], record["shapes"]
    data = [np.asarray(s["points"], float) for s in items]
    types = [s["type"] for s in items]
    if name in viewer.layers and isinstance(viewer.layers[name], Shapes):
        shapes = viewer.layers[name]
        shapes.data, shapes.shape_type = data, types
    else:
        shapes = viewer.add_shapes(data, shape_type=types, name=name, face_color="transparent")
    shown = layer.metadata.get(COMPLETE) or []
    for i, s in enumerate(items):
        declare_complete(layer, s["complete"], shapes, shapes=[i])
    layer.metadata[COMPLETE] = shown
    return shapes


def merge_annotators(
    ctl: Controller, image: Image, annotations: list[Labels], method: str = "staple"
) -> Consensus:
    """Merge annotators' Labels layers of ``image`` into '<image> consensus' (usable as
    scribbles, pixels weighted by agreement) and an '<image> agreement' layer."""
    if len(annotations) < 2:
        raise FrugalsegError("select at least two Labels layers (one per annotator) to merge")
    for layer in annotations:
        L.check_shape(image, layer)
    arrays = [as_label_array(np.asarray(a.data), f"layer '{a.name}'") for a in annotations]
    n_classes = max(len(ctl.classes), max(int(a.max()) for a in arrays))
    merge = staple if method == "staple" else majority_vote
    result = merge(arrays, n_classes, [f"layer '{a.name}'" for a in annotations])
    data = result.labels.astype(np.uint8)
    consensus = L.find(ctl.viewer, image, "consensus")
    if consensus is None:
        consensus = ctl.viewer.add_labels(
            data, name=image.name + L.SUFFIX["consensus"], scale=annotations[0].scale,
            metadata={L.META: image.name, "role": "consensus"},
        )
    else:
        consensus.data = data
    consensus.metadata[AGREEMENT] = result.agreement
    L.set_colors(consensus, ctl.colors)
    agreement = L.find(ctl.viewer, image, "agreement")
    if agreement is None:
        L.add_image_overlay(ctl.viewer, image, "agreement", result.agreement,
                            colormap="viridis", contrast_limits=(0, 1), visible=False)
    else:
        agreement.data = result.agreement
    return result


def reliability_text(annotations: list[Labels], result: Consensus) -> str:
    """One line per annotator: STAPLE's sensitivity and specificity of the last class."""
    if result.sensitivity is None:
        return "majority vote: agreement = share of annotators choosing the consensus"
    return "; ".join(
        f"{a.name}: sensitivity {result.sensitivity[i, -1]:.2f}, specificity {result.specificity[i, -1]:.2f}"
        for i, a in enumerate(annotations)
    )
