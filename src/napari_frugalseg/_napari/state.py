"""The plugin's state records and the helpers its worker threads use."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..core.labels import default_class_names


class TrainState(str, Enum):
    IDLE = "idle"
    TRAINING = "training"
    STOPPING = "stopping"
    PREDICTING = "predicting"
    READING = "reading"  # a model or session being read from disk


@dataclass
class ClassSpec:
    name: str
    color: str


PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3",
           "#8c8c8c", "#ccb974", "#64b5cd"]


def default_classes() -> list[ClassSpec]:
    return [ClassSpec("background", PALETTE[0]), ClassSpec("foreground", PALETTE[1])]


def new_class(value: int) -> ClassSpec:
    """The table row added for class ``value`` (1-based) before the user names it."""
    return ClassSpec(default_class_names(value)[-1], PALETTE[(value - 1) % len(PALETTE)])


@dataclass
class View:
    """What is on screen: which image, which slice, which in-plane field; in napari's 3D view,
    ``depth`` slices from ``z`` on."""

    image: str
    z: int | None
    box: tuple[slice, slice]
    depth: int = 1


@dataclass
class Preview:
    view: View
    classes: np.ndarray
    uncertainty: np.ndarray


def warm_up_torch() -> None:
    """Import torch's optimizer machinery (over 2 s of imports on first use) in the
    background when the plugin opens, so that pressing Train does not freeze napari. Not a
    daemon: an interpreter that exits meanwhile waits for it (at most those seconds) rather
    than tearing torch down in the middle of its imports, which printed a RuntimeError."""

    def load():
        import torch

        torch.optim.AdamW(torch.nn.Linear(1, 1).parameters())

    threading.Thread(target=load, daemon=False, name="frugalseg-warm-up").start()


def background_priority() -> None:
    """Lower the calling worker thread's CPU priority (Linux), so napari's event loop gets a
    core at once even when training keeps every core busy. Torch's intra-op threads created
    from this thread inherit it."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass
