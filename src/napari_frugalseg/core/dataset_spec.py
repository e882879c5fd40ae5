"""Dataset specs: merge images whose label files name and number their classes differently,
and that annotate only some classes exhaustively (partial-class labels).

A spec (YAML or JSON; paths relative to the spec's folder)::

    classes: [membrane, mitochondria, cytoplasm]      # value k in predictions = k-th name
    items:
      - image: a.tif
        labels: a_labels.tif
        classes: {1: membrane, 2: mitochondria}          # this file's values -> names
        annotated: [membrane, mitochondria]              # exhaustive here; or all | sparse
        weights: a_agreement.tif                         # optional per-pixel loss weights
        channel_axis: 0                                  # optional: e.g. a (C, Y, X) TIFF; none: all spatial

In an item annotating the set S, an unlabelled pixel is known to be none of S: it gets a
code above K meaning "one of the classes outside S" (``TrainingData.partial_sets``), which
the marginal loss learns from. ``annotated: all`` is dense training, ``sparse`` scribbles.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FrugalsegError
from .io import read_array, read_image, read_labels
from .labels import fit_labels


@dataclass
class MergedDataset:
    classes: tuple[str, ...]
    images: list[np.ndarray]  # (C, *spatial)
    labels: list[np.ndarray]  # 0, 1..K, and K+i for partial_sets[i-1]
    partial_sets: list[list[int]]
    names: list[str]  # one per item, for messages
    weights: list[np.ndarray | None]


def _read_spec(path: Path) -> dict:
    if not path.is_file():
        raise FrugalsegError(f"{path}: no such dataset spec")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        import yaml

        return yaml.safe_load(text)
    except Exception as exc:
        raise FrugalsegError(f"{path}: not valid {path.suffix[1:].upper()} ({exc})") from None


def load_dataset(path: str | os.PathLike) -> MergedDataset:
    """Read and merge every item of a spec onto its class list; errors name the item."""
    path = Path(path)
    spec = _read_spec(path)
    if not isinstance(spec, dict) or not spec.get("classes") or not spec.get("items"):
        raise FrugalsegError(f"{path}: a spec needs 'classes: [names]' and 'items: [...]'")
    classes = tuple(str(c) for c in spec["classes"])
    twice = sorted({c for c in classes if classes.count(c) > 1})
    if twice:
        raise FrugalsegError(f"{path}: class name(s) {twice} appear more than once in 'classes'")
    index = {name: k for k, name in enumerate(classes, start=1)}
    sets: dict[frozenset[int], int] = {}
    out = MergedDataset(classes, [], [], [], [], [])
    for n, item in enumerate(spec["items"], start=1):
        where = f"{path}: item {n}"
        try:
            image_path, labels_path = path.parent / item["image"], path.parent / item["labels"]
            values = {int(v): str(name) for v, name in item["classes"].items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise FrugalsegError(
                f"{where}: needs image, labels and classes {{value: name}} ({exc})"
            ) from None
        where = f"{where} ({labels_path.name})"
        for name in values.values():
            if name not in index:
                raise FrugalsegError(f"{where}: unknown class '{name}' (spec classes: {', '.join(classes)})")
        try:
            image = read_image(image_path, item.get("channel_axis"))
            raw = read_labels(labels_path)
        except FrugalsegError as exc:
            raise FrugalsegError(f"{path}: item {n}: {exc}") from None
        raw = fit_labels(raw, image.shape[1:], where, image_path.name)
        if out.images and image.shape[0] != out.images[0].shape[0]:
            raise FrugalsegError(f"{where}: {image_path.name} has {image.shape[0]} channel(s), item 1 "
                                 f"{out.images[0].shape[0]} (a channel_axis for one of them?)")
        stray = sorted(set(np.unique(raw).tolist()) - {0} - set(values))
        if stray:
            raise FrugalsegError(f"{where}: label value(s) {stray} are not in the item's classes")
        if not raw.any():
            raise FrugalsegError(f"{where}: no labelled pixel")
        merged = np.zeros(raw.shape, np.int32)
        for value, name in values.items():
            merged[raw == value] = index[name]
        code = _unlabelled_code(item.get("annotated", "sparse"), index, sets, where)
        if code:
            merged[raw == 0] = code
        weights = None
        if item.get("weights"):
            try:
                weights = read_array(path.parent / item["weights"]).astype(np.float32)
            except FrugalsegError as exc:
                raise FrugalsegError(f"{path}: item {n}: {exc}") from None
            if weights.shape != raw.shape or weights.min() < 0:
                raise FrugalsegError(f"{where}: weights must be >= 0 with the labels' shape {raw.shape}")
        out.weights.append(weights)
        out.images.append(image)
        out.labels.append(merged)
        out.names.append(str(labels_path))
    out.partial_sets = [sorted(s) for s, _ in sorted(sets.items(), key=lambda kv: kv[1])]
    if len({v for lab in out.labels for v in np.unique(lab).tolist()} - {0}) < 2:
        raise FrugalsegError(f"{path}: the items label only one class together; need two")
    return out


def _unlabelled_code(annotated, index: dict[str, int], sets: dict, where: str) -> int:
    """The code unlabelled pixels of an item get: 0 (ignored) or K + i (outside S)."""
    if annotated in ("sparse", "all", None):
        return 0
    if not isinstance(annotated, list):
        raise FrugalsegError(f"{where}: 'annotated' must be all, sparse or a list of class names")
    unknown = [a for a in annotated if a not in index]
    if unknown:
        raise FrugalsegError(f"{where}: annotated names unknown class(es) {unknown}")
    outside = frozenset(k for name, k in index.items() if name not in annotated)
    if not outside or len(outside) == len(index):
        return 0  # all annotated (dense) or none (sparse)
    if len(outside) == 1:
        return next(iter(outside))  # only one class left: the pixel is that class
    if outside not in sets:
        sets[outside] = len(index) + len(sets) + 1
    return sets[outside]
