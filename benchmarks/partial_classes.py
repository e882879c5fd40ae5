"""Merging datasets that each annotate only some classes (the heartSeg claim, Schutera 2022).

Drosophila VNC (5 classes) from ../shared/data: training slices 0-3 form dataset A, which
annotates membrane and mitochondria densely; slices 4-7 form dataset B, which annotates
glia/ECS and synapse; neither labels cytoplasm (the "background" of both). Slices 8-9 are
held out and scored on all 5 classes. Same time budget per method (the per-dataset pair
shares it):

- marginal: union of A and B, unannotated pixels supervised with the marginal loss;
- naive: union, unannotated pixels taken as cytoplasm (the usual "unlabelled = background");
- per-dataset: one model per dataset (its classes + "rest"), combined at prediction as a
  product of experts;
- all labels: every class on every training slice (upper bound).

    python benchmarks/partial_classes.py [--seconds 120]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import drosophila_vnc
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.train import Trainer, TrainingData

A_SLICES, B_SLICES, TEST = range(0, 4), range(4, 8), [8, 9]
A_CLASSES, B_CLASSES = ("membrane", "mitochondria"), ("glia/ECS", "synapse")
BACKGROUND = "cytoplasm"


def train(images, labels, classes, seconds, args, sets=()):
    config = ModelConfig(classes=tuple(classes), width=args.width, depth=args.depth,
                         patch_size=(args.patch, args.patch))
    tc = TrainConfig(max_seconds=seconds, seed=args.seed, batch_size=args.batch_size,
                     exclusion_weight=args.exclusion_weight if sets else 0.0)
    trainer = Trainer(TrainingData(images, labels, config.norm_percentiles, sets), config, tc)
    for _ in trainer.run():
        pass
    return trainer


def probabilities(trainer, image):
    return run_to_end(predict_image(trainer.model, trainer.config, image, probabilities=True)).probabilities


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--exclusion-weight", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--methods", nargs="+", default=["marginal", "naive", "all labels", "per-dataset"],
                   choices=["marginal", "naive", "all labels", "per-dataset"])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    ds = drosophila_vnc(args.data)
    K, names = len(ds.classes), ds.classes
    idx = {n: k for k, n in enumerate(names, start=1)}
    a_set, b_set = [idx[n] for n in A_CLASSES], [idx[n] for n in B_CLASSES]
    outside_a = sorted(set(range(1, K + 1)) - set(a_set))
    outside_b = sorted(set(range(1, K + 1)) - set(b_set))
    train_slices = list(A_SLICES) + list(B_SLICES)
    images = [ds.images[i] for i in train_slices]

    def keep(lab, classes, rest):
        return np.where(np.isin(lab, classes), lab, rest).astype(np.int32)

    marginal = [keep(ds.labels[i], a_set, K + 1) for i in A_SLICES] + \
               [keep(ds.labels[i], b_set, K + 2) for i in B_SLICES]
    naive = [keep(ds.labels[i], a_set, idx[BACKGROUND]) for i in A_SLICES] + \
            [keep(ds.labels[i], b_set, idx[BACKGROUND]) for i in B_SLICES]
    dense = [ds.labels[i] for i in train_slices]
    test_images = [ds.images[i] for i in TEST]
    truth = np.concatenate([ds.labels[i].ravel() for i in TEST])
    rows = {}

    def score(name, preds, seconds):
        dice = dice_per_class(np.concatenate([q.ravel() for q in preds]), truth, K)
        rows[name] = {"mean": float(np.nanmean(dice)), "per_class": dice.tolist(), "seconds": seconds}
        per = " ".join(f"{n[:6]}={d:.3f}" for n, d in zip(names, dice))
        print(f"{name:<14}{np.nanmean(dice):>10.3f}  {per}  {seconds:6.0f}", flush=True)

    print(f"partial classes on Drosophila VNC: {args.seconds:.0f} s per method, held-out slices {TEST}")
    print(f"{'method':<14}{'mean Dice':>10}  per-class Dice  train s")
    for name, labels, sets in (("marginal", marginal, [outside_a, outside_b]),
                               ("naive", naive, ()), ("all labels", dense, ())):
        if name not in args.methods:
            continue
        t0 = time.perf_counter()
        trainer = train(images, labels, names, args.seconds, args, sets)
        seconds = time.perf_counter() - t0
        preds = [run_to_end(predict_image(trainer.model, trainer.config, im)).classes for im in test_images]
        score(name, preds, seconds)

    if "per-dataset" in args.methods:
        per_dataset(ds, args, a_set, b_set, idx, test_images, score)
    if {"marginal", "naive", "all labels"} <= set(rows):
        gain = rows["marginal"]["mean"] - rows["naive"]["mean"]
        gap = rows["all labels"]["mean"] - rows["marginal"]["mean"]
        print(f"marginal - naive = {gain:+.3f} (target >= +0.10); all labels - marginal = "
              f"{gap:+.3f} (target <= 0.05)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def per_dataset(ds, args, a_set, b_set, idx, test_images, score):
    """One model per dataset (its classes plus "rest"), combined as a product of experts."""
    K, names = len(ds.classes), ds.classes
    t0 = time.perf_counter()
    experts = []
    for slices, own in ((A_SLICES, a_set), (B_SLICES, b_set)):
        labs = [np.where(np.isin(ds.labels[i], own),
                         np.searchsorted(own, ds.labels[i]) + 1, len(own) + 1).astype(np.int32)
                for i in slices]
        classes = [names[k - 1] for k in own] + ["rest"]
        experts.append((own, train([ds.images[i] for i in slices], labs, classes, args.seconds / 2, args)))
    seconds = time.perf_counter() - t0
    preds = []
    for im in test_images:
        (own_a, ta), (own_b, tb) = experts
        pa, pb = probabilities(ta, im), probabilities(tb, im)
        score_map = np.zeros((K,) + im.shape[1:], np.float32)
        for j, k in enumerate(own_a):
            score_map[k - 1] = pa[j] * pb[-1]
        for j, k in enumerate(own_b):
            score_map[k - 1] = pb[j] * pa[-1]
        score_map[idx[BACKGROUND] - 1] = pa[-1] * pb[-1]
        preds.append(score_map.argmax(0) + 1)
    score("per-dataset", preds, seconds)


if __name__ == "__main__":
    raise SystemExit(main())
