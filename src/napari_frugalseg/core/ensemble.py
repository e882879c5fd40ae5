"""Ensembles (after deepflash2): K members trained on the same labels with different seeds and
held-out stroke splits, predicted with their mean (``predict.Predictor`` takes a list).

``EnsembleTrainer`` has the interface of ``Trainer``; members train one after the other and
the budget of a run is for the whole ensemble. Running it again continues every member.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Generator, Sequence

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .device import available_bytes, resolve_device
from .errors import FrugalsegError
from .model import UNet, build_model
from .predict import Predictor
from .train import Trainer, TrainingData, TrainProgress


def check_ensemble_fits(config: ModelConfig, members: int, batch_size: int,
                        device: torch.device | str) -> None:
    """Raise before starting when K members and one training run will not fit in memory.

    A generous estimate: every member's weights and best copy, plus one training run
    (weights, their moving average, gradients, Adam moments, and about ten float maps per level
    and channel of a batch, forward and backward).
    """
    device = torch.device(device)
    params = sum(p.numel() for p in build_model(config).parameters())
    voxels = math.prod(config.patch_size)
    maps = sum(config.width * 2**level * voxels / 2 ** (level * config.ndim) * 10
               for level in range(config.depth + 1))
    need = 4 * (5 * params + batch_size * maps * 2) + 4 * params * members * 2
    free = available_bytes(device)
    if free is not None and need > 0.8 * free:
        what = f"an ensemble of {members} models" if members > 1 else "a model"
        patch = " x ".join(map(str, config.patch_size))
        raise FrugalsegError(
            f"{what} of width {config.width} training on {batch_size} patches of {patch} px needs "
            f"about {need / 2**30:.1f} GiB but {free / 2**30:.1f} GiB is free on {device}; use "
            f"{'fewer members, ' if members > 1 else ''}a smaller width, batch or patch size"
        )


class EnsembleTrainer:
    """Trains ``members`` models; member i uses seed ``seed + i`` (its own weights, patches
    and held-out strokes). ``models`` may give starting weights (e.g. a transferred model)."""

    def __init__(
        self,
        data: TrainingData,
        config: ModelConfig,
        train_config: TrainConfig,
        members: int,
        models: Sequence[UNet] | None = None,
    ):
        if members < 1:
            raise FrugalsegError("an ensemble needs at least one member")
        self.device = resolve_device(train_config.device)
        check_ensemble_fits(config, members, train_config.batch_for(config.ndim), self.device)
        self.data, self.train_config = data, train_config
        seed = train_config.seed or 0
        starts = list(models or [])
        self.trainers = []
        for i in range(members):
            start = starts[i] if i < len(starts) else (copy.deepcopy(starts[0]) if starts else None)
            tc = train_config.replace(seed=seed + i)
            self.trainers.append(Trainer(data, config, tc, start))  # seeded before it builds
        self.history: list[dict] = []
        self.preview_fn = None
        self.preview_every = 5.0
        self._current = self.trainers[0]
        self._stopped = False

    @property
    def models(self) -> list[UNet]:
        """The members trained so far (all of them before any training)."""
        trained = [t.model for t in self.trainers if t.step]
        return trained or [t.model for t in self.trainers]

    @property
    def model(self) -> UNet:
        return self.trainers[0].model

    @property
    def config(self) -> ModelConfig:
        """The members' configuration, with the mean of the class shares they lean towards
        (one ``class_prior`` is saved for all)."""
        config = self.trainers[0].config
        # members that have not trained far enough yet know no shares (the first trains first)
        leans = [t.config.class_prior for t in self.trainers if t.config.class_prior is not None]
        if len(leans) < 2:
            return config
        return config.replace(class_prior=tuple(float(v) for v in np.mean(leans, 0)))

    @property
    def predictor(self) -> Predictor:
        return Predictor(self.models, self.device)

    @property
    def step(self) -> int:
        return sum(t.step for t in self.trainers)

    @property
    def val_score(self) -> float | None:
        """Members' mean best held-out Dice (None without held-out strokes)."""
        scores = [t.val_score for t in self.trainers if t.val_score is not None]
        return sum(scores) / len(scores) if scores else None

    @property
    def kept_note(self) -> str:
        """A single model's ``Trainer.kept_note`` ("" for an ensemble)."""
        return self.trainers[0].kept_note if len(self.trainers) == 1 else ""

    @property
    def labels_in_use(self) -> int:
        return self._current.labels_in_use

    def request_stop(self) -> None:
        self._stopped = True
        for t in self.trainers:
            t.request_stop()

    def run(self, max_steps: int | None = None, max_seconds: float | None = None
            ) -> Generator[TrainProgress, None, list[UNet]]:
        """Train each member in turn with 1/K of the budget; yields progress (``member`` set)."""
        tc = self.train_config
        if max_steps is None and max_seconds is None:
            max_steps, max_seconds = tc.max_steps, tc.max_seconds
        k = len(self.trainers)
        seconds = max_seconds / k if max_seconds else None
        self._stopped = False
        for i, trainer in enumerate(self.trainers):
            if self._stopped:
                break
            self._current = trainer
            trainer.preview_fn, trainer.preview_every = self.preview_fn, self.preview_every
            # the steps split as evenly as they go (at least one each)
            steps = max(1, max_steps // k + (i < max_steps % k)) if max_steps else None
            run = trainer.run(steps, seconds)
            try:
                for progress in run:
                    progress.member = i
                    self.history.append(progress.record())
                    yield progress
            finally:
                run.close()  # restores the member's best weights
        return self.models

    def release(self) -> list[UNet]:
        return [t.release() for t in self.trainers]
