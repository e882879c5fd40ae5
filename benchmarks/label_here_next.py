"""Label here next: do strokes where the model proposes pay more than strokes at random places?

A simulated annotator starts from sparse synthetic scribbles (as in label_efficiency.py) on
the training images of a real set and trains a network. Then, for a number of rounds, it adds
strokes in N squares and training continues (at ``TrainConfig.continued()``'s learning rate,
as Train again in the plugin): either the N squares ``frugalseg`` proposes
(``core.guidance.propose``: the most uncertain square not yet labelled of each of the N most
uncertain images) or squares at random places until as many stroke pixels are drawn. Inside
each square the strokes are drawn from the true mask the same way (skeleton pieces of each
class present, ``--density`` of the square's pixels). After each round the mean per-class
Dice on the held-out images is reported, averaged over seeds; both annotators share the
first training run of each seed. ``--guide errors`` puts an oracle in the proposals' place,
squares ranked by where the model is truly wrong, to show how much placement can win at all.
Run from the repository root:

    python benchmarks/label_here_next.py --sets dsb2018 drosophila_vnc --start 0.001 --seeds 0 1
    python benchmarks/label_here_next.py --sets drosophila_vnc --start 0.001 --guide errors
"""

from __future__ import annotations

import copy
import itertools
import sys
from collections.abc import Iterable, Iterator

import numpy as np
from label_efficiency import score, split

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.datasets import LOADERS
from napari_frugalseg.core.guidance import Proposal, propose
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import Trainer, TrainingData


def train(trainer: Trainer, seconds: float) -> None:
    for _ in trainer.run(max_seconds=seconds):
        pass


def test_dice(trainer, ds, test) -> tuple[float, float]:
    """Mean per-class Dice on the held-out images: the prediction, and the same without the
    class-share correction ("raw")."""
    def mean_dice(correct: bool) -> float:
        preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i],
                                          prior_correction=correct)).classes for i in test]
        return float(np.nanmean(score(ds, test, preds)))

    return mean_dice(True), mean_dice(False)


def proposed(trainer, ds, train_ids, labels, n, size, rng) -> list[tuple[int, Proposal]]:
    """The most uncertain square not yet labelled of each image, for the ``n`` images whose
    square is most uncertain (as a user would go through the images of a project, pressing
    *Suggest where to label* on each); with fewer images than ``n`` the images take turns."""
    def doubt(i):
        return run_to_end(predict_image(trainer.model, trainer.config, ds.images[i], uncertainty=True)).uncertainty

    return ranked(train_ids, labels, n, size, doubt)


def ranked(train_ids, labels, n, size, score_map) -> list[tuple[int, Proposal]]:
    """The ``n`` squares of highest mean ``score_map(image index)``, one per image in turn."""
    found = []
    for j, i in enumerate(train_ids):
        found.append([(j, p) for p in propose(score_map(i), n, size, labelled=labels[j] > 0)])
    found.sort(key=lambda squares: -squares[0][1].score if squares else np.inf)
    turns = [squares[k] for k in range(n) for squares in found if k < len(squares)]
    return turns[:n]


def true_errors(trainer, ds, train_ids, labels, n, size, rng) -> list[tuple[int, Proposal]]:
    """An oracle, for scale (``--guide errors``): the squares where the model's prediction is
    most often wrong against the truth, chosen as ``proposed`` chooses by uncertainty; what
    any proposal could gain by finding exactly where the model errs."""
    def wrong(i):
        pred = run_to_end(predict_image(trainer.model, trainer.config, ds.images[i]))
        return (pred.classes != ds.labels[i]).astype(np.float32)

    return ranked(train_ids, labels, n, size, wrong)


def random_squares(trainer, ds, train_ids, labels, n, size, rng) -> Iterator[tuple[int, Proposal]]:
    """Squares at random places, as many as asked for (``n`` is ignored: the random annotator
    goes on until it has drawn as many stroke pixels as the guided one)."""
    while True:
        j = int(rng.integers(len(train_ids)))
        h, w = ds.labels[train_ids[j]].shape
        y, x = int(rng.integers(size // 2, h - size // 2)), int(rng.integers(size // 2, w - size // 2))
        yield j, Proposal(None, y, x, size, 0.0)


def add_strokes(labels: list[np.ndarray], ds, train_ids, squares: Iterable[tuple[int, Proposal]],
                density: float, seed: int, limit: int | None = None, max_squares: int = 1000) -> int:
    """Draw strokes from the truth inside each square until ``limit`` new pixels are drawn
    (all squares without a limit); returns the number of new pixels."""
    added = 0
    for r, (j, p) in enumerate(itertools.islice(squares, max_squares)):
        if limit is not None and added >= limit:
            break
        truth = ds.labels[train_ids[j]][p.box]
        strokes = skeleton_scribbles(truth, density, seed=seed + r, stroke_radius=6)
        target = labels[j][p.box]
        new = np.flatnonzero((strokes > 0) & (target == 0))
        if limit is not None:
            new = new[: limit - added]
        target.flat[new] = strokes.flat[new]
        added += len(new)
    return added


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--sets", nargs="+", default=["isbi2012", "drosophila_vnc"], choices=list(LOADERS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--start", type=float, default=0.0025, help="initial scribbles, share of pixels")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--squares", type=int, default=6, help="squares labelled per round")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--density", type=float, default=0.05, help="stroke pixels per square pixel")
    p.add_argument("--first-seconds", type=float, default=60.0)
    p.add_argument("--seconds", type=float, default=30.0, help="training per round")
    p.add_argument("--guide", choices=["uncertainty", "errors"], default="uncertainty",
                   help="rank squares by the model's uncertainty (frugalseg's proposals) or by its "
                        "true errors (an oracle that knows the truth, for scale)")
    p.add_argument("--full-lr", dest="continued", action="store_false",
                   help="rounds at the first run's learning rate, not TrainConfig.continued()'s")
    args = p.parse_args(argv)

    guide, pick_guided = {"uncertainty": ("proposed", proposed), "errors": ("errors", true_errors)}[args.guide]
    strategies = {guide: pick_guided, "random": random_squares}
    print(f"label here next: {args.rounds} rounds of {args.squares} squares of {args.size} px, "
          f"{args.first_seconds:.0f} s first training + {args.seconds:.0f} s per round; seeds {args.seeds}")
    final = {}
    for name in args.sets:
        ds = LOADERS[name](args.data)
        train_ids, test = split(ds)
        config = ModelConfig(classes=ds.classes, in_channels=ds.images[0].shape[0])
        curves = {s: np.zeros((len(args.seeds), args.rounds + 1, 2)) for s in strategies}  # corrected, raw
        pixels = {s: np.zeros(len(args.seeds)) for s in strategies}
        for si, seed in enumerate(args.seeds):
            start = [skeleton_scribbles(ds.labels[i], args.start, seed=seed * 1000 + i) for i in train_ids]
            tc = TrainConfig(max_seconds=args.first_seconds, seed=seed)
            first = Trainer(TrainingData([ds.images[i] for i in train_ids], start, config.norm_percentiles), config, tc)
            train(first, args.first_seconds)
            d0 = test_dice(first, ds, test)
            budget = {}
            for strategy, pick in strategies.items():
                rng = np.random.default_rng(seed)
                labels = [lab.copy() for lab in start]
                data = TrainingData([ds.images[i] for i in train_ids], labels, config.norm_percentiles)
                trainer = Trainer(data, config, tc.continued() if args.continued else tc,
                                  copy.deepcopy(first.model))
                curves[strategy][si, 0] = d0
                for r in range(1, args.rounds + 1):
                    squares = pick(trainer, ds, train_ids, labels, args.squares, args.size, rng)
                    # the random annotator draws as many stroke pixels as the guided one did
                    limit = budget[r] if strategy == "random" else None
                    budget[r] = add_strokes(labels, ds, train_ids, squares, args.density, seed * 100 + r, limit)
                    pixels[strategy][si] += budget[r]
                    for j, lab in enumerate(labels):
                        data.set_labels(j, lab)
                    train(trainer, args.seconds)
                    curves[strategy][si, r] = test_dice(trainer, ds, test)
                print(f"{name} seed {seed} {strategy:<9}: Dice by round "
                      + " ".join(f"{d:.3f}" for d in curves[strategy][si, :, 0])
                      + "  raw " + " ".join(f"{d:.3f}" for d in curves[strategy][si, :, 1])
                      + f"  (+{int(pixels[strategy][si])} stroke px)", flush=True)
        print(f"\n{name}: mean over seeds {args.seeds}")
        print(f"{'round':<10}" + "".join(f"{s:>12}" for s in strategies) + f"{'difference':>12}"
              + f"{'raw: ' + guide:>15}{'random':>8}{'difference':>12}")
        for r in range(args.rounds + 1):
            row = [curves[s][:, r, 0].mean() for s in strategies]
            raw = [curves[s][:, r, 1].mean() for s in strategies]
            print(f"{r:<10}" + "".join(f"{v:>12.3f}" for v in row) + f"{row[0] - row[1]:>+12.3f}"
                  + f"{raw[0]:>15.3f}{raw[1]:>8.3f}{raw[0] - raw[1]:>+12.3f}")
        print(f"{'stroke px':<10}" + "".join(f"{pixels[s].mean():>12.0f}" for s in strategies))
        final[name] = curves[guide][:, -1, 0].mean() - curves["random"][:, -1, 0].mean()
    print(f"\nafter the last round, {guide} - random: "
          + ", ".join(f"{k} {v:+.3f}" for k, v in final.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
