"""The dock widget: image and scribbles, classes, training, prediction; the sections for files,
imperfect labels and guidance are their own modules."""

from __future__ import annotations

import weakref

from napari.layers import Image, Labels, Shapes
from qtpy.QtCore import QEvent, QSettings
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox,
    QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget,
)

from ...core.config import EDGE_AFFINITY, SCALE_JITTER
from ...core.errors import FrugalsegError
from .. import editing
from .. import layers as L
from ..controller import Controller
from ..settings import Settings
from ..state import TrainState
from .class_table import ClassTable
from .files import FilesBox
from .common import guarded, row
from .guidance import GuidanceBox
from .imperfect import ImperfectLabelsBox
from .loss_plot import LossPlot

NEW = "<new scribble layer>"

# one controller per viewer: the model, classes and session stay with the viewer when the
# panel is closed, and a panel opened again shows them
_controllers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class FrugalsegWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.ctl = _controllers.get(napari_viewer) or Controller(napari_viewer)
        _controllers[napari_viewer] = self.ctl
        self.ctl.attached = True
        self._links: list[tuple[object, object]] = []  # (signal, slot) to undo on close
        self.prefs = QSettings("napari-frugalseg", "napari-frugalseg")
        self._budget = 0.0
        layout = QVBoxLayout(self)
        self.imperfect = ImperfectLabelsBox(self)
        self.guidance = GuidanceBox(self)
        self.files = FilesBox(self)
        for box in (self._data_box(), self._train_box(), self._predict_box(), self.files,
                    self.imperfect, self.guidance):
            layout.addWidget(box)
        layout.addStretch(1)
        self._connect()
        self._show_settings()
        self._refresh_layers()
        self._state(self.ctl.state.value)

    # -- building --------------------------------------------------------------------------
    def _data_box(self) -> QGroupBox:
        box = QGroupBox("1. Image, scribbles and classes")
        form = QFormLayout(box)
        self.image_combo = QComboBox()
        self.channels_combo = QComboBox()
        self.channels_combo.setToolTip(
            "the image's axis that holds channels: e.g. axis 0 of a (C, Y, X) layer (one per "
            "channel merged with napari's Merge to stack), axis 1 of a Fiji (Z, C, Y, X) stack "
            "(read as a new layer with that axis first)")
        self.scribble_combo = QComboBox()
        self.classes = ClassTable(self.ctl.classes)
        form.addRow("image", self.image_combo)
        form.addRow("channels", self.channels_combo)
        form.addRow("scribbles", self.scribble_combo)
        form.addRow(self.classes)
        return box

    def _train_box(self) -> QGroupBox:
        box = QGroupBox("2. Train")
        form = QFormLayout(box)
        s = self.ctl.settings
        self.ndim_combo = QComboBox()
        self.ndim_combo.addItems(["2D (slice by slice)", "3D (volumes)"])
        self.seconds = QDoubleSpinBox(minimum=5, maximum=36000, value=s.train_seconds, suffix=" s")
        self.train_button, self.stop_button = QPushButton("Train"), QPushButton("Stop")
        self.progress_bar = QProgressBar()
        self.plot = LossPlot()
        self.status = QLabel("pick an image, paint strokes of two or more classes, press Train")
        self.status.setWordWrap(True)
        self.device_label = QLabel("device: -")
        self.auto_continue = QCheckBox("continue after each new stroke")
        self.auto_continue.setChecked(s.auto_continue)
        self.uncertainty_check = QCheckBox("show uncertainty")
        self.sizes_vary = QCheckBox("images differ in magnification (scale jitter)")
        self.follow_edges = QCheckBox("spread strokes to the image's edges (hand-drawn strokes)")
        form.addRow("model", self.ndim_combo)
        form.addRow("time budget", self.seconds)
        form.addRow(row(self.train_button, self.stop_button))
        form.addRow(self.progress_bar)
        form.addRow(self.plot)
        form.addRow(self.device_label)
        form.addRow(self.auto_continue)
        form.addRow(self.sizes_vary)
        form.addRow(self.follow_edges)
        form.addRow(self.uncertainty_check)
        form.addRow(self.status)
        return box

    def _predict_box(self) -> QGroupBox:
        box = QGroupBox("3. Predict and correct")
        form = QFormLayout(box)
        self.predict_button = QPushButton("Predict all")
        self.every_image = QCheckBox("every image layer")
        self.every_image.setToolTip("Predict all and Export masks go through every image layer, "
                                    "not only the chosen one")
        self.accept_class = QComboBox()
        self.accept_region = QComboBox()
        self.accept_button = QPushButton("Accept prediction into scribbles")
        self.object_class = QComboBox()
        self.instances_button = QPushButton("Make instances")
        form.addRow(row(self.predict_button, self.every_image))
        form.addRow("accept class", self.accept_class)
        form.addRow("inside", self.accept_region)
        form.addRow(self.accept_button)
        form.addRow("objects", row(self.object_class, self.instances_button))
        return box

    def _link(self, signal, slot) -> None:
        """Connect a viewer's or the controller's signal (they outlive this panel)."""
        signal.connect(slot)
        self._links.append((signal, slot))

    def _connect(self) -> None:
        ctl, viewer = self.ctl, self.viewer
        for signal in (viewer.layers.events.inserted, viewer.layers.events.removed):
            self._link(signal, self._refresh_layers)
        for signal in (viewer.dims.events.current_step, viewer.dims.events.ndisplay,
                       viewer.scene.camera.events.center, viewer.scene.camera.events.zoom):
            self._link(signal, ctl.update_view)
        self.image_combo.activated.connect(self._image_chosen)
        self.channels_combo.activated.connect(
            lambda i: self.choose_channels(self.channels_combo.itemData(i)))
        self.scribble_combo.activated.connect(lambda _: self.pick_image())
        self.classes.changed.connect(ctl.set_classes)
        self._link(ctl.classes_changed, self._classes_changed)
        self._link(ctl.image_renamed, self._image_renamed)
        self.ndim_combo.currentIndexChanged.connect(
            lambda i: ctl.change_settings(ndim=i + 2))
        self.auto_continue.toggled.connect(
            lambda on: ctl.change_settings(auto_continue=on))
        self.sizes_vary.toggled.connect(
            lambda on: ctl.change_settings(scale_jitter=SCALE_JITTER if on else 0.0))
        self.follow_edges.toggled.connect(
            lambda on: ctl.change_settings(affinity_weight=EDGE_AFFINITY if on else Settings.affinity_weight))
        self.uncertainty_check.toggled.connect(self._toggle_uncertainty)
        self.train_button.clicked.connect(self.train)
        self.stop_button.clicked.connect(ctl.stop)
        self.predict_button.clicked.connect(self.predict_all)
        self.accept_button.clicked.connect(self.accept)
        self.instances_button.clicked.connect(self.make_instances)
        self._link(ctl.state_changed, self._state)
        self._link(ctl.progress, self._progress)
        self._link(ctl.predict_progress, self._predict_progress)
        self._link(ctl.message, self._show_message)
        self._link(ctl.model_changed, self._show_settings)
        self._classes_changed()

    def event(self, event) -> bool:
        # napari's close button takes the panel out of its dock (parent None) and deletes the
        # dock; closing the window closes the panel
        docked_out = event.type() == QEvent.Type.ParentChange and self.parent() is None
        if (docked_out or event.type() == QEvent.Type.Close) and self._links:
            self._detach()
        return super().event(event)

    def _show_message(self, text: str) -> None:
        self.status.setText(text)

    def _detach(self) -> None:
        """Stop the work and let go of the viewer's and controller's signals."""
        for signal, slot in self._links:
            signal.disconnect(slot)
        self._links.clear()
        self.ctl.detach()

    def _show_settings(self) -> None:
        """Show the training choices that a model or session sets (each control, set to what
        it shows already, leaves the setting as it is)."""
        s = self.ctl.settings
        self.ndim_combo.setCurrentIndex(s.ndim - 2)
        self.sizes_vary.setChecked(s.scale_jitter > 0)
        self.follow_edges.setChecked(s.affinity_weight >= EDGE_AFFINITY)
        self.imperfect.robust.setChecked(s.robust_q > 0)

    # -- model to view ---------------------------------------------------------------------
    def _refresh_layers(self, event=None) -> None:
        current = self.image_combo.currentText()
        self.image_combo.blockSignals(True)
        self.image_combo.clear()
        self.image_combo.addItems([layer.name for layer in self.ctl.image_layers()])
        if current:
            self.image_combo.setCurrentText(current)
        self.image_combo.blockSignals(False)
        self.scribble_combo.clear()
        self.scribble_combo.addItem(NEW)
        for layer in self.viewer.layers:
            if isinstance(layer, Labels) and layer.metadata.get("role") in (None, "scribbles", "consensus"):
                self.scribble_combo.addItem(layer.name)
        if self.ctl.image is not None and self.ctl.scribbles(self.ctl.image) is not None:
            self.scribble_combo.setCurrentText(self.ctl.scribbles(self.ctl.image).name)
        self.accept_region.clear()
        self.accept_region.addItem("visible field")
        self.accept_region.addItems([s.name for s in self.viewer.layers if isinstance(s, Shapes)])
        self.imperfect.refresh()
        self._show_channels()

    def _show_channels(self) -> None:
        """The channels choice shows how the chosen image is read; only where it has a choice."""
        image = self.current_image()
        combo = self.channels_combo
        combo.clear()
        combo.addItem("RGB" if image is not None and image.rgb else "none (grey)", None)
        if image is not None:
            shape = L.full_resolution(image).shape
            for axis in L.channel_axes(image):
                combo.addItem(f"axis {axis} ({shape[axis]})" + (", as a new layer" if axis else ""), axis)
            combo.setCurrentIndex(1 if L.channels_first(image) else 0)
        combo.setEnabled(combo.count() > 1)

    def _image_chosen(self, index: int = 0) -> None:
        self._show_image(self.current_image())
        self.pick_image()

    def _show_image(self, image: Image | None) -> None:
        """The choices show ``image``: its name, how its channels are read, its own scribble
        layer, else the Labels layer chosen if it belongs to no other image, else a new one
        (never the scribbles of the image chosen before)."""
        if image is not None and image.name != self.image_combo.currentText():
            self._refresh_layers()  # a layer made just now
            self.image_combo.setCurrentText(image.name)
        own = self.ctl.scribbles(image) if image is not None else None
        chosen = self.scribble_combo.currentText()
        free = (image is not None and chosen in self.viewer.layers
                and L.owner(self.viewer, self.viewer.layers[chosen]) in (None, image.name))
        self.scribble_combo.setCurrentText(own.name if own is not None else chosen if free else NEW)
        self._show_channels()

    def choose_channels(self, axis: int | None) -> Labels | None:
        """Read the chosen image's ``axis`` as channels (None: none) and use it."""
        image = self.current_image()
        if image is not None:
            try:
                self._show_image(L.read_channels(self.viewer, image, axis))
            except FrugalsegError as exc:
                self.ctl.fail(exc)
                self._show_channels()  # refused: back to how the image is read
                return None
        return self.pick_image()

    def _image_renamed(self, old: str, new: str) -> None:
        keep = self.image_combo.currentText()
        self._refresh_layers()
        self.image_combo.setCurrentText(new if keep == old else keep)

    def _classes_changed(self) -> None:
        classes = self.ctl.classes
        if classes != self.classes.classes():  # changed elsewhere (a model, a session)
            self.classes.set_classes(classes)
        names = [f"{k}: {c.name}" for k, c in enumerate(classes, start=1)]
        for combo, first in ((self.accept_class, ["all classes"]), (self.object_class, [])):
            combo.clear()
            combo.addItems(first + names)
        self.object_class.setCurrentIndex(len(names) - 1)

    def _state(self, state: str) -> None:
        busy = state != TrainState.IDLE.value
        for button in (self.train_button, self.predict_button, self.files.load_model_button,
                       self.files.open_session_button):
            button.setEnabled(not busy)
        self.stop_button.setEnabled(state in (TrainState.TRAINING.value, TrainState.PREDICTING.value))
        if state == TrainState.TRAINING.value:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(0)
        self.device_label.setText(f"device: {self.ctl.device}   state: {state}")

    def _progress(self, p) -> None:
        total = self._budget or 1.0
        self.progress_bar.setValue(int(1000 * min(1.0, p.seconds / total)))
        self.plot.add(p.step, p.loss, p.val_score)

    def _predict_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(done)

    # -- actions (also the API the tests drive) --------------------------------------------
    def current_image(self) -> Image | None:
        name = self.image_combo.currentText()
        layer = self.viewer.layers[name] if name in self.viewer.layers else None
        return layer if isinstance(layer, Image) else None

    @guarded
    def pick_image(self) -> Labels | None:
        """Use the chosen image and scribble layer (a new one by default)."""
        image = self.current_image()
        if image is None:
            raise FrugalsegError("no image layer: open an image first")
        choice = self.scribble_combo.currentText()
        picked = self.viewer.layers[choice] if choice and choice != NEW else None
        layer = self.ctl.select_image(image, picked)
        self._refresh_layers()
        self._show_image(self.ctl.image)  # another layer where its file declares channels
        return layer

    @guarded
    def train(self, seconds: float | None = None) -> bool:
        image = self.ctl.image
        if image is None or image is not self.current_image() or self.ctl.scribbles(image) is None:
            if self.pick_image() is None:  # (a scribble layer made again where it was deleted)
                return False
        self._budget = seconds or self.seconds.value()
        self.plot.clear()
        return self.ctl.train(self._budget)

    @guarded
    def predict_all(self) -> bool:
        if self.every_image.isChecked():
            return self.ctl.predict_every()
        if self.current_image() is None:
            raise FrugalsegError("no image layer: open an image first")
        return self.ctl.predict_all(self.current_image())

    def _toggle_uncertainty(self, on: bool) -> None:
        self.ctl.show_uncertainty = on
        image = self.current_image()
        layer = L.find(self.viewer, image, "uncertainty") if image else None
        if layer is not None:
            layer.visible = on

    @guarded
    def accept(self) -> int:
        image = self.current_image()
        if image is None:
            raise FrugalsegError("no image layer: open an image first")
        value = self.accept_class.currentIndex() or None
        region = self.accept_region.currentText()
        shapes = self.viewer.layers[region] if region in self.viewer.layers else None
        n = editing.accept_prediction(self.ctl, image, value, shapes)
        self.status.setText(f"accepted {n} predicted pixels into the scribbles")
        return n

    @guarded
    def make_instances(self) -> Labels:
        image = self.current_image()
        if image is None:
            raise FrugalsegError("no image layer: open an image first")
        layer = editing.make_instances(self.ctl, image, [self.object_class.currentIndex() + 1])
        self.status.setText(f"{int(layer.data.max())} objects in '{layer.name}'")
        return layer

    def show_opened_session(self) -> None:
        """After a session was opened: its training choices, layers and image."""
        self._show_settings()
        self._refresh_layers()
        self.image_combo.setCurrentText(self.ctl.image.name if self.ctl.image else "")
