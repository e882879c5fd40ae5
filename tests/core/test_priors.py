import numpy as np
import pytest
import torch

from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.priors import estimate_prior, labelled_prior, model_lean, shift_prior
from napari_frugalseg.core.train import Trainer, TrainingData


def _posteriors(share: float, n: int = 200_000, seed: int = 0):
    """Two 1D Gaussian classes (means 0 and 2), class 2 a ``share`` of the pixels; the exact
    posteriors of a classifier that learned them at equal shares, and the true classes."""
    rng = np.random.default_rng(seed)
    truth = (rng.random(n) < share).astype(int)
    x = rng.normal(2.0 * truth, 1.0)
    like = np.stack([np.exp(-0.5 * x**2), np.exp(-0.5 * (x - 2) ** 2)])
    return (like / like.sum(0)).astype(np.float32), truth


@pytest.mark.parametrize("share", [0.05, 0.2, 0.8])
def test_estimated_shares_move_towards_the_image_and_corrected_classes_are_more_accurate(share):
    probs, truth = _posteriors(share)
    prior = estimate_prior(probs)
    assert abs(prior[1] - share) < 0.5 * abs(0.5 - share)  # more than halfway from the training shares
    before = (probs.argmax(0) == truth).mean()
    after = (shift_prior(probs, (0.5, 0.5), prior).argmax(0) == truth).mean()
    assert after > before + 0.01


def test_an_image_with_the_training_shares_is_left_as_it_is():
    probs, _ = _posteriors(0.5)
    prior = estimate_prior(probs)
    assert prior == pytest.approx([0.5, 0.5], abs=0.01)
    same = shift_prior(probs, (0.5, 0.5), prior).argmax(0) == probs.argmax(0)
    assert same.mean() > 0.99


def test_labelled_prior_counts_classes_only():
    labels = [np.array([[0, 1, 1, 2], [2, 2, 5, 5]])]  # 5: a partial-class code of a 2-class model
    assert labelled_prior(labels, 2) == pytest.approx([0.4, 0.6])
    assert min(labelled_prior([np.array([1, 1, 1])], 2)) > 0  # no zero share to divide by


def test_the_lean_of_a_model_is_its_probabilities_on_each_class_strokes():
    labels = [np.array([[1, 1, 2, 0], [2, 2, 2, 0]])]
    shares = (0.4, 0.6)
    fitted = [np.stack([labels[0] == 1, labels[0] == 2]).astype(np.float32)]
    assert model_lean(fitted, labels, shares) == pytest.approx(shares)
    undecided = [np.full((2, 2, 4), 0.5, np.float32)]  # a model that has learned nothing yet
    assert model_lean(undecided, labels, shares) == pytest.approx([0.5, 0.5])
    # a class without held-out strokes: nothing to compare with
    no_b = [np.where(labels[0] == 2, 0, labels[0])]
    with pytest.raises(ValueError, match="every class"):
        model_lean(undecided, no_b, shares)


def test_a_class_the_model_has_not_learned_yet_is_not_thinned_away():
    """Early in training a model calls few pixels of a thin class (e.g. membranes) even on
    that class's strokes; dividing by the strokes' even shares emptied it (a Stop after 30
    steps), dividing by what the model leans to keeps it."""
    probs, truth = _posteriors(0.2)
    logit = np.log(probs[1] / probs[0]) - 1.5  # under-calls class b, on its own strokes too
    soft = np.stack([1 / (1 + np.exp(logit)), 1 / (1 + np.exp(-logit))]).astype(np.float32)
    strokes = np.zeros_like(truth)  # as many stroke pixels of a as of b
    for c in (0, 1):
        strokes[np.flatnonzero(truth == c)[:2000]] = c + 1
    strokes = [strokes]
    shares = labelled_prior(strokes, 2)
    lean = model_lean([soft], strokes, shares)
    assert lean[1] < 0.5 * shares[1] + 0.1
    raw_b = (soft.argmax(0) == 1).sum()
    by_shares = shift_prior(soft, shares, estimate_prior(soft)).argmax(0) == 1
    by_lean = shift_prior(soft, lean, estimate_prior(soft)).argmax(0) == 1
    assert by_shares.sum() < 0.5 * raw_b  # the old rule: class b halved
    assert by_lean.sum() > 0.6 * raw_b

    def dice(b):
        return 2 * (b & (truth == 1)).sum() / (b.sum() + (truth == 1).sum())

    assert dice(by_lean) > dice(by_shares) + 0.05


def test_a_class_without_held_out_strokes_leaves_predictions_uncorrected(blobs):
    """One background stroke (never held out) beside many blob strokes: what the model leans to
    cannot be measured for the background, so its predictions stay raw (correcting them by the
    strokes' shares over-segmented a deep-supervised model's blobs on the demo's strokes)."""
    from napari_frugalseg.core.scribbles import skeleton_scribbles

    image, real, truth = blobs
    scribbles = real.copy()
    extra = skeleton_scribbles(truth, 0.03, seed=0)
    scribbles[(extra == 2) & (scribbles == 0)] = 2  # blob strokes enough to hold some out
    config = ModelConfig(classes=("background", "blob"), width=8, depth=2, patch_size=(64, 64))
    warm = Trainer(TrainingData([image], [scribbles]), config,
                   TrainConfig(max_steps=2, max_seconds=None, batch_size=2))
    list(warm.run())
    t = Trainer(TrainingData([image], [scribbles]), config,
                TrainConfig(max_steps=2, max_seconds=None, batch_size=2, val_every=1),
                model=warm.model)  # trained before: would be corrected from the start
    list(t.run())
    held = np.unique(np.concatenate([y.ravel() for _, y in t.val_batches]))
    assert 2 in held and 1 not in held
    assert t.config.class_prior is None


def test_trained_model_knows_what_it_leans_to(blobs, monkeypatch):
    """No class shares for a model a few steps from scratch (the correction would thin what it
    draws too thin already); a model trained further records what its kept weights lean to."""
    from napari_frugalseg.core.scribbles import skeleton_scribbles

    image, _, truth = blobs
    scribbles = skeleton_scribbles(truth, 0.02, seed=0)  # many strokes: some are held out
    config = ModelConfig(classes=("background", "blob"), width=8, depth=2, patch_size=(64, 64))
    assert config.class_prior is None
    early = Trainer(TrainingData([image], [scribbles]), config,
                    TrainConfig(max_steps=2, max_seconds=None, batch_size=2))
    list(early.run())
    assert early.config.class_prior is None
    with monkeypatch.context() as m:  # past the first steps, from scratch too
        m.setattr("napari_frugalseg.core.train.MIN_STEPS", 3)
        later = Trainer(TrainingData([image], [scribbles]), config,
                        TrainConfig(max_steps=4, max_seconds=None, batch_size=2, val_every=2))
        list(later.run())
    assert later.config.class_prior is not None
    for held_out in (0.0, 0.2):
        t = Trainer(TrainingData([image], [scribbles]), config,
                    TrainConfig(max_steps=2, max_seconds=None, batch_size=2, val_fraction=held_out),
                    model=early.model)  # trained before: corrected from the start
        list(t.run())
        if not held_out:  # nothing to measure on: not corrected
            assert t.config.class_prior is None
            continue
        assert t.val_batches
        probs = [t.predictor(x) for x, _ in t.val_batches]  # the weights kept
        want = model_lean(probs, [y for _, y in t.val_batches], labelled_prior([scribbles], 2))
        assert want != pytest.approx(labelled_prior([scribbles], 2))  # both classes measured
        assert t.config.class_prior == pytest.approx(want)
    # long enough to keep a checkpoint: the shares measured when it was validated come back
    # with it (a Stop need not predict the held-out strokes again), and its weights lean so
    t = Trainer(TrainingData([image], [scribbles]), config,
                TrainConfig(max_steps=12, max_seconds=None, batch_size=2, val_every=2), model=early.model)
    list(t.run())
    assert t.checkpoints.state is not None
    probs = t.predictor.many([x for x, _ in t.val_batches])
    want = model_lean(probs, [y for _, y in t.val_batches], labelled_prior([scribbles], 2))
    assert t.config.class_prior == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError, match="class_prior has 3 values"):
        config.replace(class_prior=(0.2, 0.3, 0.5))


class _Ramp(torch.nn.Module):
    """A stand-in model: class b the more likely the brighter the pixel."""

    ndim = 2  # as a 2D U-Net's

    def __init__(self, scale: float = 4.0, offset: float = 0.5):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.offset = offset

    def forward(self, x):
        return torch.cat([torch.zeros_like(x[:, :1]), self.scale * (x[:, :1] - self.offset)], 1)


def test_prediction_is_corrected_per_image_and_per_slice():
    rng = np.random.default_rng(1)
    stack = np.stack([rng.exponential(1.0, (70, 90)), rng.random((70, 90))])[None].astype(np.float32)
    config = ModelConfig(classes=("a", "b"), width=8, depth=2, patch_size=(32, 32),
                         class_prior=(0.5, 0.5))
    raw = run_to_end(predict_image(_Ramp(), config, stack, probabilities=True, prior_correction=False))
    fixed = run_to_end(predict_image(_Ramp(), config, stack, probabilities=True))
    for z in range(2):
        p = raw.probabilities[:, z]
        want = shift_prior(p, config.class_prior, estimate_prior(p))
        np.testing.assert_allclose(fixed.probabilities[:, z], want, atol=2e-3)  # held as float16
        assert (fixed.classes[z] == want.argmax(0) + 1).mean() > 0.999
    # slice 0 is mostly dark: fewer pixels called b than by the raw model; slice 1 is not
    assert (fixed.classes[0] == 2).sum() < 0.8 * (raw.classes[0] == 2).sum()
    assert abs(int((fixed.classes[1] == 2).sum()) - int((raw.classes[1] == 2).sum())) < 0.1 * 70 * 90


def test_an_ensemble_is_corrected_member_by_member_in_images_and_views():
    from napari_frugalseg.core.predict import Predictor, predict_view
    from napari_frugalseg.core.sampling import percentile_normalize

    rng = np.random.default_rng(2)
    image = rng.exponential(1.0, (1, 80, 100)).astype(np.float32)
    config = ModelConfig(classes=("a", "b"), width=8, depth=2, patch_size=(32, 32),
                         class_prior=(0.3, 0.7))
    members = [_Ramp(8.0, 0.3), _Ramp(1.0, 0.6)]  # one sure and eager, one soft and reluctant
    raw = [run_to_end(predict_image(m, config, image, probabilities=True, prior_correction=False))
           .probabilities for m in members]
    want = np.mean([shift_prior(p, config.class_prior, estimate_prior(p)) for p in raw], 0)
    got = run_to_end(predict_image(members, config, image, probabilities=True))
    np.testing.assert_allclose(got.probabilities, want, atol=2e-3)  # held as float16
    assert (got.classes == want.argmax(0) + 1).mean() > 0.999
    mean = np.mean(raw, 0)  # correcting the members' mean instead calls other pixels b
    old = shift_prior(mean, config.class_prior, estimate_prior(mean)).argmax(0) + 1
    assert (old != got.classes).mean() > 0.005
    # a view (the plugin's live overlay) of the whole plane gives the same class map
    box = (slice(0, 80), slice(0, 100))
    norm = percentile_normalize(image, config.norm_percentiles)
    classes, _ = predict_view(Predictor(members), config, norm, None, box)
    assert (classes == got.classes).mean() > 0.999
