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

Each method is trained once per seed; the table gives the mean over seeds (per-seed means in
brackets) and the training steps reached. ``--steps N`` budgets by steps instead of time, for
ablations that must not depend on the machine's speed.

    python benchmarks/partial_classes.py [--seconds 120] [--seeds 0 1] [--steps N] [--affinity W]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from common import add_batch_options, parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import drosophila_vnc
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.train import Trainer, TrainingData

A_SLICES, B_SLICES, TEST = range(0, 4), range(4, 8), [8, 9]
A_CLASSES, B_CLASSES = ("membrane", "mitochondria"), ("glia/ECS", "synapse")
BACKGROUND = "cytoplasm"


def train(images, labels, classes, share, args, seed, sets=()):
    """A trainer run to the end of its share (1 or 1/2) of the budget."""
    config = ModelConfig(classes=tuple(classes), width=args.width, depth=args.depth,
                         patch_size=(args.patch, args.patch))
    budget = ({"max_steps": int(args.steps * share), "max_seconds": None} if args.steps
              else {"max_seconds": args.seconds * share})
    tc = TrainConfig(seed=seed, batch_size=args.batch_size,
                     exclusion_weight=args.exclusion_weight if sets else 0.0,
                     affinity_weight=args.affinity, **budget)
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
    add_batch_options(p)
    p.add_argument("--exclusion-weight", type=float, default=0.0)
    p.add_argument("--affinity", type=float, default=TrainConfig.affinity_weight,
                   help="weight of the edge-aware neighbour-agreement term (0 = off)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=None, help="budget by steps instead of seconds")
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

    def score(name, runs):
        """runs: one (predictions, seconds, steps) per seed."""
        dice = np.array([dice_per_class(np.concatenate([q.ravel() for q in preds]), truth, K)
                         for preds, _, _ in runs])
        means = np.nanmean(dice, axis=1)
        rows[name] = {"mean": float(means.mean()), "per_seed": means.tolist(),
                      "per_class": np.nanmean(dice, axis=0).tolist(),
                      "seconds": [r[1] for r in runs], "steps": [r[2] for r in runs]}
        per = " ".join(f"{n[:6]}={d:.3f}" for n, d in zip(names, rows[name]["per_class"]))
        seeds = " ".join(f"{m:.3f}" for m in means)
        print(f"{name:<14}{means.mean():>10.3f} [{seeds}]  {per}  {np.mean(rows[name]['seconds']):5.0f} s "
              f"{'/'.join(str(n) for n in rows[name]['steps'])} steps", flush=True)

    budget = f"{args.steps} steps" if args.steps else f"{args.seconds:.0f} s"
    print(f"partial classes on Drosophila VNC: {budget} per method, seeds {args.seeds}, "
          f"held-out slices {TEST}")
    print(f"{'method':<14}{'mean Dice':>10} [per seed]  per-class Dice  train time, steps")
    for name, labels, sets in (("marginal", marginal, [outside_a, outside_b]),
                               ("naive", naive, ()), ("all labels", dense, ())):
        if name not in args.methods:
            continue
        runs = []
        for seed in args.seeds:
            t0 = time.perf_counter()
            trainer = train(images, labels, names, 1.0, args, seed, sets)
            seconds = time.perf_counter() - t0
            print(f"  {name}, seed {seed}: kept the weights of step {trainer.checkpoints.kept_step} "
                  f"of {trainer.step}", flush=True)
            preds = [run_to_end(predict_image(trainer.model, trainer.config, im)).classes
                     for im in test_images]
            runs.append((preds, seconds, trainer.step))
        score(name, runs)

    if "per-dataset" in args.methods:
        score("per-dataset", [per_dataset(ds, args, seed, a_set, b_set, idx, test_images)
                              for seed in args.seeds])
    if {"marginal", "naive"} <= set(rows):
        print(f"marginal - naive = {rows['marginal']['mean'] - rows['naive']['mean']:+.3f} "
              f"(target >= +0.10), mean over seeds {args.seeds}")
    if {"marginal", "all labels"} <= set(rows):
        print(f"all labels - marginal = {rows['all labels']['mean'] - rows['marginal']['mean']:+.3f} "
              f"(target <= 0.05), mean over seeds {args.seeds}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def per_dataset(ds, args, seed, a_set, b_set, idx, test_images):
    """One model per dataset (its classes plus "rest"), combined as a product of experts;
    each gets half the budget. Returns (predictions, seconds, steps)."""
    K, names = len(ds.classes), ds.classes
    t0 = time.perf_counter()
    experts = []
    for slices, own in ((A_SLICES, a_set), (B_SLICES, b_set)):
        labs = [np.where(np.isin(ds.labels[i], own),
                         np.searchsorted(own, ds.labels[i]) + 1, len(own) + 1).astype(np.int32)
                for i in slices]
        classes = [names[k - 1] for k in own] + ["rest"]
        experts.append((own, train([ds.images[i] for i in slices], labs, classes, 0.5, args, seed)))
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
    return preds, seconds, sum(t.step for _, t in experts)


if __name__ == "__main__":
    raise SystemExit(main())
