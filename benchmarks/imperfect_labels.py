"""Imperfect annotations on DSB 2018 nuclei (../shared/data): several annotators, noisy masks.

annotators: three simulated annotators of the training images with realistic faults (one
dilates boundaries by 2 px, one erodes by 2 px and misses the smaller half of the nuclei, one
is noisy: 10 % of pixels flipped and boundaries jittered). A network is trained on each alone
and on their STAPLE consensus (pixels weighted by its agreement); nucleus Dice against the
true masks of held-out images.

noise: 30 % of the nuclei corrupted (`--noise mixed`: half erased, half grown by 4 px; `missed`:
all erased, as by an annotator who overlooked them); the default objective (cross-entropy plus
Dice) and plain cross-entropy alone, each on clean and on noisy masks, and the robust option
(``--robust`` q: the generalized cross-entropy alone, as ``frugalseg train --robust``) on the
noisy masks, with the share of each baseline's noise loss it wins back.

By default only the fluorescence images (grey, dark background: 27 of 35) are used, so that
the label faults rather than the two brightfield / six tissue images, which a short training
cannot cover, decide the score; ``--images all`` takes every image. Each network is trained
once per seed and the mean is reported (per-seed figures in brackets).

    python benchmarks/imperfect_labels.py [--part annotators noise] [--seconds 90] [--seeds 0 1]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from common import add_batch_options, parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig
from napari_frugalseg.core.consensus import majority_vote, staple
from napari_frugalseg.core.datasets import dsb2018
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.train import Trainer, TrainingData

DISK2 = ndi.generate_binary_structure(2, 1)


def annotators(mask: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Three faulty versions of a boolean nucleus mask, as label images (1 bg, 2 nucleus)."""
    dilated = ndi.binary_dilation(mask, DISK2, iterations=2)
    objects, n = ndi.label(mask)
    sizes = ndi.sum(mask, objects, np.arange(1, n + 1)) if n else np.zeros(0)
    small = np.flatnonzero(sizes < np.median(sizes)) + 1 if n else []
    eroded = ndi.binary_erosion(mask & ~np.isin(objects, small), DISK2, iterations=2)
    jitter = ndi.gaussian_filter(rng.standard_normal(mask.shape), 2) > 0.35
    noisy = np.where(ndi.binary_dilation(mask) ^ ndi.binary_erosion(mask), jitter, mask)
    noisy ^= rng.random(mask.shape) < 0.10
    return [m.astype(np.int32) + 1 for m in (dilated, eroded, noisy)]


def corrupt(mask: np.ndarray, rng: np.random.Generator, share: float = 0.3, kind: str = "mixed") -> np.ndarray:
    """Corrupt a share of the objects: ``mixed`` erases half of them and grows the other half
    by 4 px; ``missed`` erases them all (an annotator who overlooked them)."""
    objects, n = ndi.label(mask)
    picked = rng.permutation(np.arange(1, n + 1))[: int(round(share * n))]
    erase, grow = (picked[::2], picked[1::2]) if kind == "mixed" else (picked, [])
    out = mask & ~np.isin(objects, erase)
    out |= ndi.binary_dilation(np.isin(objects, grow), DISK2, iterations=4)
    return out.astype(np.int32) + 1


def is_fluorescence(image: np.ndarray) -> bool:
    """Grey (all channels equal) with a dark background."""
    return bool(np.all(image == image[:1]) and np.median(image[0]) < 0.25 * image.max())


def train_and_score(ds, train, test, labels, args, weights=None, **loss) -> list[float]:
    """Nucleus Dice over the held-out images, one per seed; ``loss`` (e.g. robust_q,
    dice_weight) goes to the TrainConfig."""
    return [_train_and_score(ds, train, test, labels, args, weights, seed, loss) for seed in args.seeds]


def _train_and_score(ds, train, test, labels, args, weights, seed, loss) -> float:
    config = ModelConfig(classes=ds.classes, in_channels=3, width=args.width, depth=args.depth,
                         patch_size=(args.patch, args.patch))
    tc = TrainConfig(max_seconds=args.seconds, seed=seed, batch_size=args.batch_size, **loss)
    data = TrainingData([ds.images[i] for i in train], labels, config.norm_percentiles, weights=weights)
    trainer = Trainer(data, config, tc)
    for _ in trainer.run():
        pass
    preds = [run_to_end(predict_image(trainer.model, trainer.config, ds.images[i])).classes for i in test]
    truth = np.concatenate([ds.labels[i].ravel() for i in test])
    return float(dice_per_class(np.concatenate([p.ravel() for p in preds]), truth, 2)[1])


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--part", nargs="+", default=["annotators", "noise"], choices=["annotators", "noise"])
    p.add_argument("--seconds", type=float, default=90.0)
    p.add_argument("--robust", type=float, default=0.7, help="q of the generalized cross-entropy")
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--depth", type=int, default=3)
    add_batch_options(p)
    p.add_argument("--noise", choices=["mixed", "missed"], default="mixed",
                   help="mixed: 30 %% of objects erased or grown; missed: 30 %% erased")
    p.add_argument("--images", choices=["fluorescence", "all"], default="fluorescence")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    ds = dsb2018(args.data)
    used = [i for i, im in enumerate(ds.images) if args.images == "all" or is_fluorescence(im)]
    test = [i for i in used if i % 4 == 3]
    train = [i for i in used if i % 4 != 3]
    masks = [ds.labels[i] == 2 for i in train]
    rng = np.random.default_rng(0)
    rows: dict[str, float] = {}

    def report(name, values, extra=""):
        rows[name] = float(np.mean(values))
        each = " ".join(f"{v:.3f}" for v in values)
        print(f"{name:<48}{rows[name]:>8.3f}  [{each}]  {extra}", flush=True)

    print(f"imperfect labels on DSB 2018 ({args.images} images: {len(train)} train, {len(test)} "
          f"held out): {args.seconds:.0f} s per network, seeds {args.seeds}, nucleus Dice "
          "('masks': Dice of the training masks against the truth)")
    if "annotators" in args.part:
        per_image = [annotators(m, rng) for m in masks]
        t0 = time.perf_counter()
        merged = [staple(anns, 2) for anns in per_image]
        votes = [majority_vote(anns, 2) for anns in per_image]
        t_staple = time.perf_counter() - t0
        true_masks = np.concatenate([m.ravel() for m in masks]).astype(np.int32) + 1

        def mask_dice(labels):  # quality of the training masks themselves
            return dice_per_class(np.concatenate([a.ravel() for a in labels]), true_masks, 2)[1]

        sens = np.mean([c.sensitivity[:, 1] for c in merged], 0)
        spec = np.mean([c.specificity[:, 1] for c in merged], 0)
        for j, name in enumerate(("dilating", "eroding, misses small", "noisy")):
            alone = train_and_score(ds, train, test, [a[j] for a in per_image], args)
            report(f"annotator {j + 1} ({name})", alone,
                   f"masks {mask_dice([a[j] for a in per_image]):.3f}; STAPLE estimate: "
                   f"sensitivity {sens[j]:.3f}, specificity {spec[j]:.3f}")
        report("majority vote", train_and_score(ds, train, test, [c.labels for c in votes], args),
               f"masks {mask_dice([c.labels for c in votes]):.3f}")
        report("STAPLE consensus, agreement-weighted",
               train_and_score(ds, train, test, [c.labels for c in merged], args,
                               weights=[c.agreement for c in merged]),
               f"masks {mask_dice([c.labels for c in merged]):.3f} "
               f"(consensus of {len(merged)} images in {t_staple:.1f} s)")
        best = max(rows[k] for k in rows if k.startswith("annotator"))
        print(f"consensus - best single annotator = {rows['STAPLE consensus, agreement-weighted'] - best:+.3f} "
              "(target > 0)")
    if "noise" in args.part:
        clean = [m.astype(np.int32) + 1 for m in masks]
        noisy = [corrupt(m, rng, kind=args.noise) for m in masks]
        robust = f"30 % corrupted, robust (GCE q={args.robust})"
        baselines = {"cross-entropy + Dice (default)": TrainConfig.dice_weight, "cross-entropy alone": 0.0}
        for loss, dice_weight in baselines.items():
            report(f"clean masks, {loss}", train_and_score(ds, train, test, clean, args, dice_weight=dice_weight))
            report(f"30 % corrupted, {loss}", train_and_score(ds, train, test, noisy, args, dice_weight=dice_weight))
        report(robust, train_and_score(ds, train, test, noisy, args, robust_q=args.robust))
        for loss in baselines:
            lost = rows[f"clean masks, {loss}"] - rows[f"30 % corrupted, {loss}"]
            won = rows[robust] - rows[f"30 % corrupted, {loss}"]
            print(f"against {loss}: Dice lost to noise {lost:+.3f}; won back by the robust option "
                  f"{won:+.3f}" + (f" ({won / lost:.0%} of it; target >= 50 %)" if lost >= 0.01 else
                                   " (a loss under 0.01: nothing measurable to recover)"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
