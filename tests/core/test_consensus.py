"""Several annotators: majority vote, STAPLE, agreement as a loss weight; noisy labels."""

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_frugalseg.core.consensus import majority_vote, staple
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.losses import (
    allowed_table,
    generalized_cross_entropy,
    partial_cross_entropy,
    partial_loss,
)


def _annotators(error_rates, seed=0):
    rng = np.random.default_rng(seed)
    truth = np.ones((80, 80), np.int32)
    truth[20:60, 20:60] = 2
    out = []
    for p in error_rates:
        a = truth.copy()
        flip = rng.random(truth.shape) < p
        a[flip] = 3 - a[flip]
        out.append(a)
    return truth, out


def test_staple_beats_the_vote_and_finds_the_unreliable_annotator():
    truth, anns = _annotators([0.05, 0.10, 0.40])
    vote, merged = majority_vote(anns, 2), staple(anns, 2)
    best_single = max((a == truth).mean() for a in anns)
    assert (merged.labels == truth).mean() > best_single > (vote.labels == truth).mean()
    sens = merged.sensitivity[:, 1]
    assert sens[2] < sens[1] < sens[0] and abs(sens[0] - 0.95) < 0.05
    assert merged.specificity.shape == (3, 2)
    # agreement is lower where the annotators disagree
    split = (anns[0] != anns[1])
    assert merged.agreement[split].mean() < merged.agreement[~split].mean()


def test_vote_agreement_is_the_share_of_annotators_agreeing():
    a = np.array([[1, 2, 0]])
    b = np.array([[1, 1, 0]])
    c = np.array([[1, 2, 2]])
    v = majority_vote([a, b, c], 2)
    assert v.labels.tolist() == [[1, 2, 2]]
    assert np.allclose(v.agreement, [[1, 2 / 3, 1]])


def test_annotators_of_different_shapes_are_named():
    with pytest.raises(FrugalsegError, match="annotator 2: shape"):
        staple([np.ones((4, 4), int), np.ones((4, 5), int)], 2)


def test_generalized_cross_entropy_is_bounded_where_cross_entropy_is_not():
    logits = torch.tensor([[[[-30.0]], [[30.0]]]])  # sure of class 2
    wrong = torch.tensor([[[1]]])  # a noisy label says class 1
    table = allowed_table(2)
    assert partial_cross_entropy(logits, wrong) > 50  # one wrong label dominates
    assert generalized_cross_entropy(logits, wrong, table, q=0.7) <= 1 / 0.7 + 1e-6
    right = torch.tensor([[[2]]])
    assert generalized_cross_entropy(logits, right, table, q=0.7) < 1e-6


def test_robust_option_learns_from_the_bounded_loss_alone():
    """With robust_q the objective is the generalized cross-entropy alone, whatever the Dice
    weight (without it, the default objective has its Dice term)."""
    logits = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 3, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    gce = generalized_cross_entropy(logits, labels, allowed_table(2), q=0.7)
    for dice_weight in (0.0, 1.0, 5.0):
        assert torch.isclose(partial_loss(logits, labels, dice_weight=dice_weight, robust_q=0.7), gce)
    assert not torch.isclose(partial_loss(logits, labels, dice_weight=1.0), partial_cross_entropy(logits, labels))


def test_cli_consensus_writes_labels_agreement_and_reliability(tmp_path, capsys):
    import tifffile

    from napari_frugalseg.cli import main
    from napari_frugalseg.core.io import read_array

    truth, anns = _annotators([0.05, 0.10, 0.40])
    paths = []
    for i, a in enumerate(anns):
        paths.append(str(tmp_path / f"a{i}.tif"))
        tifffile.imwrite(paths[-1], a.astype(np.uint8))
    assert main(["consensus", "--labels", *paths, "--out", str(tmp_path / "c.tif")]) == 0
    assert (read_array(tmp_path / "c.tif") == truth).mean() > 0.95
    assert read_array(tmp_path / "c_agreement.tif").dtype == np.float32
    assert capsys.readouterr().out.count("sensitivity/specificity") == 3
    tifffile.imwrite(tmp_path / "bad.tif", np.ones((3, 3), np.uint8))
    assert main(["consensus", "--labels", paths[0], str(tmp_path / "bad.tif"),
                 "--out", str(tmp_path / "d.tif")]) == 2
    assert "bad.tif: shape (3, 3)" in capsys.readouterr().err
    before = Path(paths[0]).read_bytes()  # the consensus never goes over an annotator's labels
    assert main(["consensus", "--labels", *paths, "--out", paths[0]]) == 2
    assert "a0.tif: an output" in capsys.readouterr().err and Path(paths[0]).read_bytes() == before
