"""Interactivity of the napari loop, measured in a real viewer (run under Xvfb on Linux).

On one real 512 x 512 ISBI 2012 slice with 1 % skeleton scribbles, through the plugin's
widget and the Qt event loop, this measures: Train -> first overlay, overlay refresh interval,
a new stroke -> used by the running training, the longest stall of napari's event loop (a
10 ms QTimer) during training and prediction, Stop -> idle, memory over train/stop cycles
(process RSS; CUDA memory when a GPU is used), and the longest stall around a stroke on a
64 x 1024 x 1024 stack (its autosave included). With ``--ndim 3``, the same for a 3D
model on a stack of the set's first 8 slices (scribbles on each). Run from the repository root:

    xvfb-run -a python benchmarks/interactivity.py [--cycles 20] [--device auto] [--ndim 3]
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path

import numpy as np

from common import parser, private_home


def rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Ticker:
    """Records the gaps between ticks of a 10 ms timer: a long gap is a stalled event loop."""

    def __init__(self):
        from qtpy.QtCore import Qt, QTimer

        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.worst = 0.0

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.worst = max(self.worst, now - self.last - 0.010)
        self.last = now

    def start(self):
        self.last, self.worst = None, 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst


def wait(predicate, timeout: float) -> float:
    """Run the event loop until ``predicate()``; returns the time waited."""
    from qtpy.QtCore import QEventLoop, QTimer

    start = time.perf_counter()
    loop = QEventLoop()
    poll = QTimer()
    poll.setInterval(5)
    poll.timeout.connect(lambda: (predicate() or time.perf_counter() - start > timeout) and loop.quit())
    poll.start()
    loop.exec()
    poll.stop()
    if not predicate():
        raise TimeoutError(f"not reached within {timeout} s")
    return time.perf_counter() - start


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--device", default="auto")
    p.add_argument("--ndim", type=int, choices=(2, 3), default=2,
                   help="3: a 3D model on a stack of the first 8 slices")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    home = private_home()  # autosaves still written, to a temporary folder

    import napari
    import torch

    from napari_frugalseg._napari import persistence
    from napari_frugalseg._napari.widgets.main import FrugalsegWidget
    from napari_frugalseg.core.datasets import isbi2012
    from napari_frugalseg.core.scribbles import skeleton_scribbles

    ds = isbi2012(args.data)
    n = 8 if args.ndim == 3 else 1
    image = np.stack([ds.images[i][0] for i in range(n)])
    scribbles = np.stack([skeleton_scribbles(ds.labels[i], 0.01, seed=i) for i in range(n)])
    if n == 1:
        image, scribbles = image[0], scribbles[0]
    viewer = napari.Viewer(show=True)
    viewer.add_image(image, name="em")
    widget = FrugalsegWidget(viewer)
    viewer.window.add_dock_widget(widget)
    ctl = widget.ctl
    ctl.change_settings(device=args.device, auto_continue=False, ndim=args.ndim)
    layer = widget.pick_image()
    layer.data = scribbles.astype(np.uint8)
    ctl.forget_edits()
    wait(lambda: True, 1.0)
    shown: list[float] = []
    used: list[float] = []
    ctl.preview_shown.connect(shown.append)
    ctl.strokes_used.connect(used.append)
    ticker = Ticker()
    out: dict[str, float | str] = {}

    # Train -> first overlay, refreshes, stroke pickup, stall during training, Stop -> idle
    ticker.start()
    t0 = time.perf_counter()
    widget.train(seconds=600)
    wait(lambda: len(shown) >= 1, 60)
    out["train_to_first_overlay_s"] = shown[0] - t0
    out["device"] = ctl.device
    wait(lambda: len(shown) >= 6, 120)
    out["overlay_refresh_max_s"] = float(np.max(np.diff(shown[:6])))
    t_stroke = time.perf_counter()
    layer.paint((0,) * (n > 1) + (200, 130), 2)  # a stroke on the interior
    wait(lambda: bool(used), 30)
    out["stroke_to_training_s"] = used[0] - t_stroke
    wait(lambda: time.perf_counter() - t_stroke > 5, 10)
    out["stall_training_ms"] = 1000 * ticker.stop()
    ctl.stop()
    out["stop_to_idle_s"] = wait(lambda: ctl.state == "idle", 30)
    out["steps_in_run"] = ctl.history[-1]["step"]

    # prediction of the whole image
    ticker.start()
    widget.predict_all()
    wait(lambda: ctl.state == "idle", 120)
    out["stall_prediction_ms"] = 1000 * ticker.stop()

    # train/stop cycles: memory must not grow
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    rss = []
    for i in range(args.cycles):
        widget.train(seconds=600)
        wait(lambda: ctl.trainer is not None and ctl.trainer.step >= 3, 60)
        ctl.stop()
        wait(lambda: ctl.state == "idle", 30)
        gc.collect()
        rss.append(rss_mib())
    warm = min(4, len(rss) - 1)  # the first cycles fill allocator pools and caches
    out["rss_after_first_cycle_mib"] = rss[0]
    out[f"rss_growth_cycles_{warm + 1}_to_{len(rss)}_mib"] = rss[-1] - rss[warm]
    print("RSS after each cycle (MiB):", " ".join(f"{r:.0f}" for r in rss))
    out["cuda_allocated_after_mib"] = torch.cuda.memory_allocated() / 2**20 if cuda else "n/a (no CUDA)"

    # a stroke on a large stack while idle: its autosave (64 MiB of scribbles) must not stall
    ctl.change_settings(ndim=2)
    viewer.add_image(np.tile(ds.images[0][0][None], (64, 2, 2)), name="stack")  # 64 x 1024 x 1024
    widget.image_combo.setCurrentText("stack")
    widget.scribble_combo.setCurrentText("<new scribble layer>")
    stack = widget.pick_image()
    wait(lambda: True, 1.0)
    ticker.start()
    t_stroke = time.perf_counter()
    stack.paint((32, 200, 130), 2)
    wait(lambda: time.perf_counter() - t_stroke > 1 and not persistence.writing(), 30)
    out["stall_stroke_on_stack_ms"] = 1000 * ticker.stop()
    out["stroke_on_stack_autosaved"] = str(any(Path(home.name).glob("**/scribbles/1.tif")))
    targets = {
        "train_to_first_overlay_s": 15, "overlay_refresh_max_s": 10, "stroke_to_training_s": 2,
        "stall_training_ms": 100, "stall_prediction_ms": 100, "stop_to_idle_s": 1,
        "stall_stroke_on_stack_ms": 100,
    }
    print(f"{args.ndim}D model")
    print(f"{'measure':32s} {'value':>10s}  target")
    for key, value in out.items():
        target = targets.get(key)
        shown_value = f"{value:10.2f}" if isinstance(value, float) else f"{value!s:>10s}"
        verdict = "" if target is None else (f"<= {target}  " + ("ok" if value <= target else "MISSED"))
        print(f"{key:32s} {shown_value}  {verdict}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    viewer.close()
    home.cleanup()


if __name__ == "__main__":
    main()
