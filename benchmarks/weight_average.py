"""A moving average of the weights against the trained weights themselves, for an early Stop.

As in the plugin's loop (and ``early_correction.py``): one ISBI 2012 slice with 1 % skeleton
scribbles brushed 3 px wide, 64 px patches, a 60 s budget, validation every 10 steps. At each of
``--steps`` the model a Stop would restore (the kept checkpoint) predicts the whole slice and
held-out slices, without the class-share correction; printed: membrane Dice and the share of
pixels predicted membrane (the truth's is ~0.22), per seed, for ``TrainConfig.average_decay``
0.99 (the default) and 0 (no averaging), and for each ``--slacks`` value of
``TrainConfig.checkpoint_slack`` (1 = keep the latest validation). Run from the repository root:

    python benchmarks/weight_average.py --steps 50 70 100 150 --seeds 0 1 2 3 4 5
    python benchmarks/weight_average.py --decays 0.99 --slacks 0.02 1
"""

from __future__ import annotations

import copy
import sys

import numpy as np
from early_correction import membrane_scores, plugin_slice

from common import parser
from napari_frugalseg.core.config import TrainConfig
from napari_frugalseg.core.train import Trainer, TrainingData


def stopped_here(trainer: Trainer):
    """The weights a Stop now would restore, in a copy (the run goes on)."""
    model = copy.deepcopy(trainer.model)
    model.load_state_dict(trainer.kept_state())
    return model


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--steps", nargs="+", type=int, default=[50, 70, 100, 150])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    p.add_argument("--decays", nargs="+", type=float, default=[0.99, 0.0])
    p.add_argument("--slacks", nargs="+", type=float, default=[TrainConfig.checkpoint_slack],
                   help="TrainConfig.checkpoint_slack values (1 = the latest validation)")
    p.add_argument("--test-slices", type=int, default=3, help="held-out slices scored")
    args = p.parse_args(argv)

    ds, scribbled, test, labels, config = plugin_slice(args.data, args.test_slices)
    image = ds.images[scribbled[0]]
    print(f"weight average: ISBI slice {scribbled[0]}, 1 % brushed scribbles, 60 s budget; "
          "the kept model at each step: membrane Dice (slice, held-out) and share predicted membrane")
    print(f"{'decay':<7}{'slack':<7}{'seed':<6}" + "".join(f"{'step ' + str(s):>22}" for s in args.steps))
    for decay, slack in [(d, s) for d in args.decays for s in args.slacks]:
        head = f"{decay:<7}{slack:<7}"
        table = []  # seeds x steps x (slice Dice, held-out Dice, membrane share)
        for seed in args.seeds:
            tc = TrainConfig(max_seconds=60, val_every=10, seed=seed, average_decay=decay,
                             checkpoint_slack=slack)
            trainer = Trainer(TrainingData([image], [labels], config.norm_percentiles), config, tc)
            row = []
            for progress in trainer.run():
                if progress.step in args.steps:
                    row.append(membrane_scores(stopped_here(trainer), trainer.config, ds, scribbled,
                                               test, correct=False))
                if progress.step >= max(args.steps):
                    break
            table.append(row)
            print(f"{head}{seed:<6}" + "".join(f"{a:>10.3f}{b:>6.3f}{c:>6.2f}" for a, b, c in row),
                  flush=True)
        t = np.array(table)
        print(f"{head}{'mean':<6}" + "".join(f"{a:>10.3f}{b:>6.3f}{c:>6.2f}" for a, b, c in t.mean(0)))
        print(f"{head}{'min':<6}" + "".join(f"{a:>10.3f}{b:>6.3f}{'':>6}" for a, b, _ in t.min(0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
