"""Seconds per training step and per prediction of the default networks, by weight layout.

The U-Net keeps its weights channels-last (see core/model.py); this prints what that layout
buys over PyTorch's standard one on the machine at hand, for the default 2D net (batch 8 of
128 x 128) and 3D net (batch 2 of 16 x 48 x 48), on random data. Run from the repository root:

    python benchmarks/step_speed.py [--steps 20] [--device cpu]
"""

from __future__ import annotations

import time

import torch

from common import parser
from napari_frugalseg.core.config import ModelConfig, TrainConfig, new_model_config
from napari_frugalseg.core.device import resolve_device
from napari_frugalseg.core.losses import partial_loss
from napari_frugalseg.core.model import build_model


def seconds_per_step(config: ModelConfig, batch: int, layout: torch.memory_format, steps: int,
                     device: torch.device) -> tuple[float, float]:
    """(training step, forward pass without gradients) in seconds, after 3 warm-up steps."""
    torch.manual_seed(0)
    model = build_model(config).to(device=device, memory_format=layout)
    x = torch.randn((batch, config.in_channels) + config.patch_size, device=device)
    y = torch.randint(0, config.n_classes + 1, (batch,) + config.patch_size, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=TrainConfig().learning_rate)

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

    def train_step():
        opt.zero_grad(set_to_none=True)
        partial_loss(model(x), y).backward()
        opt.step()

    def predict():
        with torch.no_grad():
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
    print(f"{'net':<22}{'layout':<16}{'train step':>11}{'predict':>9}")
    nets = [("2D, batch 8x128^2", new_model_config(("a", "b"), 1, 2), 8, torch.channels_last),
            ("3D, batch 2x16x48^2", new_model_config(("a", "b"), 1, 3, 16), 2, torch.channels_last_3d)]
    for name, config, batch, fast in nets:
        times = {}
        for layout_name, layout in (("standard", torch.contiguous_format), ("channels-last", fast)):
            times[layout_name] = seconds_per_step(config, batch, layout, args.steps, device)
            print(f"{name:<22}{layout_name:<16}{times[layout_name][0]:>11.3f}{times[layout_name][1]:>9.3f}")
        (t0, p0), (t1, p1) = times.values()
        print(f"{name:<22}{'speed-up':<16}{t0 / t1:>10.2f}x{p0 / p1:>8.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
