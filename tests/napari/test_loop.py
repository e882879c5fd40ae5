"""The whole interactive loop in a real napari viewer with real data (ISBI 2012 membranes)."""

import numpy as np
import pytest

from napari_frugalseg._napari.state import ClassSpec
from napari_frugalseg.core.export import read_mask
from napari_frugalseg.core.labels import dice_per_class


@pytest.mark.slow
def test_full_loop(widget, isbi, paint, qtbot, tmp_path, make_napari_viewer):
    image, truth, scribbles = isbi
    viewer, ctl = widget.viewer, widget.ctl
    viewer.add_image(image, name="em")
    ctl.set_classes([ClassSpec("membrane", "#ff00ff"), ClassSpec("interior", "#00ffff")])
    widget.image_combo.setCurrentText("em")
    layer = widget.pick_image()
    assert layer.name == "em scribbles" and layer.data.shape == image.shape
    # the scribble colours follow the class table
    assert np.allclose(layer.colormap.map(np.array([1]))[0][:3], (1, 0, 1))
    paint(layer, scribbles)
    ctl.forget_edits()

    shown = []
    ctl.preview_shown.connect(shown.append)
    assert widget.train(seconds=600)  # stopped at step 150 below, however fast the CPU
    qtbot.waitUntil(lambda: len(shown) >= 1, timeout=20000)
    assert "em prediction" in viewer.layers
    assert set(np.unique(viewer.layers["em prediction"].data)) <= {0, 1, 2}

    # a correcting stroke reaches the running training
    used = []
    ctl.strokes_used.connect(used.append)
    correction = np.zeros_like(scribbles)
    correction[200:203, 100:160] = truth[200:203, 100:160]
    paint(layer, correction, step=1)
    qtbot.waitUntil(lambda: bool(used), timeout=5000)

    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 150, timeout=600000)
    ctl.stop()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=3000)
    assert ctl.model is not None and "held-out Dice" in widget.status.text()

    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=30000)
    pred = np.asarray(viewer.layers["em prediction"].data)
    dice = dice_per_class(pred, truth, 2)
    # 1 % scribbles, 150 steps: 0.61-0.70 in 8 runs (kept step 110-120); all-membrane 0.36, an
    # early thin-membrane checkpoint 0.42-0.57 (kept by the running mean before 2026-11-25)
    assert dice[0] > 0.5, dice

    for fmt in ("tiff", "png", "ome-zarr"):
        widget.files.format_combo.setCurrentText(fmt)
        out = widget.files.export_masks(tmp_path / "masks")
        assert np.array_equal(read_mask(out), pred), fmt
    widget.make_instances()
    inst = widget.files.export_masks(tmp_path / "inst", role="instances")
    assert read_mask(inst).max() > 1

    model_dir = widget.files.save_model(tmp_path / "model")
    session = widget.files.save_session(tmp_path / "session")

    # a later session: reopen everything in a fresh viewer
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    other = FrugalsegWidget(make_napari_viewer())
    other.files.open_session(session)
    assert other.ctl.wait_idle()
    assert np.array_equal(other.viewer.layers["em scribbles"].data, layer.data)
    assert [c.name for c in other.ctl.classes] == ["membrane", "interior"]
    assert other.ctl.model is not None
    # and the saved model applies to another image
    other.viewer.add_image(image[:256, :300], name="crop")
    other.files.load_model(model_dir)
    assert other.ctl.wait_idle()
    other.image_combo.setCurrentText("crop")
    assert other.predict_all()
    qtbot.waitUntil(lambda: other.ctl.state == "idle", timeout=30000)
    assert other.viewer.layers["crop prediction"].data.shape == (256, 300)
