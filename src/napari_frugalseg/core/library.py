"""The local model library: bundles the user saved, listed with what they are for.

A library entry is a bundle folder under ``library_dir()``; what is listed comes from its
``config.json`` (no weights are loaded). A broken entry is listed as broken with the reason.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from .bundle import bundle_files, read_meta
from .errors import FrugalsegError
from .io import atomic_dir


def home() -> Path:
    """frugalseg's own folder: autosaves and the model library (``FRUGALSEG_HOME`` overrides)."""
    return Path(os.environ.get("FRUGALSEG_HOME", Path.home() / ".frugalseg"))


def library_dir() -> Path:
    return home() / "models"


@dataclass
class LibraryEntry:
    name: str
    path: Path
    classes: tuple[str, ...] = ()
    ndim: int = 0
    in_channels: int = 0
    members: int = 1
    data_shape: tuple[int, ...] | None = None
    created: str = ""
    val_score: float | None = None
    error: str | None = None  # set when the entry is broken

    def line(self) -> str:
        if self.error:
            return f"{self.name}: BROKEN ({self.error})"
        shape = "x".join(map(str, self.data_shape)) if self.data_shape else "?"
        score = f"{self.val_score:.3f}" if self.val_score is not None else "-"
        ens = f", ensemble of {self.members}" if self.members > 1 else ""
        return (f"{self.name}: {self.ndim}D, {self.in_channels} channel(s), classes "
                f"{', '.join(self.classes)}; data {shape}; {self.created}; val. Dice {score}{ens}")


def describe(path: Path) -> LibraryEntry:
    """What the library shows of one bundle folder; never raises."""
    try:
        meta, config = read_meta(path)
    except FrugalsegError as exc:
        return LibraryEntry(path.name, path, error=str(exc).removeprefix(f"{path}: "))
    info = meta.get("info") or {}
    shape = info.get("data_shape")
    score = info.get("val_score")
    return LibraryEntry(
        path.name, path, config.classes, config.ndim, config.in_channels,
        int(meta.get("members", 1)), tuple(shape) if shape else None,
        str(info.get("created", "")), float(score) if score is not None else None,
    )


def list_models(folder: Path | None = None) -> list[LibraryEntry]:
    folder = folder or library_dir()
    if not folder.is_dir():
        return []
    return [describe(p) for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]


def check_name(name: str) -> str:
    if not name or name.startswith(".") or any(c in name for c in '/\\:*?"<>|'):
        raise FrugalsegError(f"'{name}' cannot name a library model: use letters, digits, - and _")
    return name


def add_model(source: Path, name: str | None = None) -> Path:
    """Copy a bundle folder into the library (replacing an entry of the same name)."""
    read_meta(source)  # refuse what is not a bundle
    name = check_name(name or Path(source).name)
    return atomic_dir(library_dir() / name, lambda tmp: shutil.copytree(source, tmp, dirs_exist_ok=True),
                      replaces=bundle_files, what="model")


def resolve_model(spec: str | os.PathLike) -> Path:
    """A model folder given as a path, or as the name of a library entry."""
    path = Path(spec)
    if path.is_dir():
        return path
    entry = library_dir() / str(spec)
    if entry.is_dir() and str(spec) == path.name:
        return entry
    names = ", ".join(e.name for e in list_models()) or "the library is empty"
    raise FrugalsegError(f"{spec}: no model folder here and no library model of that name ({names})")
