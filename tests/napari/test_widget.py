"""Widget behaviour a user relies on: samples, clear messages for bad choices, autosave,
several images, accepting predictions, errors during training."""

import gc
import weakref

import numpy as np
import pytest
import torch

from napari_frugalseg.core.config import TrainConfig
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg._napari import persistence
from napari_frugalseg.core.io import read_array
from napari_frugalseg.core.session import save_session


def _train_and_preview(widget, qtbot, train_steps, steps):
    """Train with the whole plane on screen until a preview of it has been drawn."""
    widget.viewer.reset_view()
    shown = []
    widget.ctl.preview_shown.connect(shown.append)
    train_steps(widget, steps)
    qtbot.waitUntil(lambda: bool(shown), timeout=5000)


def test_sample_opens_with_its_scribbles_in_use(widget, blobs):
    layer = blobs(widget)
    assert layer.name == "blobs scribbles"  # the sample's own layer, not a new one
    assert {1, 2} <= set(np.unique(layer.data))
    names = [layer.name for layer in widget.viewer.layers]
    # every layer a prediction writes (with flips: their disagreement) exists before any work
    assert names == ["blobs", "blobs scribbles", "blobs prediction", "blobs uncertainty", "blobs disagreement"]
    assert widget.viewer.layers.selection.active is layer  # ready to paint


@pytest.mark.parametrize(
    "setup, expected",
    [
        ("no image", "no image layer"),
        ("no scribbles", "no scribbles yet"),
        ("scribble layer deleted", "no scribbles yet: paint strokes of at least two classes on 'img scribbles'"),
        ("one class", "only class 1 is labelled"),
        ("3d model on 2d", "3D model needs a 3D stack"),
        ("wrong shape", "has shape (10, 10)"),
        ("class not in table", "class table has 2 classes"),
        ("nan border", "layer 'img': image contains 128 NaN or infinite value(s), the first at index (0, 62)"),
    ],
)
def test_bad_choices_give_a_clear_message(widget, setup, expected):
    viewer = widget.viewer
    if setup != "no image":
        image = np.random.default_rng(0).random((64, 64), np.float32)
        if setup == "nan border":  # e.g. what a registration leaves at the edge
            image[:, 62:] = np.nan
        viewer.add_image(image, name="img")
        widget.image_combo.setCurrentText("img")
    if setup == "wrong shape":
        viewer.add_labels(np.zeros((10, 10), np.uint8), name="other")
        widget.scribble_combo.setCurrentText("other")
        assert widget.pick_image() is None
    else:
        layer = widget.pick_image()
        if setup == "scribble layer deleted":  # Train makes it again, to be painted on
            viewer.layers.remove(layer)
            layer = None
        if layer is not None and setup != "no scribbles":
            layer.data[..., 5:10, 5:10] = 1
            layer.data[..., 30:35, 30:35] = {"one class": 1, "class not in table": 3}.get(setup, 2)
        if setup.startswith("3d model"):
            widget.ndim_combo.setCurrentIndex(1)
        assert not widget.train(seconds=5)
    assert expected in widget.status.text()
    assert widget.ctl.state == "idle"
    if setup == "scribble layer deleted":
        assert widget.ctl.scribbles(viewer.layers["img"]) is not None


def test_error_during_training_is_reported_and_napari_stays_usable(widget, qtbot, monkeypatch, blobs):
    layer = blobs(widget)
    assert widget.train(seconds=30)
    qtbot.waitUntil(lambda: widget.ctl.trainer is not None and widget.ctl.trainer.step >= 2, timeout=10000)
    layer.paint((2, 2), 7)  # a class the table does not have, painted while it trains
    qtbot.waitUntil(lambda: "class 7" in widget.status.text(), timeout=3000)
    assert widget.ctl.state == "training"  # the bad stroke is refused, training goes on
    layer.undo()

    from napari_frugalseg.core.train import Trainer

    def broken(self, lr):
        raise RuntimeError("out of memory")

    # only this patch is undone below (monkeypatch.undo() would also undo the private home)
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_train_step", broken)  # a failure inside the worker
        qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)
        assert "RuntimeError: out of memory" in widget.status.text()
    assert widget.train(seconds=2)  # usable again
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)


def test_strokes_are_autosaved_and_survive(widget, qtbot, tmp_path, monkeypatch, blobs):
    """Each stroke is autosaved, written by a background thread (a large stack takes seconds to
    write, which napari must not wait for), and the autosave folder reopens as a session."""
    import threading

    threads = []

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return save_session(*args, **kwargs)

    monkeypatch.setattr(persistence, "save_session", recorded)
    layer = blobs(widget)
    layer.paint((100, 100), 2)
    folder = tmp_path / "home" / "autosave"
    qtbot.waitUntil(lambda: any(folder.glob("*/scribbles/0.tif")), timeout=3000)
    saved = next(folder.glob("*/scribbles/0.tif"))
    qtbot.waitUntil(lambda: np.array_equal(read_array(saved), layer.data), timeout=3000)
    assert threads and threading.main_thread() not in threads
    # the autosave folder is a session that reopens
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    other = FrugalsegWidget(widget.viewer.__class__(show=False))
    try:
        other.files.open_session(saved.parents[1])
        assert other.ctl.wait_idle()
        assert np.array_equal(other.viewer.layers["blobs scribbles"].data, layer.data)
    finally:
        other.viewer.close()


def test_a_lazy_stack_without_a_file_is_read_by_the_autosave_writer_once(widget, qtbot, tmp_path):
    """A dask stack that came from no file (a script's, another plugin's) is saved with the
    session as pixels; napari reads the slice it shows, but the whole stack is read by the
    autosave writer, not on the GUI thread at every stroke, and only once per session folder."""
    import threading

    import dask
    import dask.array as da

    stack = np.random.default_rng(0).random((6, 64, 64), dtype=np.float32)
    reads = []

    def block(b, block_info=None):
        reads.append((threading.current_thread(), block_info[0]["chunk-location"][0]))
        return b

    lazy = da.from_array(stack, chunks=(1, 64, 64)).map_blocks(block, dtype=stack.dtype)
    folder = tmp_path / "home" / "autosave"
    with dask.config.set(scheduler="synchronous"):  # blocks are read by the thread that asks
        widget.viewer.add_image(lazy, name="lazy")
        widget.image_combo.setCurrentText("lazy")
        layer = widget.pick_image()
        for stroke in range(2):
            layer.paint((0, 30, 30 + 10 * stroke), 1)
            qtbot.waitUntil(lambda: any(folder.glob("*/scribbles/0.tif")), timeout=3000)
            assert widget.ctl.wait_idle()
    on_gui = {z for thread, z in reads if thread is threading.main_thread()}
    assert len(on_gui) < stack.shape[0]  # the shown slice(s), not the stack
    assert np.array_equal(read_array(next(folder.glob("*/images/0.tif"))), stack)
    by_writer = [z for thread, z in reads if thread.name.startswith("frugalseg-autosave")]
    assert sorted(by_writer) == list(range(stack.shape[0]))  # once, at the first stroke


def test_a_failed_autosave_is_said_and_the_strokes_stay(widget, qtbot, monkeypatch, tmp_path, blobs):
    """The disk refusing an autosave (full, read-only) after a stroke: a message saying so and
    what to do, the stroke kept in its layer, no traceback; Save session the same."""
    import errno

    from napari_frugalseg._napari import persistence

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "scribbles/0.tif")

    monkeypatch.setattr(persistence, "save_session", full)
    layer = blobs(widget)
    layer.paint((100, 100), 2)
    qtbot.waitUntil(lambda: "autosave of the scribbles failed" in widget.status.text(), timeout=3000)
    assert "(scribbles/0.tif: No space left on device)" in widget.status.text()
    assert "save the session into another folder" in widget.status.text()
    assert layer.data[100, 100] == 2
    assert widget.files.save_session(tmp_path / "s") is None  # Save session on that disk: said too
    assert widget.status.text() == "scribbles/0.tif: No space left on device"


def test_class_table_drives_layer_colours(widget, blobs):
    layer = blobs(widget)
    prediction = widget.viewer.layers["blobs prediction"]
    kept = layer.colormap, prediction.colormap
    widget.pick_image()  # unchanged colours are not set again (a new colormap costs a redraw)
    assert layer.colormap is kept[0] and prediction.colormap is kept[1]
    widget.classes.add_class()
    assert [c.name for c in widget.ctl.classes][-1] == "class 3"
    widget.classes.set_color(2, "#00ff00")
    for labels in (layer, prediction):
        assert np.allclose(labels.colormap.map(np.array([3]))[0][:3], (0, 1, 0))
    widget.classes.remove_class()
    assert len(widget.ctl.classes) == 2
    assert widget.accept_class.count() == 3  # "all classes" + 2


def test_two_images_train_one_model_and_accept_and_instances(widget, qtbot, paint, train_steps, blobs):
    first = blobs(widget)
    image = widget.viewer.layers["blobs"].data
    widget.viewer.add_image(image[::-1].copy(), name="flipped")
    widget.image_combo.setCurrentText("flipped")
    widget.scribble_combo.setCurrentText("<new scribble layer>")
    second = widget.pick_image()
    paint(second, first.data[::-1], step=3)
    widget.ctl.forget_edits()
    train_steps(widget, 40)
    assert widget.ctl._train_names == ["blobs", "flipped"]
    assert widget.predict_all()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=20000)
    before = int((second.data > 0).sum())
    widget.accept_class.setCurrentIndex(2)  # blob only
    n = widget.accept()
    assert n > 0 and int((second.data > 0).sum()) == before + n
    second.undo()
    assert int((second.data > 0).sum()) == before
    widget.object_class.setCurrentIndex(1)
    objects = widget.make_instances()
    assert objects.data.max() >= 20  # blobs has ~60 objects


def test_finished_runs_leave_nothing_behind(widget, qtbot, blobs):
    """Train / Stop again and again in one session: each run's trainer (its copy of the
    images, optimizer state and worker) is freed when the run ends, so memory does not grow
    with the number of runs (only the model is kept)."""
    blobs(widget)
    runs = []
    for _ in range(2):
        assert widget.train(seconds=30)
        qtbot.waitUntil(lambda: widget.ctl.trainer is not None and widget.ctl.trainer.step >= 3,
                        timeout=30000)
        runs.append(weakref.ref(widget.ctl.trainer))
        widget.ctl.stop()
        qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=5000)
    def freed() -> bool:
        gc.collect()
        return [run() for run in runs] == [None, None]

    qtbot.waitUntil(freed, timeout=3000)  # the thread pool may hold the last worker a moment
    assert widget.ctl.model is not None


def test_a_stroke_while_idle_continues_training_from_the_model(widget, qtbot, train_steps, blobs):
    layer = blobs(widget)
    train_steps(widget, 5)
    model, n = widget.ctl.model, len(widget.ctl.history)
    widget.ctl.change_settings(auto_continue=True, continue_seconds=2)
    layer.paint((120, 40), 1)
    qtbot.waitUntil(lambda: widget.ctl.state == "training", timeout=3000)
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)
    assert widget.ctl.model is model  # the same network, trained further
    # ... at the continuation's learning rate (a quarter), so new strokes refine, not shake it
    first, more = widget.ctl.history[:n], widget.ctl.history[n:]
    full = TrainConfig().learning_rate
    assert more and max(h["lr"] for h in first) > full / 2
    assert max(h["lr"] for h in more) <= full / 4 + 1e-12


def test_the_3d_view_previews_the_stack_not_one_slice(widget, qtbot, train_steps):
    """In napari's 3D view the whole stack is on screen: the live preview fills every slice
    of it (a small stack; a large one as many slices around the current one as fit in
    PREVIEW_PIXELS_3D), where it filled the current slice alone; accepting the prediction takes
    those slices too."""
    from napari_frugalseg._napari import layers

    rng = np.random.default_rng(0)
    stack = rng.random((6, 64, 64), np.float32)
    stack[:, 20:44, 20:44] += 1
    widget.viewer.add_image(stack, name="stack")
    widget.image_combo.setCurrentText("stack")
    layer = widget.pick_image()
    layer.data[2, 28:36, 28:36] = 2
    layer.data[2, 2:6, 2:60] = 1
    widget.ctl.forget_edits()
    widget.viewer.dims.ndisplay = 3
    _train_and_preview(widget, qtbot, train_steps, steps=20)
    shown = widget.viewer.layers["stack prediction"].data
    assert all((shown[z] > 0).all() for z in range(6))
    strokes = layer.data.copy()  # accepting takes what the 3D view shows, as one undoable edit
    widget.accept_class.setCurrentIndex(0)  # all classes
    assert widget.accept() == (strokes == 0).sum()
    assert (layer.data > 0).all() and np.array_equal(layer.data[strokes > 0], strokes[strokes > 0])
    layer.undo()
    np.testing.assert_array_equal(layer.data, strokes)
    big = widget.viewer.add_image(np.zeros((40, 512, 512), np.float32), name="big")  # 4 slices fit
    assert layers.shown_slab(big, 39) == (36, 4) and layers.shown_slab(big, 1) == (0, 4)


def test_accepting_inside_a_shapes_region_takes_that_region_of_the_current_slice(widget):
    """"inside" a Shapes layer: the prediction goes into the scribbles within the shapes, on the
    slice on screen only, of the chosen class only, and strokes already there stay."""
    widget.viewer.add_image(np.zeros((3, 64, 64), np.float32), name="stack")
    widget.image_combo.setCurrentText("stack")
    strokes = widget.pick_image()
    strokes.data[1, 15, 15] = 1  # a stroke inside the region, of the other class
    prediction = np.full((3, 64, 64), 2, np.uint8)
    prediction[:, :, 25:] = 1
    widget.viewer.layers["stack prediction"].data = prediction  # made with the scribbles
    widget.viewer.dims.set_point(0, 1)
    widget.viewer.add_shapes([np.array([[10, 10], [10, 30], [30, 30], [30, 10]])], name="region")
    widget.accept_region.setCurrentText("region")
    widget.accept_class.setCurrentIndex(2)  # class 2 only
    n = widget.accept()
    taken = np.argwhere(strokes.data == 2)
    assert n == len(taken) > 0
    assert set(taken[:, 0]) == {1}  # the slice on screen
    assert taken[:, 1:].min() >= 10 and taken[:, 1].max() <= 30 and taken[:, 2].max() < 25
    assert (strokes.data[1, 11:30, 11:25] > 0).all()  # the region's inside, where class 2
    assert strokes.data[1, 15, 15] == 1  # an existing stroke is kept


def test_scrolling_a_stack_is_not_a_stroke_but_undo_is(widget, qtbot, tmp_path, monkeypatch):
    """With a model and "continue after each new stroke" on, moving to another slice or
    redrawing the scribbles must not start training; painting, undo and redo do."""
    from napari_frugalseg.core.bundle import save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model

    ctl = widget.ctl
    config = new_model_config(tuple(c.name for c in ctl.classes), 1, 2, patch=32, width=4, depth=2)
    save_bundle(tmp_path / "m", build_model(config), config)
    widget.files.load_model(tmp_path / "m")
    assert widget.ctl.wait_idle()
    widget.viewer.add_image(np.random.default_rng(0).random((3, 64, 64), np.float32), name="stack")
    widget.image_combo.setCurrentText("stack")
    layer = widget.pick_image()
    ctl.change_settings(auto_continue=True)
    asked = []
    monkeypatch.setattr(ctl, "train", lambda *a, **k: asked.append(1))
    saved = []
    monkeypatch.setattr(persistence, "autosave", lambda c, image: saved.append(image.name))

    def edits_after(action) -> int:
        asked.clear()
        action()
        qtbot.wait(600)  # past the 300 ms debounce
        return len(asked)

    assert edits_after(lambda: widget.viewer.dims.set_current_step(0, 2)) == 0
    assert edits_after(layer.refresh) == 0
    assert edits_after(lambda: ctl.set_classes(ctl.classes)) == 0  # recolours the layer
    assert not saved
    assert edits_after(lambda: layer.paint((2, 10, 10), 1)) == 1 and saved == ["stack"]
    assert edits_after(layer.undo) == 1 and not layer.data.any()
    assert edits_after(layer.redo) == 1 and layer.data.any()
    assert edits_after(lambda: widget.viewer.dims.set_current_step(0, 0)) == 0


def test_predict_all_stops_and_3d_model_on_2d_image_is_refused(widget, qtbot, tmp_path):
    from napari_frugalseg.core.bundle import save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model

    stack = np.random.default_rng(0).random((40, 96, 96), np.float32)
    widget.viewer.add_image(stack, name="stack")
    widget.viewer.add_image(stack[0], name="plane")
    config = new_model_config(("a", "b"), 1, 3, depth_of_stacks=8, patch=32, width=4, depth=2)
    save_bundle(tmp_path / "m3d", build_model(config), config)
    widget.files.load_model(tmp_path / "m3d")
    assert widget.ctl.wait_idle()
    assert widget.ndim_combo.currentIndex() == 1  # the widget shows the model's kind
    widget.image_combo.setCurrentText("plane")
    assert not widget.predict_all()
    assert "a 3D model cannot segment a 2D image" in widget.status.text()
    widget.image_combo.setCurrentText("stack")
    assert widget.predict_all()
    widget.ctl.stop()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=5000)
    assert widget.status.text() == "prediction of 'stack' stopped; its layers keep what they showed before"
    # an image removed while it is predicted: said, and nothing made for it
    widget.image_combo.setCurrentText("stack")
    assert widget.predict_all()
    widget.viewer.layers.remove("stack")
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=30000)
    assert "image 'stack' was removed while it was predicted" in widget.status.text()
    assert [layer.name for layer in widget.viewer.layers] == ["plane"]


def test_predict_and_export_every_image_layer(widget, qtbot, tmp_path):
    """With *every image layer* ticked, Predict all goes through the image layers one after
    the other (one the model cannot take is skipped and named; Stop ends the series) and
    Export masks writes each image's mask, named after it."""
    from napari_frugalseg.core.bundle import save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model

    viewer = widget.viewer
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        viewer.add_image(rng.random((48, 40), np.float32), name=name)
    viewer.add_image(rng.random((48, 40, 3), np.float32), name="colour", rgb=True)
    config = new_model_config(tuple(c.name for c in widget.ctl.classes), 1, 2, patch=32, width=4, depth=2)
    save_bundle(tmp_path / "m", build_model(config), config)
    widget.files.load_model(tmp_path / "m")
    assert widget.ctl.wait_idle()
    widget.every_image.setChecked(True)
    assert widget.predict_all()
    qtbot.waitUntil(lambda: widget.status.text().startswith("predicted 2 image(s)"), timeout=30000)
    assert "'a', 'b'; skipped 'colour' (" in widget.status.text()
    assert "3 channel(s)" in widget.status.text()
    assert viewer.layers["a prediction"].data.min() > 0 and viewer.layers["b prediction"].data.min() > 0
    widget.files.format_combo.setCurrentText("tiff")
    widget.files.export_masks(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tif", "b.tif"]
    # Stop ends the series, and says how far it came
    viewer.add_image(rng.random((8, 512, 512), np.float32), name="a stack")
    viewer.layers.move(len(viewer.layers) - 1, 0)  # first in the series
    assert widget.predict_all()
    widget.ctl.stop()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)
    assert widget.status.text() == "stopped: predicted 0 image(s): none"
    assert "a stack prediction" not in viewer.layers
    # a (Y, C, X) layer read through a layer with its channel axis first: that one stands for it
    # (here skipped, 3 channels for a grey model), the original is not tried
    viewer.add_image(rng.random((48, 3, 40), np.float32), name="yc")
    widget.image_combo.setCurrentText("yc")
    widget.choose_channels(1)
    assert widget.predict_all()
    qtbot.waitUntil(lambda: widget.status.text().startswith("predicted 3 image(s)"), timeout=30000)
    assert "'yc (channels first)'" in widget.status.text() and "'yc' (" not in widget.status.text()
    np.testing.assert_array_equal(read_array(tmp_path / "out" / "b.tif"), viewer.layers["b prediction"].data)


def test_class_share_correction_can_be_turned_off(widget, qtbot, tmp_path):
    """Predict all corrects for each image's class shares unless the user unticks it."""
    import torch

    from napari_frugalseg.core.bundle import save_bundle
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model
    from napari_frugalseg.core.predict import predict_image, run_to_end

    torch.manual_seed(0)
    image = np.random.default_rng(0).random((64, 64), np.float32)
    # strokes that were 95 % class "a": an untrained, undecided model's image looks half "b"
    config = new_model_config(("a", "b"), 1, 2, patch=32, width=4, depth=2).replace(
        class_prior=(0.95, 0.05))
    model = build_model(config)
    save_bundle(tmp_path / "m", model, config)
    widget.viewer.add_image(image, name="img")
    widget.files.load_model(tmp_path / "m")
    assert widget.ctl.wait_idle()
    widget.image_combo.setCurrentText("img")

    def predicted():
        assert widget.predict_all()
        qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=20000)
        return np.asarray(widget.viewer.layers["img prediction"].data).copy()

    def expected(correct):
        return run_to_end(predict_image(model, config, image[None], "cpu", prior_correction=correct)).classes

    assert widget.guidance.shares.isChecked()  # on by default, as on the command line
    corrected, raw = expected(True), expected(False)
    assert not np.array_equal(corrected, raw)
    assert np.array_equal(predicted(), corrected)
    widget.guidance.shares.setChecked(False)
    assert not widget.ctl.settings.prior_correction
    assert np.array_equal(predicted(), raw)


def test_scale_jitter_and_edge_boxes_reach_the_training(widget, qtbot, blobs):
    from napari_frugalseg.core.config import EDGE_AFFINITY, SCALE_JITTER, TrainConfig

    blobs(widget)
    assert not widget.sizes_vary.isChecked()  # off unless asked: it costs on one-pixel-size images
    assert not widget.follow_edges.isChecked()  # off unless asked: it costs on skeleton strokes
    widget.sizes_vary.setChecked(True)
    widget.follow_edges.setChecked(True)
    assert widget.train(seconds=30)
    qtbot.waitUntil(lambda: widget.ctl.trainer is not None and widget.ctl.trainer.step >= 2, timeout=10000)
    trainer = widget.ctl.trainer
    assert trainer.train_config.scale_jitter == SCALE_JITTER
    assert trainer.train_config.affinity_weight == EDGE_AFFINITY != TrainConfig.affinity_weight
    running = [t for t in trainer.trainers if t.step]
    assert running and all(t.sampler.scale_jitter == SCALE_JITTER for t in running)
    widget.ctl.stop()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)


def test_training_choices_survive_a_session(widget, tmp_path, blobs):
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget
    from napari_frugalseg.core.config import EDGE_AFFINITY, SCALE_JITTER

    blobs(widget)
    widget.sizes_vary.setChecked(True)
    widget.follow_edges.setChecked(True)
    widget.imperfect.robust.setChecked(True)
    widget.ndim_combo.setCurrentIndex(1)  # 3D
    widget.files.save_session(tmp_path / "s")
    other = FrugalsegWidget(widget.viewer.__class__(show=False))
    try:
        assert not other.sizes_vary.isChecked() and not other.imperfect.robust.isChecked()
        assert not other.follow_edges.isChecked()
        other.files.open_session(tmp_path / "s")
        assert other.ctl.wait_idle()
        assert other.sizes_vary.isChecked() and other.imperfect.robust.isChecked()
        assert other.follow_edges.isChecked() and other.ctl.settings.affinity_weight == EDGE_AFFINITY
        assert other.ndim_combo.currentIndex() == 1 and other.ctl.settings.ndim == 3
        assert other.ctl.settings.scale_jitter == SCALE_JITTER and other.ctl.settings.robust_q > 0
    finally:
        other.viewer.close()


def test_export_never_writes_over_the_image_file(widget, tmp_path):
    """napari names a layer after its file, so a TIFF export into the image's own folder would
    have replaced the image with its mask."""
    import tifffile

    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, np.arange(64 * 64, dtype=np.uint16).reshape(64, 64))
    image = widget.viewer.open(str(path))[0]
    widget.viewer.add_labels(np.ones((64, 64), np.uint8), name="cells prediction")
    widget.image_combo.setCurrentText("cells")
    widget.files.format_combo.setCurrentText("tiff")
    before = path.read_bytes()
    with pytest.raises(FrugalsegError, match="over the image's own file"):
        persistence.export_masks(widget.ctl, image, tmp_path, "tiff")
    assert path.read_bytes() == before
    out = widget.files.export_masks(tmp_path / "masks")
    assert read_array(out).shape == (64, 64)
    # napari names a layer from cells.ome.tif 'cells.ome': its mask is cells.tif, no OME-TIFF
    image.name, widget.viewer.layers["cells prediction"].name = "cells.ome", "cells.ome prediction"
    widget.image_combo.setCurrentText("cells.ome")
    assert widget.files.export_masks(tmp_path / "masks").name == "cells.tif"


def test_a_session_that_does_not_fit_is_refused_whole(widget, tmp_path):
    """A session opened onto a viewer whose layer of an image's name is another layer, or
    whose image file changed shape since: one message naming both, and nothing added (before,
    a Labels layer of that name crashed it and another shape left half a session behind)."""
    import tifffile

    viewer = widget.viewer
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, np.zeros((64, 64), np.uint8))
    viewer.open(str(path), plugin="napari")
    widget.image_combo.setCurrentText("cells")
    widget.pick_image().data[2:5, 2:5] = 1
    widget.files.save_session(tmp_path / "s")
    viewer.layers.clear()
    for add, expected in ((viewer.add_image, "has scribbles of (64, 64), but the open layer 'cells' "
                                             "is (32, 32): close or rename"),
                          (viewer.add_labels, "the open layer 'cells' is a Labels layer, not the session's image")):
        add(np.zeros((32, 32), np.uint8), name="cells")
        widget.files.open_session(tmp_path / "s")
        assert widget.ctl.wait_idle()
        assert expected in widget.status.text()
        assert [layer.name for layer in viewer.layers] == ["cells"]
        viewer.layers.clear()
    tifffile.imwrite(path, np.zeros((80, 80), np.uint8))
    widget.files.open_session(tmp_path / "s")
    assert widget.ctl.wait_idle()
    assert "cells.tif is now (80, 80): the file changed since the session was saved" in widget.status.text()
    assert not len(viewer.layers)


def test_renaming_an_image_keeps_its_scribbles_and_its_training(widget, qtbot, paint, isbi):
    """Our layers are linked to their image by name: a rename (napari's layer list allows it
    at any time) must not orphan the scribbles, even while training runs."""
    image, _, scribbles = isbi
    viewer, ctl = widget.viewer, widget.ctl
    viewer.add_image(image[:256, :256], name="em")
    widget.image_combo.setCurrentText("em")
    paint(widget.pick_image(), scribbles[:256, :256])
    ctl.forget_edits()
    assert widget.train(seconds=30)
    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 1, timeout=20000)
    viewer.layers["em"].name = "cells"
    assert [layer.name for layer in viewer.layers] == [
        "cells", "cells scribbles", "cells prediction", "cells uncertainty", "cells disagreement"]
    assert widget.image_combo.currentText() == "cells"
    used = []
    ctl.strokes_used.connect(used.append)
    stroke = np.zeros(scribbles[:256, :256].shape, np.uint8)
    stroke[10:13, 10:60] = 2
    paint(viewer.layers["cells scribbles"], stroke, step=1)
    qtbot.waitUntil(lambda: bool(used), timeout=5000)  # the running training took the stroke
    ctl.stop()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=5000)
    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=20000)
    assert "predicted 'cells'" in widget.status.text()
    assert np.any(viewer.layers["cells prediction"].data)


def test_a_multiscale_image_trains_and_previews_at_full_resolution(widget, qtbot, paint, isbi, train_steps):
    """A pyramid layer (as OME-Zarr readers open them): napari reports the visible field in
    pixels of the level on screen, the preview must land in full-resolution pixels."""
    image, _, scribbles = isbi
    viewer, ctl = widget.viewer, widget.ctl
    viewer.add_image([image, image[::2, ::2], image[::4, ::4]], name="pyramid", multiscale=True)
    widget.image_combo.setCurrentText("pyramid")
    layer = widget.pick_image()
    assert layer.data.shape == image.shape
    paint(layer, scribbles)
    ctl.forget_edits()
    _train_and_preview(widget, qtbot, train_steps, steps=15)
    preview = viewer.layers["pyramid prediction"].data
    assert np.count_nonzero(preview) > 0.9 * preview.size  # the whole image is on screen


def test_a_pyramid_too_big_for_memory_is_refused_before_any_layer(widget, monkeypatch):
    """A whole-slide pyramid whose finest level would not fit in memory: a message naming the
    layer and its size, no layer made for it; a pyramid that fits is taken."""
    from napari_frugalseg._napari import layers

    viewer = widget.viewer
    big = np.zeros((4096, 4096), np.uint8)
    viewer.add_image([big, big[::4, ::4], big[::16, ::16]], name="slide", multiscale=True)
    need = 4096 * 4096 * (layers.HELD_PER_PIXEL + layers.HELD_PER_CHANNEL)
    monkeypatch.setattr(layers, "available_bytes", lambda device=None: need)  # 0.8 of it is usable
    widget.image_combo.setCurrentText("slide")
    assert widget.pick_image() is None
    text = widget.status.text()
    assert "layer 'slide': its finest level (4096 x 4096 px)" in text and "GiB is free" in text
    assert [layer.name for layer in viewer.layers] == ["slide"] and widget.ctl.image is None
    from napari_frugalseg.core.config import ModelConfig
    from napari_frugalseg.core.model import build_model

    widget.ctl.config = ModelConfig(classes=("a", "b"), width=4, depth=2)
    widget.ctl.models = [build_model(widget.ctl.config)]
    assert not widget.predict_all()  # Predict all on it, never picked: the same message
    assert "layer 'slide': its finest level" in widget.status.text()
    monkeypatch.setattr(layers, "available_bytes", lambda device=None: 2 * need)
    assert widget.pick_image().data.shape == (4096, 4096)


def test_predict_all_on_layers_of_fewer_channels_than_the_model(widget, qtbot):
    from napari_frugalseg.core.config import ModelConfig
    from napari_frugalseg.core.model import build_model

    widget.viewer.add_image(np.random.default_rng(0).random((40, 48), np.float32), name="grey")
    widget.image_combo.setCurrentText("grey")
    widget.ctl.config = ModelConfig(classes=("a", "b"), in_channels=3, width=4, depth=2)
    widget.ctl.models = [build_model(widget.ctl.config)]
    assert widget.predict_all()
    qtbot.waitUntil(lambda: widget.ctl.state == "idle", timeout=10000)
    assert "predicted 'grey'" in widget.status.text()
    assert widget.viewer.layers["grey prediction"].data.shape == (40, 48)
    # a model of 2 channels, a (2, Y, X) layer read as a stack: the message names the choice
    widget.viewer.add_image(np.zeros((2, 40, 48), np.float32), name="pair")
    widget.image_combo.setCurrentText("pair")
    widget.ctl.config = widget.ctl.config.replace(in_channels=2)
    widget.ctl.models = [build_model(widget.ctl.config)]
    assert not widget.predict_all()
    assert "choose 'axis 0' under channels" in widget.status.text()


def test_a_layer_whose_first_axis_holds_channels(widget, qtbot, tmp_path, train_steps):
    """Two channel layers (noise, the blobs sample) merged as napari's *Merge to stack* does,
    a (2, Y, X) layer, read as two channels of one plane when axis 0 is chosen as channels: the
    scribbles are one plane, the model takes both channels and finds the blobs from the
    sample's real strokes; the reading survives a session; it cannot change once layers were
    made for the other reading."""
    from napari.layers import Image
    from napari.layers.utils.stack_utils import images_to_stack

    from napari_frugalseg._napari.widgets.main import FrugalsegWidget
    from napari_frugalseg.core.io import read_array
    from napari_frugalseg.core.samples import demo_sample

    viewer, ctl = widget.viewer, widget.ctl
    image_path, strokes_path, truth = demo_sample()
    blobs = read_array(image_path).astype(np.float32)
    noise = np.random.default_rng(0).random(blobs.shape).astype(np.float32) * 255
    merged = images_to_stack([Image(noise, name="two"), Image(blobs, name="blobs")])
    viewer.add_layer(merged)
    widget.image_combo.setCurrentText("two")
    widget._image_chosen()
    assert ctl.scribbles(viewer.layers["two"]).data.shape == (2, *blobs.shape)  # a 2-slice stack
    combo = widget.channels_combo
    assert combo.isEnabled() and combo.currentData() is None
    assert [combo.itemText(i) for i in range(combo.count())] == ["none (grey)", "axis 0 (2)"]
    assert widget.choose_channels(0) is None  # refused: layers were made for the stack
    assert "delete them to read its first axis as channels" in widget.status.text()
    assert combo.currentData() is None
    assert "'two disagreement' were made for 'two'" in widget.status.text()
    for name in ("two scribbles", "two prediction", "two uncertainty", "two disagreement"):
        viewer.layers.remove(name)
    widget.choose_channels(0)
    assert combo.currentData() == 0
    layer = ctl.scribbles(viewer.layers["two"])
    assert layer.data.shape == blobs.shape
    layer.data = read_array(strokes_path).astype(layer.data.dtype)
    ctl.forget_edits()
    ctl.change_settings(patch_size=32)  # quick steps: the channels are the point, not context
    train_steps(widget, 60)
    assert ctl.config.in_channels == 2
    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=20000)
    found, true = viewer.layers["two prediction"].data == 2, truth == 2
    assert 2 * (found & true).sum() / (found.sum() + true.sum()) > 0.6  # 0.83-0.91 seen (32 px patches, 60 steps)
    widget.files.save_session(tmp_path / "s")
    other = FrugalsegWidget(viewer.__class__(show=False))
    try:
        other.files.open_session(tmp_path / "s")
        assert other.ctl.wait_idle()
        assert other.ctl.scribbles(other.viewer.layers["two"]).data.shape == blobs.shape
        assert other.channels_combo.currentData() == 0 and other.ctl.config.in_channels == 2
    finally:
        other.viewer.close()


def test_a_fiji_stack_of_channels_opened_by_napari(widget, qtbot, tmp_path, train_steps):
    """A Fiji hyperstack (Z, C, Y, X) of a noise channel and the blobs sample, opened by
    napari's own reader as one 4D layer: picked, it is read by the axes its file declares, in a
    new layer with the channels first (the same pixels, not copied; the file's layer hidden), so
    that the scribbles are (Z, Y, X); strokes on one slice train a 2-channel model that finds
    the blobs on both slices; masks are exported under the file's name; a session reopens it the
    same way from the file."""
    import tifffile

    from napari_frugalseg._napari.widgets.main import FrugalsegWidget
    from napari_frugalseg.core.io import read_array
    from napari_frugalseg.core.samples import demo_sample

    viewer, ctl = widget.viewer, widget.ctl
    image_path, strokes_path, truth = demo_sample()
    blobs = read_array(image_path).astype(np.float32)
    noise = np.random.default_rng(0).random(blobs.shape).astype(np.float32) * 255
    zcyx = np.stack([np.stack([noise, blobs]), np.stack([noise[::-1], blobs])])
    path = tmp_path / "cells.tif"
    tifffile.imwrite(path, zcyx, imagej=True, metadata={"axes": "ZCYX"})
    [opened] = viewer.open(path, plugin="napari")
    assert opened.data.shape == (2, 2, *blobs.shape)
    widget.image_combo.setCurrentText("cells")
    widget._image_chosen()
    moved = viewer.layers["cells (channels first)"]
    assert ctl.image is moved and widget.image_combo.currentText() == moved.name
    assert moved.data.shape == (2, 2, *blobs.shape) and np.shares_memory(moved.data, opened.data)
    assert moved.data[1, 0].max() == blobs.max() and not opened.visible
    assert widget.channels_combo.currentData() == 0
    assert "declares channels on axis 1" in widget.status.text()
    layer = ctl.scribbles(moved)
    assert layer.data.shape == (2, *blobs.shape) and ctl.scribbles(opened) is None
    layer.data[0] = read_array(strokes_path)
    ctl.forget_edits()
    ctl.change_settings(patch_size=32)  # quick steps: the channels are the point, not context
    train_steps(widget, 60)
    assert ctl.config.in_channels == 2
    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=20000)
    for z in (0, 1):
        found, true = viewer.layers["cells (channels first) prediction"].data[z] == 2, truth == 2
        assert 2 * (found & true).sum() / (found.sum() + true.sum()) > 0.6
    exported = widget.files.export_masks(tmp_path / "masks")  # named after the file, as it was opened
    assert exported.name == "cells.tif" and read_array(exported).shape == (2, *blobs.shape)
    widget.files.save_session(tmp_path / "s")
    other = FrugalsegWidget(viewer.__class__(show=False))
    try:
        other.files.open_session(tmp_path / "s")
        assert other.ctl.wait_idle()
        reopened = other.viewer.layers["cells (channels first)"]
        assert reopened.data.shape == moved.data.shape
        np.testing.assert_array_equal(reopened.data, moved.data)
        assert other.ctl.scribbles(reopened).data.shape == (2, *blobs.shape)
        assert other.channels_combo.currentData() == 0
    finally:
        other.viewer.close()


def test_choosing_another_image_gives_it_its_own_scribbles(widget):
    """Two images of one shape: choosing the second makes its own scribble layer; the first
    keeps its strokes (before, the scribbles of the image chosen before were taken over); a
    Labels layer of no image chosen first serves the image chosen next, but not one named
    after another image (as a sample's scribbles are)."""
    viewer = widget.viewer
    for name in ("a", "b", "c", "d", "e"):
        viewer.add_image(np.zeros((40, 48), np.float32), name=name)
    for name in ("annot", "e scribbles"):
        viewer.add_labels(np.zeros((40, 48), np.uint8), name=name)

    def scribbles_after(labels: str, image: str) -> str:
        """Choose the Labels layer ``labels``, then the image: the name of its scribbles."""
        widget.scribble_combo.setCurrentText(labels)
        widget.image_combo.setCurrentText(image)
        widget._image_chosen()
        return widget.ctl.scribbles(viewer.layers[image]).name

    assert scribbles_after("", "a") == "a scribbles"
    widget.ctl.scribbles(viewer.layers["a"]).data[5, 5] = 1
    assert scribbles_after("a scribbles", "b") == "b scribbles"
    assert widget.ctl.scribbles(viewer.layers["a"]).data[5, 5] == 1
    assert scribbles_after("annot", "c") == "annot"
    assert scribbles_after("e scribbles", "d") == "d scribbles"


def test_adding_a_class_keeps_the_model_and_its_training(widget, qtbot, paint, train_steps, blobs):
    """A class added to the table while training runs: the run goes on (its model cannot take
    the new class's strokes), and the next Train keeps what the model learned, with a new
    output layer, instead of starting from scratch."""
    from napari_frugalseg._napari import layers, training_inputs
    from napari_frugalseg._napari.state import ClassSpec

    layer, ctl = blobs(widget), widget.ctl
    assert widget.train(seconds=60)
    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 5, timeout=20000)
    ctl.set_classes(ctl.classes + [ClassSpec("third", "#ffff00")])
    stroke = np.zeros(layer.data.shape, np.uint8)
    stroke[5:8, 5:40] = 3
    paint(layer, stroke, step=1)
    qtbot.waitUntil(lambda: "class table changed" in widget.status.text(), timeout=5000)
    assert ctl.state == "training"  # the run went on
    ctl.stop()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=5000)
    assert ctl.model is not None and ctl.config.n_classes == 2
    learned = {k: v.clone() for k, v in ctl.model.state_dict().items()}

    config = training_inputs.model_config(ctl, [layers.image_array(widget.current_image())])
    assert config.n_classes == 3
    kept = ctl.model.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in learned.items() if not k.startswith("head."))
    assert kept["head.weight"].shape[0] == 3
    assert torch.equal(kept["head.weight"][:2], learned["head.weight"])  # known classes' rows
    train_steps(widget, 5)
    assert ctl.config.n_classes == 3 and "trained" in widget.status.text()


def test_erasing_every_stroke_during_training_keeps_the_model(widget, qtbot, blobs):
    layer, ctl = blobs(widget), widget.ctl
    assert widget.train(seconds=60)
    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 5, timeout=20000)
    layer.data = np.zeros_like(layer.data)
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=10000)
    assert ctl.model is not None  # the steps trained before are not lost
    assert "stopped: no labelled pixel" in widget.status.text()


def test_closing_the_panel_stops_training_and_reopening_finds_the_model(make_napari_viewer, qtbot, blobs):
    """napari's close button takes the panel out (and the widget may be deleted): training
    stops with its model kept, nothing trains unseen after a stroke, layer events reach no
    deleted widget, and the panel opened again shows the same model and classes."""
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    viewer = make_napari_viewer()
    widget = FrugalsegWidget(viewer)
    dock = viewer.window.add_dock_widget(widget)
    layer, ctl = blobs(widget), widget.ctl
    assert widget.train(seconds=60)
    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 3, timeout=20000)
    viewer.window.remove_dock_widget(dock)  # what the panel's close button does
    widget.deleteLater()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=5000)
    assert ctl.model is not None
    layer.data[5:8, 5:40] = 1  # a stroke with the panel closed: saved, not trained on
    layer.events.data()
    viewer.add_image(np.zeros((8, 8), np.float32), name="later")  # reaches no deleted widget
    qtbot.wait(600)  # past the stroke's debounce
    assert ctl.state == "idle"
    again = FrugalsegWidget(viewer)
    viewer.window.add_dock_widget(again)
    assert again.ctl is ctl and again.ctl.model is not None
    assert [c.name for c in again.classes.classes()] == [c.name for c in ctl.classes]
    again.ctl.stop()


def test_strokes_on_images_of_different_channels_say_which_to_erase(widget):
    viewer, rng = widget.viewer, np.random.default_rng(0)
    for name, data, rgb in (("colour", rng.random((32, 32, 3)), True), ("grey", rng.random((32, 32)), False)):
        viewer.add_image(data.astype(np.float32), name=name, rgb=rgb)
        widget.image_combo.setCurrentText(name)
        layer = widget.pick_image()
        layer.data[2:5, 2:20], layer.data[20:25, 2:20] = 1, 2
    assert not widget.train(seconds=5)
    assert ("image 'grey' has 1 channel(s) but 'colour' has 3" in widget.status.text()
            and "erase the strokes of 'grey scribbles'" in widget.status.text())


def test_a_3d_model_trains_on_a_time_series_of_stacks_stack_by_stack(widget, qtbot, paint, train_steps):
    """A (T, Z, Y, X) layer and a 3D model: strokes on one time point train it, the preview
    lands on the slice on screen, Predict all segments each stack (the unlabelled one too),
    objects are made stack by stack and suggestions point at a slice of a stack."""
    rng = np.random.default_rng(0)
    series = rng.normal(0, 0.3, (2, 6, 64, 64)).astype(np.float32)
    truth = np.zeros((6, 64, 64), bool)
    truth[1:5, 12:28, 12:28] = truth[1:5, 36:52, 30:50] = True  # two boxes in each stack
    series[:, truth] += 2
    viewer, ctl = widget.viewer, widget.ctl
    viewer.add_image(series, name="series")
    widget.image_combo.setCurrentText("series")
    widget.ndim_combo.setCurrentIndex(1)  # 3D
    layer = widget.pick_image()
    strokes = np.zeros(series.shape, np.uint8)
    strokes[1, 2, 20, 14:26] = strokes[1, 3, 44, 32:48] = 2  # time point 1 only
    strokes[1, 2, 4, 4:60] = strokes[1, 3, 32, 4:60] = 1
    paint(layer, strokes, step=1)
    ctl.forget_edits()
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 2)
    ctl.change_settings(patch_size=32)  # 6 x 32 x 32 patches: quick 3D steps
    _train_and_preview(widget, qtbot, train_steps, steps=40)
    assert ctl.config.ndim == 3
    prediction = viewer.layers["series prediction"].data
    painted = [(t, z) for t in range(2) for z in range(6) if prediction[t, z].any()]
    assert painted == [(1, 2)]  # the preview is of the slice on screen only

    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=30000)
    for t in range(2):
        found = prediction[t] == 2
        dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
        assert dice > 0.7, (t, dice)  # calling all of it box scores 0.17

    widget.object_class.setCurrentIndex(1)
    objects = widget.make_instances().data
    first, second = (set(np.unique(objects[t][truth])) - {0} for t in range(2))
    assert first and second and first.isdisjoint(second)  # no object spans two time points

    widget.guidance.count.setValue(2)
    assert widget.guidance.suggest()
    qtbot.waitUntil(lambda: "series label here next" in viewer.layers, timeout=30000)
    squares = np.asarray(viewer.layers["series label here next"].data[0])
    assert squares.shape == (4, 4) and tuple(viewer.dims.current_step[:2]) == tuple(squares[0, :2].astype(int))


def test_a_time_series_of_stacks_trains_slice_by_slice(widget, qtbot, paint, isbi, tmp_path, train_steps):
    """A (T, Z, Y, X) layer: strokes on one plane train a 2D model; the preview lands on the
    plane on screen, Predict all fills every plane, and accepting, instances, suggestions and
    export each work on the time point and slice they are asked for."""
    from napari_frugalseg.core.export import read_mask

    image, truth, scribbles = isbi
    quarters = [(slice(a, a + 256), slice(b, b + 256)) for a in (0, 256) for b in (0, 256)]
    series = np.stack([image[q] for q in quarters]).reshape(2, 2, 256, 256)
    truths = np.stack([truth[q] for q in quarters]).reshape(2, 2, 256, 256)
    viewer, ctl = widget.viewer, widget.ctl
    viewer.add_image(series, name="series")
    widget.image_combo.setCurrentText("series")
    layer = widget.pick_image()
    strokes = np.zeros(series.shape, np.uint8)
    strokes[1, 0] = scribbles[quarters[2]]  # time point 1, slice 0 only
    paint(layer, strokes)
    ctl.forget_edits()
    viewer.dims.set_current_step(0, 1)
    viewer.dims.set_current_step(1, 0)
    _train_and_preview(widget, qtbot, train_steps, steps=100)
    prediction = viewer.layers["series prediction"].data
    painted = [(t, z) for t in range(2) for z in range(2) if prediction[t, z].any()]
    assert painted == [(1, 0)]  # the preview is of the plane on screen only

    assert widget.predict_all()
    qtbot.waitUntil(lambda: ctl.state == "idle", timeout=30000)
    membrane = prediction == 1
    for t, z in np.ndindex(2, 2):  # every plane segmented, unpainted ones too
        true = truths[t, z] == 1
        dice = 2 * (membrane[t, z] & true).sum() / (membrane[t, z].sum() + true.sum())
        assert dice > 0.45, (t, z, dice)  # all membrane would score 0.36

    viewer.dims.set_current_step(0, 0)
    viewer.dims.set_current_step(1, 1)
    before = np.asarray(layer.data).copy()
    assert widget.accept() > 0
    changed = np.argwhere(np.asarray(layer.data) != before)
    assert {tuple(p[:2]) for p in changed} == {(0, 1)}  # into the plane on screen

    widget.object_class.setCurrentIndex(1)  # cell interiors
    objects = widget.make_instances()
    assert objects.data.shape == series.shape and objects.data[0, 1].max() > 5

    widget.guidance.count.setValue(3)
    assert widget.guidance.suggest()
    qtbot.waitUntil(lambda: "series label here next" in viewer.layers, timeout=30000)
    squares = viewer.layers["series label here next"]
    first = np.asarray(squares.data[0])
    assert first.shape == (4, 4) and len(np.unique(first[:, :2], axis=0)) == 1
    assert tuple(viewer.dims.current_step[:2]) == tuple(first[0, :2].astype(int))  # went there

    widget.files.format_combo.setCurrentText("png")
    out = widget.files.export_masks(tmp_path)
    assert sorted(p.name for p in out.iterdir())[:2] == ["slice_0000_0000.png", "slice_0000_0001.png"]
    assert np.array_equal(read_mask(out), prediction)


def test_a_label_file_loaded_while_training_runs_goes_into_that_training(widget, qtbot, paint, isbi, tmp_path):
    """Files are read off the GUI thread; a label file, unlike a model or a session, may be
    read while training runs, and the running training takes its strokes up."""
    from napari_frugalseg.core.io import write_tiff

    image, _, scribbles = isbi
    ctl = widget.ctl
    widget.viewer.add_image(image[:128, :128], name="em")
    widget.image_combo.setCurrentText("em")
    paint(widget.pick_image(), scribbles[:128, :128])
    ctl.forget_edits()
    assert widget.train(seconds=60)
    qtbot.waitUntil(lambda: ctl.trainer is not None and ctl.trainer.step >= 1, timeout=20000)
    used = []
    ctl.strokes_used.connect(used.append)
    labels = np.zeros((128, 128), np.uint8)
    labels[100:103, 10:60] = 2
    write_tiff(tmp_path / "em_labels.tif", labels)
    assert widget.files.load_scribbles(tmp_path / "em_labels.tif")
    assert not widget.files.load_model(tmp_path)  # a model may not replace the one in training
    assert "busy" in widget.status.text()
    qtbot.waitUntil(lambda: bool(used), timeout=10000)
    assert "loaded 150 labelled pixels from em_labels.tif" in widget.status.text()
    assert ctl.state == "training"
    ctl.stop()


def test_load_scribbles_from_a_label_file_merges_grows_the_table_and_undoes(widget, tmp_path):
    """A label file of the command line's kind (or an annotation tool's palette PNG, whose
    indices are the classes) goes into the chosen image's scribbles: its labelled pixels over
    the strokes, strokes elsewhere kept, the table grown to its classes, one undo."""
    from PIL import Image as PILImage

    from napari_frugalseg.core.io import write_tiff

    widget.viewer.add_image(np.random.default_rng(0).random((40, 50), np.float32), name="cells")
    widget.image_combo.setCurrentText("cells")
    layer = widget.pick_image()
    layer.data_setitem((np.array([1, 30]), np.array([1, 30])), np.array([1, 2], layer.data.dtype))
    labels = np.zeros((40, 50), np.uint8)
    labels[10:12, 5:20], labels[20, 5:20], labels[30, 30] = 2, 3, 0
    png = PILImage.fromarray(labels, mode="P")
    png.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])  # shown as colours, indices are classes
    png.save(tmp_path / "cells_annotations.png")

    assert widget.files.load_scribbles(tmp_path / "cells_annotations.png")
    assert widget.ctl.wait_idle()
    assert [c.name for c in widget.ctl.classes][-1] == "class 3" and len(widget.ctl.classes) == 3
    assert widget.accept_class.itemText(3) == "3: class 3"  # the panel shows the new class
    assert layer.data[10, 5] == 2 and layer.data[20, 19] == 3
    assert layer.data[1, 1] == 1 and layer.data[30, 30] == 2  # strokes where the file has none
    assert "45 labelled pixels" in widget.status.text() and "1 class added" in widget.status.text()
    layer.undo()
    assert layer.data[10, 5] == 0 and layer.data[1, 1] == 1

    write_tiff(tmp_path / "other_labels.tif", np.ones((40, 40), np.uint8))
    write_tiff(tmp_path / "empty_labels.tif", np.zeros((40, 50), np.uint8))
    for name, expected in (("other_labels.tif", "other_labels.tif: labels have shape (40, 40) but "
                                                "image 'cells' has spatial shape (40, 50)"),
                           ("empty_labels.tif", "empty_labels.tif: no labelled pixel"),
                           ("missing.tif", "missing.tif: no such file")):
        widget.files.load_scribbles(tmp_path / name)
        assert widget.ctl.wait_idle()
        assert expected in widget.status.text()
    assert layer.data[10, 5] == 0 and layer.data[1, 1] == 1  # nothing written by a refused file
