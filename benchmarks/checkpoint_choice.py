"""Which checkpoint to keep: the trainer's running mean of held-out scores, or their maximum?

The plugin's usual case: one ISBI 2012 slice scribbled by hand (1 % skeleton scribbles,
thickened by a 3-pixel brush as napari paints them), small patches, a short run. At every
validation the membrane Dice on held-out slices is measured too. Reported per seed: the
held-out-slice Dice of the checkpoint the trainer keeps (running mean, ``Checkpoints``, and
``TrainConfig.checkpoint_slack``),
of the one the raw maximum of the held-out-stroke scores would have kept, and of the last.
``--score-weight 0.5 --min-validations 1`` is close to the running mean used before 2026-11-25
(which was not normalised: its first score counted in full; ``checkpoint_replay.py`` has it).
Run from the repository root:

    python benchmarks/checkpoint_choice.py --seeds 0 1 2 3 4 5
    python benchmarks/checkpoint_choice.py --seeds 0 1 2 3 4 5 --score-weight 0.5 --min-validations 1
"""

from __future__ import annotations

import sys

import numpy as np
from label_efficiency import split
from scipy import ndimage as ndi

from common import parser
from napari_frugalseg.core.checkpoints import Checkpoints
from napari_frugalseg.core.config import TrainConfig, new_model_config
from napari_frugalseg.core.datasets import isbi2012
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData


def brushed(scribbles: np.ndarray) -> np.ndarray:
    """Strokes as a 3-pixel brush paints them, later classes painted over earlier ones."""
    out = np.zeros_like(scribbles)
    for value in np.unique(scribbles[scribbles > 0]):
        out[ndi.binary_dilation(scribbles == value, np.ones((3, 3), bool))] = value
    return out


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--test-slices", type=int, default=3, help="held-out slices scored")
    p.add_argument("--score-weight", type=float, default=Checkpoints.score_weight,
                   help="weight of the newest validation in the running mean (0.5 before 2026-11-25)")
    p.add_argument("--min-validations", type=int, default=Checkpoints.min_validations,
                   help="validations before a checkpoint is kept (1 before 2026-11-25)")
    args = p.parse_args(argv)

    ds = isbi2012(args.data)
    train_ids, test = split(ds)
    test = test[: args.test_slices]
    image, truth = ds.images[train_ids[0]], ds.labels[train_ids[0]]
    labels = brushed(skeleton_scribbles(truth, 0.01, seed=0))
    config = new_model_config(ds.classes, image.shape[0], 2, patch=64)

    def membrane_dice(trainer: Trainer) -> float:
        preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i])).classes for i in test]
        return float(dice_per_class(np.concatenate([q.ravel() for q in preds]),
                                    np.concatenate([ds.labels[i].ravel() for i in test]), 2)[0])

    print(f"checkpoint choice: ISBI slice {train_ids[0]}, 1 % brushed scribbles, {args.steps} steps, "
          f"membrane Dice on held-out slices {test}; running mean: newest weighs {args.score_weight}, "
          f"a checkpoint after {args.min_validations} validations")
    print(f"{'seed':<6}{'kept (trainer)':>22}{'raw maximum':>14}{'last':>8}")
    rows = []
    for seed in args.seeds:
        tc = TrainConfig(max_steps=args.steps, max_seconds=None, val_every=10, seed=seed)
        trainer = Trainer(TrainingData([image], [labels], config.norm_percentiles), config, tc)
        trainer.checkpoints.score_weight = args.score_weight
        trainer.checkpoints.min_validations = args.min_validations
        vals, dices, kept = [], [], None
        for progress in trainer.run():
            if progress.val_score is not None:
                vals.append(progress.val_score)
                dices.append(membrane_dice(trainer))
                if progress.improved:
                    kept = dices[-1]
        row = (dices[-1] if kept is None else kept, dices[int(np.argmax(vals))], dices[-1])
        rows.append(row)
        print(f"{seed:<6}{row[0]:>22.3f}{row[1]:>14.3f}{row[2]:>8.3f}", flush=True)
    mean = np.mean(rows, axis=0)
    print(f"{'mean':<6}{mean[0]:>22.3f}{mean[1]:>14.3f}{mean[2]:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
