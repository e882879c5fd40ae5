"""Helpers shared by the dock sections."""

from __future__ import annotations

import functools

from qtpy.QtWidgets import QHBoxLayout

from ...core.errors import FrugalsegError


def guarded(method):
    """Widget actions report bad input, and writes the system refuses (disk full, no
    permission), as a message (through ``self.ctl``) instead of raising."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except (FrugalsegError, OSError) as exc:  # said by ctl.fail
            self.ctl.fail(exc)
        return None

    return wrapper


def row(*widgets) -> QHBoxLayout:
    layout = QHBoxLayout()
    for w in widgets:
        layout.addWidget(w)
    return layout
