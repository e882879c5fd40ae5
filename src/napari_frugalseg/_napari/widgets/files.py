"""Dock section for what goes to and comes from disk: masks, model bundles, sessions."""

from __future__ import annotations

from pathlib import Path

from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QGroupBox, QPushButton

from ...core.bundle import load_bundle
from ...core.errors import FrugalsegError
from ...core.export import FORMATS
from ...core.io import read_labels
from .. import editing, persistence
from .. import layers as L
from .common import guarded, row


class FilesBox(QGroupBox):
    def __init__(self, widget):
        super().__init__("4. Export and sessions")
        self.widget, self.ctl = widget, widget.ctl
        form = QFormLayout(self)
        self.format_combo = QComboBox()
        self.format_combo.addItems(FORMATS)
        self.export_button = QPushButton("Export masks…")
        self.export_instances_button = QPushButton("Export instances…")
        self.save_model_button = QPushButton("Save model…")
        self.load_model_button = QPushButton("Load model…")
        self.save_session_button = QPushButton("Save session…")
        self.open_session_button = QPushButton("Open session…")
        self.load_scribbles_button = QPushButton("Load scribbles…")
        self.load_scribbles_button.setToolTip(
            "a label file (0 = unlabelled, k = class k; e.g. cells_labels.tif, or an annotation "
            "tool's palette PNG) into the chosen image's scribbles")
        form.addRow("format", self.format_combo)
        form.addRow(row(self.export_button, self.export_instances_button))
        form.addRow(row(self.save_model_button, self.load_model_button))
        form.addRow(row(self.save_session_button, self.open_session_button))
        form.addRow(self.load_scribbles_button)
        self.export_button.clicked.connect(lambda: self.export_masks())
        self.export_instances_button.clicked.connect(lambda: self.export_masks(role="instances"))
        self.save_model_button.clicked.connect(lambda: self.save_model())
        self.load_model_button.clicked.connect(lambda: self.load_model())
        self.save_session_button.clicked.connect(lambda: self.save_session())
        self.open_session_button.clicked.connect(lambda: self.open_session())
        self.load_scribbles_button.clicked.connect(lambda: self.load_scribbles())

    def _ask(self, title: str, path: str | Path | None = None, files: str | None = None) -> Path | None:
        """``path`` if given, else a dialog starting in the last folder used: for a folder, or
        for a file matching ``files`` (a Qt filter) when given."""
        prefs = self.widget.prefs
        if path is None:
            start = str(prefs.value("last_folder", str(Path.home())))
            path = (QFileDialog.getOpenFileName(self, title, start, files)[0] if files
                    else QFileDialog.getExistingDirectory(self, title, start))
            if not path:
                return None
        path = Path(path)
        prefs.setValue("last_folder", str(path.parent if path.suffix else path))
        return path

    def _say(self, text: str) -> None:
        self.widget.status.setText(text)

    @guarded
    def export_masks(self, folder=None, role: str = "prediction") -> Path | None:
        """The chosen image's masks (of every image that has them, with *every image layer*)
        into a folder; returns the folder's (last) mask written."""
        image = self.widget.current_image()
        if self.widget.every_image.isChecked():
            images = [im for im in self.ctl.image_layers() if L.find(self.ctl.viewer, im, role) is not None]
            if not images:
                raise FrugalsegError(f"no image has a {role} yet: predict first")
        elif image is None:
            raise FrugalsegError("no image layer: open an image first")
        else:
            images = [image]
        folder = self._ask(f"Folder for the {role} masks", path=folder)
        if folder is None:
            return None
        fmt = self.format_combo.currentText()
        written = [persistence.export_masks(self.ctl, im, folder, fmt, role) for im in images]
        self._say(f"wrote {written[0]}" if len(written) == 1 else
                  f"wrote {len(written)} masks in {folder}: {', '.join(p.name for p in written)}")
        return written[-1]

    @guarded
    def save_model(self, path=None) -> Path | None:
        path = self._ask("Folder to save the model in", path=path)
        if path is not None:
            path = persistence.save_model(self.ctl, path)
            self._say(f"model saved in {path}")
        return path

    @guarded
    def load_model(self, path=None) -> bool:
        """Read a model bundle in the background and use it; True if the reading started."""
        path = self._ask("Model folder to load", path=path)
        if path is None:
            return False

        def use(bundle) -> None:
            persistence.use_model(self.ctl, bundle)
            self._say(f"model loaded from {path}: {', '.join(self.ctl.config.classes)}")

        return self.ctl.read_then(lambda: load_bundle(path), use)

    @guarded
    def save_session(self, folder=None) -> Path | None:
        folder = self._ask("Session folder", path=folder)
        if folder is not None:
            persistence.save(self.ctl, folder)
            self._say(f"session saved in {folder}")
        return folder

    @guarded
    def open_session(self, folder=None) -> bool:
        """Read a saved session in the background and show it; True if the reading started."""
        folder = self._ask("Session folder to open", path=folder)
        if folder is None:
            return False
        names = {layer.name for layer in self.ctl.viewer.layers}  # read at the start: GUI thread

        def show(read) -> None:
            persistence.open_session(self.ctl, read)
            self.widget.show_opened_session()
            self._say(f"session opened from {folder}")

        return self.ctl.read_then(lambda: persistence.read_session(folder, names), show)

    @guarded
    def load_scribbles(self, path=None) -> bool:
        """A label file, read in the background (training may go on meanwhile), into the chosen
        image's scribbles (``editing.load_scribbles``); True if the reading started."""
        if self.widget.pick_image() is None:
            return False
        image = self.ctl.image
        path = self._ask(f"Label file for '{image.name}'", path=path,
                         files="Label images (*.tif *.tiff *.png *.npy);;All files (*)")
        if path is None:
            return False

        def write(labels) -> None:
            n, added = editing.load_scribbles(self.ctl, image, path, labels)
            grown = f"; {added} class{'es' * (added > 1)} added" if added else ""
            self._say(f"loaded {n} labelled pixels from {path.name} into "
                      f"'{self.ctl.scribbles(image).name}'{grown}")

        return self.ctl.read_then(lambda: read_labels(path), write, blocking=False)
