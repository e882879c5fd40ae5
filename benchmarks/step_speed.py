"""Seconds per training step and per prediction of the default networks, by weight layout
and precision.

The U-Net keeps its weights channels-last (see core/model.py) and trains with its forward
pass in reduced precision where the device computes that fast (core/device.autocast_dtype:
float16 on CUDA, bfloat16 for 2D nets on CPUs with AVX512-BF16 or AMX); this prints what each
buys over PyTorch's standard layout in float32 on the machine at hand, for the default 2D net
and 3D net (default batches: TrainConfig.batch_for), on random data, a third of the pixels
unlabelled, with the trainer's objective (core/train.objective: the label losses and the
affinity term; before 2026-11-29 the label losses only). Predictions stay in float32 on the
CPU. Run from the repository root:

    python benchmarks/step_speed.py [--steps 20] [--device cpu]
"""

from __future__ import annotations

import time

import torch

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig, new_model_config
from napari_frugalseg.core.device import autocast_dtype, resolve_device
from napari_frugalseg.core.model import build_model
from napari_frugalseg.core.train import objective


def seconds_per_step(config: ModelConfig, batch: int, layout: torch.memory_format, steps: int,
                     device: torch.device, amp: torch.dtype | None = None) -> tuple[float, float]:
    """(training step, forward pass without gradients) in seconds, after 3 warm-up steps."""
    torch.manual_seed(0)
    model = build_model(config).to(device=device, memory_format=layout)
    x = torch.rand((batch, config.in_channels) + config.patch_size, device=device)
    y = torch.randint(0, config.n_classes + 1, (batch,) + config.patch_size, device=device)
    tc = TrainConfig()
    opt = torch.optim.AdamW(model.parameters(), lr=tc.learning_rate)

    def timed(fn) -> float:
        for _ in range(3):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t0) / steps

    def forward():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            return model(x)

    def train_step():
        opt.zero_grad(set_to_none=True)
        objective(forward(), y, x, tc).backward()
        opt.step()

    def predict():
        with torch.no_grad(), torch.autocast(device.type, enabled=device.type == "cuda"):
            model(x)

    model.train()
    train_s = timed(train_step)
    model.eval()
    return train_s, timed(predict)


def main(argv=None) -> int:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    print(f"seconds per step on {device} ({torch.get_num_threads()} threads), {args.steps} steps each")
    print(f"{'net':<22}{'variant':<26}{'train step':>11}{'predict':>9}{'speed-up':>10}")
    for config, fast in [(new_model_config(("a", "b"), 1, 2), torch.channels_last),
                         (new_model_config(("a", "b"), 1, 3, 16), torch.channels_last_3d)]:
        batch = TrainConfig().batch_for(config.ndim)
        name = f"{config.ndim}D, batch {batch}x" + "x".join(map(str, config.patch_size))
        variants = [("standard, float32", torch.contiguous_format, None),
                    ("channels-last, float32", fast, None)]
        amp = autocast_dtype(device, config.ndim)
        if amp is not None:
            variants.append((f"channels-last, {str(amp).removeprefix('torch.')}", fast, amp))
        base = None
        for variant, layout, dtype in variants:
            t, pred = seconds_per_step(config, batch, layout, args.steps, device, dtype)
            base = base or (t, pred)
            print(f"{name:<22}{variant:<26}{t:>11.3f}{pred:>9.3f}"
                  f"{base[0] / t:>6.2f}x{base[1] / pred:>5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
