"""Which images' scribbles changed (paint, data replaced, undo, redo), once edits pause.

Runs on the GUI thread; what the changes mean for training is the controller's business.
"""

from __future__ import annotations

from collections.abc import Callable

from napari.layers import Labels
from qtpy.QtCore import QTimer

from . import layers as L


class EditWatcher:
    """Watches scribble layers; ``settled(names)`` gets the names of the images whose
    scribbles changed once no edit came for ``delay_ms``."""

    def __init__(self, settled: Callable[[set[str]], None], delay_ms: int = 300):
        self._settled = settled
        self._histories: dict[int, tuple[int, int] | None] = {}  # watched layers' edit_history
        self._pending: set[str] = set()
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._flush)

    def watch(self, layer: Labels) -> None:
        if id(layer) in self._histories:
            return
        self._histories[id(layer)] = L.edit_history(layer)
        layer.events.paint.connect(lambda e, lay=layer: self._edited(lay))
        layer.events.data.connect(lambda e, lay=layer: self._edited(lay))
        layer.events.set_data.connect(lambda e, lay=layer: self._redrawn(lay))

    def forget(self) -> None:
        """Drop changes not yet handed on (e.g. scribbles restored from disk)."""
        self._pending.clear()
        self._timer.stop()

    def renamed(self, old: str, new: str) -> None:
        if old in self._pending:
            self._pending = (self._pending - {old}) | {new}

    def _redrawn(self, layer: Labels) -> None:
        """A redraw is an edit only when it undid or redid one (not a slice change, a refresh)."""
        now = L.edit_history(layer)
        if now is None or now != self._histories[id(layer)]:
            self._histories[id(layer)] = now
            self._edited(layer)

    def _edited(self, layer: Labels) -> None:
        self._pending.add(layer.metadata.get(L.META, ""))
        self._timer.start()

    def _flush(self) -> None:
        names, self._pending = self._pending, set()
        self._settled(names)
