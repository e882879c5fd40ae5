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
