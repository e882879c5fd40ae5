"""Ensembles and uncertainty: does the per-image uncertainty score tell which images went wrong?

On the real sets in ../shared/data, an ensemble of K networks is trained from synthetic
scribbles (as in label_efficiency.py) with one time budget for the whole ensemble. On every
held-out image (the two held-out Drosophila VNC slices are cut into quarters, so that each set
has at least 8 images) it reports the Dice of the ensemble and of each member, and the
per-image uncertainty score (mean normalised entropy of the ensemble's mean, as written to
uncertainty.csv by ``frugalseg predict --uncertainty``). Then Spearman's rho of score vs
1 - Dice per set and over all images. Run from the repository root:

    python benchmarks/uncertainty.py --seconds 120 --members 3
"""

from __future__ import annotations

import sys
import time

import numpy as np
from label_efficiency import split
from scipy.stats import spearmanr

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import LOADERS
from napari_frugalseg.core.ensemble import EnsembleTrainer
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import TrainingData


def pieces(ds, test: list[int], min_count: int = 8):
    """(name, image, truth) of the held-out images, cut into quarters when there are few."""
    for i in test:
        image, truth = ds.images[i], ds.labels[i]
        if len(test) >= min_count:
            yield ds.ids[i], image, truth
            continue
        h, w = truth.shape[0] // 2, truth.shape[1] // 2
        for qy in range(2):
            for qx in range(2):
                box = (slice(qy * h, qy * h + h), slice(qx * w, qx * w + w))
                yield f"{ds.ids[i]}q{2 * qy + qx}", image[(slice(None),) + box], truth[box]


def mean_dice(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    return float(np.nanmean(dice_per_class(pred, truth, k)))


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--sets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    p.add_argument("--fraction", type=float, default=0.01)
    p.add_argument("--seconds", type=float, default=120.0, help="for the whole ensemble")
    p.add_argument("--members", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    print(f"uncertainty: ensemble of {args.members}, {args.seconds:.0f} s in all, "
          f"{args.fraction:.1%} scribbles, held-out images")
    all_scores, all_errors = [], []
    summary = []
    for name in args.sets:
        ds = LOADERS[name](args.data)
        train, test = split(ds)
        k = len(ds.classes)
        scribbles = [skeleton_scribbles(ds.labels[i], args.fraction, seed=i) for i in train]
        config = ModelConfig(classes=ds.classes, in_channels=ds.images[0].shape[0])
        data = TrainingData([ds.images[i] for i in train], scribbles, config.norm_percentiles)
        tc = TrainConfig(max_seconds=args.seconds, seed=args.seed)
        trainer = EnsembleTrainer(data, config, tc, args.members)
        t0 = time.perf_counter()
        for _ in trainer.run():
            pass
        t_train = time.perf_counter() - t0
        models = trainer.models
        rows = []
        for piece, image, truth in pieces(ds, test):
            ens = run_to_end(predict_image(models, trainer.config, image, uncertainty=True))
            singles = [mean_dice(run_to_end(predict_image(m, trainer.config, image)).classes, truth, k)
                       for m in models]
            rows.append((piece, mean_dice(ens.classes, truth, k), float(np.mean(singles)), ens.score,
                         float(ens.disagreement.mean())))
        print(f"\n{name}: trained {trainer.step} steps in {t_train:.0f} s")
        print(f"{'image':<36}{'ensemble Dice':>14}{'mean member':>13}{'uncertainty':>13}{'disagreement':>14}")
        for piece, d_ens, d_single, score, differ in rows:
            print(f"{piece[:35]:<36}{d_ens:>14.3f}{d_single:>13.3f}{score:>13.4f}{differ:>14.4f}")
        d_ens = np.array([r[1] for r in rows])
        d_single = np.array([r[2] for r in rows])
        scores = np.array([r[3] for r in rows])
        differ = np.array([r[4] for r in rows])
        rho = spearmanr(scores, 1 - d_ens).statistic
        rho_d = spearmanr(differ, 1 - d_ens).statistic
        all_scores += list(scores)
        all_errors += list(1 - d_ens)
        summary.append((name, len(rows), d_ens.mean(), d_single.mean(), rho, rho_d))
    print(f"\n{'set':<16}{'images':>7}{'ensemble Dice':>15}{'mean member':>13}"
          f"{'rho(score, 1-Dice)':>20}{'rho(disagreement)':>19}")
    for name, n, de, ds_, rho, rho_d in summary:
        print(f"{name:<16}{n:>7}{de:>15.3f}{ds_:>13.3f}{rho:>20.2f}{rho_d:>19.2f}")
    pooled = spearmanr(all_scores, all_errors).statistic
    print(f"{'all images':<16}{len(all_scores):>7}{'':>15}{'':>13}{pooled:>20.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
