"""Which weights a training run keeps: chosen on a running mean of held-out scores, the latest
among those within a slack of the best (``TrainConfig.checkpoint_slack``)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


class Checkpoints:
    """The checkpoint a run keeps, and the running mean of validation scores it is chosen on.

    A few held-out strokes make single scores noisy (+-0.1 from one validation to the next in
    the plugin's loop), and early in training a model that draws membranes too thin can still
    score high on their centre lines (``benchmarks/checkpoint_choice.py``). So each new score
    weighs ``score_weight``, the mean is normalised by the weights it holds (a first score
    does not count in full), and nothing is kept before ``min_validations`` scores.
    """

    score_weight = 0.25  # weight of the newest validation in the running mean
    min_validations = 3  # validations on the current labels before a checkpoint is kept

    def __init__(self, slack: float):
        self.slack = slack
        self.checked_step = 0  # the step of the last candidate (validation)
        self.reset()

    def reset(self) -> None:
        """Forget scores and checkpoint: the yardstick (the held-out strokes) changed."""
        self.best_score = -math.inf  # best smoothed validation score (or -loss) of the run
        self.kept_score = -math.inf  # that of the checkpoint kept
        self.state: dict[str, torch.Tensor] | None = None  # its weights, on the CPU
        self.kept_step: int | None = None
        self.prior: tuple[float, ...] | None = None  # the class shares they lean towards
        self._scores = (0.0, 0.0, 0)  # running mean of the validation scores: sum, weight, count

    @property
    def smoothed(self) -> float | None:
        """Running mean of the held-out scores so far: what checkpoints are chosen on."""
        total, weight, _ = self._scores
        return total / weight if weight else None

    def _smooth(self, val: float) -> float | None:
        """Add a score; the running mean, or None before ``min_validations`` scores."""
        a = self.score_weight
        total, weight, count = self._scores
        self._scores = ((1 - a) * total + a * val, (1 - a) * weight + a, count + 1)
        return self.smoothed if count + 1 >= self.min_validations else None

    def offer(self, step: int, val: float | None, loss: float,
              weights: Callable[[], dict[str, torch.Tensor]],
              prior: tuple[float, ...] | None = None) -> bool:
        """A candidate at ``step`` with held-out score ``val`` (None without held-out strokes:
        the smoothed ``loss`` decides, no slack); keeps ``weights()`` and the class shares
        measured for them, ``prior``, if it wins."""
        self.checked_step = step
        score = self._smooth(val) if val is not None else -loss
        slack = self.slack if val is not None else 0.0
        if score is None or score < self.best_score - slack:
            return False
        self.best_score, self.kept_score, self.kept_step = max(score, self.best_score), score, step
        self.state = {k: v.detach().to("cpu", copy=True) for k, v in weights().items()}
        self.prior = prior
        return True

    def note(self) -> str:
        """For a status line: "; kept the weights of step N (...)" when later candidates were
        passed over for an earlier one, else ""."""
        if self.kept_step is None or self.kept_step >= self.checked_step:
            return ""
        return f"; kept the weights of step {self.kept_step} (best on held-out strokes)"
