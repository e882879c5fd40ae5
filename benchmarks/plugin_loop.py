"""The plugin's loop test, run several times and printed: which weights a Stop keeps, and why.

What ``tests/napari/test_loop.py`` does, in a real (hidden) napari viewer: one ISBI 2012 slice,
1 % skeleton scribbles painted through the layer's brush (3 px, every other stroke pixel), 64 px
patches, Train for 120 s, a correcting stroke (the truth of rows 200-202, columns 100-159) once
the first preview shows, Stop after ``--stop-after`` steps. Printed per run: the held-out score
at every validation, the step whose weights were kept, the slice's membrane Dice and the share
of pixels predicted membrane (truth ~0.22), raw and with the class-share correction.
Needs a display: run from the repository root under Xvfb:

    xvfb-run -a python benchmarks/plugin_loop.py --runs 5 --stop-after 150
    xvfb-run -a python benchmarks/plugin_loop.py --runs 8 --stop-after 70
"""

from __future__ import annotations

import sys
import time

import numpy as np

from common import parser, private_home
from napari_frugalseg.core.datasets import isbi2012
from napari_frugalseg.core.labels import dice_per_class
from napari_frugalseg.core.predict import predict_image, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles


def wait_until(app, done, timeout: float) -> None:
    """Run the Qt event loop until ``done()`` or the timeout (seconds)."""
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the plugin did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def paint(layer, scribbles: np.ndarray, step: int = 2) -> None:
    """Brush along the stroke pixels, as the loop test paints them."""
    layer.brush_size = 3
    for value in np.unique(scribbles[scribbles > 0]):
        for point in np.argwhere(scribbles == value)[::step]:
            layer.paint(point, int(value), refresh=False)
    layer.refresh()


def one_run(app, image, truth, scribbles, stop_after: int, correct: bool) -> str:
    import napari

    from napari_frugalseg._napari.state import ClassSpec
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget

    viewer = napari.Viewer(show=False)
    try:
        widget = FrugalsegWidget(viewer)
        ctl = widget.ctl
        ctl.change_settings(patch_size=64, refresh_seconds=1.0, auto_continue=False)
        viewer.add_image(image, name="em")
        ctl.set_classes([ClassSpec("membrane", "#ff00ff"), ClassSpec("interior", "#00ffff")])
        widget.image_combo.setCurrentText("em")
        layer = widget.pick_image()
        paint(layer, scribbles)
        ctl.forget_edits()
        shown = []
        ctl.preview_shown.connect(shown.append)
        widget.train(seconds=120)
        wait_until(app, lambda: shown, 20)
        if correct:
            band = np.zeros_like(scribbles)
            band[200:203, 100:160] = truth[200:203, 100:160]
            paint(layer, band, step=1)
        wait_until(app, lambda: ctl.trainer is not None and ctl.trainer.step >= stop_after, 200)
        trainer = ctl.trainer
        ctl.stop()
        wait_until(app, lambda: ctl.state == "idle", 10)
        member = trainer.trainers[0]
        scores = [f"{h['step']}:{h['val_score']:.2f}" for h in member.history if h["val_score"] is not None]
        out = [f"kept step {member.checkpoints.kept_step or member.step}"]
        for fixed in (False, True):
            pred = run_to_end(predict_image(ctl.model, ctl.config, image[None].astype(np.float32),
                                            prior_correction=fixed)).classes
            dice = dice_per_class(pred, truth, 2)[0]
            out.append(f"{'corrected' if fixed else 'raw'} {dice:.3f} (share {np.mean(pred == 1):.2f})")
        return ", ".join(out) + "\n    held-out scores " + " ".join(scores)
    finally:
        viewer.close()


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--stop-after", type=int, default=150, help="Stop once training reached this step")
    p.add_argument("--no-correction", action="store_true", help="leave out the correcting stroke")
    args = p.parse_args(argv)
    home = private_home()  # autosaves still written, to a temporary folder

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    ds = isbi2012(args.data)
    truth = ds.labels[0]
    image, scribbles = ds.images[0][0], skeleton_scribbles(truth, 0.01, seed=0)
    print(f"plugin loop: ISBI slice 0, 1 % brushed scribbles, Stop after {args.stop_after} steps, "
          f"{'no' if args.no_correction else 'a'} correcting stroke; membrane Dice on the slice")
    for run in range(args.runs):
        print(f"run {run + 1}: " + one_run(app, image, truth, scribbles, args.stop_after,
                                             not args.no_correction), flush=True)
    home.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
