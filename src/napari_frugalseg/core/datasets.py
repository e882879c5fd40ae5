"""Loaders for the public reference sets (as laid out in ``shared/data``).

This is the one place where each set's label convention is converted to ours
(0 = unlabelled, k = class k). Every loader returns a ``Dataset`` of (C, Y, X) images and dense
label images with values 1..K.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import read_array, to_channels_first


@dataclass
class Dataset:
    name: str
    classes: tuple[str, ...]
    images: list[np.ndarray]
    labels: list[np.ndarray]
    ids: list[str]


def isbi2012(root: Path) -> Dataset:
    """ISBI 2012 membranes: file 0 = membrane -> 1, 255 = cell interior -> 2."""
    base = Path(root) / "isbi2012_em_membranes" / "data" / "membrane" / "train"
    ids = [str(i) for i in range(30)]
    images = [to_channels_first(read_array(base / "image" / f"{i}.png"), i) for i in ids]
    labels = [np.where(read_array(base / "label" / f"{i}.png") > 127, 2, 1).astype(np.int32) for i in ids]
    return Dataset("isbi2012", ("membrane", "interior"), images, labels, ids)


def dsb2018(root: Path) -> Dataset:
    """DSB 2018 nuclei (the selection in selection.tsv): background 1, nucleus 2; RGB input."""
    base = Path(root) / "dsb2018_nuclei"
    with open(base / "selection.tsv") as fh:
        ids = [row["image_id"] for row in csv.DictReader(fh, delimiter="\t")]
    images, labels = [], []
    for i in ids:
        d = base / "stage1_train" / i
        img = read_array(d / "images" / f"{i}.png")[..., :3]
        mask = np.zeros(img.shape[:2], bool)
        for m in sorted((d / "masks").glob("*.png")):
            mask |= read_array(m) > 0
        images.append(to_channels_first(img, i))
        labels.append(mask.astype(np.int32) + 1)
    return Dataset("dsb2018", ("background", "nucleus"), images, labels, ids)


DROSOPHILA_CLASSES = ("membrane", "glia/ECS", "mitochondria", "synapse", "cytoplasm")
_DROSOPHILA_VALUES = {0: 1, 32: 1, 64: 1, 96: 1, 128: 1, 159: 2, 191: 3, 223: 4, 255: 5}


def drosophila_vnc(root: Path) -> Dataset:
    """Gerhard et al. 2013 ssTEM: 9 grey values collapse to 5 classes."""
    base = Path(root) / "drosophila_vnc_multiclass" / "stack1"
    ids = [f"{i:02d}" for i in range(10)]
    lut = np.zeros(256, np.int32)
    for value, k in _DROSOPHILA_VALUES.items():
        lut[value] = k
    images, labels = [], []
    for i in ids:
        images.append(to_channels_first(read_array(base / "raw" / f"{i}.tif"), i))
        lab = read_array(base / "labels" / f"labels000000{i}.png")
        lab = lab[..., 0] if lab.ndim == 3 else lab
        labels.append(lut[lab])
    return Dataset("drosophila_vnc", DROSOPHILA_CLASSES, images, labels, ids)


LOADERS = {"isbi2012": isbi2012, "dsb2018": dsb2018, "drosophila_vnc": drosophila_vnc}
