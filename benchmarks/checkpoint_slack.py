"""Which checkpoint to keep at the end of a run: the strictly best, the latest within a slack
of the best (``TrainConfig.checkpoint_slack``), or the last?

The label-efficiency protocol (1 % skeleton scribbles on the training images of each set, a
fixed time): the weights at every validation are kept aside with the trainer's smoothed
held-out-stroke score, and afterwards the checkpoints each rule would keep are scored on the
held-out images (target class Dice, as in label_efficiency.py). Run from the repository root:

    python benchmarks/checkpoint_slack.py --seeds 0 1          # ~14 min on a 2-core CPU
"""

from __future__ import annotations

import sys

import numpy as np
from label_efficiency import SPLITS, score, split

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import LOADERS
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--sets", nargs="+", default=list(LOADERS), choices=list(LOADERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--fraction", type=float, default=0.01)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--slacks", nargs="+", type=float, default=[0.01, 0.02, 0.05])
    args = p.parse_args(argv)

    rules = ["best", *(f"slack {s:g}" for s in args.slacks), "last"]
    print(f"checkpoint choice: {args.fraction:.1%} scribbles, {args.seconds:.0f} s; target class Dice "
          "on held-out images of the checkpoint each rule keeps (@ its step)")
    print(f"{'set':<15}{'seed':<6}" + "".join(f"{r:>16}" for r in rules))
    table = {r: [] for r in rules}
    for name in args.sets:
        ds = LOADERS[name](args.data)
        train, test = split(ds)
        target = ds.classes.index(SPLITS[name][1])
        scribbles = [skeleton_scribbles(ds.labels[i], args.fraction, seed=i) for i in train]
        for seed in args.seeds:
            config = ModelConfig(classes=ds.classes, in_channels=ds.images[0].shape[0])
            tc = TrainConfig(max_seconds=args.seconds, seed=seed)
            trainer = Trainer(TrainingData([ds.images[i] for i in train], scribbles), config, tc)
            snaps = []  # (step, smoothed held-out score, weights) at every validation
            for progress in trainer.run():
                if progress.val_score is not None:
                    weights = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
                    snaps.append((progress.step, trainer.checkpoints.smoothed, weights))
            smoothed = np.array([s[1] for s in snaps])
            smoothed[: trainer.checkpoints.min_validations - 1] = -np.inf  # no checkpoint before these
            picks = {"best": int(np.argmax(smoothed)), "last": len(snaps) - 1}
            for s in args.slacks:
                picks[f"slack {s:g}"] = int(np.flatnonzero(smoothed >= smoothed.max() - s)[-1])
            dice: dict[int, float] = {}
            for j in set(picks.values()):
                trainer.model.load_state_dict(snaps[j][2])
                trainer.model.eval()
                preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i])).classes for i in test]
                dice[j] = float(score(ds, test, preds)[target])
            cells = []
            for r in rules:
                table[r].append(dice[picks[r]])
                cells.append(f"{dice[picks[r]]:.3f} @{snaps[picks[r]][0]}")
            print(f"{name:<15}{seed:<6}" + "".join(f"{c:>16}" for c in cells), flush=True)
    print(f"{'mean':<21}" + "".join(f"{np.mean(v):>16.3f}" for v in table.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
