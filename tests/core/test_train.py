import numpy as np
import pytest
import torch

from napari_frugalseg.core.bundle import load_bundle, save_bundle
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.model import build_model
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.sampling import Sample
from napari_frugalseg.core.train import Trainer, TrainingData
from napari_frugalseg.core.validation import held_out_patches

SMALL = dict(width=8, depth=2, patch_size=(64, 64))


def _trainer(blobs, steps=30, seed=0, **tc):
    image, scribbles, _ = blobs
    config = ModelConfig(classes=("background", "blob"), **SMALL)
    tc = {"val_every": 10, **tc}
    train = TrainConfig(max_steps=steps, max_seconds=None, batch_size=4, seed=seed, **tc)
    return Trainer(TrainingData([image], [scribbles]), config, train)


def test_learns_blobs_from_real_scribbles(blobs):
    image, _, truth = blobs
    trainer = _trainer(blobs, steps=60)
    losses = [p.loss for p in trainer.run()]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    pred = run_to_end(predict_image(trainer.model, trainer.config, image))
    dice = dice_per_class(pred.classes, truth, 2)
    assert dice.mean() > 0.6  # from two short strokes per class


def test_seeded_runs_reproduce_on_cpu(blobs):
    weights = []
    for _ in range(2):
        t = _trainer(blobs, steps=5, seed=3, device="cpu")
        list(t.run())
        weights.append(torch.cat([p.detach().flatten() for p in t.model.parameters()]))
    assert torch.equal(weights[0], weights[1])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_memory_is_released_after_training_and_prediction(blobs):
    image = blobs[0]
    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    t = _trainer(blobs, steps=1000, device="cuda")
    for p in t.run():
        if p.step == 12:
            t.request_stop()
    assert torch.cuda.memory_allocated() > start  # the trained model is on the GPU
    model = t.release()
    assert torch.cuda.memory_allocated() <= start
    run_to_end(predict_image(model.to("cuda"), t.config, image, uncertainty=True))
    model.cpu()
    assert torch.cuda.memory_allocated() <= start


def test_stop_request_ends_at_the_next_step(blobs):
    t = _trainer(blobs, steps=1000)
    steps = []
    for p in t.run():
        steps.append(p.step)
        if p.step == 3:
            t.request_stop()
    assert steps == [1, 2, 3]


def test_a_stop_asked_during_a_step_ends_the_run_without_validating_or_previewing(blobs, monkeypatch):
    """Stop during step 10, where a validation and a preview are due: the run ends after that
    step without either (a 3D net on a CPU took 1-2 s for each while the user waited)."""
    t = _trainer(blobs, steps=1000)  # validation every 10 steps
    validated, previews = [], []
    monkeypatch.setattr(t, "validate", lambda: validated.append(t.step) or 0.5)
    t.preview_fn, t.preview_every = lambda predictor: previews.append(t.step), 0.0
    step = t._train_step

    def stopped_during(lr):
        if t.step == 9:  # the 10th step
            t.request_stop()
        return step(lr)

    monkeypatch.setattr(t, "_train_step", stopped_during)
    assert [p.step for p in t.run()] == list(range(1, 11))
    assert validated == [] and previews == list(range(1, 10))


def test_new_strokes_are_picked_up_without_restart(blobs):
    image, scribbles, _ = blobs
    t = _trainer(blobs, steps=1000, val_fraction=0.0)
    run = t.run()
    next(run)
    before = sum(len(pix) for _, pix in t.sampler.index[2])
    more = scribbles.copy()
    more[5:8, 5:60] = 2  # a new stroke
    t.data.set_labels(0, more)
    next(run)
    assert sum(len(pix) for _, pix in t.sampler.index[2]) == before + 3 * 55
    more[9, 5:60] = 3  # a class the model does not have
    t.data.set_labels(0, more)
    with pytest.raises(FrugalsegError, match="class 3, but the model has 2 classes"):
        next(run)


def test_best_checkpoint_is_restored(blobs):
    t = _trainer(blobs, steps=20)
    list(t.run())
    assert t.checkpoints.state is not None
    for k, v in t.model.state_dict().items():
        assert torch.equal(v.cpu(), t.checkpoints.state[k])


@pytest.mark.parametrize("decay", [0.99, 0.0])
def test_what_is_kept_is_the_moving_average_of_the_trained_weights(blobs, decay):
    """An early model's class balance swings from step to step: validation, previews and the
    kept checkpoint use the moving average of the weights (decay 0: the weights themselves)."""
    t = _trainer(blobs, steps=6, val_every=6, val_fraction=0.0, average_decay=decay)
    expected = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
    for p in t.run():
        trained = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
        d = min(decay, (1 + p.step) / (10 + p.step))
        expected = {k: d * expected[k] + (1 - d) * v if v.is_floating_point() else v
                    for k, v in trained.items()}
    name = "down.0.0.weight"
    assert name in trained
    assert p.improved  # the checkpoint of step 6 is the one kept and restored
    for k, v in t.model.state_dict().items():
        assert torch.allclose(v, expected[k], atol=1e-6), k
    assert torch.equal(t.predictor.model.state_dict()[name], t.model.state_dict()[name])
    moved = not torch.allclose(t.model.state_dict()[name], trained[name])
    assert moved == bool(decay)


def _run_noting_kept(t: Trainer) -> tuple[int, dict]:
    """Run; the step and the weights of the last checkpoint the trainer said it kept."""
    kept_at, kept = 0, {}
    for p in t.run():
        if p.improved:
            kept_at, kept = p.step, {k: v.detach().clone() for k, v in t.average.state_dict().items()}
    return kept_at, kept


def test_a_single_lucky_validation_does_not_pick_the_checkpoint(blobs, monkeypatch):
    """One high held-out score among steady ones is noise: the checkpoint kept is the one
    after which held-out scores stay high (running mean of the validations). The scores are
    those of the plugin's loop test in a run whose Stop restored the step-40 model, which drew
    membranes half as thick as they are (membrane Dice 0.55 against 0.66-0.70)."""
    t = _trainer(blobs, steps=30, val_every=2)
    seen = [0.461, 0.585, 0.875, 0.947, 0.74, 0.697, 0.716, 0.715, 0.818, 0.825, 0.792, 0.735, 0.667,
            0.716, 0.756]  # validations at steps 2 .. 30
    scores = iter(seen)
    monkeypatch.setattr(t, "validate", lambda: next(scores))
    kept_at, kept = _run_noting_kept(t)
    # running means 0.461, 0.532, 0.680, 0.778, ..., 0.773, 0.778 (11th), 0.767 (12th), 0.741, ...
    assert kept_at == 24 == t.checkpoints.kept_step  # the 12th validation; the raw maximum is the 4th
    assert t.checkpoints.best_score == pytest.approx(0.7779, abs=1e-4)
    for k, v in t.model.state_dict().items():  # released: the model is back on the CPU
        assert torch.equal(v, kept[k].to(v.device))


def test_the_first_validations_after_new_strokes_do_not_pick_the_checkpoint(blobs, monkeypatch):
    """New strokes restart the running mean; its first score, high by chance, neither counts
    in full nor is kept before a few more validations on the new strokes."""
    t = _trainer(blobs, steps=60)
    image, scribbles, _ = blobs
    scores = iter([0.5, 0.6, 0.95, 0.76, 0.72, 0.8])  # validations at steps 10 .. 60
    monkeypatch.setattr(t, "validate", lambda: next(scores))
    kept_at = []
    for p in t.run():
        if p.step == 25:  # a stroke added (the first pixel left unlabelled becomes background)
            more = scribbles.copy()
            more.flat[np.flatnonzero(more == 0)[0]] = 1
            t.data.set_labels(0, more)
        if p.improved:
            kept_at.append(p.step)
    assert kept_at == [50, 60]  # running means after the change 0.95, 0.8414, 0.7889, 0.7930
    assert t.checkpoints.kept_step == 60 and t.checkpoints.best_score == pytest.approx(0.7930, abs=1e-4)


def test_held_out_patches_reach_every_held_out_object_of_a_dense_class():
    """Twelve held-out objects of one class: validation sees each of them, not the first few
    (with four patches per class, a dense set's score rested on four objects)."""
    labels = np.zeros((480, 480), np.int32)
    ids = np.zeros((1, 480, 480), np.float32)  # the image tells the objects apart
    for i in range(12):
        labels[40 * i : 40 * i + 8, 40 * i : 40 * i + 8] = 1
        ids[0, 40 * i : 40 * i + 8, 40 * i : 40 * i + 8] = i + 1
    labels[0:8, 400:408] = 2
    patches = held_out_patches([Sample(ids, labels)], 2, (32, 32))
    seen = {int(v) for image, lab in patches for v in image[0][lab == 1]}
    assert seen == set(range(1, 13))


def test_a_class_without_held_out_strokes_does_not_count_in_the_held_out_score(blobs):
    """Background has one stroke (never held out), blobs several: the held-out score measures
    the blobs alone. One held-out pixel called background used to make background's Dice 0 and
    halve the score."""
    image, _, _ = blobs
    lab = np.zeros(image.shape[1:], np.int32)
    lab[5, 5:60] = 1
    for i in range(8):
        lab[30 + 20 * i, 100:130] = 2
    config = ModelConfig(classes=("background", "blob"), **SMALL)
    t = Trainer(TrainingData([image], [lab]), config,
                TrainConfig(max_steps=1, max_seconds=None, val_fraction=0.5, seed=0))
    t._refresh()
    held = np.concatenate([labels.ravel() for _, labels in t.val_batches])
    assert set(np.unique(held)) == {0, 2}

    def blob_but_one_pixel(patch):
        probs = np.zeros((2,) + patch.shape[1:], np.float32)
        probs[1] = 1.0
        probs[:, 32, 32] = (1.0, 0.0)  # the centre of each held-out patch: a stroke pixel
        return probs

    class Stub:  # predicts every held-out patch so
        def many(self, patches):
            return [blob_but_one_pixel(patch) for patch in patches]

    t.predictor = Stub()
    n = (held == 2).sum()
    assert t.validate() == pytest.approx(2 * (n - len(t.val_batches)) / (2 * n - len(t.val_batches)))


def test_a_stop_between_validations_is_not_reported_as_earlier_weights(blobs, monkeypatch):
    """Stopped at step 35, the run keeps step 30's checkpoint, its last: nothing to explain."""
    t = _trainer(blobs, steps=100)
    scores = iter([0.5, 0.6, 0.7])
    monkeypatch.setattr(t, "validate", lambda: next(scores))
    for p in t.run():
        if p.step == 35:
            t.request_stop()
    assert (t.step, t.checkpoints.kept_step) == (35, 30) and t.kept_note == ""


@pytest.mark.parametrize("slack,kept_step,kept_score", [(0.02, 50, 0.9049), (0.0, 40, 0.9073),
                                                        (1.0, 60, 0.7209)])
def test_the_latest_checkpoint_as_good_as_the_best_is_kept(blobs, monkeypatch, slack, kept_step, kept_score):
    """Held-out strokes cannot tell 0.905 from 0.907: the later (lower learning rate) weights
    are kept, unless held-out scores fall further than the slack (1: always the latest)."""
    t = _trainer(blobs, steps=60, checkpoint_slack=slack)
    scores = iter([0.9, 0.9, 0.9, 0.92, 0.9, 0.3])  # running means 0.9 x 3, 0.9073, 0.9049, 0.7209
    monkeypatch.setattr(t, "validate", lambda: next(scores))
    kept_at, kept = _run_noting_kept(t)
    assert kept_at == kept_step == t.checkpoints.kept_step
    # the user is told when the weights kept are not the last step's
    said = f"; kept the weights of step {kept_step} (best on held-out strokes)"
    assert t.kept_note == ("" if kept_step == 60 else said)
    t.release()  # the plugin frees the device before it reports
    assert t.kept_note == ("" if kept_step == 60 else said)
    assert t.checkpoints.best_score == pytest.approx(0.9073, abs=1e-4)
    assert t.checkpoints.kept_score == pytest.approx(kept_score, abs=1e-4)
    for k, v in t.model.state_dict().items():  # released: the model is back on the CPU
        assert torch.equal(v, kept[k].to(v.device))


def test_deep_supervision_trains_heads_on_the_decoder_but_the_model_stays_a_plain_unet(blobs):
    """The heads on the coarser decoder levels learn with the network, a warm start adds no
    second set of hooks, and what a bundle holds (and predicts with) is the U-Net alone."""
    t = _trainer(blobs, steps=5)  # the default, (0.5, 0.25); depth 2: one level below the output
    assert len(t.deep.heads) == 1
    before = t.deep.heads[0].weight.detach().clone()
    list(t.run())
    assert not torch.equal(before, t.deep.heads[0].weight)
    assert set(t.model.state_dict()) == set(build_model(t.config).state_dict())
    again = Trainer(t.data, t.config, t.train_config, model=t.model)
    list(again.run())
    assert all(not block._forward_hooks for block in t.model.up_convs)
    off = _trainer(blobs, steps=5, deep_supervision=())
    assert len(off.deep.heads) == 0 and len(list(off.run())) == 5


def test_bundle_round_trip_predicts_the_same(tmp_path, blobs):
    image = blobs[0]
    t = _trainer(blobs, steps=5)
    list(t.run())
    save_bundle(tmp_path / "m", t.model, t.config, t.train_config, t.history)
    b = load_bundle(tmp_path / "m")
    assert b.config == t.config and len(b.history) == 5
    # both in float32 on the CPU (a model trained on a GPU predicts there in mixed precision)
    p1 = run_to_end(predict_image(t.model.cpu(), t.config, image, probabilities=True))
    p2 = run_to_end(predict_image(b.model, b.config, image, probabilities=True))
    np.testing.assert_allclose(p1.probabilities, p2.probabilities, atol=1e-6)
    assert not list(tmp_path.glob(".m*"))  # no temporary folders left behind


def test_broken_bundles_say_what_is_wrong(tmp_path, blobs):
    with pytest.raises(FrugalsegError, match="no model folder"):
        load_bundle(tmp_path / "none")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FrugalsegError, match="missing config.json"):
        load_bundle(tmp_path / "empty")
    t = _trainer(blobs, steps=1)
    save_bundle(tmp_path / "m", t.model, t.config)
    bigger = ModelConfig(classes=("a", "b", "c"), **SMALL)
    save_bundle(tmp_path / "w", t.model, bigger)
    with pytest.raises(FrugalsegError, match="weights do not match"):
        load_bundle(tmp_path / "w")


def test_stack_trains_slicewise_and_as_volume():
    rng = np.random.default_rng(0)
    stack = rng.random((1, 6, 40, 40)).astype(np.float32)
    stack[0, :, 10:30, 10:30] += 2
    labels = np.zeros((6, 40, 40), np.int32)
    labels[2, 15:25, 20] = 2
    labels[2, 2, :] = 1  # strokes on a single slice
    for ndim, patch in ((2, (32, 32)), (3, (4, 32, 32))):
        config = ModelConfig(classes=("bg", "sq"), ndim=ndim, width=4, depth=2, patch_size=patch)
        t = Trainer(TrainingData([stack], [labels]), config, TrainConfig(max_steps=3, max_seconds=None, batch_size=2))
        list(t.run())
        pred = run_to_end(predict_image(t.model, config, stack))
        assert pred.classes.shape == (6, 40, 40) and set(np.unique(pred.classes)) <= {1, 2}


def test_a_3d_model_trains_on_a_time_series_of_stacks_stack_by_stack():
    """(C, T, Z, Y, X) for a 3D model: strokes on one time point train it, every stack is
    predicted on its own (as if given alone), and a view of a slice of the series is the view
    of that slice of its stack."""
    from napari_frugalseg.core.predict import Predictor, predict_view

    rng = np.random.default_rng(0)
    series = rng.random((1, 2, 6, 40, 40)).astype(np.float32)
    series[0, :, 1:5, 10:30, 10:30] += 2
    series[0, 1] *= 3  # another intensity range: normalised per stack at prediction
    labels = np.zeros((2, 6, 40, 40), np.int32)
    labels[1, 2, 15:25, 20] = 2
    labels[1, 2, 2, :] = 1  # strokes on one slice of the second stack only
    config = ModelConfig(classes=("bg", "cube"), ndim=3, width=4, depth=2, patch_size=(4, 32, 32))
    trainer = Trainer(TrainingData([series], [labels]), config,
                      TrainConfig(max_steps=30, max_seconds=None, batch_size=2))
    list(trainer.run())
    # one sample, the labelled stack: the other has no strokes
    assert [s.image.shape for s in trainer.sampler.samples] == [(1, 6, 40, 40)]
    model, config = trainer.model, trainer.config
    whole = run_to_end(predict_image(model, config, series, uncertainty=True))
    assert whole.classes.shape == whole.uncertainty.shape == (2, 6, 40, 40)
    truth = np.ones((6, 40, 40), np.int32)
    truth[1:5, 10:30, 10:30] = 2
    assert dice_per_class(whole.classes[0], truth, 2)[1] > 0.5  # the unlabelled stack's cube (0.29 all cube)
    for t in range(2):
        alone = run_to_end(predict_image(model, config, series[:, t], uncertainty=True))
        assert np.array_equal(whole.classes[t], alone.classes)
        assert np.allclose(whole.uncertainty[t], alone.uncertainty)
    box = (slice(0, 40), slice(0, 40))
    predictor = Predictor(model)
    seen, _ = predict_view(predictor, config, series, 6 + 3, box)  # slice 3 of stack 1
    expected, _ = predict_view(predictor, config, series[:, 1], 3, box)
    assert np.array_equal(seen, expected)
    with pytest.raises(FrugalsegError, match="a 3D model cannot segment a 5D image"):
        run_to_end(predict_image(model, config, series[None]))
