"""Plugin guidance: an ensemble with disagreement, label-here-next squares to step through,
the model library (keep, list, broken entries, start from with a new head)."""

import threading

import numpy as np

from napari_frugalseg.core.bundle import load_bundle
from napari_frugalseg.core.config import TrainConfig
from napari_frugalseg.core.guidance import propose


def _train_until_idle(widget, qtbot, seconds):
    assert widget.train(seconds=seconds)
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=int(seconds * 1000) + 20000)


def test_ensemble_uncertainty_and_label_here_next(widget, qtbot, monkeypatch, blobs):
    from napari_frugalseg._napari import guidance

    threads = []  # where the squares are searched: in the worker, never on the GUI thread

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return propose(*args, **kwargs)

    monkeypatch.setattr(guidance, "propose", recorded)
    blobs(widget)
    g = widget.guidance
    g.members.setValue(2)
    g.tta.setChecked(True)
    _train_until_idle(widget, qtbot, 8)
    assert len(widget.ctl.models) == 2
    members = {p["member"] for p in widget.ctl.history}
    assert members == {0, 1}
    g.count.setValue(3)
    assert g.suggest()
    viewer = widget.viewer
    qtbot.waitUntil(lambda: "blobs label here next" in viewer.layers, timeout=30000)
    assert widget.ctl.state == "idle"  # once the squares are shown, the user can act on them
    unc = np.asarray(viewer.layers["blobs uncertainty"].data)
    assert unc.max() > 0 and 0 <= unc.min() and unc.max() <= 1
    assert "blobs disagreement" in viewer.layers  # two members (and flips) can disagree
    score = viewer.layers["blobs"].metadata["frugalseg_uncertainty_score"]
    assert score == np.float32(unc.mean())  # the per-image score is the map's mean
    squares = viewer.layers["blobs label here next"]
    assert len(squares.data) == 3 and set(squares.shape_type) == {"rectangle"}
    assert threads and threading.main_thread() not in threads
    first = np.asarray(squares.data[0])
    (y0, x0), (y1, x1) = first.min(0), first.max(0)
    # the first square is the most uncertain one and the view is centred on it
    inside = unc[int(y0):int(y1), int(x0):int(x1)].mean()
    assert inside >= unc[int(y0):int(y1)].mean() - 1e-6
    assert np.allclose(viewer.scene.camera.center[-2:], ((y0 + y1) / 2, (x0 + x1) / 2), atol=1)
    g.next_button.click()
    assert g.where.text().startswith("label here next 2 of 3")
    g.previous_button.click()
    g.previous_button.click()
    assert g.where.text().startswith("label here next 3 of 3")  # wraps around
    # once the user has scribbled the first square, the next suggestions go elsewhere
    scribbles = viewer.layers["blobs scribbles"]
    scribbles.data[int(y0):int(y1), int(x0):int(x1)] = 1
    scribbles.refresh()
    before = list(squares.metadata["frugalseg_proposals"])
    assert g.suggest()
    qtbot.waitUntil(lambda: squares.metadata["frugalseg_proposals"] != before, timeout=30000)
    done = np.asarray(scribbles.data) > 0
    for corners in squares.data:
        (a, b), (c, d) = np.asarray(corners).min(0).astype(int), np.asarray(corners).max(0).astype(int)
        assert done[a:c, b:d].mean() <= 0.02


def test_model_library_keep_list_and_start_from_with_new_classes(widget, qtbot, tmp_path, blobs):
    blobs(widget)
    g = widget.guidance
    _train_until_idle(widget, qtbot, 5)
    g.name.setText("blobs-v1")
    g.keep_button.click()
    home = tmp_path / "home" / "models"
    assert load_bundle(home / "blobs-v1").config.classes == tuple(c.name for c in widget.ctl.classes)
    assert widget.status.text() == "kept the model in the library as 'blobs-v1'"
    g.keep_button.click()  # the same name again: replaced, and said so
    assert widget.status.text().endswith("replacing the earlier model of that name")
    (home / "half-written").mkdir()
    g.refresh_library()
    texts = [g.library.itemText(i) for i in range(g.library.count())]
    assert texts[0].startswith("blobs-v1:") and texts[1] == "half-written (broken)"
    assert not g.library.model().item(1).isEnabled()
    g.library.setCurrentIndex(1)
    g.start_button.click()
    assert "is broken: not a frugalseg model" in widget.status.text()
    # a new task with three classes starts from the kept model: same encoder, new head
    old = widget.ctl.model
    widget.classes.add_class()
    g.library.setCurrentIndex(0)
    g.start_button.click()
    assert widget.ctl.state == "reading"  # the model file is read off the GUI thread
    assert widget.ctl.wait_idle()
    new = widget.ctl.model
    assert new is not old and new.head.out_channels == 3
    assert all(np.array_equal(a, b) for a, b in zip(new.down.state_dict().values(), load_bundle(home / "blobs-v1").model.down.state_dict().values()))
    assert "new output head" in widget.status.text()
    _train_until_idle(widget, qtbot, 3)
    assert widget.ctl.model.head.out_channels == 3 and widget.ctl.config.n_classes == 3
    # a model from another task is fine-tuned at the full learning rate, not the continuation's
    assert widget.ctl.history[0]["lr"] > TrainConfig().continued().learning_rate
