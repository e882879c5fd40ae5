"""A screenshot of the widget beside a predicted image (the README's picture).

Set FRUGALSEG_SCREENSHOT=docs/plugin.png to write it there as well.
"""

import os
import shutil

import numpy as np


def test_screenshot_of_widget_beside_prediction(make_napari_viewer, qtbot, tmp_path, train_steps):
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    viewer = make_napari_viewer(show=True)
    widget = FrugalsegWidget(viewer)
    viewer.window.add_dock_widget(widget, name="frugalseg")
    widget.ctl.change_settings(patch_size=64, auto_continue=False)
    viewer.open_sample("napari-frugalseg", "blobs")
    widget.image_combo.setCurrentText("blobs")
    widget.scribble_combo.setCurrentText("blobs scribbles")
    widget.pick_image()
    train_steps(widget, 80)
    assert widget.predict_all()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=20000)
    viewer.layers.move(viewer.layers.index("blobs scribbles"), len(viewer.layers) - 1)
    viewer.window._qt_window.resize(1400, 1080)
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=False, flash=False)
    path = tmp_path / "plugin.png"
    import imageio.v3 as iio

    iio.imwrite(path, shot)
    assert shot.shape[1] >= 1000 and shot[..., :3].std() > 10  # window with content
    target = os.environ.get("FRUGALSEG_SCREENSHOT")
    if target:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copy(path, target)
    assert np.unique(viewer.layers["blobs prediction"].data).tolist() == [1, 2]
