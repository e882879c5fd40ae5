"""Label conventions, defined once.

A label image holds 0 = unlabelled and k >= 1 = class k. Predictions use the same values, so
scribbles and predictions share colours. Class k is channel k-1 of a network's output.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi

from .errors import FrugalsegError

UNLABELLED = 0


def fit_labels(labels: np.ndarray, spatial: Sequence[int], name: str, image_name: str) -> np.ndarray:
    """Labels of the image's spatial shape: as they are, or with axes of length 1 dropped or
    added (a (1, Y, X) file for a (Y, X) image, or the other way); otherwise say what is wrong,
    and spot labels saved as colours."""
    spatial = tuple(spatial)
    if labels.shape == spatial:
        return labels
    if tuple(n for n in labels.shape if n != 1) == tuple(n for n in spatial if n != 1):
        return labels.reshape(spatial)
    hint = ""
    if labels.shape[:-1] == spatial and labels.shape[-1] in (3, 4):
        hint = (" (saved as colours? labels hold one value per pixel: 0 = unlabelled, k = class k;"
                " export the label layer itself, not a screenshot or an RGB rendering)")
    elif len(spatial) == 3 and labels.shape in (spatial[1:], spatial[:-1]):
        axis = 0 if labels.shape == spatial[1:] else -1
        hint = (f" (if the image's axis of {spatial[axis]} holds channels, not slices, say so with"
                f" channel_axis {axis}: --channel-axis {axis} or in the spec)")
    elif labels.ndim == len(spatial) + 1 and spatial in (labels.shape[1:], labels.shape[:-1]):
        hint = (" (if the image is a time series of stacks, not a multi-channel stack, say so"
                " with channel_axis none: --channel-axis none or in the spec)")
    raise FrugalsegError(f"{name}: labels have shape {labels.shape} but {image_name} has spatial "
                         f"shape {spatial}{hint}")


def as_label_array(labels: np.ndarray, name: str) -> np.ndarray:
    """Check a label image and return it as int32; ``name`` (a file or layer) goes in errors."""
    labels = np.asarray(labels)
    if labels.dtype.kind == "b":
        return labels.astype(np.int32)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)):
            raise FrugalsegError(f"{name}: labels contain NaN or infinite values")
        if np.any(labels != np.round(labels)):
            raise FrugalsegError(
                f"{name}: labels must be whole numbers (0 = unlabelled, k = class k), "
                "found fractional values"
            )
    elif labels.dtype.kind not in "iu":
        raise FrugalsegError(f"{name}: labels must be integers, not {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise FrugalsegError(
            f"{name}: labels must not be negative (found {labels.min()}); "
            "use 0 for unlabelled and 1, 2, ... for classes"
        )
    if labels.size and labels.max() > 255:
        raise FrugalsegError(
            f"{name}: label value {labels.max()} is too large; frugalseg expects class values "
            "1..K with K <= 255 (is this an instance mask?)"
        )
    return labels.astype(np.int32)


def labelled_classes(labels: Sequence[np.ndarray], names: Sequence[str]) -> set[int]:
    """Validate the label images of one training run; return the class values labelled in them."""
    present: set[int] = set()
    for lab, name in zip(labels, names):
        values = set(np.unique(lab).tolist()) - {UNLABELLED}
        if not values:
            raise FrugalsegError(f"{name}: no labelled pixel (every value is 0 = unlabelled)")
        present |= values
    if len(present) < 2:
        only = next(iter(present))
        raise FrugalsegError(
            f"{', '.join(names)}: only class {only} is labelled; "
            "scribble at least two classes (for example background and foreground)"
        )
    return present


def check_training_labels(labels: Sequence[np.ndarray], names: Sequence[str]) -> int:
    """Validate the label images of one training run; return the number of classes K."""
    return max(labelled_classes(labels, names))


def default_class_names(n_classes: int) -> tuple[str, ...]:
    return tuple(f"class {k}" for k in range(1, n_classes + 1))


def strokes(labels: np.ndarray, block: int = 64) -> tuple[np.ndarray, int]:
    """Connected components of labelled pixels of the same class: the user's strokes.

    A component larger than a ``block``-sided square (dense labels, a filled region) is cut
    along a grid of such blocks, so that validation can hold out parts of it rather than all.
    Returns (stroke ids, 0 where unlabelled; count).
    """
    ids = np.zeros(labels.shape, np.int64)
    count = 0
    structure = np.ones((3,) * labels.ndim, bool)
    grid = np.zeros(labels.shape, np.int64)
    for axis, size in enumerate(labels.shape):
        shape = [1] * labels.ndim
        shape[axis] = size
        grid = grid * ((size + block - 1) // block) + (np.arange(size) // block).reshape(shape)
    n_blocks = int(grid.max()) + 1
    for value in np.unique(labels):
        if value == UNLABELLED:
            continue
        comp, n = ndi.label(labels == value, structure=structure)
        sizes = np.bincount(comp.ravel(), minlength=n + 1)
        big = sizes > block**labels.ndim
        big[0] = False
        keyed = np.where(big[comp], comp * n_blocks + grid, comp * n_blocks)
        _, dense_ids = np.unique(keyed[comp > 0], return_inverse=True)
        ids[comp > 0] = dense_ids.ravel() + 1 + count
        count += int(dense_ids.max()) + 1 if dense_ids.size else 0
    return ids, count


def _stroke_key(first_index: int, salt: int) -> float:
    """A stable pseudo-random number in [0, 1) for a stroke, from where it starts."""
    return ((first_index * 2654435761 + salt * 40503) % 2**32) / 2**32


# strokes smaller than this (pixels) are never held out: a stray click of the brush validates
# nothing (one held-out pixel made the score 0 or 1 on the maize scribbles of real_scribbles/)
MIN_HELD_OUT_PIXELS = 10


def split_strokes(
    labels: Sequence[np.ndarray], fraction: float, salt: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out whole strokes for validation, never pixels.

    A stroke is held out by a stable hash of where it starts, so adding strokes elsewhere does
    not reshuffle the split. Only strokes of ``MIN_HELD_OUT_PIXELS`` or more are held out;
    every class keeps at least one such stroke for training, so a class with a single one is
    never held out. Returns (train labels, validation labels).
    """
    train = [np.array(lab, copy=True) for lab in labels]
    val = [np.zeros_like(lab) for lab in labels]
    if fraction <= 0:
        return train, val
    per_class: dict[int, list[tuple[int, int, np.ndarray]]] = {}
    for i, lab in enumerate(labels):
        ids, n = strokes(lab)
        if n == 0:
            continue
        flat = ids.ravel()
        order = np.argsort(flat, kind="stable")
        sorted_ids = flat[order]
        starts = np.searchsorted(sorted_ids, np.arange(1, n + 1))
        ends = np.searchsorted(sorted_ids, np.arange(1, n + 1), side="right")
        flat_labels = lab.ravel()
        for s, e in zip(starts, ends):
            pix = order[s:e]
            if len(pix) < MIN_HELD_OUT_PIXELS:
                continue  # trains, never held out
            value = int(flat_labels[pix[0]])
            per_class.setdefault(value, []).append((i, int(pix.min()), pix))
    for value, items in per_class.items():
        if len(items) < 2:
            continue
        held = [it for it in items if _stroke_key(it[1] + 7919 * it[0], salt) < fraction]
        if len(held) == len(items):
            held = held[1:]
        for i, _, pix in held:
            train[i].reshape(-1)[pix] = UNLABELLED
            val[i].reshape(-1)[pix] = value
    return train, val


def dice_per_class(pred: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Dice of each class 1..K over pixels where ``truth`` is labelled (NaN if absent in both)."""
    mask = truth > 0
    p, t = pred[mask], truth[mask]
    out = np.full(n_classes, np.nan)
    for k in range(1, n_classes + 1):
        pk, tk = p == k, t == k
        denom = pk.sum() + tk.sum()
        if denom:
            out[k - 1] = 2.0 * np.logical_and(pk, tk).sum() / denom
    return out


def code_complete_regions(
    labels: np.ndarray,
    regions: Sequence[tuple[np.ndarray | None, Sequence[int]]],
    n_classes: int,
    sets: list[list[int]],
    grow: bool = True,
    names: Sequence[str] | None = None,
) -> np.ndarray:
    """Partial-class coding: inside each region (a mask, or None for everywhere) that declares
    the classes S complete, unlabelled pixels become "one of the classes outside S".

    That is class k itself when only k is outside S, else the code K+i of ``sets[i-1]`` (added
    to ``sets`` when ``grow``; skipped otherwise). Regions may overlap only where they
    declare the same classes: otherwise a FrugalsegError names both (``names``).
    """
    out = np.array(labels, np.int32, copy=True)
    names = list(names or [f"region {i + 1}" for i in range(len(regions))])
    unlabelled = out == 0
    owner = np.full(out.shape, -1, np.int32)
    outsides: list[list[int]] = []
    for i, (mask, complete) in enumerate(regions):
        outside = sorted(set(range(1, n_classes + 1)) - {int(c) for c in complete})
        outsides.append(outside)
        if not complete or not outside:
            continue
        inside = np.ones(out.shape, bool) if mask is None else np.broadcast_to(mask, out.shape)
        for j in np.unique(owner[inside & (owner >= 0)]):
            if outsides[j] != outside:
                raise FrugalsegError(
                    f"{names[j]} and {names[i]} overlap but declare different complete classes; "
                    "separate them or declare the same classes in both"
                )
        owner[inside] = i
        if len(outside) == 1:
            code = outside[0]
        elif outside in sets or grow:
            if outside not in sets:
                sets.append(outside)
            code = n_classes + 1 + sets.index(outside)
        else:
            continue  # declared while training runs: used from the next Train
        out[inside & unlabelled] = code
    return out
