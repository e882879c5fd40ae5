import functools

import numpy as np
import pytest

from napari_frugalseg.core.datasets import isbi2012
from napari_frugalseg.core.scribbles import skeleton_scribbles


@pytest.fixture(autouse=True)
def _private_home(tmp_path, monkeypatch):
    """Autosaves and remembered folders go to the test's own folder."""
    monkeypatch.setenv("FRUGALSEG_HOME", str(tmp_path / "home"))
    from qtpy.QtCore import QSettings

    QSettings.setPath(QSettings.Format.NativeFormat, QSettings.Scope.UserScope, str(tmp_path / "qt"))


@pytest.fixture(scope="session")
def isbi(shared_data):
    """One real ISBI 2012 slice (512 x 512), its dense truth and 1 % skeleton scribbles."""
    ds = isbi2012(shared_data)
    truth = ds.labels[0]
    return ds.images[0][0], truth, skeleton_scribbles(truth, 0.01, seed=0)


@pytest.fixture
def widget(make_napari_viewer):
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    viewer = make_napari_viewer()
    w = FrugalsegWidget(viewer)
    viewer.window.add_dock_widget(w)
    # small and quick for tests: tiny patches, frequent previews, no automatic continuation
    w.ctl.change_settings(patch_size=64, refresh_seconds=1.0, auto_continue=False)
    yield w
    w.ctl.stop()
    w.ctl.wait_idle(10)


def _blobs(widget):
    """Open the shipped blobs sample, its scribbles in use; returns the scribble layer."""
    widget.viewer.open_sample("napari-frugalseg", "blobs")
    widget.image_combo.setCurrentText("blobs")
    widget.scribble_combo.setCurrentText("blobs scribbles")
    return widget.pick_image()


@pytest.fixture
def blobs():
    return _blobs


def _paint(layer, scribbles, step=2):
    """Scribble through the layer's paint API (brush along the given stroke pixels)."""
    layer.brush_size = 3
    for value in np.unique(scribbles[scribbles > 0]):
        for point in np.argwhere(scribbles == value)[::step]:
            layer.paint(point, int(value), refresh=False)
    layer.refresh()


@pytest.fixture
def paint():
    return _paint


def _train_steps(widget, steps=30, seconds=300, *, qtbot):
    """Train until ``steps`` steps, then Stop; the budget of ``seconds`` is long enough for a
    slow CPU to get there too (the tests' figures follow the steps, not the machine)."""
    assert widget.train(seconds=seconds)
    qtbot.waitUntil(lambda: widget.ctl.trainer is not None and widget.ctl.trainer.step >= steps
                    or widget.ctl.state == "idle", timeout=seconds * 1000)
    widget.ctl.stop()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=5000)


@pytest.fixture
def train_steps(qtbot):
    """``train_steps(widget, steps)``: train to a step count, then Stop (``_train_steps``)."""
    return functools.partial(_train_steps, qtbot=qtbot)
