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


def _stripe_patches(scale_jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """64 px patches of an image of vertical stripes 10 px wide (values 1 and 2), labelled with
    the stripes' classes away from the image's borders (so no patch reaches them)."""
    stripes = np.where((np.arange(400) // 10) % 2 == 1, 2, 1)[None].repeat(400, 0)
    labels = np.zeros((400, 400), np.int64)
    labels[130:270, 130:270] = stripes[130:270, 130:270]
    sample = Sample(stripes[None].astype(np.float32), labels)
    sampler = PatchSampler([sample], (64, 64), np.random.default_rng(0), 2, intensity_jitter=0.0,
                           scale_jitter=scale_jitter)
    x, y, _ = sampler.draw(64)
    return x[:, 0], y


def _stripes_across(x: np.ndarray) -> np.ndarray:
    """Stripe edges along a patch's middle row or column, whichever way the stripes run."""
    edges = [(np.diff(line > 1.5, axis=-1) != 0).sum(-1) for line in (x[:, 32, :], x[:, :, 32])]
    return np.maximum(*edges)


def test_scale_jitter_shows_objects_larger_and_smaller_with_image_and_labels_aligned():
    x, y = _stripe_patches(0.0)
    assert set(_stripes_across(x)) <= {6, 7}  # 64 px across 10 px stripes
    x, y = _stripe_patches(0.3)
    edges = _stripes_across(x)
    assert edges.min() <= 5 and edges.max() >= 8  # regions 1/1.3 to 1.3 times the patch
    # labels are resized with the image: where labelled, away from the stripes' edges, they agree
    labelled = y > 0
    assert np.mean(np.abs(x - y)[labelled] < 0.05) > 0.85
    assert x.shape == y.shape == (64, 64, 64) and x.dtype == np.float32


def test_scale_jitter_zooms_a_stack_in_plane_only():
    labels = np.zeros((10, 100, 100), np.int64)  # labelled slices 3-6: patches stay inside in z
    labels[3:7, 40:60, 40:60] = 1
    labels[3:7, 5:10, 5:10] = 2
    image = np.arange(10, dtype=np.float32)[None, :, None, None] * np.ones((1, 10, 100, 100), np.float32)
    sampler = PatchSampler([Sample(image, labels)], (4, 32, 32), np.random.default_rng(0), 2,
                           intensity_jitter=0.0, scale_jitter=0.3)
    x, y, _ = sampler.draw(8)
    assert x.shape == (8, 1, 4, 32, 32) and y.shape == (8, 4, 32, 32)
    # the image's value is its slice number: consecutive slices stay one apart (not resampled)
    assert np.allclose(np.abs(np.diff(x[:, 0, :, 16, 16], axis=1)), 1.0)
