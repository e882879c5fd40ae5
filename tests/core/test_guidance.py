"""Ensembles, uncertainty, test-time flips, label-here-next proposals, transfer, model library."""

import numpy as np
import pytest
import torch

from napari_frugalseg.core import ensemble as E
from napari_frugalseg.core.bundle import Bundle, load_bundle, save_bundle
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.errors import FrugalsegError
from napari_frugalseg.core.guidance import propose
from napari_frugalseg.core.library import add_model, list_models, resolve_model
from napari_frugalseg.core.model import build_model
from napari_frugalseg.core.predict import Predictor, predict_image, run_to_end
from napari_frugalseg.core.train import TrainingData
from napari_frugalseg.core.transfer import transfer

CONFIG = ModelConfig(classes=("bg", "fg"), width=4, depth=2, patch_size=(32, 32))


def _models(n, seed=0):
    torch.manual_seed(seed)
    return [build_model(CONFIG).eval() for _ in range(n)]


def _data():
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 64, 64)).astype(np.float32)
    image[:, 20:40, 20:40] += 3
    labels = np.zeros((64, 64), np.int32)
    for row in (5, 10, 15, 50, 58):  # strokes enough to hold out some of each class
        labels[row, 5:60] = 1
    for row in (22, 25, 30, 34, 37):
        labels[row, 22:38] = 2
    return image, labels


def test_ensemble_predicts_the_mean_and_measures_disagreement():
    tile = np.random.default_rng(1).normal(size=(1, 32, 32)).astype(np.float32)
    models = _models(3)
    singles = [Predictor(m)(tile) for m in models]
    np.testing.assert_allclose(Predictor(models)(tile), np.mean(singles, 0), atol=1e-6)
    out = Predictor(models).outputs(tile, disagreement=True)
    assert out.shape == (3, 32, 32)
    differ = np.mean([s.argmax(0) != np.mean(singles, 0).argmax(0) for s in singles], 0)
    np.testing.assert_allclose(out[2], differ, atol=1e-6)
    # identical members never disagree
    assert Predictor([models[0]] * 3).outputs(tile, disagreement=True)[2].max() == 0


def test_test_time_flips_average_the_flipped_predictions():
    tile = np.random.default_rng(2).normal(size=(1, 32, 48)).astype(np.float32)
    model = _models(1)[0]
    plain = Predictor(model)
    expected = np.mean([
        plain(tile), plain(tile[:, ::-1])[:, ::-1], plain(tile[:, :, ::-1])[:, :, ::-1],
        plain(tile[:, ::-1, ::-1])[:, ::-1, ::-1],
    ], 0)
    np.testing.assert_allclose(Predictor(model, tta=True)(tile), expected, atol=1e-5)
    # an ensemble's per-model outputs (for the class-share correction) are each model's own
    models = _models(2)
    each = Predictor(models, tta=True).outputs(tile, per_model=True)
    singles = np.concatenate([Predictor(m, tta=True)(tile) for m in models])
    np.testing.assert_allclose(each, singles, atol=1e-5)


def test_uncertainty_maps_and_score():
    image, _ = _data()
    models = _models(2)
    pred = run_to_end(predict_image(models, CONFIG, image, uncertainty=True, tta=True))
    assert pred.uncertainty.shape == pred.disagreement.shape == (64, 64)
    assert 0 <= pred.uncertainty.min() and pred.uncertainty.max() <= 1
    assert pred.score == pytest.approx(float(pred.uncertainty.mean()))
    single = run_to_end(predict_image(models[0], CONFIG, image, uncertainty=True))
    assert single.disagreement.max() == 0  # one model, no flips: nothing to disagree
    assert run_to_end(predict_image(models[0], CONFIG, image)).score is None


def test_ensemble_members_differ_and_share_the_budget(monkeypatch):
    monkeypatch.setattr("napari_frugalseg.core.train.MIN_STEPS", 0)  # class shares from the start
    image, labels = _data()
    # half the strokes held out: each member measures its lean on some of each class
    tc = TrainConfig(max_steps=6, batch_size=2, val_every=2, val_fraction=0.5)
    trainer = E.EnsembleTrainer(TrainingData([image], [labels]), CONFIG, tc, members=3)
    members, priors = [], []
    for p in trainer.run():  # the previews ask for the config while members wait their turn
        members.append(p.member)
        priors.append(trainer.config.class_prior)
    assert members == [0, 0, 1, 1, 2, 2] and trainer.step == 6
    assert all(len(prior) == 2 for prior in priors)
    w = [torch.cat([p.flatten() for p in m.parameters()]) for m in trainer.models]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    # one class_prior is saved for all: the mean of what the members lean towards
    leans = [t.config.class_prior for t in trainer.trainers]
    assert trainer.config.class_prior == pytest.approx(np.mean(leans, 0))
    # continuing trains every member further, within the steps asked for
    list(trainer.run(max_steps=5))
    assert [t.step for t in trainer.trainers] == [4, 4, 3]


def test_stopped_ensemble_keeps_only_trained_members():
    image, labels = _data()
    trainer = E.EnsembleTrainer(TrainingData([image], [labels]), CONFIG, TrainConfig(max_steps=20, batch_size=2), 3)
    for p in trainer.run():
        if p.step == 2:
            trainer.request_stop()
    assert len(trainer.models) == 1 and trainer.step == 2


def test_ensemble_too_big_for_memory_says_so_before_starting(monkeypatch):
    image, labels = _data()
    monkeypatch.setattr(E, "available_bytes", lambda device: 50 * 2**20)
    big = ModelConfig(classes=("a", "b"), width=64, depth=4, patch_size=(256, 256))
    with pytest.raises(FrugalsegError, match=r"ensemble of 8 models .* needs about .* GiB"):
        E.EnsembleTrainer(TrainingData([image], [labels]), big, TrainConfig(max_steps=1), 8)


def test_transfer_keeps_the_encoder_and_fits_a_new_head():
    old = Bundle(_models(1), ModelConfig(classes=("membrane", "interior"), width=4, depth=2, patch_size=(32, 32)))
    models, config = transfer(old, ("interior", "mito", "membrane"), 1, 2, "old")
    new, src = models[0], old.model
    assert config.classes == ("interior", "mito", "membrane") and new.head.out_channels == 3
    for (name, a), b in zip(new.down.state_dict().items(), src.down.state_dict().values()):
        assert torch.equal(a, b), name
    assert torch.equal(new.head.weight[0], src.head.weight[1])  # 'interior' carried over
    assert torch.equal(new.head.weight[2], src.head.weight[0])  # 'membrane' carried over
    assert new is not src and src.head.out_channels == 2  # the library model is untouched
    with pytest.raises(FrugalsegError, match="old: model was trained on 1-channel images, these have 3"):
        transfer(old, ("a", "b"), 3, 2, "old")
    with pytest.raises(FrugalsegError, match="old: a 2D model cannot start a 3D model"):
        transfer(old, ("a", "b"), 1, 3, "old")


def test_model_library_lists_entries_and_marks_broken_ones(tmp_path, monkeypatch):
    monkeypatch.setenv("FRUGALSEG_HOME", str(tmp_path / "home"))
    assert list_models() == []
    save_bundle(tmp_path / "m", _models(2), CONFIG, info={"data_shape": [1, 64, 64], "val_score": 0.8})
    add_model(tmp_path / "m", "nuclei-v1")
    broken = tmp_path / "home" / "models" / "half-copied"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    entries = {e.name: e for e in list_models()}
    good = entries["nuclei-v1"]
    assert good.error is None and good.classes == ("bg", "fg") and good.members == 2
    assert good.data_shape == (1, 64, 64) and good.val_score == 0.8 and good.created
    assert "val. Dice 0.800" in good.line() and "ensemble of 2" in good.line()
    assert entries["half-copied"].error and "BROKEN" in entries["half-copied"].line()
    assert resolve_model("nuclei-v1") == tmp_path / "home" / "models" / "nuclei-v1"
    assert len(load_bundle(resolve_model("nuclei-v1")).models) == 2
    with pytest.raises(FrugalsegError, match="no library model of that name .*nuclei-v1"):
        resolve_model("nuclei-v2")
    with pytest.raises(FrugalsegError, match="cannot name a library model"):
        add_model(tmp_path / "m", "../escape")
    (tmp_path / "home" / "models" / "nuclei-v1" / "weights_1.pt").unlink()
    assert "missing weights_1.pt" in {e.name: e for e in list_models()}["nuclei-v1"].error


def test_proposals_are_the_most_uncertain_disjoint_squares():
    u = np.full((120, 160), 0.1, np.float32)
    u[80:100, 100:120] = 0.9
    u[10:30, 10:30] = 0.6
    found = propose(u, n=3, size=20)
    assert [(p.y, p.x) for p in found[:2]] == [(90, 110), (20, 20)]
    assert found[0].score == pytest.approx(0.9) and found[2].score < found[1].score
    for a in found:
        for b in found:
            if a is not b:
                assert max(abs(a.y - b.y), abs(a.x - b.x)) >= 20  # no overlap
    stack = np.zeros((5, 40, 40), np.float32)
    stack[3, 10:20, 10:20] = 1
    stack[4, 10:20, 10:20] = 0.9  # the same spot on the next slice: not proposed again
    stack[0, 25:35, 25:35] = 0.5
    top, second = propose(stack, n=2, size=10)
    assert (top.z, top.y, top.x) == (3, 15, 15) and stack[top.z][top.box].min() == 1
    assert (second.z, second.y, second.x) == (0, 30, 30)
    series = stack.reshape(1, 5, 40, 40).repeat(2, axis=0)  # (T, Z, Y, X): the planes in turn
    series[0] = 0
    assert [(p.z, p.y, p.x) for p in propose(series, n=2, size=10)] == [(8, 15, 15), (5, 30, 30)]


def test_squares_labelled_already_are_not_proposed_again():
    u = np.full((120, 160), 0.1, np.float32)
    u[80:100, 100:120] = 0.9  # most uncertain, but the user has scribbled there
    u[10:30, 10:30] = 0.6
    labelled = np.zeros(u.shape, bool)
    labelled[85:95, 105:108] = True  # 30 of 400 pixels: 7.5 %
    first = propose(u, n=1, size=20, labelled=labelled)[0]
    assert (first.y, first.x) == (20, 20)
    sparse = np.zeros(u.shape, bool)
    sparse[90, 110] = True  # a single stroke pixel (0.25 %) does not count as labelled
    again = propose(u, n=1, size=20, labelled=sparse)[0]
    assert (again.y, again.x) == (90, 110)
