"""Imperfect labels in napari: classes complete on an image (or inside its regions),
several annotators merged into a consensus with an agreement map."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from napari.layers import Image, Labels, Shapes

from ..core.consensus import Consensus, majority_vote, staple
from ..core.errors import FrugalsegError
from ..core.labels import as_label_array
from . import layers as L

if TYPE_CHECKING:
    from .controller import Controller

COMPLETE = "frugalseg_complete"  # scribble-layer metadata: values annotated exhaustively
REGIONS = "frugalseg_regions"  # ... and the Shapes layer limiting where (None: everywhere)
AGREEMENT = "frugalseg_agreement"  # per-pixel loss weights of a consensus layer


def coded_labels(
    viewer, layer: Labels, n_classes: int, sets: list[list[int]], grow: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's labels for training, and its pixel weights (or None).

    Where the layer declares complete classes S, unlabelled pixels (inside its regions)
    become the code of "one of the classes outside S" (``sets`` gains it when ``grow``).
    """
    labels = as_label_array(np.asarray(layer.data), f"layer '{layer.name}'")  # a copy
    if labels.max(initial=0) > n_classes:
        raise FrugalsegError(
            f"layer '{layer.name}' uses class {labels.max()} but the class table has "
            f"{n_classes} classes; add a class or erase those strokes"
        )
    complete = set(layer.metadata.get(COMPLETE) or [])
    outside = sorted(set(range(1, n_classes + 1)) - complete)
    if complete and outside:
        if len(outside) == 1:
            code = outside[0]  # only one class left: the pixel is that class
        elif outside in sets or grow:
            if outside not in sets:
                sets.append(outside)
            code = n_classes + 1 + sets.index(outside)
        else:
            code = 0  # declared while training runs: used from the next Train
        fill = labels == 0
        region = _region_mask(viewer, layer)
        if region is not None:
            fill &= region
        labels[fill] = code
    weights = layer.metadata.get(AGREEMENT)
    return labels, None if weights is None else np.asarray(weights, np.float32)


def _region_mask(viewer, layer: Labels) -> np.ndarray | None:
    name = layer.metadata.get(REGIONS)
    if not name:
        return None
    if name not in viewer.layers or not isinstance(viewer.layers[name], Shapes):
        raise FrugalsegError(f"layer '{layer.name}': its regions layer '{name}' is gone")
    mask = L.shapes_mask(viewer.layers[name], layer.data.shape[-2:])
    return np.broadcast_to(mask, layer.data.shape)


def declare_complete(layer: Labels, values: list[int], regions: Shapes | None = None) -> None:
    """Mark classes as annotated exhaustively on this scribble layer (inside ``regions``)."""
    layer.metadata[COMPLETE] = sorted(int(v) for v in values)
    layer.metadata[REGIONS] = regions.name if regions is not None else None


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
    consensus.colormap = L.colormap(ctl.colors)
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
