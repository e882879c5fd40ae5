"""The class-share correction on an early model: the plugin's loop, stopped after a few steps.

As in the plugin's loop test: one ISBI 2012 slice with 1 % skeleton scribbles brushed 3 px
wide, 64 px patches, a 60 s budget (the plugin's Train), stopped after ``--steps`` steps as the
Stop button stops it (the kept checkpoint is restored). The membrane Dice of the whole slice
and of held-out slices, predicted with and without the per-image class-share correction
(``predict_image(prior_correction=...)``). Run from the repository root:

    python benchmarks/early_correction.py --steps 70 150 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import sys

import numpy as np
from checkpoint_choice import brushed
from label_efficiency import score, split

from common import parser
from napari_frugalseg.core.config import TrainConfig, new_model_config
from napari_frugalseg.core.datasets import isbi2012
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData


def membrane_dice(trainer: Trainer, ds, ids: list[int], correct: bool) -> float:
    preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i],
                                      prior_correction=correct)).classes for i in ids]
    return float(score(ds, ids, preds)[0])


def plugin_slice(data, test_slices: int):
    """The plugin loop test's setting: ISBI (dataset), the scribbled slice's index in a list,
    held-out slice indices, its 1 % skeleton scribbles brushed 3 px wide, a 64 px patch config."""
    ds = isbi2012(data)
    train_ids, test = split(ds)
    scribbled = train_ids[:1]
    labels = brushed(skeleton_scribbles(ds.labels[scribbled[0]], 0.01, seed=0))
    config = new_model_config(ds.classes, ds.images[scribbled[0]].shape[0], 2, patch=64)
    return ds, scribbled, test[:test_slices], labels, config


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--steps", nargs="+", type=int, default=[70, 150], help="stop after these steps")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--test-slices", type=int, default=3, help="held-out slices scored")
    args = p.parse_args(argv)

    ds, scribbled, test, labels, config = plugin_slice(args.data, args.test_slices)
    image = ds.images[scribbled[0]]
    print(f"early correction: ISBI slice {scribbled[0]}, 1 % brushed scribbles, 60 s budget stopped "
          f"after {args.steps} steps; membrane Dice, corrected / raw")
    print(f"{'steps':<7}{'seed':<6}{'slice: corrected':>17}{'raw':>8}{'held-out: corrected':>21}{'raw':>8}")
    for steps in args.steps:
        rows = []
        for seed in args.seeds:
            tc = TrainConfig(max_seconds=60, val_every=10, seed=seed)
            trainer = Trainer(TrainingData([image], [labels], config.norm_percentiles), config, tc)
            for progress in trainer.run():  # leaving the loop stops it; the kept weights return
                if progress.step >= steps:
                    break
            rows.append([membrane_dice(trainer, ds, ids, correct)
                         for ids in (scribbled, test) for correct in (True, False)])
            print(f"{steps:<7}{seed:<6}" + "".join(f"{v:>{w}.3f}" for v, w in zip(rows[-1], (17, 8, 21, 8))),
                  flush=True)
        mean = np.mean(rows, axis=0)
        lower = sum(r[0] < r[1] for r in rows)
        print(f"{steps:<7}{'mean':<6}" + "".join(f"{v:>{w}.3f}" for v, w in zip(mean, (17, 8, 21, 8)))
              + f"   corrected below raw on the slice in {lower} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
