"""Configuration as frozen dataclasses, saved beside every model as JSON."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from .. import __version__


def _from_dict(cls, data: dict[str, Any], what: str):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"{what} has unknown keys {unknown}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**kwargs)


@dataclass(frozen=True)
class ModelConfig:
    """What a model expects and how it is built.

    ``classes`` names the label values 1..K in order (value k is ``classes[k-1]``).
    """

    classes: tuple[str, ...]
    in_channels: int = 1
    ndim: int = 2
    width: int = 16
    depth: int = 3
    anisotropic_levels: int = 0
    norm_percentiles: tuple[float, float] = (1.0, 99.8)
    patch_size: tuple[int, ...] = (64, 64)
    # share of each class among the labelled pixels the model learned from (set by the
    # Trainer); predictions re-weight each image's probabilities to its own shares (priors.py)
    class_prior: tuple[float, ...] | None = None
    version: str = __version__

    def __post_init__(self):
        if len(self.classes) < 2:
            raise ValueError("a model needs at least two classes")
        if self.ndim not in (2, 3):
            raise ValueError(f"ndim must be 2 or 3, not {self.ndim}")
        if len(self.patch_size) != self.ndim:
            raise ValueError(f"patch_size {self.patch_size} does not have {self.ndim} axes")
        if self.in_channels < 1 or self.width < 1 or self.depth < 1:
            raise ValueError("in_channels, width and depth must each be at least 1")
        if min(self.patch_size) < 1 or min(self.patch_size[-2:]) < 2**self.depth:
            raise ValueError(f"patches of {self.patch_size} px are too small for {self.depth} poolings "
                             f"(depth): they need at least {2**self.depth} px in-plane; use larger "
                             f"patches or a smaller depth")
        if self.class_prior is not None and len(self.class_prior) != len(self.classes):
            raise ValueError(f"class_prior has {len(self.class_prior)} values for {len(self.classes)} classes")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        return _from_dict(cls, data, "model config")


# scale jitter for images of varied magnification or kind (README, Label conventions: it
# steadied DSB 2018's odd images and cost on electron micrographs of one pixel size)
SCALE_JITTER = 0.3
# q of the noise-robust loss where masks are noisy (README, Imperfect-label benchmarks)
ROBUST_Q = 0.7
# weight of the edge term where hand-drawn strokes should spread to the image's edges (README,
# Real scribbles: it lifted the blobs' hand-drawn strokes, cost on skeleton strokes of EM)
EDGE_AFFINITY = 1.0

# default patches per training step: 32 of 64 x 64 px for a 2D model, 8 of 16 x 48 x 48 in 3D
BATCH_SIZE = {2: 32, 3: 8}


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. A budget of ``None`` means unlimited on that axis."""

    max_steps: int | None = None
    max_seconds: float | None = 120.0
    # patches per step; None: BATCH_SIZE of the model's ndim (many small 2D patches see more
    # strokes per step than a few large ones: benchmarks/label_efficiency.py --patch --batch-size)
    batch_size: int | None = None
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    ce_weight: float = 1.0
    dice_weight: float = 1.0
    exclusion_weight: float = 0.0  # partial-class labels only
    robust_q: float = 0.0  # > 0: generalized cross-entropy alone, for noisy labels (ROBUST_Q typical)
    # edge-aware neighbour agreement reaching the unlabelled pixels (losses.affinity_loss;
    # 0 = off): carries strokes to the image's edges (benchmarks/real_scribbles.py)
    affinity_weight: float = 0.1
    # the cross-entropy also on the decoder's coarser levels, these weights from the second
    # finest up (deep_supervision.py; () = off): lifts DSB's skeleton-scribble Dice
    # (docs/benchmark-notes.md, Deep supervision)
    deep_supervision: tuple[float, ...] = (0.5, 0.25)
    val_fraction: float = 0.2
    val_every: int = 25
    # the checkpoint kept is the latest whose smoothed held-out score is within this of the
    # best: later weights (lower learning rate) generalise better than a few held-out strokes
    # can tell (benchmarks/checkpoint_choice.py)
    checkpoint_slack: float = 0.02
    # validation, previews and the kept checkpoint use an exponential moving average of the
    # trained weights with this decay (0 = the trained weights themselves): an early model's
    # class balance swings from step to step, and held-out strokes cannot see it
    # (benchmarks/weight_average.py)
    average_decay: float = 0.99
    seed: int | None = 0
    device: str = "auto"
    # forward passes in reduced precision where the device computes it fast
    # (device.autocast_dtype: float16 on CUDA, bfloat16 for 2D nets on CPUs with AVX512-BF16/AMX)
    mixed_precision: bool = True
    augment: bool = True
    elastic: bool = False
    intensity_jitter: float = 0.15
    # patches cut from regions up to (1 + scale_jitter) times larger or smaller in-plane and
    # resized to the patch (0 = off; SCALE_JITTER where images differ in magnification)
    scale_jitter: float = 0.0

    def __post_init__(self):
        if self.max_steps is None and self.max_seconds is None:
            raise ValueError("give a budget: max_steps, max_seconds or both")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if self.max_seconds is not None and not self.max_seconds > 0:  # NaN too
            raise ValueError("max_seconds must be positive")
        if self.seed is not None and self.seed < 0:
            raise ValueError("seed must be a whole number >= 0")
        if not 0 < self.learning_rate < math.inf:
            raise ValueError("learning_rate must be positive")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if not 0.0 <= self.robust_q <= 1.0:
            raise ValueError("robust_q must be in [0, 1] (0 = plain cross-entropy)")
        for name in ("affinity_weight", "exclusion_weight"):
            if not 0 <= getattr(self, name) < math.inf:
                raise ValueError(f"{name} must be a number >= 0 (0 = off)")
        if not all(0 <= w < math.inf for w in self.deep_supervision):
            raise ValueError("deep_supervision weights must be numbers >= 0")
        if not 0.0 <= self.checkpoint_slack <= 1.0:
            raise ValueError("checkpoint_slack must be in [0, 1] (0 = the best score only, 1 = the latest)")
        if not 0.0 <= self.average_decay < 1.0:
            raise ValueError("average_decay must be in [0, 1) (0 = no averaging)")
        if not 0.0 <= self.scale_jitter < 1.0:
            raise ValueError("scale_jitter must be in [0, 1) (0 = patches at the image's scale)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1)")

    def batch_for(self, ndim: int) -> int:
        """Patches per step for a model of ``ndim`` spatial axes."""
        return self.batch_size or BATCH_SIZE[ndim]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        return _from_dict(cls, data, "train config")

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def continued(self) -> "TrainConfig":
        """For more training of a model that has learned this task already (new strokes,
        Train again): a quarter of the learning rate, so that a fresh optimizer refines the
        model instead of shaking it (not for a model from another task: see ``transfer``)."""
        return self.replace(learning_rate=self.learning_rate / 4)


def new_model_config(
    classes: tuple[str, ...],
    in_channels: int,
    ndim: int,
    depth_of_stacks: int | None = None,
    patch: int | None = None,
    width: int = 16,
    depth: int = 3,
) -> ModelConfig:
    """The default model for fresh training: 64 px 2D patches, or 48 px x up to 16 slices in 3D.

    ``depth_of_stacks`` is the smallest number of slices among the training stacks (3D only).
    """
    if patch is None:
        patch = ModelConfig.patch_size[0] if ndim == 2 else 48
    if ndim == 3:
        patch_size: tuple[int, ...] = (min(16, depth_of_stacks or 16), patch, patch)
    else:
        patch_size = (patch, patch)
    return ModelConfig(
        classes=tuple(classes),
        in_channels=in_channels,
        ndim=ndim,
        width=width,
        depth=depth,
        anisotropic_levels=1 if ndim == 3 else 0,
        patch_size=patch_size,
    )
