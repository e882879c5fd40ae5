"""The real samples shipped in ``napari_frugalseg/data`` (see data/ATTRIBUTION.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import numpy as np

from .io import read_array

DEMO_CLASSES = ("background", "blob")


def sample_path(name: str) -> Path:
    """Path of a file shipped in ``napari_frugalseg/data``."""
    return Path(str(files("napari_frugalseg") / "data" / name))


def demo_sample() -> tuple[Path, Path, np.ndarray]:
    """The demo's real sample: image path, scribbles path (1 = background, 2 = blob) and the
    reference labels (values 1..2) from its instance masks."""
    truth = (read_array(sample_path("blobs_labeled.tif")) > 0).astype(np.int32) + 1
    return sample_path("blobs.tif"), sample_path("blobs_annotations.tif"), truth
