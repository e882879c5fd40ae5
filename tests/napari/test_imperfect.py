"""Imperfect labels in the plugin: complete classes, annotators' consensus, robust loss."""

import numpy as np
import pytest

from napari_frugalseg.core.errors import FrugalsegError


def _image(widget, shape=(64, 64)):
    rng = np.random.default_rng(0)
    widget.viewer.add_image(rng.random(shape, np.float32), name="img")
    widget.image_combo.setCurrentText("img")
    return widget.pick_image()


def test_complete_classes_turn_unlabelled_pixels_into_a_marginal_code(widget):
    from napari_frugalseg._napari import imperfect
    from napari_frugalseg._napari.state import ClassSpec

    widget.ctl.set_classes([ClassSpec(n, c) for n, c in
                            (("a", "#ff0000"), ("b", "#00ff00"), ("c", "#0000ff"))])
    layer = _image(widget)
    layer.data[:10] = 1
    widget.viewer.add_shapes([np.array([[0, 0], [0, 32], [32, 32], [32, 0]])], name="region")
    widget.imperfect.refresh()
    widget.imperfect.set_complete([1], region="region")
    assert layer.metadata[imperfect.COMPLETE] == [1]
    sets: list[list[int]] = []
    coded, weights = imperfect.coded_labels(widget.viewer, layer, 3, sets)
    assert sets == [[2, 3]] and weights is None
    assert coded[0, 0] == 1 and coded[20, 20] == 4  # "one of b, c" inside the region
    assert coded[50, 50] == 0  # outside the region: still unlabelled
    widget.imperfect.set_complete([1, 2])  # everywhere; only c is left
    coded, _ = imperfect.coded_labels(widget.viewer, layer, 3, [])
    assert coded[50, 50] == 3


def test_merging_annotators_gives_consensus_agreement_and_reliability(widget, qtbot):
    _image(widget)
    truth = np.ones((64, 64), np.uint8)
    truth[16:48, 16:48] = 2
    rng = np.random.default_rng(1)
    layers = []
    for i, p in enumerate((0.02, 0.05, 0.35)):
        a = truth.copy()
        flip = rng.random(a.shape) < p
        a[flip] = 3 - a[flip]
        layers.append(widget.viewer.add_labels(a, name=f"annotator {i + 1}"))
    widget.viewer.layers.selection = set(layers)
    result = widget.imperfect.merge()
    consensus = widget.viewer.layers["img consensus"]
    assert (consensus.data == truth).mean() > 0.97
    assert "img agreement" in widget.viewer.layers
    text = widget.imperfect.reliability.text()
    assert text.count("sensitivity") == 3 and result.sensitivity[2, 1] < result.sensitivity[0, 1]
    # the consensus trains, its pixels weighted by agreement
    widget.scribble_combo.setCurrentText("img consensus")
    widget.pick_image()
    from napari_frugalseg._napari import training_inputs

    names, _, _, weights = training_inputs.gather(widget.ctl, [])
    assert names == ["img"] and weights is not None and weights[0].shape == (64, 64)


def test_merging_needs_two_matching_layers(widget):
    _image(widget)
    one = widget.viewer.add_labels(np.ones((64, 64), np.uint8), name="only")
    assert widget.imperfect.merge([one]) is None
    assert "at least two Labels layers" in widget.status.text()
    other = widget.viewer.add_labels(np.ones((32, 32), np.uint8), name="small")
    assert widget.imperfect.merge([one, other]) is None
    assert "layer 'small' has shape (32, 32)" in widget.status.text()


def test_robust_loss_is_selectable(widget):
    widget.imperfect.robust.setChecked(True)
    assert widget.ctl.settings.robust_q == 0.7


def test_complete_classes_survive_a_session(widget, tmp_path):
    from napari_frugalseg._napari import imperfect
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    layer = _image(widget)
    layer.data[:5] = 1
    widget.imperfect.set_complete([2])
    widget.files.save_session(tmp_path / "s")
    other = FrugalsegWidget(widget.viewer.__class__(show=False))
    try:
        other.files.open_session(tmp_path / "s")
        assert other.ctl.wait_idle()
        assert other.viewer.layers["img scribbles"].metadata[imperfect.COMPLETE] == [2]
    finally:
        other.viewer.close()


def test_regions_declare_their_own_classes_and_conflicts_are_refused(widget):
    from napari_frugalseg._napari import imperfect
    from napari_frugalseg._napari.state import ClassSpec

    widget.ctl.set_classes([ClassSpec(n, c) for n, c in
                            (("a", "#ff0000"), ("b", "#00ff00"), ("c", "#0000ff"))])
    layer = _image(widget)
    layer.data[:2, 30:] = 1
    layer.data[62:, :30] = 2
    square = lambda y, x, s: np.array([[y, x], [y, x + s], [y + s, x + s], [y + s, x]])  # noqa: E731
    regions = widget.viewer.add_shapes([square(0, 0, 20), square(40, 40, 20)], shape_type="rectangle",
                                       name="regions")
    imperfect.declare_complete(layer, [1], regions, shapes=[0])  # first square: a complete
    imperfect.declare_complete(layer, [1, 2], regions, shapes=[1])  # second: a and b
    assert imperfect.shape_sets(regions) == [[1], [1, 2]]
    sets: list[list[int]] = []
    coded, _ = imperfect.coded_labels(widget.viewer, layer, 3, sets)
    assert sets == [[2, 3]]
    assert coded[10, 10] == 4 and coded[50, 50] == 3 and coded[30, 30] == 0
    regions.add_rectangles(square(10, 10, 40))  # a new shape declares nothing
    assert imperfect.shape_sets(regions)[2] == []
    imperfect.declare_complete(layer, [2], regions, shapes=[2])  # overlaps both, other classes
    with pytest.raises(FrugalsegError, match="shape 1 of layer 'regions' and shape 3 of layer "
                       "'regions' overlap but declare different complete classes"):
        imperfect.coded_labels(widget.viewer, layer, 3, [])
    assert widget.train(seconds=5) is False
    assert "overlap but declare different complete classes" in widget.status.text()


def test_regions_with_their_classes_survive_a_session(widget, tmp_path):
    from napari_frugalseg._napari import imperfect
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    layer = _image(widget)
    layer.data[:5] = 1
    layer.data[60:] = 2
    tri = np.array([[10, 10], [10, 50], [50, 10]])
    regions = widget.viewer.add_shapes([tri], shape_type="polygon", name="regions")
    imperfect.declare_complete(layer, [2], regions)
    expected, _ = imperfect.coded_labels(widget.viewer, layer, 2, [])
    widget.files.save_session(tmp_path / "s")
    other = FrugalsegWidget(widget.viewer.__class__(show=False))
    try:
        other.files.open_session(tmp_path / "s")
        assert other.ctl.wait_idle()
        restored = other.viewer.layers["regions"]
        assert imperfect.shape_sets(restored) == [[2]] and list(restored.shape_type) == ["polygon"]
        coded, _ = imperfect.coded_labels(other.viewer, other.viewer.layers["img scribbles"], 2, [])
        np.testing.assert_array_equal(coded, expected)
        assert coded[20, 20] == 1  # inside the triangle: "not 2" is class 1
    finally:
        other.viewer.close()
