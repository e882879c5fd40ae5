"""Label efficiency: our network vs an ilastik-style random forest vs dense training.

On the real sets in ../shared/data, synthetic scribbles are drawn along the skeletons of the
true regions of the training images (deterministic, see core/scribbles.py). Every method is
scored by per-class Dice over all pixels of held-out images. Run from the repository root:

    python benchmarks/label_efficiency.py                       # 1 %, 120 s, all three sets
    python benchmarks/label_efficiency.py --fractions 0.005 0.01 0.02 --seconds 120
    python benchmarks/label_efficiency.py --sets dsb2018 --per-image   # where it loses
    python benchmarks/label_efficiency.py --seeds 0 1                  # mean over two seeds
    python benchmarks/label_efficiency.py --no-dense --seeds 1 --affinity 0  # an A/B of one term
    python benchmarks/label_efficiency.py --sets dsb2018 --no-dense --no-forest --scale-jitter 0.3
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from common import add_batch_options, add_deep_supervision_option, parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import LOADERS, Dataset
from napari_frugalseg.core.device import autocast_dtype, resolve_device
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData

# held-out images of each set, and the class each target is about (1-based)
SPLITS = {
    "isbi2012": (lambda i: i >= 20, "membrane"),
    "dsb2018": (lambda i: i % 4 == 3, "nucleus"),
    "drosophila_vnc": (lambda i: i >= 8, "mitochondria"),
}


def split(ds: Dataset):
    test_of, _ = SPLITS[ds.name]
    train = [i for i in range(len(ds.images)) if not test_of(i)]
    test = [i for i in range(len(ds.images)) if test_of(i)]
    return train, test


def score(ds: Dataset, test: list[int], predictions: list[np.ndarray]) -> np.ndarray:
    pred = np.concatenate([p.ravel() for p in predictions])
    truth = np.concatenate([ds.labels[i].ravel() for i in test])
    return dice_per_class(pred, truth, len(ds.classes))


def run_network(ds, train, test, labels, seconds, width=16, depth=3, patch=ModelConfig.patch_size[0], batch_size=None, seed=0,
                tta=True, affinity=TrainConfig.affinity_weight, fp32=False,
                average_decay=TrainConfig.average_decay, scale_jitter=TrainConfig.scale_jitter,
                deep_supervision=TrainConfig.deep_supervision, steps=None):
    """Train for ``seconds`` (``steps`` steps instead when given); rows (method, predictions,
    train s, predict s, steps): the model's prediction as ``frugalseg predict`` makes it
    ("network": averaged over the four flips unless ``tta`` is false), with ``tta`` the same in
    one pass ("no flips", ``--no-tta``), and in one pass without the per-image class-share
    correction ("raw", ``--no-tta --no-prior-correction``)."""
    tc = TrainConfig(max_seconds=None if steps else seconds, max_steps=steps, seed=seed,
                     batch_size=batch_size, affinity_weight=affinity, mixed_precision=not fp32,
                     average_decay=average_decay, scale_jitter=scale_jitter,
                     deep_supervision=tuple(deep_supervision))
    config = ModelConfig(classes=ds.classes, in_channels=ds.images[0].shape[0], width=width,
                         depth=depth, patch_size=(patch, patch))
    data = TrainingData([ds.images[i] for i in train], labels, config.norm_percentiles)
    trainer = Trainer(data, config, tc)
    t0 = time.perf_counter()
    for _ in trainer.run():
        pass
    t_train = time.perf_counter() - t0
    rows = []
    variants = [("network", tta, True), ("network (raw)", False, False)]
    if tta:
        variants.insert(1, ("no flips", False, True))
    for method, flips, correct in variants:
        t0 = time.perf_counter()
        preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i], tta=flips,
                                          prior_correction=correct)).classes for i in test]
        rows.append((method, preds, t_train, time.perf_counter() - t0, trainer.step))
    return rows


def print_per_image(ds: Dataset, test: list[int], predictions: list[np.ndarray], target: int) -> None:
    """One line per held-out image: its size, target Dice, and predicted / true target area."""
    value = target + 1
    for i, pred in zip(test, predictions):
        truth = ds.labels[i]
        dice = dice_per_class(pred.ravel(), truth.ravel(), len(ds.classes))[target]
        area = (pred == value).sum() / max(1, (truth == value).sum())
        print(f"{'':<15}image {i:<3}{'x'.join(map(str, truth.shape)):>10}  Dice {dice:.3f}  area {area:.2f}x")


def _features(image: np.ndarray) -> np.ndarray:
    from skimage.feature import multiscale_basic_features

    img = np.moveaxis(image, 0, -1).astype(np.float32)
    return multiscale_basic_features(img, channel_axis=-1, sigma_min=1, sigma_max=16)


def run_forest(ds, train, test, labels, seed=0):
    """The ilastik / napari-convpaint-style baseline: filter-bank features + random forest."""
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    xs, ys = [], []
    for i, lab in zip(train, labels):
        m = lab > 0
        xs.append(_features(ds.images[i])[m])
        ys.append(lab[m])
    rf = RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=seed)
    rf.fit(np.concatenate(xs), np.concatenate(ys))
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    preds = []
    for i in test:
        f = _features(ds.images[i])
        preds.append(rf.predict(f.reshape(-1, f.shape[-1])).reshape(f.shape[:-1]))
    return [("forest", preds, t_train, time.perf_counter() - t0, 0)]


def print_summary(rows: list[dict], seeds: list[int]) -> None:
    """Mean target Dice over seeds of each (set, labels, method), and network minus forest and
    minus dense, the differences the targets are about."""
    print(f"\nmean over seeds {seeds} (target Dice; per seed in brackets)")
    means: dict[tuple[str, str, str], float] = {}
    for key in dict.fromkeys((r["set"], r["labels"], r["method"]) for r in rows):
        values = [r["target_dice"] for r in rows if (r["set"], r["labels"], r["method"]) == key]
        means[key] = float(np.mean(values))
        print(f"{key[0]:<15}{key[1]:<8}{key[2]:<14}{means[key]:>12.3f}  [" + " ".join(f"{v:.3f}" for v in values) + "]")
    for (name, labels, method), value in means.items():
        if labels == "dense" or method == "forest":
            continue
        forest = means.get((name, labels, "forest"))
        dense = means.get((name, "dense", method))
        parts = [f"{name} {labels} {method}:"]
        if forest is not None:
            parts.append(f"- forest {value - forest:+.3f}")
        if dense is not None:
            parts.append(f"- dense {value - dense:+.3f}")
        print(" ".join(parts))


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--sets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    p.add_argument("--fractions", nargs="+", type=float, default=[0.01])
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--steps", type=int, default=None,
                   help="train each network this many steps instead of --seconds: A/B runs free of "
                   "the machine's speed of the moment (seeded CPU runs repeat exactly)")
    p.add_argument("--no-dense", action="store_true", help="skip the dense-label reference")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    add_batch_options(p)
    p.add_argument("--seeds", nargs="+", type=int, default=[0],
                   help="seeds of the networks' training and of the forest; the mean over seeds and the "
                   "network - forest and - dense differences are printed last")
    p.add_argument("--affinity", type=float, default=TrainConfig.affinity_weight,
                   help="weight of the edge-aware neighbour-agreement term (0 = off)")
    p.add_argument("--average-decay", type=float, default=TrainConfig.average_decay,
                   help="moving average of the weights (0 = the trained weights)")
    p.add_argument("--scale-jitter", type=float, default=TrainConfig.scale_jitter,
                   help="patches cut from regions up to 1 + this times larger or smaller (0 = off)")
    add_deep_supervision_option(p)
    p.add_argument("--no-forest", action="store_true", help="skip the random forest (A/B runs of the network)")
    p.add_argument("--no-tta", dest="tta", action="store_false",
                   help="predict in one pass only, as `frugalseg predict --no-tta` (quicker A/B runs)")
    p.add_argument("--fp32", action="store_true", help="train in float32 (default: mixed precision "
                   "where the device is fast at it, core/device.autocast_dtype)")
    p.add_argument("--per-image", action="store_true",
                   help="also print each held-out image's target Dice and predicted/true area")
    p.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = p.parse_args(argv)

    net = dict(width=args.width, depth=args.depth, patch=args.patch, batch_size=args.batch_size,
               tta=args.tta, affinity=args.affinity, fp32=args.fp32,
               average_decay=args.average_decay, scale_jitter=args.scale_jitter,
               deep_supervision=args.deep_supervision, steps=args.steps)
    rows = []
    device = resolve_device("auto")
    amp = None if args.fp32 else autocast_dtype(device, 2)
    precision = f"mixed precision {str(amp).removeprefix('torch.')}" if amp else "float32"
    budget = f"{args.steps} steps" if args.steps else f"{args.seconds:.0f} s"
    print(f"label efficiency: {budget} of training per network on {device} ({precision}), "
          f"held-out images; network {net}")
    header = f"{'set':<15}{'labels':<8}{'method':<14}{'target Dice':>12}  {'per-class Dice':<44}{'train s':>8}{'steps':>7}{'pred s':>8}{'seed':>5}"
    print(header)
    for name in args.sets:
        ds = LOADERS[name](args.data)
        train, test = split(ds)
        target = ds.classes.index(SPLITS[name][1])
        runs = []
        for frac in args.fractions:
            scribbles = [skeleton_scribbles(ds.labels[i], frac, seed=i) for i in train]
            runs.append((f"{frac:.1%}", lambda seed, s=scribbles: run_network(ds, train, test, s, args.seconds, seed=seed, **net)))
            if not args.no_forest:
                runs.append((f"{frac:.1%}", lambda seed, s=scribbles: run_forest(ds, train, test, s, seed)))
        if not args.no_dense:
            dense = [ds.labels[i] for i in train]
            runs.append(("dense", lambda seed: run_network(ds, train, test, dense, args.seconds, seed=seed, **net)))
        for seed in args.seeds:
            for labels_name, fn in runs:
                for method, preds, t_train, t_pred, steps in fn(seed):
                    dice = score(ds, test, preds)
                    per_class = " ".join(f"{c[:6]}={d:.3f}" for c, d in zip(ds.classes, dice))
                    print(f"{name:<15}{labels_name:<8}{method:<14}{dice[target]:>12.3f}  {per_class:<44}"
                          f"{t_train:>8.1f}{steps:>7}{t_pred:>8.1f}{seed:>5}", flush=True)
                    if args.per_image:
                        print_per_image(ds, test, preds, target)
                    rows.append(dict(set=name, labels=labels_name, method=method, seed=seed,
                                     target=ds.classes[target], target_dice=float(dice[target]),
                                     dice=dict(zip(ds.classes, map(float, dice))),
                                     train_s=t_train, steps=steps, predict_s=t_pred))
    print_summary(rows, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
