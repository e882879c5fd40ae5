"""Real shippable images with real hand-drawn scribbles (see data/ATTRIBUTION.md)."""

from __future__ import annotations

from napari_frugalseg.core.samples import sample_path
from napari_frugalseg.core.io import read_array


def _sample(image: str, labels: str, name: str):
    return [
        (read_array(sample_path(image)), {"name": name}, "image"),
        (read_array(sample_path(labels)).astype("int32"), {"name": f"{name} scribbles"}, "labels"),
    ]


def blobs():
    return _sample("blobs.tif", "blobs_annotations.tif", "blobs")


def membranes():
    return _sample("membranes_2d.tif", "membranes_2d_sparse_labels.tif", "membranes")
