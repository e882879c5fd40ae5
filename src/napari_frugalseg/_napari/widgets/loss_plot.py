"""A small live plot of the training loss and the held-out Dice (no plotting library)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

LOSS, DICE = QColor("#dd8452"), QColor("#55a868")


class LossPlot(QWidget):
    """Loss (left scale, log) and validation Dice (0..1) against the step."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.loss: list[tuple[int, float]] = []
        self.dice: list[tuple[int, float]] = []
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("orange: training loss (log scale); green: Dice on held-out strokes")

    def add(self, step: int, loss: float, dice: float | None) -> None:
        self.loss.append((step, loss))
        if dice is not None:
            self.dice.append((step, dice))
        self.update()

    def clear(self) -> None:
        self.loss, self.dice = [], []
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt name)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        w, h = self.width(), self.height()
        painter.setPen(QPen(QColor("#888888")))
        painter.drawRect(0, 0, w - 1, h - 1)
        if len(self.loss) < 2:
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loss curve")
            return
        first, last = self.loss[0][0], self.loss[-1][0]
        span = max(1, last - first)
        logs = [math.log10(max(v, 1e-6)) for _, v in self.loss]
        lo, hi = min(logs), max(logs)
        hi = hi if hi > lo else lo + 1

        def x(step):
            return 4 + (w - 8) * (step - first) / span

        loss_pts = [QPointF(x(s), 4 + (h - 8) * (hi - v) / (hi - lo))
                    for (s, _), v in zip(self.loss, logs)]
        dice_pts = [QPointF(x(s), 4 + (h - 8) * (1 - d)) for s, d in self.dice if s >= first]
        for color, pts in ((LOSS, loss_pts), (DICE, dice_pts)):
            painter.setPen(QPen(color, 1.5))
            painter.drawPolyline(QPolygonF(pts))
        painter.setPen(QPen(QColor("#cccccc")))
        text = f"loss {self.loss[-1][1]:.3f}"
        if self.dice:
            text += f"   Dice {self.dice[-1][1]:.3f}"
        painter.drawText(8, 16, text)
