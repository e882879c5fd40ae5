import pytest
import torch

from napari_frugalseg.core.config import ModelConfig
from napari_frugalseg.core.device import autocast_dtype
from napari_frugalseg.core.losses import partial_loss
from napari_frugalseg.core.model import UNet, build_model


@pytest.mark.parametrize(
    "ndim,shape,channels,aniso",
    [(2, (37, 53), 1, 0), (2, (64, 64), 3, 0), (3, (5, 33, 21), 2, 1), (3, (16, 16, 16), 1, 0)],
)
def test_any_size_forward_backward(ndim, shape, channels, aniso):
    model = UNet(channels, 4, ndim=ndim, width=4, depth=2, anisotropic_levels=aniso)
    x = torch.randn(2, channels, *shape, requires_grad=True)
    y = model(x)
    assert y.shape == (2, 4) + shape
    y.mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_anisotropic_levels_pool_in_plane_only():
    model = UNet(1, 2, ndim=3, width=4, depth=3, anisotropic_levels=2)
    assert model.multiple() == (2, 8, 8)


def test_wrong_channels_is_a_clear_error():
    model = build_model(ModelConfig(classes=("a", "b"), in_channels=3))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.randn(1, 1, 32, 32))


@pytest.mark.parametrize("ndim,shape", [(2, (37, 53)), (3, (6, 20, 24))])
def test_fast_layout_computes_what_the_standard_layout_computes(ndim, shape):
    # weights are kept channels-last for speed; a torch whose kernels get that layout wrong
    # (as PyTorch 2.0's transposed convolution once did) must not silently corrupt predictions
    torch.manual_seed(0)
    fast = UNet(2, 3, ndim=ndim, width=4, depth=2, anisotropic_levels=ndim - 2).eval()
    layout = torch.channels_last if ndim == 2 else torch.channels_last_3d
    assert fast.down[0][0].weight.is_contiguous(memory_format=layout)
    standard = UNet(2, 3, ndim=ndim, width=4, depth=2, anisotropic_levels=ndim - 2)
    standard.to(memory_format=torch.contiguous_format)
    standard.load_state_dict(fast.state_dict())
    standard.eval()
    assert standard.down[0][0].weight.is_contiguous()
    x = torch.randn(2, 2, *shape)
    with torch.no_grad():
        assert torch.allclose(fast(x), standard(x), atol=1e-5)


@pytest.mark.parametrize("ndim,shape", [(2, (40, 56)), (3, (2, 16, 16)), (3, (4, 32, 32))])
def test_mixed_precision_where_used_gives_the_float32_gradient(ndim, shape):
    # training runs in reduced precision where the device is fast at it (device.autocast_dtype);
    # on CPUs, bfloat16 3D convolutions over 1-2 slices once gave broken weight gradients
    dtype = autocast_dtype(torch.device("cpu"), ndim)
    if dtype is None:
        pytest.skip(f"{ndim}D nets train in float32 on this CPU")
    torch.manual_seed(0)
    model = UNet(1, 2, ndim=ndim, width=4, depth=2, anisotropic_levels=ndim - 2)
    x, y = torch.randn(2, 1, *shape), torch.randint(0, 3, (2, *shape))
    grads = []
    for enabled in (False, True):
        model.zero_grad()
        with torch.autocast("cpu", dtype=dtype, enabled=enabled):
            logits = model(x)
        partial_loss(logits, y).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.isfinite(grads[1]).all()
    assert torch.nn.functional.cosine_similarity(grads[0], grads[1], dim=0) > 0.95


def test_3d_nets_train_in_float32_on_a_cpu():
    assert autocast_dtype(torch.device("cpu"), 3) is None
    assert autocast_dtype(torch.device("cuda"), 3) == torch.float16
