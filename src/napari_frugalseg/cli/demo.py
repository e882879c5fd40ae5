"""``frugalseg demo``: train on the shipped sample, predict it, report the Dice."""

from __future__ import annotations

import time


def demo(args) -> int:
    from napari_frugalseg.cli import main
    from napari_frugalseg.core.io import read_array
    from napari_frugalseg.core.labels import dice_per_class
    from napari_frugalseg.core.samples import DEMO_CLASSES, demo_sample

    image, labels, truth = demo_sample()
    out = args.out
    print(
        "frugalseg demo: 'blobs' (real image, real hand-drawn scribbles: 1 = background, "
        "2 = blob; CC-BY 4.0, R. Haase)"
    )
    t0 = time.perf_counter()
    rc = main([
        "train", "--image", str(image), "--labels", str(labels), "--out", str(out / "model"),
        "--max-seconds", str(args.max_seconds), "--classes", *DEMO_CLASSES,
    ])
    if rc:
        return rc
    rc = main(["predict", "--model", str(out / "model"), "--image", str(image), "--out", str(out)])
    if rc:
        return rc
    pred = read_array(out / "blobs.tif")
    dice = dice_per_class(pred, truth, 2)
    print(f"done in {time.perf_counter() - t0:.0f} s; mask in {out / 'blobs.tif'}, model in {out / 'model'}")
    print(f"Dice against the reference labels: background {dice[0]:.3f}, blob {dice[1]:.3f}")
    return 0
