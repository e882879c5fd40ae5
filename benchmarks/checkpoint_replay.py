"""Replay recorded held-out score series through the checkpoint rule: which step would be kept?

The series are the plugin loop's (``plugin_loop.py``'s setting: one brushed ISBI slice, a
correcting stroke, validation every 10 steps), recorded 2026-11-25 in five runs by a diagnostic
copy of ``tests/napari/test_loop.py`` (the procedure of ``plugin_loop.py``); all peak at step 40,
whose model drew membranes too thin where it was kept (share 0.11-0.13, truth 0.22). Printed, for the current rule (``core/checkpoints.py``)
and the one before 2026-11-25 (each new score counting half, from the first, no burn-in): the
step kept by a Stop after 70 and after 150 steps, and after 150 steps when the series starts at
step 40 (as if new strokes had reset the running mean just before the peak). Run from the
repository root (seconds, no data needed):

    python benchmarks/checkpoint_replay.py
"""

from __future__ import annotations

import sys

from napari_frugalseg.core.checkpoints import Checkpoints
from napari_frugalseg.core.config import TrainConfig

VAL_EVERY = 10
SERIES = [  # held-out scores at steps 10, 20, ..., 150
    [0.458, 0.549, 0.811, 0.948, 0.765, 0.729, 0.627, 0.715, 0.813, 0.879, 0.758, 0.588, 0.606, 0.67, 0.66],
    [0.458, 0.555, 0.86, 0.951, 0.76, 0.723, 0.717, 0.694, 0.902, 0.906, 0.847, 0.747, 0.69, 0.698, 0.736],
    [0.461, 0.585, 0.875, 0.947, 0.74, 0.697, 0.716, 0.715, 0.818, 0.825, 0.792, 0.735, 0.667, 0.716, 0.756],
    [0.444, 0.419, 0.697, 0.937, 0.75, 0.675, 0.613, 0.759, 0.826, 0.829, 0.794, 0.714, 0.695, 0.703, 0.748],
    [0.444, 0.423, 0.86, 0.945, 0.813, 0.741, 0.739, 0.744, 0.809, 0.85, 0.838, 0.73, 0.673, 0.663, 0.669],
]


def kept_now(scores: list[float], first_step: int, slack: float) -> int | None:
    """The step the current rule keeps."""
    chooser = Checkpoints(slack)
    for i, val in enumerate(scores):
        chooser.offer(first_step + i * VAL_EVERY, val, 0.0, dict)
    return chooser.kept_step


def kept_before(scores: list[float], first_step: int, slack: float) -> int | None:
    """The step the rule before 2026-11-25 kept: running mean, each new score counting half."""
    best, smoothed, kept = float("-inf"), None, None
    for i, val in enumerate(scores):
        smoothed = val if smoothed is None else 0.5 * (smoothed + val)
        if smoothed >= best - slack:
            best, kept = max(best, smoothed), first_step + i * VAL_EVERY
    return kept


def main(argv=None) -> int:
    slack = TrainConfig.checkpoint_slack
    print(f"checkpoint replay: {len(SERIES)} recorded loop runs, slack {slack}; step kept "
          "(None: no checkpoint yet, a Stop keeps the latest weights)")
    print(f"{'rule':<10}{'Stop after 70':>28}{'Stop after 150':>28}{'150, reset at the peak':>30}")
    for name, rule in (("current", kept_now), ("before", kept_before)):
        cells = [[rule(s[:7], VAL_EVERY, slack) for s in SERIES],
                 [rule(s, VAL_EVERY, slack) for s in SERIES],
                 [rule(s[3:], 4 * VAL_EVERY, slack) for s in SERIES]]
        print(f"{name:<10}" + "".join(f"{str(c):>28}" for c in cells[:2]) + f"{str(cells[2]):>30}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
