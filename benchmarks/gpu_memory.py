"""GPU memory after the plugin's training and prediction jobs, without Qt (needs a CUDA GPU).

The plugin's training job (``_napari/controller.py``) runs an ``EnsembleTrainer`` with a live
preview of the view, is stopped or runs out its budget, and calls ``release()``; its predict-all
job (``_napari/overlays.py``) predicts the whole image with uncertainty, the models on the
device for that job only (``predict.models_on``). This makes the same core calls in the same
order on one real 512 x 512 ISBI 2012 slice with 1 % skeleton scribbles, for ``--cycles``
cycles (odd cycles are stopped after a few steps, even ones run out their budget; each
continues the last model, as Train again does), and prints ``torch.cuda.memory_allocated`` before any work, at its peak in
training, after training and after prediction, and the process RSS after each cycle.

    python benchmarks/gpu_memory.py [--cycles 20] [--seconds 3] [--members 1]

(``benchmarks/interactivity.py`` takes the same figures through the real widget when napari and
Qt run on the GPU machine.)
"""

from __future__ import annotations

import gc

import torch

from common import parser
from interactivity import rss_mib
from napari_frugalseg.core.config import TrainConfig, new_model_config
from napari_frugalseg.core.datasets import isbi2012
from napari_frugalseg.core.ensemble import EnsembleTrainer
from napari_frugalseg.core.predict import models_on, predict_image, predict_view, run_to_end
from napari_frugalseg.core.scribbles import skeleton_scribbles
from napari_frugalseg.core.train import TrainingData


def mib(n: int) -> float:
    return n / 2**20


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--cycles", type=int, default=20)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--members", type=int, default=1, help="ensemble members (the plugin's setting)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA GPU: nothing to measure")
        return 1
    device = torch.device("cuda")
    ds = isbi2012(args.data)
    image, truth = ds.images[0], ds.labels[0]
    scribbles = skeleton_scribbles(truth, 0.01, seed=0)
    config = new_model_config(ds.classes, image.shape[0], 2)
    data = TrainingData([image], [scribbles], config.norm_percentiles)
    box = (slice(0, 512), slice(0, 512))

    torch.cuda.synchronize()
    start = torch.cuda.memory_allocated()
    print(f"{torch.cuda.get_device_name()}; allocated before any work: {mib(start):.1f} MiB")
    print(f"{'cycle':>5} {'ended':>7} {'steps':>6} {'peak train MiB':>15} {'after train MiB':>16}"
          f" {'after predict MiB':>18} {'RSS MiB':>8}")
    models: list = []
    after: list[float] = []
    rss: list[float] = []
    for cycle in range(1, args.cycles + 1):
        stop_early = cycle % 2 == 1
        tc = TrainConfig(max_seconds=args.seconds, device="cuda", val_every=10)
        if models:
            tc = tc.continued()
        trainer = EnsembleTrainer(data, config, tc, args.members, models)
        trainer.preview_fn = lambda predictor: predict_view(predictor, trainer.config, data.images[0], None, box)
        trainer.preview_every = 1.0
        torch.cuda.reset_peak_memory_stats()
        steps = 0
        try:
            for progress in trainer.run(max_seconds=args.seconds):
                steps = progress.step
                if stop_early and steps >= 5:
                    trainer.request_stop()
        finally:
            models = trainer.release()
        peak = torch.cuda.max_memory_allocated()
        after_train = torch.cuda.memory_allocated()
        with models_on(models, device) as on_device:
            run_to_end(predict_image(on_device, trainer.config, image, device, uncertainty=True))
        gc.collect()
        after.append(mib(torch.cuda.memory_allocated() - start))
        rss.append(rss_mib())
        print(f"{cycle:>5} {'stopped' if stop_early else 'budget':>7} {steps:>6} {mib(peak):>15.1f}"
              f" {mib(after_train):>16.1f} {mib(torch.cuda.memory_allocated()):>18.1f} {rss[-1]:>8.0f}")
    warm = min(4, len(rss) - 1)  # the first cycles fill allocator pools and caches
    print(f"allocated after the last cycle minus before any work: {after[-1]:.2f} MiB "
          f"(largest over cycles {max(after):.2f} MiB)")
    print(f"RSS growth from cycle {warm + 1} to {len(rss)}: {rss[-1] - rss[warm]:+.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
