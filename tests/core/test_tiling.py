import tracemalloc

import numpy as np
import pytest
import torch

from napari_frugalseg.core.tiling import iter_tiled, predict_tiled


def _pointwise(tile):
    """A stand-in network: probability of class 1 is the pixel value."""
    v = np.clip(tile[0], 0, 1)
    return np.stack([v, 1 - v])



@pytest.mark.parametrize("shape,tile", [((300, 200), (64, 64)), ((7, 90, 50), (4, 32, 32)), ((20, 20), (64, 64))])
def test_tiles_reassemble_exactly(shape, tile):
    rng = np.random.default_rng(0)
    image = rng.random((1,) + shape).astype(np.float32)
    classes, probs = predict_tiled(image, _pointwise, tile, 2, probabilities=True)
    np.testing.assert_allclose(probs[0], image[0], atol=1e-5)
    np.testing.assert_array_equal(classes, np.where(image[0] > 0.5, 1, 2))


def test_bands_cover_the_image_once():
    image = np.zeros((1, 250, 40), np.float32)
    covered = np.zeros((250, 40), int)
    for region, probs in iter_tiled(image, _pointwise, (64, 64), 2):
        covered[region] += 1
        assert probs.shape[1:] == covered[region].shape
    assert (covered == 1).all()


def test_blending_is_smooth_across_tile_seams():
    """A predictor with a tile-edge artefact: blending must hide it."""

    def edgy(tile):
        p = np.full((2,) + tile.shape[1:], 0.5, np.float32)
        p[0, :2] = p[0, -2:] = 1.0  # wrong at tile borders
        p[1] = 1 - p[0]
        return p

    _, probs = predict_tiled(np.zeros((1, 256, 256), np.float32), edgy, (64, 64), 2, probabilities=True)
    inner = probs[0, 64:192]
    assert np.abs(np.diff(inner, axis=0)).max() < 0.05


def _peak(height, width=2048, tile=(128, 128)):
    image = np.zeros((1, height, width), np.float32)
    out = np.zeros((height, width), np.uint8)
    tracemalloc.start()
    predict_tiled(image, _pointwise, tile, 2, out=out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_memory_is_bounded_by_a_band_of_tiles_not_the_image():
    small, large = _peak(512), _peak(8192)  # the large image is 16x taller
    full_accumulator = 3 * 8192 * 2048 * 4  # what blending into image-sized buffers would take
    assert large < 1.5 * small
    assert large < full_accumulator / 20


def test_view_prediction_matches_whole_image_prediction_inside_the_view():
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model
    from napari_frugalseg.core.predict import Predictor, predict_view

    config = new_model_config(("a", "b", "c"), 1, 2, width=4, depth=2)
    predictor = Predictor(build_model(config).eval())
    stack = np.random.default_rng(1).random((1, 3, 100, 120)).astype(np.float32)
    box = (slice(10, 90), slice(0, 120))
    classes, unc = predict_view(predictor, config, stack, 2, box)
    assert classes.shape == unc.shape == (80, 120)
    assert set(np.unique(classes)) <= {1, 2, 3}
    assert 0.0 <= unc.min() and unc.max() <= 1.0
    whole = predictor(stack[:, 2])  # one tile covers the plane
    assert np.mean(whole.argmax(0)[box] + 1 == classes) > 0.95  # borders differ by padding only


def test_a_view_of_several_slices_is_each_slice_as_viewed_alone():
    """napari's 3D view previews a slab of slices: each of them as the preview of that slice
    alone, for a 2D model and for a 3D model (whose slab then spans the stack either way), and
    a slab never runs into the next stack of a time series."""
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model
    from napari_frugalseg.core.predict import Predictor, predict_view

    rng = np.random.default_rng(2)
    box = (slice(0, 40), slice(4, 36))
    for ndim, image in ((2, rng.random((1, 5, 40, 40))), (3, rng.random((1, 8, 40, 40)))):
        config = new_model_config(("a", "b"), 1, ndim, depth_of_stacks=8 if ndim == 3 else None,
                                  patch=16, width=4, depth=2)
        predictor = Predictor(build_model(config).eval())
        image = image.astype(np.float32)
        classes, unc = predict_view(predictor, config, image, 1, box, depth=3)
        assert classes.shape == unc.shape == (3, 40, 32), ndim
        for i, z in enumerate(range(1, 4)):
            alone, alone_unc = predict_view(predictor, config, image, z, box)
            np.testing.assert_array_equal(classes[i], alone)
            np.testing.assert_allclose(unc[i], alone_unc, atol=1e-5)
    series = np.stack([image[:, :4], image[:, 4:]], axis=1)  # (C, T, Z, Y, X): stack 1 is slices 4-7
    classes, _ = predict_view(predictor, config, series, 4 + 1, box, depth=2)
    np.testing.assert_array_equal(classes, predict_view(predictor, config, series[:, 1], 1, box, depth=2)[0])


def test_a_batch_of_tiles_is_predicted_as_each_tile_alone():
    """Validation predicts its held-out patches a batch at a time (a 3D net is several times
    faster so on a CPU): each tile's probabilities are those it gets alone, flips included."""
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model
    from napari_frugalseg.core.predict import Predictor

    config = new_model_config(("a", "b", "c"), 1, 3, depth_of_stacks=4, patch=16, width=4, depth=2)
    torch.manual_seed(0)
    predictor = Predictor([build_model(config), build_model(config)], tta=True)
    tiles = list(np.random.default_rng(2).random((5, 1, 4, 16, 16)).astype(np.float32))
    batched = predictor.many(tiles, batch=2)
    assert len(batched) == 5
    for tile, probs in zip(tiles, batched):
        assert np.allclose(probs, predictor(tile), atol=1e-5)


def test_a_small_plane_is_predicted_in_one_go_as_tiles_would(monkeypatch):
    """Up to 512 px a side a 2D plane is one tile (overlapping 256 px tiles would compute it
    ~2.3 times over); the classes are those the tiles give but for seams, and larger planes
    are still tiled."""
    from napari_frugalseg.core.config import new_model_config
    from napari_frugalseg.core.model import build_model
    from napari_frugalseg.core.predict import Predictor, predict_image, run_to_end

    config = new_model_config(("a", "b", "c"), 1, 2, width=4, depth=2)
    torch.manual_seed(0)
    model = build_model(config)
    calls = []
    outputs = Predictor.outputs
    monkeypatch.setattr(Predictor, "outputs",
                        lambda self, tile, **kw: calls.append(tile.shape) or outputs(self, tile, **kw))
    image = np.random.default_rng(3).random((1, 512, 512)).astype(np.float32)
    whole = run_to_end(predict_image(model, config, image)).classes
    assert calls == [(1, 512, 512)]
    calls.clear()
    tiled = run_to_end(predict_image(model, config, image, tile=(256, 256))).classes
    assert len(calls) == 9 and np.mean(whole == tiled) > 0.98
    calls.clear()
    run_to_end(predict_image(model, config, np.zeros((1, 600, 300), np.float32)))
    assert calls and all(shape[1:] == (256, 256) for shape in calls)
