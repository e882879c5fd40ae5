import pytest
import torch

from napari_frugalseg.core.config import ModelConfig
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
