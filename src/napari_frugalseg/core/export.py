"""Writing masks in the formats users ask for: one TIFF, PNG per slice, OME-Zarr."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from .errors import FrugalsegError
from .io import atomic_dir, is_zarr, read_array, write_tiff

FORMATS = ("tiff", "png", "ome-zarr")
SUFFIXES = {"tiff": ".tif", "png": "", "ome-zarr": ".ome.zarr"}
ZARR_FILES = {".zgroup", ".zattrs", ".zmetadata", "zarr.json", "0"}  # what _ome_zarr writes
PNG_SLICE = re.compile(r"slice_(\d+(?:_\d+)*)\.png")  # the slice's index, axes joined by _


def mask_path(folder: str | os.PathLike, stem: str, fmt: str) -> Path:
    """Where ``write_mask`` puts the mask ``stem`` in ``folder`` (PNG: a folder of slices)."""
    return Path(folder) / f"{stem}{SUFFIXES[fmt]}"


def write_mask(path: str | os.PathLike, mask: np.ndarray, fmt: str) -> Path:
    """Write a 2D, 3D (Z, Y, X) or 4D (T, Z, Y, X) integer mask atomically; returns what was
    written.

    ``png`` writes ``path/`` holding ``slice_0000.png``... (one file for a 2D mask; of a time
    series ``slice_0000_0000.png``..., time point first), 16 bit when values exceed 255.
    ``ome-zarr`` writes an OME-NGFF 0.4 image with one scale level.
    """
    if fmt not in FORMATS:
        raise FrugalsegError(f"unknown mask format '{fmt}' (use {', '.join(FORMATS)})")
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3, 4):
        raise FrugalsegError(f"{path}: masks must be 2D, 3D or 4D (T, Z, Y, X), not {mask.shape}")
    if fmt == "tiff":
        return write_tiff(path, mask)
    if fmt == "png":
        return atomic_dir(path, lambda tmp: _png_slices(tmp, mask), what="PNG mask",
                          replaces=lambda names: all(PNG_SLICE.fullmatch(n) for n in names))
    return atomic_dir(path, lambda tmp: _ome_zarr(tmp, mask), what="OME-Zarr mask",
                      replaces=lambda names: set(names) <= ZARR_FILES)


def _png_slices(folder: Path, mask: np.ndarray) -> None:
    import imageio.v3 as iio

    dtype = np.uint8 if mask.max(initial=0) < 256 else np.uint16
    for index in np.ndindex(mask.shape[:-2] or (1,)):
        plane = mask[index] if mask.ndim > 2 else mask
        name = "_".join(f"{i:04d}" for i in index)
        iio.imwrite(folder / f"slice_{name}.png", plane.astype(dtype), extension=".png")


def _ome_zarr(folder: Path, mask: np.ndarray) -> None:
    import zarr

    axes = [{"name": a, "type": "time" if a == "t" else "space"} for a in "tzyx"[-mask.ndim:]]
    root = zarr.open_group(str(folder), mode="w", zarr_format=2)
    chunks = tuple(min(s, c) for s, c in zip(mask.shape, (1, 16, 512, 512)[-mask.ndim:]))
    root.create_array("0", data=mask, chunks=chunks)
    root.attrs["multiscales"] = [{
        "version": "0.4",
        "name": folder.name,
        "axes": axes,
        "datasets": [{
            "path": "0",
            "coordinateTransformations": [{"type": "scale", "scale": [1.0] * mask.ndim}],
        }],
    }]


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read back what ``write_mask`` wrote, whatever the format."""
    path = Path(path)
    if path.is_dir() and not is_zarr(path):  # PNG slices (io reads an OME-Zarr mask as an image)
        import imageio.v3 as iio

        found = sorted((tuple(map(int, m.group(1).split("_"))), p) for p in path.iterdir()
                       if (m := PNG_SLICE.fullmatch(p.name)))
        planes = np.stack([iio.imread(p) for _, p in found])
        if len(planes) == 1:
            return planes[0]
        stack = np.max([index for index, _ in found], axis=0) + 1  # (Z,) or (T, Z)
        return planes.reshape(*stack, *planes.shape[-2:])
    return read_array(path)
