"""Partial-class labels: the marginal loss, its limits and gradients; dataset specs."""

import json

import numpy as np
import pytest
import tifffile
import torch

from napari_frugalseg.core.dataset_spec import load_dataset
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.losses import (
    allowed_table, exclusion_loss, marginal_cross_entropy, masked_soft_dice, partial_cross_entropy,
    partial_loss,
)
from napari_frugalseg.core.validation import held_out_score

K = 4


def _batch(seed=0, shape=(2, 8, 8), high=K + 1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((shape[0], K) + shape[1:], generator=g), torch.randint(0, high, shape, generator=g)


def test_all_classes_annotated_is_dense_cross_entropy():
    logits, _ = _batch()
    dense = torch.randint(1, K + 1, (2, 8, 8))
    table = allowed_table(K, [[1, 2, 3, 4]])  # a set of every class carries no information
    expected = torch.nn.functional.cross_entropy(logits, dense - 1)
    assert torch.allclose(marginal_cross_entropy(logits, dense, table), expected)
    assert torch.allclose(partial_loss(logits, dense, 1, 1, table), partial_loss(logits, dense))


def test_no_region_is_the_sparse_case():
    logits, scribbles = _batch()  # values 0..K only
    table = allowed_table(K, [[2, 3]])
    assert torch.allclose(marginal_cross_entropy(logits, scribbles, table),
                          partial_cross_entropy(logits, scribbles))


def test_marginal_gradient_moves_mass_into_the_allowed_set_only():
    logits = torch.randn(1, K, 1, 3, requires_grad=True)
    codes = torch.tensor([[[0, K + 1, 2]]])  # unlabelled, "one of {2, 3}", class 2
    table = allowed_table(K, [[2, 3]])
    marginal_cross_entropy(logits, codes, table).backward()
    g, p = logits.grad[0, :, 0], torch.softmax(logits.detach(), 1)[0, :, 0]
    assert torch.all(g[:, 0] == 0)  # unlabelled pixel: no gradient
    # analytic: d/dz_j = (p_j - [j in A] p_j / P_A) / n_informative
    a = torch.tensor([False, True, True, False])
    expected = (p[:, 1] - a * p[:, 1] / p[a, 1].sum()) / 2
    assert torch.allclose(g[:, 1], expected, atol=1e-6)
    assert torch.all(g[~a, 1] > 0) and torch.all(g[a, 1] < 0)


def test_exclusion_term_is_zero_without_leak_and_positive_with_it():
    codes = torch.full((1, 4, 4), K + 1)
    table = allowed_table(K, [[3, 4]])
    clean = torch.full((1, K, 4, 4), -20.0)
    clean[:, 2] = 20.0  # all mass on class 3, which is allowed
    assert exclusion_loss(clean, codes, table) < 1e-6
    leaky = clean.clone()
    leaky[:, 0] = 40.0  # mass on class 1, excluded there
    assert exclusion_loss(leaky, codes, table) > 0.45  # class 1 fully leaks, class 2 not


def test_group_dice_scores_each_code_as_the_mass_on_its_classes():
    # dataset A labels class 1, B labels class 2; K+1 = "one of 2, 3, 4", K+2 = "one of 1, 3, 4"
    table = allowed_table(K, [[2, 3, 4], [1, 3, 4]])
    codes = torch.tensor([[[1, K + 1, K + 1, 2, K + 2, 0]]])
    right = torch.full((1, K, 1, 6), -20.0)
    for x, k in enumerate([1, 3, 4, 2, 3, 2]):  # every pixel's mass inside what is known of it
        right[0, k - 1, 0, x] = 20.0
    assert masked_soft_dice(right, codes, allowed=table) < 1e-3
    # how a group's mass is split among its classes is not the Dice's business
    split = right.clone()
    split[0, :, 0, 1] = torch.tensor([-20.0, 20.0, 20.0, 20.0])
    assert masked_soft_dice(split, codes, allowed=table) < 1e-3
    # mass on class 1 where "one of 2, 3, 4" is known counts against class 1 and the group
    wrong = right.clone()
    wrong[0, :, 0, 1] = torch.tensor([20.0, -20.0, -20.0, -20.0])
    assert masked_soft_dice(wrong, codes, allowed=table) > 0.1
    # without groups the Dice sees singly labelled pixels only, as before
    singles = torch.where(codes <= K, codes, 0)
    assert torch.allclose(masked_soft_dice(wrong, singles, allowed=table), masked_soft_dice(wrong, singles))
    assert masked_soft_dice(wrong, singles) < 1e-3


def test_weighted_dice_is_perfect_for_a_perfect_prediction():
    codes = torch.tensor([[[1, 2, 2, 1]]])
    logits = torch.full((1, K, 1, 4), -20.0)
    for x, k in enumerate([1, 2, 2, 1]):
        logits[0, k - 1, 0, x] = 20.0
    weights = torch.tensor([[[0.2, 1.0, 0.5, 0.9]]])
    assert masked_soft_dice(logits, codes, weights=weights) < 1e-3


def _write(tmp_path, name, array):
    tifffile.imwrite(tmp_path / name, np.asarray(array))
    return name


def test_held_out_regions_count_against_the_classes_they_exclude():
    """A held-out region declaring class 1 complete: weights that call class 1 inside its
    "one of 2..4" part score lower than weights that do not, though both get the class-1
    stroke right (without the table the two could not be told apart)."""
    truth = np.array([[1, 1, K + 1, K + 1, K + 1, K + 1]])
    table = allowed_table(K, [[2, 3, 4]]).numpy()

    def probs(calls):
        return np.eye(K, dtype=np.float32)[np.array(calls) - 1].T.reshape(K, 1, -1)

    careful, greedy = probs([1, 1, 3, 2, 4, 2]), probs([1, 1, 1, 1, 2, 2])
    assert held_out_score([careful], [truth], K, table) == pytest.approx(1.0)
    assert held_out_score([greedy], [truth], K, table) == pytest.approx(2 * 2 / (2 + 4))
    assert held_out_score([greedy], [truth], K) == held_out_score([careful], [truth], K) == 1.0


def test_spec_maps_names_and_values_and_codes_unlabelled_pixels(tmp_path):
    image = np.random.default_rng(0).random((16, 16)).astype(np.float32)
    a = np.zeros((16, 16), np.uint8)
    a[:4], a[4:6] = 7, 9  # this file: 7 = mito, 9 = membrane; the rest unannotated
    b = np.zeros((16, 16), np.uint8)
    b[:3], b[8:9] = 1, 2  # this file: 1 = cytoplasm, 2 = membrane, scribbles
    spec = {
        "classes": ["membrane", "mitochondria", "cytoplasm", "synapse"],
        "items": [
            {"image": _write(tmp_path, "a.tif", image), "labels": _write(tmp_path, "al.tif", a),
             "classes": {"7": "mitochondria", "9": "membrane"},
             "annotated": ["mitochondria", "membrane"]},
            {"image": _write(tmp_path, "b.tif", image), "labels": _write(tmp_path, "bl.tif", b),
             "classes": {1: "cytoplasm", 2: "membrane"}, "annotated": "sparse"},
        ],
    }
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    ds = load_dataset(tmp_path / "spec.json")
    assert ds.classes == ("membrane", "mitochondria", "cytoplasm", "synapse")
    assert ds.partial_sets == [[3, 4]]  # outside {membrane, mitochondria}
    assert ds.labels[0][0, 0] == 2 and ds.labels[0][4, 0] == 1 and ds.labels[0][10, 0] == K + 1
    assert ds.labels[1][0, 0] == 3 and ds.labels[1][8, 0] == 1 and ds.labels[1][10, 0] == 0
    # an item's image of 2 channels stored first, (C, Y, X): its channel_axis says so
    spec["items"][1].update(image=_write(tmp_path, "c.tif", np.stack([image, image])), channel_axis=0)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    with pytest.raises(FrugalsegError, match=r"item 2 \(bl.tif\): c.tif has 2 channel\(s\), item 1 1"):
        load_dataset(tmp_path / "spec.json")  # the items differ in channels
    spec["items"][0].update(image="c.tif", channel_axis=0)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert load_dataset(tmp_path / "spec.json").images[1].shape == (2, 16, 16)


@pytest.mark.parametrize("change, message", [
    ({"image": "missing.tif"}, "missing.tif: no such file"),
    ({"classes": {"7": "mito", "9": "membrane"}}, "unknown class 'mito'"),
    ({"classes": {"9": "membrane"}}, "label value(s) [7] are not in the item's classes"),
    ({"annotated": ["nucleus"]}, "annotated names unknown class(es) ['nucleus']"),
])
def test_spec_errors_name_the_item(tmp_path, change, message):
    a = np.zeros((8, 8), np.uint8)
    a[:2], a[4:] = 7, 9
    item = {"image": _write(tmp_path, "a.tif", np.ones((8, 8), np.float32)),
            "labels": _write(tmp_path, "al.tif", a), "classes": {"7": "mitochondria", "9": "membrane"}}
    item.update(change)
    (tmp_path / "s.yaml").write_text(json.dumps({"classes": ["membrane", "mitochondria"], "items": [item]}))
    with pytest.raises(FrugalsegError, match="item 1") as err:
        load_dataset(tmp_path / "s.yaml")
    assert message in str(err.value)


def test_a_class_named_twice_in_a_spec_is_refused(tmp_path):
    item = {"image": _write(tmp_path, "a.tif", np.ones((8, 8), np.float32)),
            "labels": _write(tmp_path, "al.tif", np.eye(8, dtype=np.uint8) + 1), "classes": {"1": "bg", "2": "bg"}}
    (tmp_path / "s.yaml").write_text(json.dumps({"classes": ["bg", "bg"], "items": [item]}))
    with pytest.raises(FrugalsegError, match=r"s.yaml: class name\(s\) \['bg'\] appear more than once"):
        load_dataset(tmp_path / "s.yaml")


def test_cli_trains_from_a_spec(tmp_path, blobs):
    from napari_frugalseg.cli import main
    from napari_frugalseg.core.io import read_array

    image, scribbles, _ = blobs
    _write(tmp_path, "img.tif", image[0])
    _write(tmp_path, "lab.tif", np.where(scribbles == 2, 5, np.where(scribbles == 1, 3, 0)).astype(np.uint8))
    (tmp_path / "spec.yaml").write_text(
        "classes: [background, blob]\nitems:\n"
        "  - {image: img.tif, labels: lab.tif, classes: {3: background, 5: blob}, annotated: sparse}\n"
    )
    assert main(["train", "--dataset", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "m"),
                 "--max-steps", "3", "--patch-size", "64", "--width", "4", "--depth", "2"]) == 0
    assert main(["predict", "--model", str(tmp_path / "m"), "--image", str(tmp_path / "img.tif"),
                 "--out", str(tmp_path / "o")]) == 0
    assert set(np.unique(read_array(tmp_path / "o" / "img.tif"))) <= {1, 2}
    assert main(["train", "--dataset", str(tmp_path / "spec.yaml"), "--image", "x.tif",
                 "--out", str(tmp_path / "m2")]) == 2


def test_region_coding_limits_and_conflicts():
    from napari_frugalseg.core.labels import code_complete_regions

    labels = np.zeros((4, 6), np.int32)
    labels[0, 0] = 2
    left = np.zeros((4, 6), bool)
    left[:, :3] = True
    # no region: the sparse case, nothing changes
    np.testing.assert_array_equal(code_complete_regions(labels, [], 3, []), labels)
    # S = all classes: nothing is outside, nothing is coded (dense labels are given as such)
    np.testing.assert_array_equal(code_complete_regions(labels, [(None, [1, 2, 3])], 3, []), labels)
    sets: list[list[int]] = []
    out = code_complete_regions(labels, [(left, [1]), (~left, [1, 2])], 3, sets)
    assert sets == [[2, 3]] and out[0, 0] == 2  # strokes stay
    assert (out[:, :3][labels[:, :3] == 0] == 4).all() and (out[:, 3:] == 3).all()
    overlap = np.ones((4, 6), bool)
    with pytest.raises(FrugalsegError, match="A and B overlap but declare different complete classes"):
        code_complete_regions(labels, [(left, [1]), (overlap, [2])], 3, [], names=["A", "B"])
    # overlapping regions that agree are fine
    code_complete_regions(labels, [(left, [1]), (overlap, [1])], 3, [])
