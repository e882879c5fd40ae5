"""Object instances from a class map: connected components, touching objects split apart."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage as ndi


def instances(
    classes: np.ndarray,
    object_classes: Iterable[int],
    min_distance: int = 3,
    min_size: int = 8,
    slicewise: bool = False,
) -> np.ndarray:
    """Instance labels (0 = none, 1..N objects) for the pixels of ``object_classes``.

    Touching objects are split by a watershed on the distance transform seeded at its
    local maxima at least ``min_distance`` apart; objects smaller than ``min_size`` pixels
    are dropped. ``slicewise`` labels each slice of a stack (each stack of a series) on its
    own (ids stay unique).
    """
    if slicewise and classes.ndim >= 3:
        out = np.zeros(classes.shape, np.int32)
        offset = 0
        for z in range(classes.shape[0]):
            plane = instances(classes[z], object_classes, min_distance, min_size)
            out[z] = np.where(plane > 0, plane + offset, 0)
            offset = max(offset, int(out[z].max()))
        return out
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    components, n = ndi.label(np.isin(classes, list(object_classes)))
    sizes = np.bincount(components.ravel(), minlength=n + 1)
    small = sizes < min_size
    small[0] = True
    components[small[components]] = 0
    mask = components > 0
    if not mask.any():
        return np.zeros(classes.shape, np.int32)
    distance = ndi.distance_transform_edt(mask)
    peaks = peak_local_max(
        distance, min_distance=min_distance, labels=components, exclude_border=False
    )
    markers = np.zeros(classes.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # a component without a peak (too thin or flat) is one object of its own
    unseeded = np.setdiff1d(np.unique(components[mask]), np.unique(components[markers > 0]))
    extra = np.zeros(n + 1, np.int32)
    extra[unseeded] = np.arange(len(peaks) + 1, len(peaks) + 1 + len(unseeded))
    seeds = np.where(markers > 0, markers, 0)
    labels = watershed(-distance, seeds, mask=mask & ~np.isin(components, unseeded))
    return np.where(labels > 0, labels, extra[components]).astype(np.int32)
