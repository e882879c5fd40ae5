"""The class-share correction on an early model: the plugin's loop, stopped after a few steps.

As in the plugin's loop test: one ISBI 2012 slice with 1 % skeleton scribbles brushed 3 px
wide, 64 px patches, a 60 s budget (the plugin's Train), stopped after ``--steps`` steps as the
Stop button stops it (the kept checkpoint is restored). The membrane Dice of the whole slice
and of held-out slices, predicted with and without the per-image class-share correction
(``predict_image(prior_correction=...)``), the step whose weights were kept and the share of
the slice predicted membrane (raw; the truth's is ~0.22). ``--correct-at N`` adds the loop
test's correcting stroke (a 3-pixel band of the truth across the slice) after step N, as a
user correcting a preview does; it resets the held-out yardstick. Run from the repository root:

    python benchmarks/early_correction.py --steps 70 150 --seeds 0 1 2 3 4
    python benchmarks/early_correction.py --steps 70 --seeds 0 1 2 3 4 5 6 7 --correct-at 15
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


def membrane_scores(model, config, ds, scribbled: list[int], test: list[int], correct: bool
                    ) -> tuple[float, float, float]:
    """Membrane Dice of the scribbled slice and of the held-out slices, and the share of the
    scribbled slice predicted membrane."""
    preds = {i: run_to_end(predict_image(model, config, ds.images[i], prior_correction=correct)).classes
             for i in scribbled + test}
    return (float(score(ds, scribbled, [preds[i] for i in scribbled])[0]),
            float(score(ds, test, [preds[i] for i in test])[0]),
            float(np.mean(preds[scribbled[0]] == 1)))


def correcting_stroke(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``labels`` with the loop test's correcting stroke painted over them: the truth of rows
    200-202, columns 100-159, brushed 3 px wide."""
    band = np.zeros_like(truth)
    band[200:203, 100:160] = truth[200:203, 100:160]
    band = brushed(band)
    return np.where(band > 0, band, labels)


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
    p.add_argument("--correct-at", type=int, default=None, metavar="N",
                   help="add the loop test's correcting stroke after step N")
    args = p.parse_args(argv)

    ds, scribbled, test, labels, config = plugin_slice(args.data, args.test_slices)
    image = ds.images[scribbled[0]]
    corrected = correcting_stroke(labels, ds.labels[scribbled[0]])
    print(f"early correction: ISBI slice {scribbled[0]}, 1 % brushed scribbles, 60 s budget stopped "
          f"after {args.steps} steps; correcting stroke after step {args.correct_at}; membrane Dice, "
          "corrected / raw")
    print(f"{'steps':<7}{'seed':<6}{'slice: corrected':>17}{'raw':>8}{'held-out: corrected':>21}{'raw':>8}"
          f"{'kept step':>11}{'membrane share':>16}")
    for steps in args.steps:
        rows = []
        for seed in args.seeds:
            tc = TrainConfig(max_seconds=60, val_every=10, seed=seed)
            data = TrainingData([image], [labels], config.norm_percentiles)
            trainer = Trainer(data, config, tc)
            for progress in trainer.run():  # leaving the loop stops it; the kept weights return
                if progress.step == args.correct_at:
                    data.set_labels(0, corrected)
                if progress.step >= steps:
                    break
            fixed, raw = (membrane_scores(trainer.model, trainer.config, ds, scribbled, test, correct)
                          for correct in (True, False))
            rows.append([fixed[0], raw[0], fixed[1], raw[1]])
            print(f"{steps:<7}{seed:<6}" + "".join(f"{v:>{w}.3f}" for v, w in zip(rows[-1], (17, 8, 21, 8)))
                  + f"{trainer.checkpoints.kept_step or steps:>11}{raw[2]:>16.2f}", flush=True)
        mean = np.mean(rows, axis=0)
        lower = sum(r[0] < r[1] for r in rows)
        print(f"{steps:<7}{'mean':<6}" + "".join(f"{v:>{w}.3f}" for v, w in zip(mean, (17, 8, 21, 8)))
              + f"   corrected below raw on the slice in {lower} of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
