"""A session folder: images (by path, or their pixels), scribbles, classes, settings, model.

Layout: ``session.json``, ``scribbles/<i>.tif``, ``images/<i>.tif`` (only for images that
came from no file), ``model/`` (a bundle). Scribbles are written one file at a time, each
atomically, so autosaving after every stroke is cheap and a crash loses at most that stroke.
Sessions the user did not save elsewhere are autosaved under ``autosave_dir()``; nothing
removes them but the user (``remove_autosaves``, ``frugalseg sessions``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .errors import FrugalsegError
from .io import read_array, write_json, write_tiff
from .library import home

FORMAT = 1


@dataclass
class SessionImage:
    name: str
    scribbles: np.ndarray
    source: str | None = None  # file the image was opened from
    data: ArrayLike | None = None  # the pixels, when there is no file (a lazy array is read when written)
    rgb: bool = False
    # the axis of the pixels (of ``source``, else ``data``) that holds channels, moved first in
    # the layer; None: none (grey or RGB)
    channel_axis: int | None = None
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
    values = np.asarray(scribbles).astype(np.uint8, copy=False)  # K <= 255
    return write_tiff(scribbles_path(folder, index), values)


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
        item = {"name": im.name, "source": im.source, "rgb": im.rgb,
                "channel_axis": im.channel_axis, "data": None,
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


def _read_index(folder: Path) -> dict[str, Any]:
    """A session folder's ``session.json``, checked: it lists images and classes in a format
    this version reads."""
    path = folder / "session.json"
    if not path.is_file():
        raise FrugalsegError(f"{folder}: not a frugalseg session (no session.json)")
    try:
        meta = json.loads(path.read_text())
        meta["images"], meta["classes"]
    except (ValueError, KeyError, TypeError) as exc:
        raise FrugalsegError(f"{path}: unreadable session ({exc})") from None
    if meta.get("format", 0) > FORMAT:
        raise FrugalsegError(f"{path}: written by a newer napari-frugalseg; please upgrade")
    return meta


def load_session(folder: str | os.PathLike) -> Session:
    """Read a session folder; a missing image file is named in the error."""
    folder = Path(folder)
    meta = _read_index(folder)
    path, items, classes = folder / "session.json", meta["images"], meta["classes"]
    images = []
    for i, item in enumerate(items):
        source = item.get("source")
        data = None
        if source is None:
            data = read_array(folder / item["data"])
        elif not Path(source).exists():
            raise FrugalsegError(f"{path}: image '{item['name']}' was opened from {source}, which is gone")
        scribbles = read_array(scribbles_path(folder, i)).astype(np.int32)
        axis = item.get("channel_axis", 0 if item.get("channels_first") else None)  # or as before
        images.append(SessionImage(item["name"], scribbles, source, data, bool(item.get("rgb")),
                                   axis, list(item.get("complete", [])),
                                   item.get("regions")))
    return Session(images, classes, meta.get("settings", {}))


# -- autosaves -----------------------------------------------------------------------------------
def autosave_dir() -> Path:
    """Where the plugin autosaves a session the user has not saved elsewhere, one folder each."""
    return home() / "autosave"


@dataclass
class AutosaveEntry:
    path: Path
    modified: float  # last write anywhere in the folder, seconds since the epoch
    size: int  # bytes on disk
    images: list[str] = field(default_factory=list)
    labelled: int = 0  # scribbled pixels over all images
    has_model: bool = False
    error: str | None = None  # set when the folder is not a readable session

    def line(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.modified))
        head = f"{self.path.name}: last changed {when}, {self.size / 2**20:.1f} MiB"
        if self.error:
            return f"{head}; BROKEN ({self.error})"
        model = ", a model" if self.has_model else ""
        return f"{head}; {len(self.images)} image(s) ({', '.join(self.images)}), {self.labelled} labelled px{model}"


def describe_autosave(folder: Path) -> AutosaveEntry:
    """What ``frugalseg sessions`` shows of one autosave folder; never raises."""
    stats = [f.stat() for f in folder.rglob("*") if f.is_file()]
    entry = AutosaveEntry(folder, max([s.st_mtime for s in stats], default=folder.stat().st_mtime),
                          sum(s.st_size for s in stats))
    entry.has_model = Session.model_dir(folder).is_dir()
    try:
        entry.images = [str(item["name"]) for item in _read_index(folder)["images"]]
        entry.labelled = sum(int(np.count_nonzero(read_array(scribbles_path(folder, i))))
                             for i in range(len(entry.images)))
    except (OSError, ValueError, KeyError, TypeError, FrugalsegError) as exc:
        message = str(exc).replace(f"{folder}: ", "").replace(f"{folder}{os.sep}", "")
        entry.error = message or type(exc).__name__
    return entry


def list_autosaves() -> list[AutosaveEntry]:
    """The autosaved sessions, least recently changed first."""
    folder = autosave_dir()
    if not folder.is_dir():
        return []
    entries = [describe_autosave(p) for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(entries, key=lambda e: e.modified)


def remove_autosaves(older_than_days: float) -> list[AutosaveEntry]:
    """Delete the autosaved sessions unchanged for more than ``older_than_days``; returns them."""
    if not older_than_days >= 0:  # NaN too
        raise FrugalsegError(f"--remove-older-than {older_than_days:g}: give a number of days >= 0")
    cutoff = time.time() - older_than_days * 86400
    removed = [e for e in list_autosaves() if e.modified < cutoff]
    for entry in removed:
        shutil.rmtree(entry.path)
    return removed
