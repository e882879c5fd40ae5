"""Dock section for imperfect labels: complete classes, noisy masks, several annotators."""

from __future__ import annotations

from napari.layers import Labels, Shapes
from qtpy.QtCore import Qt
from qtpy.QtWidgets import (
    QCheckBox, QComboBox, QFormLayout, QGroupBox, QLabel, QListWidget, QListWidgetItem,
    QPushButton,
)

from ...core.config import ROBUST_Q
from ...core.errors import FrugalsegError
from .. import imperfect

EVERYWHERE = "the whole image"


class ImperfectLabelsBox(QGroupBox):
    """Edits what the current image's scribble layer declares, and merges annotators."""

    def __init__(self, widget):
        super().__init__("5. Imperfect labels")
        self.widget, self.ctl = widget, widget.ctl
        form = QFormLayout(self)
        self.complete = QListWidget()
        self.complete.setMaximumHeight(90)
        self.complete.setToolTip(
            "Classes annotated exhaustively on this image: unlabelled pixels are known not to "
            "be any of them (the marginal loss learns from that)")
        self.region = QComboBox()
        self.region.setToolTip("A Shapes layer: the ticked classes apply to its selected shapes (all "
                               "when none is selected); each shape keeps its own classes")
        self.robust = QCheckBox("masks are noisy (robust loss)")
        self.method = QComboBox()
        self.method.addItems(["staple", "majority vote"])
        self.merge_button = QPushButton("Merge selected Labels layers")
        self.reliability = QLabel("")
        self.reliability.setWordWrap(True)
        form.addRow("complete classes", self.complete)
        form.addRow("inside", self.region)
        form.addRow(self.robust)
        form.addRow("annotators", self.method)
        form.addRow(self.merge_button)
        form.addRow(self.reliability)
        self.complete.itemChanged.connect(lambda _: self.apply())
        self.region.activated.connect(lambda _: self.apply())
        self.robust.toggled.connect(
            lambda on: self.ctl.change_settings(robust_q=ROBUST_Q if on else 0.0))
        self.merge_button.clicked.connect(lambda: self.merge())
        widget._link(self.ctl.classes_changed, self.refresh)

    def _scribbles(self) -> Labels | None:
        image = self.widget.current_image()
        return self.ctl.scribbles(image) if image is not None else None

    def refresh(self, event=None) -> None:
        """Show what the current scribble layer declares (model to view, no feedback)."""
        layer = self._scribbles()
        declared = set(layer.metadata.get(imperfect.COMPLETE) or []) if layer else set()
        self.complete.blockSignals(True)
        self.complete.clear()
        for k, spec in enumerate(self.ctl.classes, start=1):
            item = QListWidgetItem(f"{k}: {spec.name}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if k in declared else Qt.CheckState.Unchecked)
            self.complete.addItem(item)
        self.complete.blockSignals(False)
        self.region.clear()
        self.region.addItem(EVERYWHERE)
        self.region.addItems([s.name for s in self.ctl.viewer.layers if isinstance(s, Shapes)])
        if layer is not None and layer.metadata.get(imperfect.REGIONS):
            self.region.setCurrentText(layer.metadata[imperfect.REGIONS])

    def set_complete(self, values: list[int], region: str = EVERYWHERE) -> None:
        """Tick exactly ``values`` (1-based) and choose the region (for scripts and tests)."""
        self.complete.blockSignals(True)
        for row in range(self.complete.count()):
            state = Qt.CheckState.Checked if row + 1 in values else Qt.CheckState.Unchecked
            self.complete.item(row).setCheckState(state)
        self.complete.blockSignals(False)
        self.region.setCurrentText(region)
        self.apply()

    def apply(self) -> None:
        layer = self._scribbles()
        if layer is None:
            self.ctl.fail(FrugalsegError("pick an image and its scribble layer first"))
            return
        values = [row + 1 for row in range(self.complete.count())
                  if self.complete.item(row).checkState() == Qt.CheckState.Checked]
        name = self.region.currentText()
        regions = self.ctl.viewer.layers[name] if name in self.ctl.viewer.layers else None
        imperfect.declare_complete(layer, values, regions)

    def merge(self, layers: list[Labels] | None = None):
        """Merge the selected Labels layers (annotators of the current image)."""
        image = self.widget.current_image()
        try:
            if image is None:
                raise FrugalsegError("no image layer: open an image first")
            if layers is None:
                chosen = self.ctl.viewer.layers.selection
                layers = [ly for ly in self.ctl.viewer.layers if ly in chosen and isinstance(ly, Labels)]
            result = imperfect.merge_annotators(self.ctl, image, layers, self.method.currentText())
        except FrugalsegError as exc:
            self.ctl.fail(exc)
            return None
        self.reliability.setText(imperfect.reliability_text(layers, result))
        self.widget.status.setText(
            f"consensus in '{image.name} consensus' (pick it as scribbles to train on it, "
            "pixels weighted by agreement)")
        self.widget._refresh_layers()
        return result
