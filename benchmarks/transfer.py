"""Transfer from an earlier model (after the TEM virus study): fine-tune vs train from scratch.

An earlier model is trained densely on the Drosophila VNC set (5 classes: membrane, glia/ECS,
mitochondria, synapse, cytoplasm). It then starts a new task, ISBI 2012 membranes (2 classes:
membrane, interior) with ``--fraction`` synthetic scribbles: the encoder and decoder are kept,
the output head is new (the 'membrane' row carried over; ``core.transfer``). Against it, with
the same time budget: the same network from scratch, and a larger network (``--big-width``)
from scratch. Dice on the held-out ISBI images is reported at several points of training time
(weights as they were at that moment; the final row uses the best weights, as the CLI saves).
Run from the repository root:

    python benchmarks/transfer.py --pretrain-seconds 180 --seconds 120 --seeds 0 1
"""

from __future__ import annotations

import copy
import sys

import numpy as np
from label_efficiency import split

from common import parser
from napari_frugalseg.core.bundle import Bundle
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import LOADERS
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData
from napari_frugalseg.core.transfer import transfer


def membrane_dice(model, config, ds, test) -> float:
    preds = np.concatenate([run_to_end(predict_image(model, config, ds.images[i])).classes.ravel() for i in test])
    truth = np.concatenate([ds.labels[i].ravel() for i in test])
    return float(dice_per_class(preds, truth, 2)[0])


def run(trainer: Trainer, seconds: float, marks: list[float]):
    """Train; snapshot the weights when the clock passes each mark."""
    snaps, todo = [], list(marks)
    for p in trainer.run(max_seconds=seconds):
        while todo and p.seconds >= todo[0]:
            snaps.append((todo.pop(0), copy.deepcopy(trainer.model).eval()))
    return snaps


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--fraction", type=float, default=0.005)
    p.add_argument("--pretrain-seconds", type=float, default=180.0)
    p.add_argument("--seconds", type=float, default=120.0)
    p.add_argument("--marks", nargs="+", type=float, default=[15, 30, 60])
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--big-width", type=int, default=32)
    p.add_argument("--seeds", nargs="+", type=int, default=[0], help="the mean over seeds is printed last")
    args = p.parse_args(argv)

    vnc = LOADERS["drosophila_vnc"](args.data)
    isbi = LOADERS["isbi2012"](args.data)
    train, test = split(isbi)
    scribbles = [skeleton_scribbles(isbi.labels[i], args.fraction, seed=i) for i in train]
    data = TrainingData([isbi.images[i] for i in train], scribbles)
    marks = [m for m in args.marks if m < args.seconds]
    header = f"{'method':<26}" + "".join(f"{f'{m:.0f} s':>9}" for m in marks) + f"{'end':>9}{'steps':>8}"
    table: dict[str, list[list[float]]] = {}
    for seed in args.seeds:
        src_config = ModelConfig(classes=vnc.classes, width=args.width)
        src = Trainer(TrainingData(vnc.images, vnc.labels, src_config.norm_percentiles), src_config,
                      TrainConfig(max_seconds=args.pretrain_seconds, seed=seed, val_fraction=0.0))
        for _ in src.run():
            pass
        print(f"seed {seed}: earlier model {src.step} steps on all Drosophila VNC slices, dense, "
              f"{args.pretrain_seconds:.0f} s; ISBI 2012 membranes, {args.fraction:.1%} scribbles, "
              f"{args.seconds:.0f} s each; membrane Dice on held-out images at training time:")
        print(header)
        tc = TrainConfig(max_seconds=args.seconds, seed=seed)
        (tuned,), tuned_config = transfer(Bundle([src.model], src_config), isbi.classes, 1, 2, "VNC model")
        runs = {
            f"fine-tuned (width {args.width})": (tuned_config, tuned),
            f"scratch (width {args.width})": (ModelConfig(classes=isbi.classes, width=args.width), None),
            f"scratch (width {args.big_width})": (ModelConfig(classes=isbi.classes, width=args.big_width), None),
        }
        for name, (config, model) in runs.items():
            trainer = Trainer(data, config, tc, model)
            snaps = run(trainer, args.seconds, marks)
            scores = [membrane_dice(m, trainer.config, isbi, test) for _, m in snaps]
            scores += [float("nan")] * (len(marks) - len(scores))
            scores.append(membrane_dice(trainer.model, trainer.config, isbi, test))
            table.setdefault(name, []).append(scores + [trainer.step])
            print(f"{name:<26}" + "".join(f"{s:>9.3f}" for s in scores) + f"{trainer.step:>8}", flush=True)
    if len(args.seeds) > 1:
        print(f"mean over seeds {args.seeds}:")
        print(header)
        for name, rows in table.items():
            *scores, steps = np.mean(rows, axis=0)
            print(f"{name:<26}" + "".join(f"{s:>9.3f}" for s in scores) + f"{steps:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
