import numpy as np
import pytest

from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.labels import (
    as_label_array,
    check_training_labels,
    split_strokes,
    strokes,
)


def _scribbles():
    lab = np.zeros((60, 60), np.int32)
    for i in range(6):
        lab[5 + 9 * i, 5:20] = 1  # six class-1 strokes
    for i in range(4):
        lab[5 + 9 * i, 40:55] = 2  # four class-2 strokes
    lab[55, 40:45] = 3  # a single class-3 stroke
    return lab


def test_split_holds_out_whole_strokes_and_keeps_every_class():
    lab = _scribbles()
    (train,), (val,) = split_strokes([lab], 0.4)
    assert val.any()
    np.testing.assert_array_equal(np.where(val > 0, val, train), lab)  # nothing lost
    assert not np.logical_and(train > 0, val > 0).any()
    ids, _ = strokes(lab)
    for s in np.unique(ids[val > 0]):
        assert (val[ids == s] > 0).all()  # a held-out stroke is held out whole
    assert set(np.unique(train)) == {0, 1, 2, 3}
    assert not (val == 3).any()  # a lone stroke always trains


def test_stray_dots_are_never_held_out():
    # the maize scribbles of real_scribbles/: one stroke of class 2 and a single stray pixel;
    # holding out the pixel made the held-out score 0 (or 1) whatever the model did
    lab = _scribbles()
    for i in range(20):
        lab[2 + 3 * i, 30] = 1  # stray clicks of class 1
    lab[40, 5:25] = 3
    lab[50, 20] = 3  # class 3: a real stroke and a dot
    for salt in range(10):
        (train,), (val,) = split_strokes([lab], 0.9, salt=salt)
        assert not val[:, 30].any()
        assert not (val == 3).any()
        assert (train[40, 5:25] == 3).all()


def test_split_is_stable_when_strokes_are_added():
    lab = _scribbles()
    (_,), (val,) = split_strokes([lab], 0.4)
    more = lab.copy()
    more[58, 5:30] = 1
    (_,), (val2,) = split_strokes([more], 0.4)
    np.testing.assert_array_equal(val2[:57], val[:57])


@pytest.mark.parametrize(
    "labels,message",
    [
        (np.array([[0, 1], [2, -1]]), "negative"),
        (np.array([[0, 1.5], [2, 0]]), "whole numbers"),
        (np.array([[0, np.nan], [2, 0]]), "NaN"),
        (np.array([["a", "b"]]), "integers"),
    ],
)
def test_bad_label_values(labels, message):
    with pytest.raises(FrugalsegError, match=message) as err:
        as_label_array(labels, "x.tif")
    assert "x.tif" in str(err.value)


def test_float_labels_with_whole_values_are_accepted():
    assert as_label_array(np.array([[0.0, 2.0]]), "m.tif").dtype == np.int32


def test_training_labels_need_labels_and_two_classes():
    with pytest.raises(FrugalsegError, match="no labelled pixel"):
        check_training_labels([np.zeros((4, 4), int)], ["empty.tif"])
    with pytest.raises(FrugalsegError, match="only class 1"):
        check_training_labels([np.eye(4, dtype=int)], ["one.tif"])
    assert check_training_labels([np.eye(4, dtype=int), 3 * np.eye(4, dtype=int)], ["a", "b"]) == 3
