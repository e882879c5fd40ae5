"""A session folder: images (by path, or their pixels), scribbles, classes, settings, model.

Layout: ``session.json``, ``scribbles/<i>.tif``, ``images/<i>.tif`` (only for images that
came from no file), ``model/`` (a bundle). Scribbles are written one file at a time, each
atomically, so autosaving after every stroke is cheap and a crash loses at most that stroke.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import FrugalsegError
from .io import read_array, write_json, write_tiff

FORMAT = 1


@dataclass
class SessionImage:
    name: str
    scribbles: np.ndarray
    source: str | None = None  # file the image was opened from
    data: np.ndarray | None = None  # the pixels, when there is no file
    rgb: bool = False
    complete: list[int] = field(default_factory=list)  # classes annotated exhaustively
    # or, per region: {"layer": name, "shapes": [{"type", "points", "complete"}, ...]}
    regions: dict[str, Any] | None = None


@dataclass
class Session:
    images: list[SessionImage]
    classes: list[dict[str, str]]  # [{"name": ..., "color": "#rrggbb"}], value k = item k-1
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def model_dir(folder: str | os.PathLike) -> Path:
        return Path(folder) / "model"


def scribbles_path(folder: str | os.PathLike, index: int) -> Path:
    return Path(folder) / "scribbles" / f"{index}.tif"


def save_scribbles(folder: str | os.PathLike, index: int, scribbles: np.ndarray) -> Path:
    """Autosave one image's scribbles (atomic)."""
    return write_tiff(scribbles_path(folder, index), np.asarray(scribbles).astype(np.uint8))  # K <= 255


def save_session(folder: str | os.PathLike, session: Session, only: int | None = None) -> Path:
    """Write everything but the model (saved with ``save_bundle(Session.model_dir(folder))``).

    ``only``: an autosave after a stroke on image ``only``: the index, that image's
    scribbles, and only the pixels of images not yet in the folder.
    """
    folder = Path(folder)
    items = []
    for i, im in enumerate(session.images):
        if only is None or i == only:
            save_scribbles(folder, i, im.scribbles)
        item = {"name": im.name, "source": im.source, "rgb": im.rgb, "data": None,
                "complete": list(im.complete), "regions": im.regions}
        if im.source is None:
            if im.data is None:
                raise FrugalsegError(f"image '{im.name}': neither a file nor pixels to save")
            item["data"] = f"images/{i}.tif"
            if only is None or not (folder / item["data"]).is_file():
                write_tiff(folder / item["data"], im.data)
        items.append(item)
    meta = {"format": FORMAT, "classes": session.classes, "settings": session.settings, "images": items}
    return write_json(folder / "session.json", meta)


def load_session(folder: str | os.PathLike) -> Session:
    """Read a session folder; a missing image file is named in the error."""
    folder = Path(folder)
    path = folder / "session.json"
    if not path.is_file():
        raise FrugalsegError(f"{folder}: not a frugalseg session (no session.json)")
    try:
        meta = json.loads(path.read_text())
        items, classes = meta["images"], meta["classes"]
    except (ValueError, KeyError) as exc:
        raise FrugalsegError(f"{path}: unreadable session ({exc})") from None
    if meta.get("format", 0) > FORMAT:
        raise FrugalsegError(f"{path}: written by a newer napari-frugalseg; please upgrade")
    images = []
    for i, item in enumerate(items):
        source = item.get("source")
        data = None
        if source is None:
            data = read_array(folder / item["data"])
        elif not Path(source).exists():
            raise FrugalsegError(f"{path}: image '{item['name']}' was opened from {source}, which is gone")
        scribbles = read_array(scribbles_path(folder, i)).astype(np.int32)
        images.append(SessionImage(item["name"], scribbles, source, data, bool(item.get("rgb")),
                                   list(item.get("complete", [])), item.get("regions")))
    return Session(images, classes, meta.get("settings", {}))
