"""Dock section for guidance: ensembles, test-time flips, label here next, the model library."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QLineEdit, QPushButton, QSpinBox,
)

from ...core.bundle import load_bundle
from ...core.errors import FrugalsegError
from ...core.guidance import Proposal
from ...core.library import LibraryEntry, list_models
from .. import guidance, persistence
from .. import layers as L
from .common import guarded, row


class GuidanceBox(QGroupBox):
    def __init__(self, widget):
        super().__init__("6. Guidance and earlier models")
        self.widget, self.ctl = widget, widget.ctl
        s = self.ctl.settings
        form = QFormLayout(self)
        self.members = QSpinBox(minimum=1, maximum=16, value=s.ensemble)
        self.members.setToolTip("Models trained together (sharing the time budget); their mean is "
                                "predicted and where they disagree is shown")
        self.tta = QCheckBox("average over flips when predicting all")
        self.tta.setChecked(s.tta)
        self.shares = QCheckBox("adjust predictions to each image's class shares")
        self.shares.setToolTip("Strokes label each class about equally, images do not: re-weight "
                               "each image's probabilities from the strokes' shares to its own")
        self.shares.setChecked(s.prior_correction)
        self.count = QSpinBox(minimum=1, maximum=50, value=5)
        self.suggest_button = QPushButton("Suggest where to label")
        self.previous_button, self.next_button = QPushButton("◀ previous"), QPushButton("next ▶")
        self.where = QLabel("")
        self.where.setWordWrap(True)
        self.library = QComboBox()
        self.start_button = QPushButton("Start from this model")
        self.name = QLineEdit()
        self.name.setPlaceholderText("name")
        self.keep_button = QPushButton("Keep in library")
        form.addRow("ensemble members", self.members)
        form.addRow(self.tta)
        form.addRow(self.shares)
        form.addRow("regions", row(self.count, self.suggest_button))
        form.addRow(row(self.previous_button, self.next_button))
        form.addRow(self.where)
        form.addRow("library", self.library)
        form.addRow(self.start_button)
        form.addRow(row(self.name, self.keep_button))
        self.members.valueChanged.connect(lambda k: self.ctl.change_settings(ensemble=k))
        self.tta.toggled.connect(lambda on: self.ctl.change_settings(tta=on))
        self.shares.toggled.connect(lambda on: self.ctl.change_settings(prior_correction=on))
        self.suggest_button.clicked.connect(lambda: self.suggest())
        self.previous_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.start_button.clicked.connect(lambda: self.start_from())
        self.keep_button.clicked.connect(lambda: self.keep())
        self.refresh_library()

    # -- label here next -------------------------------------------------------------------
    @guarded
    def suggest(self) -> bool:
        """Predict the current image with uncertainty, then propose where to label next."""
        image = self.widget.current_image()
        if image is None:
            raise FrugalsegError("no image layer: open an image first")

        def show(name: str, found: list[Proposal]) -> None:
            if name in self.ctl.viewer.layers:
                try:
                    self.where.setText(guidance.show_proposals(self.ctl, self.ctl.viewer.layers[name], found))
                except FrugalsegError as exc:
                    self.ctl.fail(exc)

        work = guidance.proposer(self.ctl, image, self.count.value())
        return self.ctl.predict_all(image, then=show, work=work)

    @guarded
    def step(self, delta: int) -> None:
        image = self.widget.current_image()
        layer = L.find(self.ctl.viewer, image, "proposals") if image is not None else None
        self.where.setText(guidance.step(self.ctl, layer, delta))

    # -- model library ---------------------------------------------------------------------
    def refresh_library(self) -> None:
        """List the library; a broken entry is shown (disabled) with what is wrong."""
        self.entries: list[LibraryEntry] = list_models()
        self.library.clear()
        for i, e in enumerate(self.entries):
            text = f"{e.name} (broken)" if e.error else f"{e.name}: {', '.join(e.classes)}"
            self.library.addItem(text)
            self.library.setItemData(i, e.line(), Qt.ItemDataRole.ToolTipRole)
            if e.error:
                self.library.model().item(i).setEnabled(False)
        if not self.entries:
            self.library.addItem("(no saved models yet)")

    @guarded
    def start_from(self) -> bool:
        """Read the chosen library model in the background and fine-tune from it (True if the
        reading started)."""
        index = self.library.currentIndex()
        if not self.entries or index < 0:
            raise FrugalsegError("the model library is empty: keep a trained model first")
        entry = self.entries[index]
        if entry.error:
            raise FrugalsegError(f"library model '{entry.name}' is broken: {entry.error}")
        return self.ctl.read_then(lambda: load_bundle(entry.path),
                                  lambda bundle: persistence.start_from(self.ctl, bundle, entry.name))

    @guarded
    def keep(self) -> None:
        had = {e.name for e in self.entries}
        path = persistence.keep_in_library(self.ctl, self.name.text())
        self.refresh_library()
        self.library.setCurrentIndex([e.path for e in self.entries].index(path))
        replaced = ", replacing the earlier model of that name" if path.name in had else ""
        self.ctl.say(f"kept the model in the library as '{path.name}'{replaced}")
