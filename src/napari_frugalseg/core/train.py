"""Training as a generator: yields progress each step, stops at the next step when asked.

``TrainingData`` holds the images and their labels; labels can change while a ``Trainer``
runs (new strokes in the GUI) and are picked up at the next step without a restart. Whole
strokes are held out for validation; the best weights (``checkpoints.py``) are kept and restored
at the end. What is validated, previewed and kept is a moving
average of the trained weights (``TrainConfig.average_decay``).
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .device import autocast_dtype, resolve_device
from .errors import FrugalsegError
from .labels import split_strokes
from .checkpoints import Checkpoints
from .deep_supervision import DeepSupervision
from .losses import affinity_loss, allowed_table, partial_loss
from .model import UNet, build_model
from .predict import Predictor
from .priors import MIN_STEPS, every_class_held_out, labelled_prior, model_lean
from .sampling import PatchSampler, Sample, model_samples, percentile_normalize
from .validation import held_out_patches, held_out_score


@dataclass
class TrainProgress:
    step: int
    loss: float
    lr: float
    val_score: float | None
    seconds: float
    improved: bool = False
    preview: Any = None
    member: int = 0  # ensemble member being trained

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("preview")
        return d


class TrainingData:
    """Normalised images (C, *spatial) and their labels, safe to update from another thread.

    Labels are 0 (unlabelled) and 1..K; with ``partial_sets`` also K+i for pixels known to
    belong to one of the classes ``partial_sets[i-1]`` (see ``losses.allowed_table``).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        percentiles: Sequence[float] = (1.0, 99.8),
        partial_sets: Sequence[Sequence[int]] = (),
        weights: Sequence[np.ndarray] | None = None,
    ):
        if len(images) != len(labels):
            raise FrugalsegError(f"{len(images)} image(s) but {len(labels)} label image(s)")
        self.images = [percentile_normalize(im, percentiles) for im in images]
        self._labels = [np.asarray(lab, np.int32) for lab in labels]
        self._lock = threading.Lock()
        self.version = 0
        # label value K+i means "one of the classes partial_sets[i-1]" (partial-class labels)
        self.partial_sets = [list(c) for c in partial_sets]
        # per-pixel loss weights (e.g. annotator agreement), one array per image, or None
        self.weights = list(weights) if weights is not None else [None] * len(self.images)

    @property
    def has_weights(self) -> bool:
        return any(w is not None for w in self.weights)

    def set_labels(self, index: int, labels: np.ndarray) -> None:
        """Replace the labels of image ``index`` (e.g. after a new stroke)."""
        labels = np.array(labels, np.int32, copy=True)
        with self._lock:
            self._labels[index] = labels
            self.version += 1

    def snapshot(self) -> tuple[int, list[np.ndarray]]:
        with self._lock:
            return self.version, list(self._labels)


def _seed_everything(seed: int | None) -> np.random.Generator:
    if seed is not None:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def objective(
    logits: torch.Tensor, labels: torch.Tensor, image: torch.Tensor, tc: TrainConfig,
    allowed: torch.Tensor | None = None, weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss a Trainer minimises on a batch: the label part (``partial_loss``) plus the
    affinity term on the normalised ``image`` where pixels are unlabelled."""
    loss = partial_loss(logits, labels, tc.ce_weight, tc.dice_weight, allowed, tc.exclusion_weight,
                        weights, tc.robust_q)
    if tc.affinity_weight and bool((labels == 0).any()):  # the term is zero without such pixels
        loss = loss + tc.affinity_weight * affinity_loss(logits, image, labels)
    return loss


class Trainer:
    """Trains (or continues to train) a model on ``TrainingData``.

    Call ``run()`` and iterate; ``request_stop()`` (any thread) ends it at the next step.
    ``run()`` may be called again to continue from the current weights and optimizer.
    """

    def __init__(
        self,
        data: TrainingData,
        config: ModelConfig,
        train_config: TrainConfig,
        model: UNet | None = None,
    ):
        self.data = data
        self.config = config
        self.train_config = train_config
        self.device = resolve_device(train_config.device)
        self.rng = _seed_everything(train_config.seed)
        self.model = (model if model is not None else build_model(config)).to(self.device)
        self._from_scratch = model is None  # no class-share correction before MIN_STEPS
        # the moving average of the weights (the model itself without averaging)
        self.average = copy.deepcopy(self.model) if train_config.average_decay else self.model
        self.deep = DeepSupervision(self.model, config.n_classes, train_config.deep_supervision).to(self.device)
        self.optimizer = torch.optim.AdamW(
            [*self.model.parameters(), *self.deep.parameters()],
            lr=train_config.learning_rate,
            weight_decay=train_config.weight_decay,
        )
        self.amp_dtype = (autocast_dtype(self.device, config.ndim)
                          if train_config.mixed_precision else None)
        # float16 needs its gradients scaled; bfloat16 has float32's range
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None
        self.predictor = Predictor(self.average, self.device)  # validation and previews
        self.history: list[dict[str, Any]] = []
        self.step = 0
        self.checkpoints = Checkpoints(train_config.checkpoint_slack)
        self.preview_fn: Callable[[Predictor], Any] | None = None
        self.preview_every: float = 5.0
        self._stop = threading.Event()
        self._version = -1
        sets = data.partial_sets
        self.allowed = allowed_table(config.n_classes, sets) if sets else None
        self.sampler: PatchSampler | None = None
        self.val_batches: list[tuple[np.ndarray, np.ndarray]] = []
        self._shares: tuple[float, ...] | None = None  # the class shares of the strokes

    # -- control ---------------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    @property
    def labels_in_use(self) -> int:
        """The ``TrainingData.version`` the current sampler was built from."""
        return self._version

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    @property
    def val_score(self) -> float | None:
        """Smoothed mean Dice on held-out strokes of the checkpoint kept (None without
        held-out strokes)."""
        kept = self.checkpoints.kept_score
        return kept if self.val_batches and kept > -math.inf else None

    @property
    def kept_note(self) -> str:
        """"; kept the weights of step N (...)" when earlier weights than the last candidate's
        were kept, else "" (for a status line)."""
        return self.checkpoints.note()

    # -- data ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        """Rebuild sampler and validation set from the current labels."""
        version, labels = self.data.snapshot()
        k = self.config.n_classes
        top = k + len(self.data.partial_sets)
        for i, lab in enumerate(labels):
            if lab.size and lab.max() > top:
                raise FrugalsegError(
                    f"labels of image {i + 1} use class {lab.max()}, but the model has {k} "
                    f"classes ({', '.join(self.config.classes)})"
                )
        tc = self.train_config
        train_labels, val_labels = split_strokes(labels, tc.val_fraction, salt=tc.seed or 0)
        samples: list[Sample] = []
        val_samples: list[Sample] = []
        for image, lab, val, w in zip(self.data.images, train_labels, val_labels, self.data.weights):
            samples += model_samples(image, lab, self.config.ndim, w)
            val_samples += model_samples(image, val, self.config.ndim)
        samples = [s for s in samples if s.labels.any()]
        if not samples:
            raise FrugalsegError("no labelled pixel to train on: draw a few strokes first")
        self.sampler = PatchSampler(
            samples,
            self.config.patch_size,
            self.rng,
            k,
            augment=tc.augment,
            intensity_jitter=tc.intensity_jitter,
            elastic=tc.elastic,
            scale_jitter=tc.scale_jitter,
        )
        self.val_batches = held_out_patches([s for s in val_samples if s.labels.any()],
                                            k, self.config.patch_size)
        # the strokes' class shares, from which validation measures what the model leans
        # towards (predictions correct for it, priors.py); only where every class has held-out
        # strokes to measure it on, and not with partial-class labels, whose "one of these"
        # regions carry the image's shares
        measurable = not self.data.partial_sets and every_class_held_out(self._held_out_labels, k)
        self._shares = labelled_prior(labels, k) if measurable else None
        self._set_prior(self._shares)  # until validation measures
        self._version = version
        self.checkpoints.reset()  # the yardstick changed

    # -- training --------------------------------------------------------------------------
    @torch.no_grad()
    def _update_average(self, steps: int) -> None:
        """Move the average towards the trained weights; ``steps`` of this run so far set a
        shorter memory at first, so that the average does not drag the random start along."""
        if self.average is self.model:
            return
        decay = min(self.train_config.average_decay, (1 + steps) / (10 + steps))
        trained = self.model.state_dict()
        for name, value in self.average.state_dict().items():
            if value.dtype.is_floating_point:
                value.lerp_(trained[name], 1.0 - decay)
            else:
                value.copy_(trained[name])

    def _predict_held_out(self, step: int | None = None) -> list[np.ndarray]:
        """The weights' (of ``step``, by default the current one) probabilities on the held-out
        stroke patches; records what the weights lean towards (``config.class_prior``,
        priors.model_lean)."""
        probs = self.predictor.many([image for image, _ in self.val_batches])
        if self._shares is not None and probs:
            self._set_prior(model_lean(probs, self._held_out_labels, self._shares), step)
        return probs

    @property
    def _held_out_labels(self) -> list[np.ndarray]:
        return [labels for _, labels in self.val_batches]

    def _early(self, step: int) -> bool:
        """Weights of ``step`` trained from scratch for fewer than ``priors.MIN_STEPS`` steps:
        no class-share correction for them."""
        return self._from_scratch and step < MIN_STEPS

    def _set_prior(self, prior: tuple[float, ...] | None, step: int | None = None) -> None:
        """Record the class shares predictions correct from (none for ``_early`` weights)."""
        early = self._early(self.step if step is None else step)
        self.config = self.config.replace(class_prior=None if early else prior)

    def validate(self) -> float | None:
        """Mean Dice on held-out strokes over the classes that have some, held-out "one of
        these" regions counting against classes they exclude (``validation.py``), or None
        without held-out strokes."""
        if not self.val_batches:
            return None
        allowed = None if self.allowed is None else self.allowed.numpy()
        return held_out_score(self._predict_held_out(), self._held_out_labels, self.config.n_classes, allowed)

    def _lr(self, fraction: float) -> float:
        """Cosine decay to 10 % over the run's budget."""
        base = self.train_config.learning_rate
        return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0))))

    def _train_step(self, lr: float) -> float:
        x, y, w = self.sampler.draw(self.train_config.batch_for(self.config.ndim))
        x = torch.from_numpy(x).to(self.device)
        y = torch.from_numpy(y).to(self.device)
        weights = torch.from_numpy(w).to(self.device) if self.data.has_weights else None
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        tc = self.train_config
        amp = self.amp_dtype is not None
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=amp), self.deep.capture():
            logits = self.model(x)
        loss = objective(logits, y, x, tc, self.allowed, weights)
        loss = loss + self.deep.loss(y, self.allowed, weights, tc.robust_q)
        if not torch.isfinite(loss):
            raise FrugalsegError("training diverged (loss is not finite); try a lower learning rate")
        if self.scaler:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def run(
        self, max_steps: int | None = None, max_seconds: float | None = None
    ) -> Generator[TrainProgress, None, UNet]:
        """Train until the budget is spent or a stop is requested; returns the (best) model.

        Without arguments the budget of the TrainConfig applies. Whatever ends the loop
        (budget, stop, an exception, closing the generator), the kept weights are restored.
        """
        tc = self.train_config
        if max_steps is None and max_seconds is None:
            max_steps, max_seconds = tc.max_steps, tc.max_seconds
        self._stop.clear()
        self.average.load_state_dict(self.model.state_dict())
        start, first_step = time.perf_counter(), self.step
        last_preview = -math.inf
        ema = None
        try:
            while not self._stop.is_set():
                elapsed = time.perf_counter() - start
                done = self.step - first_step
                fractions = [done / max_steps if max_steps else 0.0]
                fractions.append(elapsed / max_seconds if max_seconds else 0.0)
                if max(fractions) >= 1.0:
                    break
                if self.data.version != self._version:
                    self._refresh()
                lr = self._lr(max(fractions))
                loss = self._train_step(lr)
                self.step += 1
                self._update_average(done + 1)
                ema = loss if ema is None else 0.9 * ema + 0.1 * loss
                val, improved = None, False
                end_now = (max_steps and done + 1 >= max_steps)
                # a Stop asked during the step ends the run here: no validation, no preview
                # (each ~1-2 s for a 3D net on a CPU, which the user would wait for)
                stopping = self._stop.is_set()
                if not stopping and (self.step % tc.val_every == 0 or end_now):
                    val = self.validate()
                    improved = self.checkpoints.offer(self.step, val, ema, self.average.state_dict,
                                                      self.config.class_prior)
                progress = TrainProgress(
                    self.step, loss, lr, val, time.perf_counter() - start, improved
                )
                self.history.append(progress.record())
                now = time.perf_counter()
                if self.preview_fn is not None and not stopping and now - last_preview >= self.preview_every:
                    progress.preview = self.preview_fn(self.predictor)
                    last_preview = time.perf_counter()
                yield progress
        finally:
            self.restore_best()
            self.model.eval()
        return self.model

    def release(self) -> UNet:
        """Free what this run holds on the device (optimizer state, cached blocks); the model
        moves to the CPU and is returned, ready to warm-start a later Trainer."""
        self.optimizer.state.clear()
        self.checkpoints.state = None
        if self.scaler is not None:  # its scale lives on the GPU
            self.scaler = torch.amp.GradScaler("cuda")
        model = self.model.cpu()
        self.deep.cpu()
        self.average, self.predictor = model, Predictor(model)
        if self.device.type == "cuda":
            # cuBLAS keeps a workspace per thread that empty_cache() does not return
            getattr(torch._C, "_cuda_clearCublasWorkspaces", lambda: None)()
            torch.cuda.empty_cache()
        return model

    def kept_state(self) -> dict[str, torch.Tensor]:
        """The weights a stop now restores: the latest within ``checkpoint_slack`` of the best
        smoothed validation score, else those of the best smoothed loss; before any checkpoint,
        the average so far."""
        kept = self.checkpoints.state
        return kept if kept is not None else self.average.state_dict()

    def restore_best(self) -> None:
        """Put the kept weights (``kept_state``) back."""
        state = self.kept_state()
        self.model.load_state_dict(state)
        if self.average is not self.model:
            self.average.load_state_dict(state)
        step = self.checkpoints.kept_step or self.step  # of the weights restored
        if not self.val_batches or self._early(step):
            self._set_prior(self._shares, step)  # nothing to measure, or nothing to correct
        elif self.checkpoints.state is not None:
            self._set_prior(self.checkpoints.prior, step)  # measured when they were validated
        else:
            self._predict_held_out(step)  # the class shares these weights lean towards
