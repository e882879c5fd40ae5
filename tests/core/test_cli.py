"""The command-line contract: train / predict / demo and one-line errors for bad input."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_frugalseg.cli import main
from napari_frugalseg.core.samples import sample_path
from napari_frugalseg.core.bundle import load_bundle
from napari_frugalseg.core.export import read_mask

FAST = ["--max-steps", "3", "--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2"]


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    img = (rng.random((48, 40)) * 100).astype(np.uint16)
    img[10:30, 10:30] += 500
    lab = np.zeros((48, 40), np.uint8)
    lab[20, 12:28] = 2
    lab[40, 2:38] = 1
    paths = {"img": tmp_path / "a.tif", "lab": tmp_path / "a_labels.tif"}
    tifffile.imwrite(paths["img"], img)
    tifffile.imwrite(paths["lab"], lab)
    return paths


def _train(files, out, *extra):
    return main(["train", "--image", str(files["img"]), "--labels", str(files["lab"]), "--out", str(out), *FAST, *extra])


def test_train_then_predict_writes_class_values(tmp_path, files, capsys):
    assert _train(files, tmp_path / "m") == 0
    assert load_bundle(tmp_path / "m").config.n_classes == 2
    png = tmp_path / "b.png"
    import imageio.v3 as iio

    iio.imwrite(png, (tifffile.imread(files["img"]) // 4).astype(np.uint8))
    rc = main(["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]), str(png),
               "--out", str(tmp_path / "out"), "--probabilities"])
    assert rc == 0
    mask = tifffile.imread(tmp_path / "out" / "a.tif")
    assert mask.shape == (48, 40) and set(np.unique(mask)) <= {1, 2}
    assert tifffile.imread(tmp_path / "out" / "b.tif").shape == (48, 40)
    probs = tifffile.imread(tmp_path / "out" / "a_probabilities.tif")
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-4)


def test_predict_averages_over_flips_unless_told_not_to(tmp_path, files):
    """Masks come from the mean of the image's four flips by default (nnU-Net does the same);
    --no-tta predicts in one pass."""
    from napari_frugalseg.core.io import read_image
    from napari_frugalseg.core.predict import predict_image, run_to_end

    assert _train(files, tmp_path / "m") == 0
    bundle = load_bundle(tmp_path / "m")
    written = {}
    for flag, tta in [([], True), (["--no-tta"], False)]:
        out = tmp_path / f"out_{tta}"
        assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]),
                     "--out", str(out), "--probabilities", *flag]) == 0
        written[tta] = tifffile.imread(out / "a_probabilities.tif")
        want = run_to_end(predict_image(bundle.models, bundle.config, read_image(files["img"]),
                                        probabilities=True, tta=tta)).probabilities
        np.testing.assert_allclose(written[tta], want.reshape(written[tta].shape), atol=1e-5)
    assert np.abs(written[True] - written[False]).max() > 1e-3


def test_palette_png_labels_give_their_indices_not_their_colours(tmp_path, files):
    """Annotation tools save label images as indexed-colour PNGs: the indices are the classes."""
    from PIL import Image

    png = Image.fromarray(tifffile.imread(files["lab"]), mode="P")
    png.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255])  # class 1 red, class 2 blue
    png.save(tmp_path / "a_labels.png")
    assert main(["train", "--image", str(files["img"]), "--labels", str(tmp_path / "a_labels.png"),
                 "--out", str(tmp_path / "m"), *FAST]) == 0
    assert load_bundle(tmp_path / "m").config.n_classes == 2


def test_labels_with_an_extra_axis_of_one_fit_their_image(tmp_path, files):
    """A (1, Y, X) label file for a (Y, X) image, as some tools save a single plane, and the
    other way round, trains; the axes of length 1 say nothing about which pixel is which."""
    lab = tifffile.imread(files["lab"])
    tifffile.imwrite(tmp_path / "one_labels.tif", lab[None])
    tifffile.imwrite(tmp_path / "one.tif", tifffile.imread(files["img"])[None])
    for image, labels in [(files["img"], tmp_path / "one_labels.tif"), (tmp_path / "one.tif", files["lab"])]:
        assert main(["train", "--image", str(image), "--labels", str(labels), "--out", str(tmp_path / "m"),
                     *FAST]) == 0


def test_predict_a_folder_of_images(tmp_path, files, capsys):
    """A folder given as --image stands for its image files (other files left alone, and the
    label files of its images: a folder may hold both, as for training)."""
    assert _train(files, tmp_path / "m") == 0
    folder = tmp_path / "in"
    folder.mkdir()
    img = tifffile.imread(files["img"])
    for name in ("x.tif", "y.tif", ".hidden.tif", "y_labels.tif", "z_scribbles.tif"):
        tifffile.imwrite(folder / name, img)
    (folder / "notes.txt").write_text("not an image")
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(folder), "--out",
                 str(tmp_path / "out")]) == 0
    # z_scribbles.tif is no image's labels here: an image of that name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.tif", "y.tif", "z_scribbles.tif"]
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "empty"),
                           "--out", str(tmp_path / "o2")], "empty", "no image file")


def test_train_from_folders_pairs_images_with_their_labels(tmp_path, files, capsys):
    """--image DIR --labels DIR: labels named after their images (same stem or + _labels),
    images without labels left out with a note; one folder may hold both."""
    img, lab = tifffile.imread(files["img"]), tifffile.imread(files["lab"])
    images, labels, both = tmp_path / "images", tmp_path / "labels", tmp_path / "both"
    for folder in (images, labels, both):
        folder.mkdir()
    for name in ("a", "b", "c"):
        tifffile.imwrite(images / f"{name}.tif", img)
        tifffile.imwrite(both / f"{name}.tif", img)
    tifffile.imwrite(labels / "a_labels.tif", lab)
    tifffile.imwrite(labels / "b.tif", lab[::-1])
    tifffile.imwrite(both / "c_labels.tif", lab)
    assert main(["train", "--image", str(images), "--labels", str(labels), "--out", str(tmp_path / "m"),
                 *FAST]) == 0
    assert "note: 1 image(s) without labels left out: c.tif" in capsys.readouterr().out
    assert main(["train", "--image", str(both), "--labels", str(both), "--out", str(tmp_path / "m2"),
                 *FAST]) == 0
    assert "note: 2 image(s) without labels left out: a.tif, b.tif" in capsys.readouterr().out
    tifffile.imwrite(labels / "b_labels.tif", lab)
    _expect_error(capsys, ["train", "--image", str(images), "--labels", str(labels), "--out",
                           str(tmp_path / "m3"), *FAST], "two label files for image 'b'")


def test_warm_start_from_an_earlier_model(tmp_path, files):
    assert _train(files, tmp_path / "m1") == 0
    assert _train(files, tmp_path / "m2", "--init", str(tmp_path / "m1")) == 0


def test_stack_with_2d_and_3d_models(tmp_path):
    rng = np.random.default_rng(1)
    stack = rng.random((6, 32, 32)).astype(np.float32)
    stack[:, 8:24, 8:24] += 1
    lab = np.zeros(stack.shape, np.uint8)
    lab[2, 16, 10:22] = 2
    lab[4, 2, :] = 1
    tifffile.imwrite(tmp_path / "s.tif", stack)
    tifffile.imwrite(tmp_path / "s_lab.tif", lab)
    for ndim in ("2", "3"):
        m = tmp_path / f"m{ndim}"
        assert main(["train", "--image", str(tmp_path / "s.tif"), "--labels", str(tmp_path / "s_lab.tif"),
                     "--out", str(m), "--ndim", ndim, *FAST]) == 0
        assert main(["predict", "--model", str(m), "--image", str(tmp_path / "s.tif"), "--out", str(tmp_path / ndim)]) == 0
        assert tifffile.imread(tmp_path / ndim / "s.tif").shape == (6, 32, 32)


def _bad(tmp_path, name, array):
    path = tmp_path / name
    tifffile.imwrite(path, array)
    return path


def _expect_error(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("frugalseg: error:"), err
    for f in fragments:
        assert f in err[0]


def test_bad_training_input(tmp_path, files, capsys):
    img = str(files["img"])
    out = tmp_path / "never"
    cases = [
        ([str(tmp_path / "missing.tif")], [str(files["lab"])], ["missing.tif", "no such file"]),
        ([img], [str(_bad(tmp_path, "shape.tif", np.ones((10, 10), np.uint8)))], ["shape.tif", "shape"]),
        ([img], [str(_bad(tmp_path, "rgb.tif", np.ones((48, 40, 3), np.uint8)))], ["rgb.tif", "saved as colours?"]),
        ([img], [str(_bad(tmp_path, "empty.tif", np.zeros((48, 40), np.uint8)))], ["empty.tif", "no labelled pixel"]),
        ([img], [str(_bad(tmp_path, "one.tif", np.ones((48, 40), np.uint8)))], ["one.tif", "only class 1"]),
        ([img], [str(_bad(tmp_path, "neg.tif", -np.ones((48, 40), np.int16)))], ["neg.tif", "negative"]),
        ([img], [str(_bad(tmp_path, "frac.tif", np.full((48, 40), 0.5, np.float32)))], ["frac.tif", "whole numbers"]),
        ([str(_bad(tmp_path, "nan.tif", np.pad(np.full((48, 2), np.nan, np.float32), ((0, 0), (38, 0)))))],
         [str(files["lab"])], ["nan.tif", "96 NaN", "first at index (0, 38)"]),
    ]
    (tmp_path / "garbage.tif").write_bytes(b"not a tiff")
    cases.append(([str(tmp_path / "garbage.tif")], [str(files["lab"])], ["garbage.tif", "cannot be read"]))
    for images, labels, fragments in cases:
        _expect_error(capsys, ["train", "--image", *images, "--labels", *labels, "--out", str(out), *FAST], *fragments)
    for option, fragments in [(["--affinity", "-1"], ["affinity"]), (["--robust", "2"], ["robust"]),
                              (["--batch-size", "0"], ["batch_size"]), (["--scale-jitter", "1"], ["scale_jitter"]),
                              (["--affinity", "nan"], ["affinity"]), (["--max-seconds", "nan"], ["max_seconds"]),
                              (["--seed", "-1"], ["seed"]), (["--width", "0"], ["width"]),
                              (["--depth", "7"], ["7 poolings", "128 px"]), (["--patch-size", "0"], ["(0, 0) px"])]:
        _expect_error(capsys, ["train", "--image", img, "--labels", str(files["lab"]), "--out", str(out),
                               *FAST, *option], *fragments)
    assert not out.exists()


def test_bad_prediction_input_leaves_no_output(tmp_path, files, capsys):
    assert _train(files, tmp_path / "m") == 0
    capsys.readouterr()
    rgb = _bad(tmp_path, "rgb.tif", np.zeros((48, 40, 3), np.uint8))
    out = tmp_path / "out"
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]), str(rgb),
                           "--out", str(out)], "rgb.tif", "3 channel(s)", "expects 1")
    assert not any(out.glob("*.tif")) if out.exists() else True
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "nomodel"), "--image", str(files["img"]),
                           "--out", str(out)], "nomodel", "no model folder")
    (tmp_path / "scan.czi").write_bytes(b"ZISRAWFILE")
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "scan.czi"),
                           "--out", str(out)], "scan.czi", "unsupported file type", "saved as (OME-)TIFF")
    for option in (["--propose", "-1"], ["--propose", "3", "--propose-size", "0"]):
        _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]),
                               "--out", str(out), *option], "--propose", "square side >= 1 px")
    m3 = tmp_path / "m3"
    stack = _bad(tmp_path, "st.tif", np.random.default_rng(0).random((4, 32, 32)).astype(np.float32))
    lab = np.zeros((4, 32, 32), np.uint8)
    lab[1, 3, :] = 1
    lab[1, 20, :] = 2
    assert main(["train", "--image", str(stack), "--labels", str(_bad(tmp_path, "stl.tif", lab)), "--out", str(m3),
                 "--ndim", "3", *FAST]) == 0
    capsys.readouterr()
    _expect_error(capsys, ["predict", "--model", str(m3), "--image", str(files["img"]), "--out", str(out)],
                  "a.tif", "3D model cannot segment a 2D image")


def test_a_full_disk_is_one_line_and_leaves_no_output(tmp_path, files, capsys, monkeypatch):
    """The system refusing a write (here: no space left, on the second mask) is a one-line
    error like bad input, and the masks written before it are removed."""
    import errno

    from napari_frugalseg.core import io

    assert _train(files, tmp_path / "m") == 0
    other = tmp_path / "b.tif"
    other.write_bytes(files["img"].read_bytes())
    atomic_write, calls = io.atomic_write, []

    def full(path, write):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return atomic_write(path, write)

    monkeypatch.setattr(io, "atomic_write", full)
    capsys.readouterr()
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]), str(other),
                           "--out", str(tmp_path / "out")], "b.tif: No space left on device")
    assert not list((tmp_path / "out").glob("*.tif"))


def test_outputs_never_replace_the_users_files(tmp_path, files, capsys):
    """A model goes into a new or empty folder or over an earlier model, never over a folder of
    other files (swapping the new folder in deleted them) or a file; a mask never over its
    input; no output into a folder that is a file."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    _expect_error(capsys, ["train", "--image", str(files["img"]), "--labels", str(files["lab"]),
                           "--out", str(mine), *FAST], "mine", "holds other files", "notes.txt")
    assert (mine / "notes.txt").read_text() == "precious" and len(list(mine.iterdir())) == 1
    _expect_error(capsys, ["train", "--image", str(files["img"]), "--labels", str(files["lab"]),
                           "--out", str(files["img"]), *FAST], "a.tif", "is a file")
    assert _train(files, tmp_path / "m") == 0 and _train(files, tmp_path / "m", "--seed", "1") == 0  # over a model
    assert load_bundle(tmp_path / "m").train_config.seed == 1
    capsys.readouterr()
    before = files["img"].read_bytes()
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]),
                           "--out", str(tmp_path)], "a.tif", "would be written over this input")
    assert files["img"].read_bytes() == before
    # an output folder that is a file (a traceback from mkdir before), for every command
    for command in (["predict", "--model", str(tmp_path / "m"), "--image", str(files["img"]), "--out",
                     str(files["lab"])],
                    ["train", "--image", str(files["img"]), "--labels", str(files["lab"]), "--out",
                     str(files["lab"] / "m"), *FAST],
                    ["consensus", "--labels", str(files["lab"]), str(files["lab"]), "--out",
                     str(files["lab"] / "c.tif")],
                    ["demo", "--out", str(files["lab"]), "--max-seconds", "1"]):
        _expect_error(capsys, command, "a_labels.tif: is a file, not a folder")


def test_class_values_without_pixels_are_kept_and_named(tmp_path, files, capsys):
    lab = tifffile.imread(files["lab"])
    lab[lab == 2] = 5  # values 1 and 5: classes 2-4 have no pixel
    assert main(["train", "--image", str(files["img"]), "--labels", str(_bad(tmp_path, "gap.tif", lab)),
                 "--out", str(tmp_path / "m"), *FAST]) == 0
    assert "no pixel of class(es) 2, 3, 4 is labelled" in capsys.readouterr().out
    assert load_bundle(tmp_path / "m").config.n_classes == 5


def test_channels_first_images_with_channel_axis(tmp_path, files, capsys):
    """A (C, Y, X) TIFF of 2 channels is read as a 2-slice stack unless --channel-axis says so."""
    img = tifffile.imread(files["img"])
    two = _bad(tmp_path, "two.tif", np.stack([img, img[::-1]]))
    assert main(["train", "--image", str(two), "--labels", str(files["lab"]), "--out", str(tmp_path / "m"),
                 "--channel-axis", "0", *FAST]) == 0
    assert load_bundle(tmp_path / "m").config.in_channels == 2
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(two), "--channel-axis", "0",
                 "--out", str(tmp_path / "o")]) == 0
    assert tifffile.imread(tmp_path / "o" / "two.tif").shape == (48, 40)
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(two),
                           "--out", str(tmp_path / "o")], "two.tif", "--channel-axis 0")  # read as a stack
    _expect_error(capsys, ["train", "--image", str(two), "--labels", str(files["lab"]), "--out",
                           str(tmp_path / "m2"), *FAST], "a_labels.tif", "--channel-axis 0")
    _expect_error(capsys, ["predict", "--model", str(tmp_path / "m"), "--image", str(two),
                           "--channel-axis", "5", "--out", str(tmp_path / "o")], "two.tif", "no channel axis 5")


def test_compressed_tiffs_as_instruments_save_them(tmp_path, files):
    """LZW (the common choice of microscope software), zstd and JPEG-compressed TIFFs train and
    predict like plain ones (tifffile alone decodes few codecs)."""
    image, labels = tifffile.imread(files["img"]), tifffile.imread(files["lab"])
    tifffile.imwrite(tmp_path / "lzw.tif", image, compression="lzw")
    tifffile.imwrite(tmp_path / "lzw_labels.tif", labels, compression="lzw")
    tifffile.imwrite(tmp_path / "zstd.tif", image, compression="zstd")
    tifffile.imwrite(tmp_path / "jpeg.tif", (image // 4).astype(np.uint8), compression="jpeg")
    assert main(["train", "--image", str(tmp_path / "lzw.tif"), "--labels", str(tmp_path / "lzw_labels.tif"),
                 "--out", str(tmp_path / "m"), *FAST]) == 0
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "zstd.tif"),
                 str(tmp_path / "jpeg.tif"), "--out", str(tmp_path / "o")]) == 0
    assert read_mask(tmp_path / "o" / "zstd.tif").shape == image.shape
    assert read_mask(tmp_path / "o" / "jpeg.tif").shape == image.shape


def test_axes_declared_by_imagej_and_ome_tiffs(tmp_path, files):
    """Fiji's hyperstacks and OME-TIFFs say which axis holds channels: a (C, Y, X) file of 2
    channels trains a 2-channel model without --channel-axis, a grey (T, Z, Y, X) file reads as
    a time series, not as channels; --channel-axis still overrides the file."""
    from napari_frugalseg.core.io import declared_axes, read_image

    img = tifffile.imread(files["img"])
    two = tmp_path / "two.tif"
    tifffile.imwrite(two, np.stack([img, img[::-1]]), imagej=True, metadata={"axes": "CYX"})
    assert main(["train", "--image", str(two), "--labels", str(files["lab"]), "--out", str(tmp_path / "m"),
                 *FAST]) == 0
    assert load_bundle(tmp_path / "m").config.in_channels == 2
    assert read_image(two, "none").shape == (1, 2, 48, 40)  # the option wins

    series = np.zeros((2, 3, 48, 40), np.uint16)
    for name, kind in (("series.tif", {"imagej": True}), ("series.ome.tif", {"ome": True})):
        tifffile.imwrite(tmp_path / name, series, metadata={"axes": "TZYX"}, **kind)
        assert read_image(tmp_path / name).shape == (1, 2, 3, 48, 40), name
    tifffile.imwrite(tmp_path / "zc.tif", np.zeros((3, 2, 48, 40), np.uint16), imagej=True,
                     metadata={"axes": "ZCYX"})
    assert read_image(tmp_path / "zc.tif").shape == (2, 3, 48, 40)
    tifffile.imwrite(tmp_path / "plain.tif", series)  # no axes declared: T read as 2 channels
    assert read_image(tmp_path / "plain.tif").shape == (2, 3, 48, 40)
    # the header alone (the plugin asks it of a layer's file); None where nothing is declared
    (tmp_path / "broken.tif").write_bytes(b"not a tiff")
    assert [declared_axes(tmp_path / n) for n in ("zc.tif", "series.ome.tif", "plain.tif", "broken.tif")] \
        == ["ZCYX", "TZYX", None, None]


def _ome_zarr(path, array, axes, version="0.4", wrapped=False):
    """An OME-Zarr image as other tools write it: NGFF 0.4 (Zarr v2) or 0.5 (Zarr v3, its
    metadata under "ome"), alone or as the first image of a bioformats2raw folder."""
    import zarr

    root = zarr.open_group(str(path), mode="w", zarr_format=3 if version == "0.5" else 2)
    if wrapped:
        root.attrs["bioformats2raw.layout"] = 3
        group = root.create_group("0")
    else:
        group = root
    group.create_array("s0", data=array)
    group.create_array("s1", data=array[..., ::2, ::2])
    image = {"version": version, "axes": [{"name": a} for a in axes],
             "datasets": [{"path": "s0"}, {"path": "s1"}]}
    group.attrs.update({"ome": {"version": version, "multiscales": [image]}} if version == "0.5"
                       else {"multiscales": [image]})


def test_ome_zarr_images(tmp_path, files, capsys):
    """OME-Zarr images are read at their finest level, by the axes they declare: a (C, Y, X)
    one of 2 channels trains a 2-channel model from the label image inside it; 0.4, 0.5 and
    bioformats2raw ones, alone or in a folder, are predicted into <name>.tif (cells, not
    cells.ome), or as OME-Zarr or PNG masks with --format; a Zarr group that is not an image
    is named in a one-line error."""
    img = tifffile.imread(files["img"])
    two = np.stack([img, img[::-1]])
    _ome_zarr(tmp_path / "cells.ome.zarr", two, "cyx")
    strokes = tmp_path / "cells.ome.zarr" / "labels" / "strokes"  # an OME-Zarr label image
    _ome_zarr(strokes, tifffile.imread(files["lab"]), "yx")
    assert main(["train", "--image", str(tmp_path / "cells.ome.zarr"), "--labels", str(strokes),
                 "--out", str(tmp_path / "m"), *FAST]) == 0
    assert load_bundle(tmp_path / "m").config.in_channels == 2
    folder = tmp_path / "in"
    folder.mkdir()
    _ome_zarr(folder / "v5.ome.zarr", two, "cyx", version="0.5")
    _ome_zarr(folder / "raw.zarr", two[None], "zcyx", wrapped=True)  # a one-slice stack
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "cells.ome.zarr"),
                 str(folder), "--out", str(tmp_path / "out")]) == 0
    assert tifffile.imread(tmp_path / "out" / "cells.tif").shape == (48, 40)
    assert tifffile.imread(tmp_path / "out" / "v5.tif").shape == (48, 40)
    assert tifffile.imread(tmp_path / "out" / "raw.tif").shape == (1, 48, 40)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "v5.tif"),
                                  tifffile.imread(tmp_path / "out" / "cells.tif"))
    for fmt in ("ome-zarr", "png"):  # the masks in the plugin's other export formats
        assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(folder / "raw.zarr"),
                     str(folder / "v5.ome.zarr"), "--out", str(tmp_path / fmt), "--format", fmt]) == 0
        for name in ("raw", "v5"):
            written = read_mask(tmp_path / fmt / (f"{name}.ome.zarr" if fmt == "ome-zarr" else name))
            truth = tifffile.imread(tmp_path / "out" / f"{name}.tif")
            np.testing.assert_array_equal(written, truth if fmt == "ome-zarr" else truth.squeeze())
    import zarr

    zarr.open_group(str(tmp_path / "empty.zarr"), mode="w")
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "empty.zarr"),
                 "--out", str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err
    assert "empty.zarr: cannot be read as an image (a Zarr group without OME-Zarr 'multiscales'" in err
    assert not (tmp_path / "out2").exists()


def test_a_grey_image_for_a_model_of_rgb_images(tmp_path, files, capsys):
    """A model trained on an RGB file of grey content takes the grey file of the same pixels
    (its value in each colour): the same mask, and a note; a grey 3-slice stack read with
    --channel-axis none is not mistaken for channels."""
    import imageio.v3 as iio

    grey = (tifffile.imread(files["img"]) // 4).astype(np.uint8)
    rgb = tmp_path / "rgb.png"
    iio.imwrite(rgb, np.stack([grey] * 3, -1))
    tifffile.imwrite(tmp_path / "grey.tif", grey)
    assert main(["train", "--image", str(rgb), "--labels", str(files["lab"]), "--out", str(tmp_path / "m"),
                 *FAST]) == 0
    assert load_bundle(tmp_path / "m").config.in_channels == 3
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(rgb), str(tmp_path / "grey.tif"),
                 "--out", str(tmp_path / "out")]) == 0
    assert "note: " + str(tmp_path / "grey.tif") + " is grey and the model takes RGB" in capsys.readouterr().out
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out" / "grey.tif"),
                                  tifffile.imread(tmp_path / "out" / "rgb.tif"))
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([grey] * 3))
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "stack.tif"),
                 "--out", str(tmp_path / "out2"), "--channel-axis", "none"]) == 0
    assert tifffile.imread(tmp_path / "out2" / "stack.tif").shape == (3, 48, 40)


def test_a_mask_as_the_image_trains_and_predicts(tmp_path, files):
    """A boolean image (a thresholded mask) is an image like any other (it raised a TypeError
    from numpy in the normalisation)."""
    mask = _bad(tmp_path, "mask.tif", tifffile.imread(files["img"]) > 300)
    assert main(["train", "--image", str(mask), "--labels", str(files["lab"]), "--out", str(tmp_path / "m"),
                 *FAST]) == 0
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(mask), "--out", str(tmp_path / "o")]) == 0
    assert tifffile.imread(tmp_path / "o" / "mask.tif").shape == (48, 40)


def test_ctrl_c_keeps_the_best_model(tmp_path):
    out = tmp_path / "m"
    cmd = [sys.executable, "-m", "napari_frugalseg", "train", "--image", str(sample_path("blobs.tif")),
           "--labels", str(sample_path("blobs_annotations.tif")), "--out", str(out), "--max-seconds", "120",
           "--width", "4", "--depth", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()  # "training a 2D U-Net ..." once the data is loaded
    assert "training" in line
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert "interrupted" in last and str(out) in last and "Traceback" not in stderr
    assert load_bundle(out).history


def test_demo_runs_and_reports_dice(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--max-seconds", "3"]) == 0
    text = capsys.readouterr().out
    assert "Dice against the reference" in text
    assert tifffile.imread(tmp_path / "demo" / "blobs.tif").shape == (254, 256)


def test_ensemble_uncertainty_and_proposals_from_the_cli(tmp_path, files, monkeypatch, capsys):
    import csv

    monkeypatch.setenv("FRUGALSEG_HOME", str(tmp_path / "home"))
    assert _train(files, tmp_path / "m", "--ensemble", "2", "--name", "blobs-ens") == 0
    assert len(load_bundle(tmp_path / "m").models) == 2
    out = tmp_path / "out"
    rc = main(["predict", "--model", "blobs-ens", "--image", str(files["img"]), "--out", str(out),
               "--uncertainty", "--propose", "2", "--propose-size", "16"])
    assert rc == 0
    unc = tifffile.imread(out / "a_uncertainty.tif")
    assert unc.shape == (48, 40) and tifffile.imread(out / "a_disagreement.tif").shape == (48, 40)
    rows = list(csv.DictReader(open(out / "uncertainty.csv")))
    assert rows == [{"image": "a", "score": rows[0]["score"]}]
    assert float(rows[0]["score"]) == pytest.approx(float(unc.mean()), abs=1e-5)
    props = list(csv.DictReader(open(out / "proposals.csv")))
    assert [p["rank"] for p in props] == ["1", "2"] and props[0]["z"] == ""
    assert float(props[0]["score"]) >= float(props[1]["score"])
    assert "label here next #1" in capsys.readouterr().out
    assert main(["models"]) == 0
    assert "blobs-ens: 2D, 1 channel(s)" in capsys.readouterr().out


def test_init_with_other_classes_gets_a_new_head_and_other_channels_fail(tmp_path, files, capsys):
    assert _train(files, tmp_path / "m1", "--classes", "bg", "blob") == 0
    three = tmp_path / "three.tif"
    lab = tifffile.imread(files["lab"]).copy()
    lab[5, 5:20] = 3
    tifffile.imwrite(three, lab)
    rc = main(["train", "--image", str(files["img"]), "--labels", str(three), "--out",
               str(tmp_path / "m2"), "--init", str(tmp_path / "m1"), "--classes", "bg", "blob",
               "edge", *FAST])
    assert rc == 0 and "new output head for bg, blob, edge" in capsys.readouterr().out
    assert load_bundle(tmp_path / "m2").config.classes == ("bg", "blob", "edge")
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((48, 40, 3), np.uint8))
    rc = main(["train", "--image", str(rgb), "--labels", str(files["lab"]), "--out",
               str(tmp_path / "m3"), "--init", str(tmp_path / "m1"), *FAST])
    err = capsys.readouterr().err
    assert rc == 2 and "model was trained on 1-channel images, these have 3" in err
    assert not (tmp_path / "m3").exists()


def test_sessions_lists_autosaves_and_removes_only_old_ones_when_asked(tmp_path, monkeypatch, capsys):
    from napari_frugalseg.core.session import Session, SessionImage, autosave_dir, save_session

    monkeypatch.setenv("FRUGALSEG_HOME", str(tmp_path / "home"))
    assert main(["sessions"]) == 0
    assert "no autosaved sessions" in capsys.readouterr().out
    strokes = np.zeros((8, 8), np.int32)
    strokes[2, 1:6] = 1
    for name in ("old", "recent"):
        save_session(autosave_dir() / name, Session([SessionImage(f"cells-{name}", strokes, data=strokes)], []))
    (Session.model_dir(autosave_dir() / "recent")).mkdir()
    (autosave_dir() / "crashed" / "scribbles").mkdir(parents=True)  # stopped before its index
    month_ago = time.time() - 40 * 86400
    for f in (autosave_dir() / "old").rglob("*"):
        os.utime(f, (month_ago, month_ago))

    assert main(["sessions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("old:") and "1 image(s) (cells-old), 5 labelled px" in lines[0]
    assert any(line.startswith("recent:") and "a model" in line for line in lines)
    assert any(line.startswith("crashed:") and "BROKEN" in line for line in lines)
    assert "3 session(s)" in lines[-1]

    assert main(["sessions", "--remove-older-than", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed old:" in out and "removed 1 autosaved session(s)" in out
    assert sorted(p.name for p in autosave_dir().iterdir()) == ["crashed", "recent"]
    for days in ("-1", "nan"):
        _expect_error(capsys, ["sessions", "--remove-older-than", days], "days")


def test_a_time_series_of_stacks_with_a_3d_model(tmp_path, capsys):
    """(T, Z, Y, X) grey files with --channel-axis none: strokes on one time point train a 3D
    model, predict writes a (T, Z, Y, X) mask that finds the cube in the other time point, and
    proposals name a time point and slice; a 2D model takes it plane by plane. Without the
    option the 4D file reads as channels and the error says what to do."""
    rng = np.random.default_rng(0)
    series = rng.random((2, 6, 40, 40)).astype(np.float32)
    series[:, 1:5, 10:30, 10:30] += 2
    lab = np.zeros(series.shape, np.uint8)
    lab[1, 2, 15:25, 20] = 2
    lab[1, 2, 2, :] = 1
    image, labels = tmp_path / "t.tif", tmp_path / "t_lab.tif"
    tifffile.imwrite(image, series)
    tifffile.imwrite(labels, lab)
    train = ["train", "--image", str(image), "--labels", str(labels), "--max-steps", "30",
             "--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2"]
    _expect_error(capsys, train + ["--out", str(tmp_path / "x"), "--ndim", "3"], "--channel-axis none")
    # a 2D model takes the series plane by plane
    assert main(train[:5] + [*FAST, "--out", str(tmp_path / "m2"), "--channel-axis", "none"]) == 0
    assert main(["predict", "--model", str(tmp_path / "m2"), "--image", str(image), "--out",
                 str(tmp_path / "out2"), "--channel-axis", "none", "--probabilities"]) == 0
    assert tifffile.imread(tmp_path / "out2" / "t.tif").shape == (2, 6, 40, 40)
    assert tifffile.imread(tmp_path / "out2" / "t_probabilities.tif").shape == (2, 2, 6, 40, 40)
    assert main(train + ["--out", str(tmp_path / "m"), "--ndim", "3", "--channel-axis", "none"]) == 0
    capsys.readouterr()
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(image), "--out",
                 str(tmp_path / "out"), "--channel-axis", "none", "--propose", "2"]) == 0
    mask = tifffile.imread(tmp_path / "out" / "t.tif")
    assert mask.shape == (2, 6, 40, 40) and set(np.unique(mask)) <= {1, 2}
    truth = np.ones((6, 40, 40), np.uint8)
    truth[1:5, 10:30, 10:30] = 2
    found, true = mask[0] == 2, truth == 2
    assert 2 * (found & true).sum() / (found.sum() + true.sum()) > 0.5  # calling all cube: 0.29
    assert "label here next #1: time point " in capsys.readouterr().out
