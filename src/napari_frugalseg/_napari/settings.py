"""The plugin's settings: napari's preferences (manifest ``configurations``) with defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..core.config import TrainConfig

PLUGIN = "napari-frugalseg"


@dataclass
class Settings:
    device: str = "auto"
    refresh_seconds: float = 3.0  # live overlay refresh while training
    patch_size: int = 64
    autosave: bool = True  # scribbles to the session folder after every stroke
    auto_continue: bool = True  # a stroke while idle starts a short continuation
    continue_seconds: float = 20.0
    train_seconds: float = 120.0
    ndim: int = 2  # 3 = a 3D model for stacks
    robust_q: float = 0.0  # > 0: noise-robust loss (generalized cross-entropy alone)
    scale_jitter: float = 0.0  # > 0: also train on zoomed patches (TrainConfig.scale_jitter)
    affinity_weight: float = TrainConfig.affinity_weight  # the edge term's weight
    ensemble: int = 1  # members trained together (one shared time budget)
    tta: bool = True  # predict all averages over test-time flips (as frugalseg predict)
    prior_correction: bool = True  # re-weight predictions to each image's class shares

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


def load_settings() -> Settings:
    """Values from napari's preferences where the user set them, else the defaults."""
    try:
        from napari.settings import get_plugin_settings

        group = get_plugin_settings(PLUGIN).frugalseg
    except Exception:  # settings store unavailable (e.g. not discovered): defaults
        return Settings()
    names = {f.name for f in dataclasses.fields(Settings)}
    values = {n: getattr(group, n) for n in names if hasattr(group, n)}
    return Settings(**values)
