"""Real hand-drawn scribbles: the demo's image, network (by affinity weight) vs random forest.

The shipped 'blobs' sample carries real scribbles (a few strokes in one corner of the image, as
a user draws them, not spread over every object like the skeleton scribbles of
label_efficiency.py) and reference masks. Each method learns from the scribbles and is scored
by Dice over the whole image against the reference, as `frugalseg demo` does; "(raw)" rows
skip the per-image class-share correction. The affinity term (core/losses.affinity_loss) makes
neighbours of similar intensity agree; this shows what it does where strokes cover a small
part of the image. Otsu's threshold (no scribbles) is printed
as a reference for how wide the reference masks are drawn. Run from the repository root:

    python benchmarks/real_scribbles.py                      # 45 s per network, seeds 0 1
    python benchmarks/real_scribbles.py --affinity 0 0.1 1 --seconds 45 --seeds 0 1 2
    python benchmarks/real_scribbles.py --affinity 0.1 --seeds 0 1 2 3 --deep-supervision  # without it
"""

from __future__ import annotations

import sys

import numpy as np
from skimage.filters import threshold_otsu

from common import add_batch_options, add_deep_supervision_option, parser
from label_efficiency import run_forest, run_network, score
from napari_frugalseg.core.config import TrainConfig
from napari_frugalseg.core.datasets import Dataset
from napari_frugalseg.core.io import read_array, read_image
from napari_frugalseg.core.samples import DEMO_CLASSES, demo_sample


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--affinity", nargs="+", type=float, default=[0.0, TrainConfig.affinity_weight, 1.0])
    p.add_argument("--seconds", type=float, default=45.0)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    add_deep_supervision_option(p)
    add_batch_options(p)
    args = p.parse_args(argv)

    image_path, scribbles_path, truth = demo_sample()
    scribbles = read_array(scribbles_path).astype(np.int32)
    ds = Dataset("blobs", DEMO_CLASSES, [read_image(image_path)], [truth], ["blobs"])
    print(f"real scribbles on 'blobs': {np.count_nonzero(scribbles)} labelled pixels "
          f"({np.count_nonzero(scribbles) / scribbles.size:.1%}), {args.seconds:.0f} s per network, "
          f"seeds {args.seeds}; Dice over the whole image against the reference masks")
    print(f"{'method':<30}{'blob Dice':>10}  {'per seed':<24}{'blob area':>10}{'steps':>7}")
    area = (truth == 2).sum()
    for weight in args.affinity:
        rows: dict[str, list[tuple[float, float, int]]] = {}  # variant -> (Dice, area, steps) per seed
        for seed in args.seeds:
            for method, preds, _, _, n in run_network(ds, [0], [0], [scribbles], args.seconds,
                                                      seed=seed, affinity=weight, patch=args.patch,
                                                      batch_size=args.batch_size,
                                                      deep_supervision=args.deep_supervision):
                rows.setdefault(method, []).append(
                    (score(ds, [0], preds)[1], (preds[0] == 2).sum() / area, n))
        for method, runs in rows.items():
            dice, areas, steps = np.array(runs).T
            per_seed = " ".join(f"{d:.3f}" for d in dice)
            label = f"{method}, affinity {weight:g}"
            print(f"{label:<30}{dice.mean():>10.3f}  {per_seed:<24}{areas.mean():>9.2f}x"
                  f"{int(steps.mean()):>7}", flush=True)
    (_, forest, _, _, _), = run_forest(ds, [0], [0], [scribbles])
    otsu = np.where(ds.images[0][0] > threshold_otsu(ds.images[0][0]), 2, 1)  # no scribbles at all
    for method, pred in [("random forest", forest[0]), ("Otsu threshold", otsu)]:
        print(f"{method:<30}{score(ds, [0], [pred])[1]:>10.3f}  {'':<24}{(pred == 2).sum() / area:>9.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
