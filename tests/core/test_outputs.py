"""Masks on disk, sessions and instances: what a user gets back out."""

import json

import numpy as np
import pytest
from skimage.draw import disk

from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.export import FORMATS, mask_path, read_mask, write_mask
from napari_frugalseg.core.instances import instances
from napari_frugalseg.core.session import Session, SessionImage, load_session, save_session


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("shape", [(40, 50), (3, 40, 50), (2, 3, 40, 50)])
def test_masks_round_trip_in_every_format(tmp_path, fmt, shape):
    mask = np.random.default_rng(0).integers(0, 4, shape).astype(np.uint8)
    path = write_mask(mask_path(tmp_path, "cells", fmt), mask, fmt)
    assert path.name.startswith("cells")
    back = read_mask(path)
    assert back.shape == mask.shape and np.array_equal(back, mask)


def test_unknown_mask_format_is_named(tmp_path):
    with pytest.raises(FrugalsegError, match="unknown mask format 'jpeg'"):
        write_mask(tmp_path / "x", np.zeros((4, 4), np.uint8), "jpeg")


@pytest.mark.parametrize("fmt", ["png", "ome-zarr"])
def test_a_mask_folder_replaces_an_earlier_export_but_not_other_files(tmp_path, fmt):
    path = mask_path(tmp_path, "cells", fmt)
    write_mask(path, np.ones((2, 8, 8), np.uint8), fmt)
    write_mask(path, np.full((8, 8), 2, np.uint8), fmt)  # over the earlier export
    np.testing.assert_array_equal(read_mask(path), np.full((8, 8), 2))
    (path / "notes.txt").write_text("precious")
    with pytest.raises(FrugalsegError, match="holds other files"):
        write_mask(path, np.ones((8, 8), np.uint8), fmt)
    assert (path / "notes.txt").read_text() == "precious"


def test_touching_objects_are_split_and_specks_dropped():
    classes = np.ones((60, 80), np.int32)
    for center in [(30, 20), (30, 36), (10, 68)]:  # two touching discs and a lone one
        classes[disk(center, 9, shape=classes.shape)] = 2
    classes[55, 5] = 2  # a one-pixel speck
    objects = instances(classes, [2])
    assert objects.max() == 3
    assert objects[30, 20] != objects[30, 36] and objects[30, 20] and objects[30, 36]
    assert objects[55, 5] == 0
    stack = instances(np.stack([classes, classes]), [2], slicewise=True)
    assert len(np.unique(stack[stack > 0])) == 6  # ids stay unique across slices
    volume = np.stack([classes] * 4)
    alone = instances(volume, [2])
    series = instances(np.stack([volume, volume]), [2], slicewise=True)  # stack by stack
    assert np.array_equal(series[0], alone) and np.array_equal(series[1] > 0, alone > 0)
    assert set(np.unique(series[1])).isdisjoint(np.unique(alone[alone > 0]))  # no object spans both


def test_session_round_trip_with_and_without_image_files(tmp_path):
    import tifffile

    source = tmp_path / "a.tif"
    tifffile.imwrite(source, np.zeros((8, 8), np.uint8))
    scrib = np.zeros((8, 8), np.int32)
    scrib[1, 1], scrib[5, 5] = 1, 2
    pixels = np.arange(64, dtype=np.float32).reshape(8, 8)
    session = Session(
        [SessionImage("a", scrib, source=str(source)), SessionImage("b", scrib * 0, data=pixels)],
        [{"name": "bg", "color": "#000000"}, {"name": "cell", "color": "#ff0000"}],
        {"ndim": 2},
    )
    save_session(tmp_path / "s", session)
    back = load_session(tmp_path / "s")
    assert [im.name for im in back.images] == ["a", "b"]
    assert np.array_equal(back.images[0].scribbles, scrib) and back.images[0].source == str(source)
    assert np.array_equal(back.images[1].data, pixels)
    assert back.classes == session.classes and back.settings == {"ndim": 2}
    assert [im.channel_axis for im in back.images] == [None, None]
    session.images[0].channel_axis = 1  # e.g. a Fiji (Z, C, Y, X) file's
    save_session(tmp_path / "s", session)
    assert load_session(tmp_path / "s").images[0].channel_axis == 1
    index = tmp_path / "s" / "session.json"  # as written before channel axes: first or none
    meta = json.loads(index.read_text())
    for item, first in zip(meta["images"], (True, False)):
        del item["channel_axis"]
        item["channels_first"] = first
    index.write_text(json.dumps(meta))
    assert [im.channel_axis for im in load_session(tmp_path / "s").images] == [0, None]
    source.unlink()
    with pytest.raises(FrugalsegError, match="image 'a' was opened from .*a.tif, which is gone"):
        load_session(tmp_path / "s")
    with pytest.raises(FrugalsegError, match="not a frugalseg session"):
        load_session(tmp_path)
