"""The class table: names and colours of label values 1..K; add and remove classes."""

from __future__ import annotations

from psygnal import Signal
from qtpy.QtCore import Qt
from qtpy.QtGui import QColor
from qtpy.QtWidgets import (
    QColorDialog, QHBoxLayout, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from ..state import ClassSpec, new_class


class ClassTable(QWidget):
    """Edits a list of ``ClassSpec``; ``changed`` carries the new list."""

    changed = Signal(object)

    def __init__(self, classes: list[ClassSpec], parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["value", "class", "colour"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setMinimumHeight(110)
        self.table.setMaximumHeight(170)
        self.add_button = QPushButton("Add class")
        self.remove_button = QPushButton("Remove last")
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)
        self.add_button.clicked.connect(self.add_class)
        self.remove_button.clicked.connect(self.remove_class)
        self.table.itemChanged.connect(lambda _: self.changed.emit(self.classes()))
        self.table.cellDoubleClicked.connect(self._pick_color)
        self.set_classes(classes)

    def classes(self) -> list[ClassSpec]:
        out = []
        for row in range(self.table.rowCount()):
            name = self.table.item(row, 1).text().strip() or f"class {row + 1}"
            out.append(ClassSpec(name, self.table.item(row, 2).text()))
        return out

    def set_classes(self, classes: list[ClassSpec]) -> None:
        """Show ``classes`` without emitting ``changed`` (model to view)."""
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for spec in classes:
            self._append(spec)
        self.table.blockSignals(False)
        self.remove_button.setEnabled(len(classes) > 2)

    def _append(self, spec: ClassSpec) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        value = QTableWidgetItem(str(row + 1))
        value.setFlags(value.flags() & ~Qt.ItemFlag.ItemIsEditable)
        color = QTableWidgetItem(spec.color)
        color.setBackground(QColor(spec.color))
        color.setToolTip("double-click to change")
        for col, item in enumerate((value, QTableWidgetItem(spec.name), color)):
            self.table.setItem(row, col, item)

    def add_class(self) -> None:
        classes = self.classes() + [new_class(self.table.rowCount() + 1)]
        self.set_classes(classes)
        self.changed.emit(classes)

    def remove_class(self) -> None:
        if self.table.rowCount() > 2:
            classes = self.classes()[:-1]
            self.set_classes(classes)
            self.changed.emit(classes)

    def set_color(self, row: int, color: str) -> None:
        item = self.table.item(row, 2)
        item.setText(color)  # emits changed through itemChanged
        item.setBackground(QColor(color))

    def _pick_color(self, row: int, column: int) -> None:
        if column != 2:
            return
        color = QColorDialog.getColor(QColor(self.table.item(row, 2).text()), self)
        if color.isValid():
            self.set_color(row, color.name())
