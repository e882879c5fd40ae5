"""Patch sampling: which labelled pixels the training batches are centred on."""

import numpy as np

from napari_frugalseg.core.sampling import PatchSampler, Sample


def _centre_shares(labels: np.ndarray, n_classes: int, draws: int = 4000) -> dict[int, float]:
    """How often each label value is the centre of a 1x1 patch (no jitter at that size)."""
    sample = Sample(np.zeros((1,) + labels.shape, np.float32), labels)
    sampler = PatchSampler([sample], (1, 1), np.random.default_rng(0), n_classes, augment=False)
    _, y, _ = sampler.draw(draws)
    values, counts = np.unique(y, return_counts=True)
    return dict(zip(values.tolist(), (counts / draws).tolist()))


def _labels() -> np.ndarray:
    """Class 1: a long stroke; class 2: a few pixels; values 3 and 4: large regions (classes
    of a 4-class model, or two partial-class groups of a 2-class model)."""
    labels = np.zeros((40, 40), np.int32)
    labels[2, :] = 1
    labels[5, 3:6] = 2
    labels[10:25] = 3
    labels[25:40] = 4
    return labels


def test_a_class_with_a_few_pixels_is_drawn_as_often_as_a_long_stroke():
    shares = _centre_shares(_labels(), n_classes=4)
    assert abs(shares[2] - shares[1]) < 0.04  # 3 pixels against 40
    assert abs(shares[2] - 0.25) < 0.04  # every value its own class: four draws


def test_partial_class_groups_share_one_draw_so_real_classes_keep_theirs():
    shares = _centre_shares(_labels(), n_classes=2)
    assert abs(shares[1] - 1 / 3) < 0.04 and abs(shares[2] - 1 / 3) < 0.04
    assert abs(shares[3] + shares[4] - 1 / 3) < 0.04  # "the rest", by pixel count within it
