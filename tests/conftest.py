from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def blobs():
    """The shipped sample: (image (1, Y, X), scribbles, reference mask values 1..2)."""
    from napari_frugalseg.core.io import read_array, read_image
    from napari_frugalseg.core.samples import demo_sample

    image_path, scribbles_path, truth = demo_sample()
    return read_image(image_path), read_array(scribbles_path).astype(np.int32), truth
