"""Reading images and labels, writing masks, model bundles; every write is atomic."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FrugalsegError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".npy", ".zarr")
ZARR_MARKERS = (".zattrs", ".zarray", "zarr.json")  # a folder holding one of these is a Zarr node


def read_array(path: str | os.PathLike) -> np.ndarray:
    """The pixel array of a TIFF, PNG, JPEG or .npy file, with a clear error if unreadable."""
    return _read(path)[0]


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """A label file, checked (``labels.as_label_array``: int32, 0 = unlabelled); of an
    indexed-colour (palette) PNG, as annotation tools save label images, the indices (the class
    values), not the colours they are shown in."""
    from .labels import as_label_array

    path = Path(path)
    if path.suffix.lower() == ".png" and path.is_file():
        from PIL import Image

        try:
            with Image.open(path) as png:
                if png.mode == "P":
                    return as_label_array(np.asarray(png), str(path))
        except Exception:  # read_array says what is wrong with the file
            pass
    return as_label_array(read_array(path), str(path))


def is_zarr(path: Path) -> bool:
    """Whether ``path`` is a Zarr folder (named .zarr, or an OME-Zarr's labels/<name>)."""
    return path.is_dir() and (path.suffix.lower() == ".zarr" or any((path / f).is_file() for f in ZARR_MARKERS))


def stem(path: str | os.PathLike) -> str:
    """A file's name without its suffixes of format: ``cells`` for cells.tif, cells.ome.tif and
    cells.ome.zarr (outputs and label files are named after it)."""
    return without_ome(Path(path).stem)


def without_ome(name: str) -> str:
    """A name without an OME format's ".ome" (napari names a layer from cells.ome.tif
    'cells.ome'); what is written under it is no OME file."""
    return name.removesuffix(".ome")


def _read(path: str | os.PathLike) -> tuple[np.ndarray, str | None]:
    """``read_array``'s pixels, and the axes a Fiji hyperstack, OME-TIFF or OME-Zarr declares
    (e.g. ``ZCYX``; None for other files), from one opening of the file."""
    path = Path(path)
    if not path.exists():
        raise FrugalsegError(f"{path}: no such file")
    if is_zarr(path):
        return _read_zarr(path)
    if path.is_dir():
        raise FrugalsegError(f"{path}: is a folder, not an image file")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise FrugalsegError(
            f"{path}: unsupported file type '{suffix}' (use {', '.join(IMAGE_SUFFIXES)}; a microscope's "
            f"own format, e.g. .czi, .nd2 or .lif, can be saved as (OME-)TIFF by Fiji or napari)"
        )
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return np.asarray(tif.series[0].asarray()), _declared(tif)
        if suffix == ".npy":
            return np.load(path, allow_pickle=False), None
        import imageio.v3 as iio

        return np.asarray(iio.imread(path)), None
    except Exception as exc:  # any decoder failure is the file's problem
        raise FrugalsegError(f"{path}: cannot be read as an image ({exc})") from None


def _read_zarr(path: Path) -> tuple[np.ndarray, str | None]:
    """The finest level of an OME-Zarr image (OME-NGFF 0.4 or 0.5; of a bioformats2raw folder,
    its first image) and its axes; a plain Zarr array as it is, with none."""
    try:
        import zarr

        node = zarr.open(str(path), mode="r")
        if isinstance(node, zarr.Array):
            return np.asarray(node[...]), None
        meta = dict(node.attrs).get("ome", dict(node.attrs))  # 0.5 nests it under "ome"
        if "multiscales" not in meta and "bioformats2raw.layout" in meta:
            node = node["0"]
            meta = dict(node.attrs).get("ome", dict(node.attrs))
        if not meta.get("multiscales"):
            raise ValueError("a Zarr group without OME-Zarr 'multiscales' metadata")
        image = meta["multiscales"][0]
        array = np.asarray(node[image["datasets"][0]["path"]][...])
        names = [a["name"] if isinstance(a, dict) else a for a in image.get("axes", [])]  # 0.3: names
    except Exception as exc:  # any reader failure is the file's problem
        raise FrugalsegError(f"{path}: cannot be read as an image ({exc})") from None
    axes = "".join(str(n)[:1].upper() for n in names)
    return array, axes if len(axes) == array.ndim else None


def _declared(tif) -> str | None:
    """The axes of an open TIFF's first series, where it declares them (ImageJ, OME)."""
    return tif.series[0].axes if tif.is_imagej or tif.is_ome else None


def declared_axes(path: str | os.PathLike) -> str | None:
    """The axes a Fiji hyperstack or OME-TIFF declares (``_read``), from its header alone;
    None for other or unreadable files."""
    if Path(path).suffix.lower() not in (".tif", ".tiff"):
        return None
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            return _declared(tif)
    except Exception:  # not ours to report: the file was read by someone else
        return None


def image_files(paths: Iterable[str | os.PathLike], skip_labels: bool = False) -> list[Path]:
    """The files to read: each folder among ``paths`` stands for the image files in it (by
    name; hidden files skipped; with ``skip_labels``, also the label files of its images, named
    as ``paired_files`` pairs them), other paths as they are (``read_array`` checks them)."""
    files = []
    for path in map(Path, paths):
        if not path.is_dir() or is_zarr(path):
            files.append(path)
            continue
        found = sorted(p for p in path.iterdir() if (p.is_file() or is_zarr(p))
                       and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)
        if skip_labels:
            stems = {stem(p) for p in found}
            found = [p for p in found if _image_stem(stem(p)) == stem(p) or _image_stem(stem(p)) not in stems]
        if not found:
            raise FrugalsegError(f"{path}: a folder with no image file ({', '.join(IMAGE_SUFFIXES)}) in it")
        files += found
    return files


LABEL_SUFFIXES = ("_labels", "_scribbles", "_annotations")  # a labels file's stem: the image's + one


def _image_stem(label_stem: str) -> str:
    for suffix in LABEL_SUFFIXES:
        label_stem = label_stem.removesuffix(suffix)
    return label_stem


def paired_files(images: Path, labels: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """The images of folder ``images`` that have labels in folder ``labels``, named after them
    (the same stem, or it followed by one of ``LABEL_SUFFIXES``; in one folder for both, only
    the latter): (images, their labels, images without labels)."""
    same = images.resolve() == labels.resolve()
    found: dict[str, Path] = {}
    for path in image_files([labels]):
        name = _image_stem(stem(path))
        if same and name == stem(path):
            continue  # an image
        if name in found:
            raise FrugalsegError(f"{labels}: two label files for image '{name}': {found[name].name}, {path.name}")
        found[name] = path
    all_images = [p for p in image_files([images]) if not (same and _image_stem(stem(p)) != stem(p))]
    paired = [path for path in all_images if stem(path) in found]
    if not paired:
        raise FrugalsegError(f"{labels}: no label file named after an image of {images} (e.g. "
                             f"<image stem>.tif or <image stem>_labels.tif)")
    return paired, [found[stem(path)] for path in paired], [p for p in all_images if stem(p) not in found]


NO_CHANNELS = "none"  # as a channel axis: the image has none, every axis is spatial


def to_channels_first(array: np.ndarray, name: str, channel_axis: int | str | None = None) -> np.ndarray:
    """Return (C, *spatial) from a grey, RGB(A), multi-channel 2D image or a 3D stack.

    Without ``channel_axis``: 2D arrays are grey; a last axis of 3 or 4 is RGB(A) (alpha is
    dropped); other 3D arrays are stacks (Z, Y, X); 4D arrays are (Z, Y, X, C) if the last axis
    is at most 4 long, else (C, Z, Y, X) / (Z, C, Y, X) by the shortest axis. ``NO_CHANNELS``
    as ``channel_axis``: one grey channel, every axis spatial (e.g. a (T, Z, Y, X) time series).
    """
    a = np.asarray(array)
    if a.dtype.kind not in "biuf":
        raise FrugalsegError(f"{name}: pixel type {a.dtype} is not numeric")
    if channel_axis == NO_CHANNELS:
        return a[None]
    if channel_axis is not None:
        if not isinstance(channel_axis, int):
            raise FrugalsegError(f"{name}: channel axis {channel_axis!r} is neither a number nor '{NO_CHANNELS}'")
        if not -a.ndim <= channel_axis < a.ndim or a.ndim < 3:
            raise FrugalsegError(f"{name}: no channel axis {channel_axis} in an image of shape {a.shape}")
        return np.moveaxis(a, channel_axis, 0)
    if a.ndim == 2:
        return a[None]
    if a.ndim == 3:
        if a.shape[-1] in (3, 4) and min(a.shape[:2]) > 4:
            return np.moveaxis(a[..., :3], -1, 0)
        return a[None]
    if a.ndim == 4:
        if a.shape[-1] <= 4:
            return np.moveaxis(a, -1, 0)
        return np.moveaxis(a, int(np.argmin(a.shape[:2])), 0)
    raise FrugalsegError(f"{name}: cannot interpret an image with {a.ndim} axes {a.shape}")


def check_finite(image: np.ndarray, name: str) -> None:
    """Refuse NaN or infinite pixels (e.g. a registration's empty border), saying how many and
    where the first one is (an index of ``image`` as given: the file's or the layer's axes)."""
    if image.dtype.kind != "f":
        return
    bad = ~np.isfinite(image)
    if bad.any():
        first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))
        raise FrugalsegError(
            f"{name}: image contains {int(bad.sum())} NaN or infinite value(s), the first at index "
            f"{first}; replace them (e.g. numpy.nan_to_num, Fiji's Process > Math > Remove NaNs) "
            "or crop them away")


def declared_channel_axis(axes: str | None) -> int | str | None:
    """The channel axis a file's declared ``axes`` (``_read``) give: the place of its C axis,
    ``NO_CHANNELS`` when it has none (grey: every axis spatial or time), None where they give
    nothing to go by (no axes declared, RGB samples)."""
    if axes is None or "S" in axes or not set(axes) <= set("TZCYX"):
        return None
    return axes.index("C") if "C" in axes else NO_CHANNELS


def read_image(path: str | os.PathLike, channel_axis: int | str | None = None) -> np.ndarray:
    """A checked image as (C, *spatial); without ``channel_axis``, the one the file declares
    (``declared_channel_axis``), else ``to_channels_first``'s default reading."""
    return read_image_and_axes(path, channel_axis)[0]


def read_image_and_axes(path: str | os.PathLike,
                        channel_axis: int | str | None = None) -> tuple[np.ndarray, bool]:
    """``read_image``, and whether the file declared how its axes read (``declared_channel_axis``)."""
    array, axes = _read(path)
    check_finite(array, str(path))
    declared = declared_channel_axis(axes)
    image = to_channels_first(array, str(path), declared if channel_axis is None else channel_axis)
    return image, declared is not None


def check_folder_for(path: str | os.PathLike) -> None:
    """Refuse ``path`` as somewhere to write when a file stands where a folder above it
    should be (e.g. ``--out`` naming an existing file)."""
    for parent in Path(path).parents:
        if parent.exists():
            if not parent.is_dir():
                raise FrugalsegError(f"{parent}: is a file, not a folder: {path} cannot be written in it")
            return


def make_folder_for(path: Path) -> None:
    """Create the folder ``path`` goes in (``check_folder_for`` first)."""
    check_folder_for(path)
    path.parent.mkdir(parents=True, exist_ok=True)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    make_folder_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_tiff(path: str | os.PathLike, array: np.ndarray) -> Path:
    import tifffile

    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, np.asarray(array), photometric="minisblack"))


def write_png(path: str | os.PathLike, array: np.ndarray) -> Path:
    import imageio.v3 as iio

    return atomic_write(path, lambda tmp: iio.imwrite(tmp, np.asarray(array), extension=".png"))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    text = json.dumps(data, indent=2)
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    """A CSV table (None written as an empty cell)."""
    import csv

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(header)
            out.writerows(["" if v is None else v for v in row] for row in rows)

    return atomic_write(path, write)


def check_replaceable(path: str | os.PathLike, replaces: Callable[[list[str]], bool], what: str) -> None:
    """Refuse ``path`` as the folder of a ``what`` if it is a file, or a folder holding anything
    but an earlier ``what`` (``replaces`` judges the names in it): swapping in the new folder
    would delete the user's files."""
    path = Path(path)
    check_folder_for(path)
    if path.is_dir():
        names = sorted(p.name for p in path.iterdir())
        if names and not replaces(names):
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise FrugalsegError(
                f"{path}: this folder holds other files ({shown}); a {what} is written only "
                f"into a new or empty folder, or over an earlier {what}: choose another folder"
            )
    elif path.exists():
        raise FrugalsegError(f"{path}: is a file; a {what} is a folder: choose a folder name")


def atomic_dir(path: str | os.PathLike, fill: Callable[[Path], None], *,
               replaces: Callable[[list[str]], bool], what: str) -> Path:
    """Fill a temporary folder beside ``path`` and swap it in, so ``path`` is never half-written.

    An existing folder is replaced only once the new one is complete, and only if it is empty
    or ``replaces`` accepts the names in it as an earlier ``what`` (``check_replaceable``).
    """
    path = Path(path)
    check_replaceable(path, replaces, what)
    make_folder_for(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
    try:
        fill(tmp)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            old.rmdir()
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
