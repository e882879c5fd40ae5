"""Per-viewer state and the interactive loop: scribbles in, training in a worker, overlays out.

The controller is the only place where layers meet the core. Layers are read and written on
the GUI thread only; training and prediction run in thread workers (``workers.py``) whose
results come back through Qt signals. State is explicit (``TrainState``) and lives on the
controller, one per viewer.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from napari.layers import Image, Labels
from napari.utils.notifications import show_error, show_info, show_warning
from psygnal import Signal

from ..core.config import ModelConfig, TrainConfig
from ..core.device import resolve_device
from ..core.ensemble import EnsembleTrainer, check_ensemble_fits
from ..core.errors import FrugalsegError
from ..core.labels import check_training_labels
from ..core.model import UNet
from ..core.predict import Prediction, predict_view
from ..core.train import TrainingData, TrainProgress
from . import layers as L
from . import overlays, persistence, training_inputs
from .edits import EditWatcher
from .settings import Settings, load_settings
from .state import (
    ClassSpec, Preview, TrainState, View, background_priority, default_classes, warm_up_torch,
)
from .workers import WorkFailed, read_in_background, start_worker


class Controller:
    """One per viewer. Signals are emitted on the GUI thread."""

    state_changed = Signal(str)
    progress = Signal(object)  # TrainProgress
    predict_progress = Signal(int, int)
    message = Signal(str)
    classes_changed = Signal()
    image_renamed = Signal(str, str)  # old name, new name
    model_changed = Signal()
    preview_shown = Signal(float)  # perf_counter() when a preview reached the layer
    strokes_used = Signal(float)  # perf_counter() when training picked up new strokes

    def __init__(self, viewer, settings: Settings | None = None):
        self.viewer = viewer
        self.settings = settings or load_settings()
        self.classes: list[ClassSpec] = default_classes()
        self.models: list[UNet] = []  # one model, or the members of an ensemble
        self.config: ModelConfig | None = None
        self.history: list[dict] = []
        self.val_score: float | None = None  # of the last training run
        self.state = TrainState.IDLE
        self.device = "-"
        self.image: Image | None = None
        self.show_uncertainty = False
        self.session_dir: Path | None = None
        self.trainer: EnsembleTrainer | None = None
        self.attached = True  # a panel shows this controller (False while it is closed)
        self._train_names: list[str] = []
        self._worker = None
        self._readers: set = set()  # files being read (read_then)
        self._stop = threading.Event()
        self._view: View | None = None
        self.edits = EditWatcher(self._labels_settled)
        self._names: dict[int, str] = {}  # image layers whose renames we follow: id -> name
        viewer.layers.events.inserted.connect(self._follow_renames)
        self._follow_renames()
        warm_up_torch()

    def change_settings(self, **changes) -> None:
        """Use the settings with ``changes`` made (Settings are frozen: replaced, not edited)."""
        self.settings = self.settings.replace(**changes)

    @property
    def model(self) -> UNet | None:
        return self.models[0] if self.models else None

    # -- layers ----------------------------------------------------------------------------
    @property
    def colors(self) -> list[str]:
        return [c.color for c in self.classes]

    def image_layers(self) -> list[Image]:
        return [layer for layer in self.viewer.layers if isinstance(layer, Image)
                and layer.metadata.get("role") is None]

    def select_image(self, image: Image | None, scribbles: Labels | None = None) -> Labels | None:
        """Make ``image`` current (or, where its file declares a channel axis, the layer that
        reads it so: ``declared_reading``); use ``scribbles`` or its own scribble layer (created)."""
        if image is not None:
            image = self.declared_reading(image)
            L.check_fits_in_memory(image)
        self.image = image
        if image is None:
            return None
        if scribbles is not None:
            L.check_shape(image, scribbles)
            for layer in self.viewer.layers:  # one scribble layer per image: unlink others
                if layer.metadata.get(L.META) == image.name and layer.metadata.get("role") == "scribbles":
                    layer.metadata["role"] = None
            scribbles.metadata.update({L.META: image.name, "role": "scribbles"})
        layer = L.ensure_labels(self.viewer, image, "scribbles", self.colors)
        self.edits.watch(layer)
        overlays.make_overlays(self, image)
        self.viewer.layers.selection.active = layer
        self.update_view()
        return layer

    def declared_reading(self, image: Image) -> Image:
        """``image`` or the layer that reads it by the channel axis its file declares
        (``layers.declared_reading``), which is said."""
        read, axis = L.declared_reading(self.viewer, image)
        if axis is not None:
            self.say(f"layer '{image.name}': its file declares channels on axis {axis}, read so"
                     + (f" in layer '{read.name}'" if read is not image else ""))
        return read

    def _follow_renames(self, event=None) -> None:
        for layer in self.image_layers():
            if id(layer) not in self._names:
                self._names[id(layer)] = layer.name
                layer.events.name.connect(lambda e, lay=layer: self._image_renamed(lay))

    def _image_renamed(self, image: Image) -> None:
        """Our layers are linked to their image by its name: relink them (and rename those
        that carry the image's name), so scribbles, overlays and a running training follow."""
        old, new = self._names[id(image)], image.name
        self._names[id(image)] = new
        L.relink(self.viewer, old, new)
        self._train_names = [new if n == old else n for n in self._train_names]
        if self._view is not None and self._view.image == old:
            self._view = dataclasses.replace(self._view, image=new)
        self.edits.renamed(old, new)
        self.image_renamed.emit(old, new)

    def scribbles(self, image: Image) -> Labels | None:
        layer = L.find(self.viewer, image, "scribbles")
        return layer if isinstance(layer, Labels) else None

    def set_classes(self, classes: list[ClassSpec]) -> None:
        self.classes = list(classes)
        coloured = ("scribbles", "prediction", "consensus")
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and layer.metadata.get("role") in coloured:
                L.set_colors(layer, self.colors)
        self.classes_changed.emit()

    def update_view(self) -> None:
        """Note what is on screen (call on slice or camera changes)."""
        if self.image is not None and self.image in self.viewer.layers:
            self._view = overlays.view_on_screen(self.image, self.viewer)

    def forget_edits(self) -> None:
        """Drop label changes not yet handled (e.g. scribbles restored from disk)."""
        self.edits.forget()

    def _labels_settled(self, names: set[str]) -> None:
        """New strokes on these images: into the running training, autosaved, and (a setting)
        a short continuation when idle."""
        for name in names:
            if name not in self.viewer.layers:
                continue
            image = self.viewer.layers[name]
            layer = self.scribbles(image)
            if layer is None:
                continue
            running = self.trainer is not None and name in self._train_names
            if running and not training_inputs.into_running(self, self._train_names.index(name), layer):
                continue
            if self.settings.autosave:
                persistence.autosave(self, image)
        idle_with_model = self.state == TrainState.IDLE and self.model is not None
        if names and idle_with_model and self.settings.auto_continue and self.attached:
            self.train(self.settings.continue_seconds, quiet=True)

    # -- training --------------------------------------------------------------------------
    def train(self, seconds: float | None = None, quiet: bool = False) -> bool:
        """Start (or continue) training in the background. False, with a message, if not."""
        if not self._idle():
            return False
        try:
            job = self._training_job(seconds or self.settings.train_seconds)
        except FrugalsegError as exc:
            if quiet:
                self.say(str(exc))
            else:
                self.fail(exc)
            return False
        self._start(job, TrainState.TRAINING, self._training_done)
        return True

    def _training_job(self, seconds: float):
        sets: list[list[int]] = []
        names, images, labels, weights = training_inputs.gather(self, sets)
        check_training_labels(labels, [f"layer '{n}{L.SUFFIX['scribbles']}'" for n in names])
        config = training_inputs.model_config(self, images)
        chosen = ("device", "robust_q", "scale_jitter", "affinity_weight")  # by the user
        tc = TrainConfig(max_seconds=seconds, val_every=10, **{k: getattr(self.settings, k) for k in chosen})
        models = list(self.models)
        same_head = self.config is not None and self.config.n_classes == config.n_classes
        if models and self.history and same_head:  # trained here before, on these classes
            tc = tc.continued()
        check_ensemble_fits(config, self.settings.ensemble, tc.batch_for(config.ndim), resolve_device(tc.device))
        self.update_view()
        self._stop.clear()
        self._train_names = names

        def job():
            background_priority()
            data = TrainingData(images, labels, config.norm_percentiles, sets, weights)
            trainer = EnsembleTrainer(data, config, tc, self.settings.ensemble, models)
            trainer.preview_fn = lambda predictor: self._preview(trainer, predictor)
            trainer.preview_every = self.settings.refresh_seconds
            self.trainer = trainer
            ended_by = ""
            try:
                for progress in trainer.run(max_seconds=seconds):
                    yield progress
                    if self._stop.is_set():
                        trainer.request_stop()
            except FrugalsegError as exc:  # e.g. every stroke erased during the run
                if trainer.step == 0:
                    raise
                ended_by = f"; stopped: {exc}"  # the steps trained so far are kept
            finally:
                trainer.release()
            return trainer, ended_by

        self.device = str(resolve_device(tc.device))
        return job

    def _preview(self, trainer: EnsembleTrainer, predictor) -> Preview | None:
        """Runs on the training thread: predict what is on screen."""
        view = self._view
        if view is None or view.image not in self._train_names:
            return None
        image = trainer.data.images[self._train_names.index(view.image)]
        classes, unc = predict_view(predictor, trainer.config, image, view.z, view.box,
                                    prior_correction=self.settings.prior_correction, depth=view.depth)
        return Preview(view, classes, unc)

    def stop(self) -> None:
        """Ask the running work to end at its next step (training keeps its best model)."""
        if self.state == TrainState.TRAINING:
            self._stop.set()
            if self.trainer is not None:
                self.trainer.request_stop()
            self._set_state(TrainState.STOPPING)
        elif self.state == TrainState.PREDICTING and self._worker is not None:
            self._stop.set()
            self._worker.quit()

    def detach(self) -> None:
        """The panel closed: stop the work (training keeps its model) and start none unseen;
        strokes are still autosaved. The next panel of this viewer attaches again."""
        self.attached = False
        self.stop()

    def _on_progress(self, p: TrainProgress) -> None:
        self.progress.emit(p)
        if p.preview is not None:
            overlays.show_preview(self, p.preview)

    def _training_done(self, result: tuple[EnsembleTrainer, str] | None) -> None:
        if result is None or result[0].step == 0:
            return
        trainer, ended_by = result
        self.models, self.config = trainer.models, trainer.config
        self.history += trainer.history
        self.val_score = score = trainer.val_score
        best = f", held-out Dice {score:.3f}" if score is not None else ""
        self.say(f"trained {trainer.step} steps on {trainer.device}{trainer.kept_note}{best}{ended_by}")
        self.model_changed.emit()
        persistence.autosave_model(self)

    # -- prediction ------------------------------------------------------------------------
    def predict_all(self, image: Image | None = None, then: Callable[[str, Any], None] | None = None,
                    work: Callable[[Prediction], Any] | None = None) -> bool:
        """Predict a whole image or stack in the background into its prediction layer (and
        uncertainty layers). ``work(prediction)`` runs in the worker after it; ``then(image
        name, what work returned)`` runs on the GUI thread once the layers are shown."""
        if not self._idle():
            return False
        image = image or self.image
        try:
            self.start_prediction(image, then, work, stopped=lambda: self.say(
                f"prediction of '{image.name}' stopped; its layers keep what they showed before"))
        except FrugalsegError as exc:
            self.fail(exc)
            return False
        return True

    def start_prediction(self, image: Image | None, then=None, work=None, stopped=None) -> None:
        """``predict_all``'s work, started; raises what is wrong with ``image`` first.
        ``stopped()`` runs when Stop ended it."""
        job = overlays.prediction_job(self, image, work)
        self._stop.clear()

        def done(result) -> None:
            if overlays.show_prediction(self, result):
                if then is not None:
                    then(result[0], result[2])
            elif self._stop.is_set() and stopped is not None:
                stopped()

        self._start(job, TrainState.PREDICTING, done, lambda p: self.predict_progress.emit(p.done, p.total))

    def predict_every(self) -> bool:
        """Predict all, image layer after image layer (``overlays.predict_series``)."""
        if not self._idle():
            return False
        if self.model is None:
            self.fail(FrugalsegError("no model yet: train or load one first"))
            return False
        overlays.predict_series(self)
        return True

    # -- workers and state -----------------------------------------------------------------
    def _start(self, job, state: TrainState, done, on_yield=None) -> None:
        self._worker = start_worker(job, on_yield or self._on_progress, self.fail,
                                    lambda worker, result: self._finished(worker, done, result))
        self._set_state(state)

    def _finished(self, worker, done, result) -> None:
        if worker is not self._worker:
            return
        self._worker = None
        self.trainer = None
        try:
            done(result)  # None where the work was stopped or failed
        finally:
            self._set_state(TrainState.IDLE)

    def read_then(self, read: Callable[[], Any], apply: Callable[[Any], None], blocking: bool = True) -> bool:
        """``read()`` in a thread (files only: napari stays responsive while a large session or
        model loads), then ``apply(its result)`` on the GUI thread; failures are said.
        ``blocking``: no training or prediction meanwhile (for what replaces the model)."""
        if blocking and not self._idle():
            return False

        def done(worker) -> None:
            self._readers.discard(worker)
            if blocking:
                self._set_state(TrainState.IDLE)

        if blocking:
            self._set_state(TrainState.READING)
        self._readers.add(read_in_background(read, apply, self.fail, done))
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Process events until idle, files read and autosaves written included (for scripts and
        tests); True if idle in time."""
        from qtpy.QtWidgets import QApplication

        def busy() -> bool:
            return self.state != TrainState.IDLE or bool(self._readers) or persistence.writing()

        end = time.perf_counter() + timeout
        while busy() and time.perf_counter() < end:
            QApplication.processEvents()
            time.sleep(0.01)
        return not busy()

    def _idle(self) -> bool:
        """Whether no work runs; else says so."""
        if self.state != TrainState.IDLE:
            self.say("busy: stop the current work first")
        return self.state == TrainState.IDLE

    def _set_state(self, state: TrainState) -> None:
        self.state = state
        self.state_changed.emit(state.value)

    def say(self, text: str) -> None:
        self.message.emit(text)
        show_info(text)

    def fail(self, exc: BaseException) -> None:
        """A clear message instead of a traceback; napari stays usable. A write or read the system
        refused (disk full, no permission, no such file) is said as one naming the file."""
        if isinstance(exc, OSError):
            exc = FrugalsegError.from_os(exc)
        if isinstance(exc, FrugalsegError):
            text = str(exc)
            show_warning(text)
        else:
            what = str(exc) if isinstance(exc, WorkFailed) else f"{type(exc).__name__}: {exc}"
            text = f"frugalseg failed: {what}"
            show_error(text)
        self.message.emit(text)
